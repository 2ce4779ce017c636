"""Delayed-memory XOR with a recurrent EGRU population and an EGRU readout."""

from eqneuron.training import TrainConfig, train

result = train(TrainConfig(task="xor", model="egru", epochs=30, lr=3e-3, out="runs/xor_egru"))
print(f"test accuracy {result['test_acc']:.4f}")
