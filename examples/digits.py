"""scikit-learn's 8x8 digits (a small MNIST stand-in), latency-encoded, 64-100-10 LIF network."""

from eqneuron.training import TrainConfig, train

result = train(TrainConfig(task="digits", model="lif", epochs=30, out="runs/digits_lif"))
print(f"test accuracy {result['test_acc']:.4f}")
