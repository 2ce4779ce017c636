"""Input waveforms: compile and run time against the number of samples.

100 LIF neurons driven by a sampled current (`inputs:`), shared by all
neurons or one column per neuron, simulated for 100 ms under `jit`
(float64).  The first call includes compilation.

Run: python -m benchmarks.waveforms
"""

from __future__ import annotations

import jax
import numpy as np

from .common import timed

MODEL = """
neuron DrivenLIF
parameters:
    tau = 10.0
inputs:
    I_ext ({interpolation})
equations:
    dv/dt = (-v + I_ext) / tau
threshold: v > 1.0
reset:
    v = 0.0
"""
NEURONS = 100
T1 = 100.0


def measure(samples=(101, 1001, 10001)):
    import eqneuron as eqn

    results = []
    for interpolation in ("linear", "cubic"):
        model = eqn.compile_model(MODEL.format(interpolation=interpolation))
        for count in samples:
            times = np.linspace(0.0, T1, count)
            current = 1.5 + np.sin(times / 5.0)
            for layout, values in (
                ("shared", current),
                ("per neuron", current[:, None] * np.linspace(0.8, 1.3, NEURONS)),
            ):
                pop = model.population(NEURONS, waveforms={"I_ext": (times, values)})
                run = jax.jit(lambda pop: eqn.simulate(pop, None, t1=T1, max_spikes=4096).n_spikes)
                first, median = timed(run, pop)
                results.append((interpolation, count, layout, first, median))
    return results


def main():
    with jax.enable_x64(True):
        rows = measure()
    print(f"{'interpolation':<14} {'samples':>8} {'layout':<11} {'first call':>11} {'later':>9}   (seconds)")
    for interpolation, count, layout, first, median in rows:
        print(f"{interpolation:<14} {count:>8} {layout:<11} {first:>11.2f} {median:>9.4f}")


if __name__ == "__main__":
    main()
