"""scikit-learn's 8x8 digits (a small MNIST stand-in), latency-encoded, 64-200-10 LIF network.

The task defaults (200 hidden neurons, 2 ms Gaussian jitter on the training
input spike times) reached 95.5 % test accuracy in 40 epochs (benchmarks/RESULTS.md).
"""

from eqneuron.train.training import TrainConfig, train

result = train(TrainConfig(task="digits", model="lif", epochs=40, out="runs/digits_lif"))
print(f"test accuracy {result['test_acc']:.4f}")
