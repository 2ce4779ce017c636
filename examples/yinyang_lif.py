"""Train a 5-120-3 LIF network on Yin-Yang with a time-to-first-spike loss.

python examples/yinyang_lif.py  (about 25 s per epoch on 2 CPU cores)
"""

from eqneuron.train.training import TrainConfig, train

result = train(TrainConfig(task="yinyang", model="lif", epochs=30, out="runs/yinyang_lif"))
print(f"test accuracy {result['test_acc']:.4f}")
