"""Write a new neuron model as text, then simulate, differentiate and train it."""

import jax
import jax.numpy as jnp

import eqneuron as eqn
from eqneuron.train.training import TrainConfig, train

SOURCE = """
# LIF with an adaptive threshold: every spike raises the threshold, which relaxes back.
neuron AdaptiveLIF
parameters:
    tmem = 10.0
    tsyn = 5.0
    tadapt = 50.0
    theta0 = 1.0
    jump = 0.2
    ic = 0.0 (per_neuron, trainable)
state:
    theta = theta0
equations:
    dv/dt = (-v + i + ic) / tmem
    di/dt = -i / tsyn
    dtheta/dt = (theta0 - theta) / tadapt
threshold: v > theta
reset:
    v = 0.0
    theta += jump
weights:
    w = normal(1.0, 1.0) * 2 / sqrt(fan_in)
on_spike:
    i += w
"""

model = eqn.compile_model(SOURCE)
print(model)
pop = model.population(4, in_size=2, key=jax.random.key(0))
inputs = eqn.Spikes(jnp.array([1.0, 2.0, 5.0]), jnp.array([0, 1, 0]))
out = eqn.simulate(pop, inputs, t1=50.0, max_spikes=64)
print("first spikes:", out.first_spike_times())

with open("adaptive_lif.eq", "w") as f:
    f.write(SOURCE)
result = train(TrainConfig(task="yinyang", model="adaptive_lif.eq", epochs=3, train_size=1000, test_size=300,
                           out="runs/custom"))
print(f"test accuracy after 3 short epochs: {result['test_acc']:.4f}")
