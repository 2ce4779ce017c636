"""How the LIF engine's cost grows with the number of spikes and with the population size.

A population of N LIF neurons (exact integration, float32) driven by K=50
Poisson channels.  Cost should grow linearly with the number of events.

Run: python -m benchmarks.scaling
"""

from __future__ import annotations

import jax
import numpy as np

import eqneuron as eqn
from eqneuron.cli.simulate import poisson_spikes

from .common import peak_rss_mb, timed

K = 50


def case(n_neurons, rate_hz, duration, seed=0):
    model = eqn.compile_model("lif")
    key = jax.random.key(seed)
    pop = model.population(n_neurons, K, key=key)
    inputs = poisson_spikes(jax.random.key(seed + 1), rate_hz, K, duration)
    max_spikes = 400_000
    f = jax.jit(lambda s: eqn.simulate(pop, s, t1=duration, max_spikes=max_spikes, max_spikes_per_neuron=512))
    first, run = timed(f, inputs, repeats=3)
    out = f(inputs)
    n_in = int(np.sum(np.isfinite(np.asarray(inputs.times))))
    return run, int(out.n_spikes), n_in, bool(out.overflow)


def main():
    print("spikes scaling: N = 1000, 50 Poisson channels, 200 ms")
    print(f"{'rate Hz':>8} {'inputs':>8} {'spikes':>8} {'time s':>8} {'us/event':>9}")
    for rate in (5, 20, 80, 320):
        run, spikes, n_in, overflow = case(1000, rate, 200.0)
        print(f"{rate:>8} {n_in:>8} {spikes:>8} {run:>8.3f} {1e6 * run / max(spikes + n_in, 1):>9.2f}{'  overflow' if overflow else ''}", flush=True)
    print("size scaling: 20 Hz inputs, 200 ms")
    print(f"{'N':>8} {'inputs':>8} {'spikes':>8} {'time s':>8} {'us/event':>9}")
    for n in (100, 1000, 10000):
        run, spikes, n_in, overflow = case(n, 20, 200.0)
        print(f"{n:>8} {n_in:>8} {spikes:>8} {run:>8.3f} {1e6 * run / max(spikes + n_in, 1):>9.2f}{'  overflow' if overflow else ''}", flush=True)
    print(f"peak RSS {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
