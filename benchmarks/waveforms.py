"""Input waveforms: compile and run time against the number of samples, and
what stopping the steps at the sample times buys.

Table 1: 100 LIF neurons driven by a sampled current (`inputs:`), shared by
all neurons or one column per neuron, simulated for 100 ms under `jit`
(float64).  The first call includes compilation.

Table 2: 20 LIF neurons, each driven by its own current (random samples
between 1.2 and 3.5, or a sampled sine between 0.4 and 3.3), simulated for
100 ms in float64, with the Runge–Kutta steps
stopping at every sample time (the engine) and without (the same engine with
its lookup of the next sample time patched out, as it was before the
stops): Runge–Kutta steps per neuron (attempts, rejected ones included,
counted in a separate run), the largest spike-time error against the exact
solution, and the median run time.  The random currents stay above the
threshold, so every crossing is transversal: a brief excursion above the
threshold is a matter of event detection, not of the steps.  The exact solution: on each piece
between samples the current is a polynomial p (SciPy's interpolant of the
same samples), and dv/dt = (p - v) / tau has the particular solution
p - tau p' + tau² p'' - tau³ p''' plus a decaying exponential; crossings
are found by `brentq` on that formula.

Run: python -m benchmarks.waveforms
"""

from __future__ import annotations

import contextlib

import jax
import numpy as np
from scipy.interpolate import CubicHermiteSpline, PPoly
from scipy.optimize import brentq

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
TAU = 10.0


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


# ---- steps stopping at the samples


def interpolant(interpolation: str, times, values) -> PPoly:
    """SciPy's piecewise polynomial of the samples: linear, or the C¹ cubic with the
    backward-difference slopes of Diffrax's `backward_hermite_coefficients`."""
    slopes = np.diff(values) / np.diff(times)
    if interpolation == "linear":
        return PPoly(np.stack([slopes, values[:-1]]), times)
    return CubicHermiteSpline(times, values, np.concatenate([slopes[:1], slopes]))


def exact_spike_times(current: PPoly, t1: float, tau: float = TAU, v_th: float = 1.0) -> np.ndarray:
    """Spike times of dv/dt = (I - v) / tau from v = 0, reset to 0; I held after its last sample."""
    pieces = [np.poly1d(current.c[:, k]) for k in range(current.c.shape[1])]
    pieces.append(np.poly1d([current(current.x[-1])]))
    starts = np.append(current.x[:-1], current.x[-1])
    ends = np.append(current.x[1:], t1)
    spikes, v = [], 0.0
    for p, s, e in zip(pieces, starts, ends):
        particular = p - tau * p.deriv(1) + tau**2 * p.deriv(2) - tau**3 * p.deriv(3)
        x0, v0 = 0.0, v
        while True:

            def v_at(x, x0=x0, v0=v0, particular=particular):
                return particular(x) + (v0 - particular(x0)) * np.exp(-(x - x0) / tau)

            grid = np.linspace(x0, e - s, 257)
            values = v_at(grid)
            up = np.flatnonzero((values[:-1] < v_th) & (values[1:] >= v_th))
            if up.size == 0:
                v = values[-1]
                break
            x0 = brentq(lambda x: v_at(x) - v_th, grid[up[0]], grid[up[0] + 1], xtol=1e-15, rtol=1e-15)
            v0 = 0.0
            spikes.append(s + x0)
    return np.array(spikes)


@contextlib.contextmanager
def steps_across_samples():
    """The engine without its stops at the sample times (as before them)."""
    from eqneuron.engine import runge_kutta

    lookup = runge_kutta.next_kink
    runge_kutta.next_kink = lambda p, t: None
    try:
        yield
    finally:
        runge_kutta.next_kink = lookup


@contextlib.contextmanager
def counting_steps(counter: dict):
    """Count the Runge–Kutta step attempts per lane (host callbacks: not for timing)."""
    from eqneuron.engine.controller import AdaptiveStepSize

    adapt = AdaptiveStepSize.adapt

    def counted(self, state, dt, ratio, last, taken, unchanged, full):
        def add(unchanged):
            counter["attempts"] += int(np.sum(~unchanged))

        jax.debug.callback(add, unchanged)
        return adapt(self, state, dt, ratio, last, taken, unchanged, full)

    AdaptiveStepSize.adapt = counted
    try:
        yield
    finally:
        AdaptiveStepSize.adapt = adapt


def stop_cases():
    rng = np.random.default_rng(0)
    for count in (101, 1001):
        times = np.linspace(0.0, T1, count)
        yield "random", count, times, rng.uniform(1.2, 3.5, (count, 20))
    times = np.linspace(0.0, T1, 10001)
    yield "sine", 10001, times, (1.5 + np.sin(times / 5.0))[:, None] * np.linspace(0.8, 1.3, 20)


def measure_stops(tolerances=(1e-8, 1e-6)):
    import eqneuron as eqn

    rows = []
    for interpolation in ("linear", "cubic"):
        model = eqn.compile_model(MODEL.format(interpolation=interpolation))
        for kind, count, times, values in stop_cases():
            n = values.shape[1]
            exact = [exact_spike_times(interpolant(interpolation, times, values[:, k]), T1) for k in range(n)]
            pop = model.population(n, waveforms={"I_ext": (times, values)})
            for tol in tolerances:
                row = [interpolation, kind, count, tol]
                for stops in (False, True):
                    with contextlib.nullcontext() if stops else steps_across_samples():

                        def simulate(pop, tol=tol):
                            return eqn.simulate(pop, None, t1=T1, max_spikes=4096, rtol=tol, atol=tol)

                        run = jax.jit(simulate)
                        out = run(pop)
                        times_, ids = np.asarray(out.spike_times), np.asarray(out.spike_neurons)
                        ours = [np.sort(times_[ids == k]) for k in range(n)]
                        error = max(
                            np.max(np.abs(a - b), initial=0.0) if len(a) == len(b) else np.inf
                            for a, b in zip(ours, exact)
                        )
                        _, median = timed(run, pop, repeats=3)
                        counter = {"attempts": 0}
                        with counting_steps(counter):
                            jax.block_until_ready(simulate(pop).n_spikes)
                    row += [counter["attempts"] / n, error, median]
                rows.append(row)
    return rows


def main():
    with jax.enable_x64(True):
        rows = measure()
        stop_rows = measure_stops()
    print(f"{'interpolation':<14} {'samples':>8} {'layout':<11} {'first call':>11} {'later':>9}   (seconds)")
    for interpolation, count, layout, first, median in rows:
        print(f"{interpolation:<14} {count:>8} {layout:<11} {first:>11.2f} {median:>9.4f}")
    print()
    print(
        f"{'interpolation':<14} {'current':<7} {'samples':>7} {'rtol=atol':>9}   "
        f"{'steps':>7} {'error (ms)':>10} {'run (s)':>8}   {'steps':>7} {'error (ms)':>10} {'run (s)':>8}"
    )
    print(f"{'':<43}{'across samples':^29}   {'stopping at samples':^29}")
    for interpolation, kind, count, tol, *figures in rows_formatted(stop_rows):
        print(f"{interpolation:<14} {kind:<7} {count:>7} {tol:>9}   " + "   ".join(figures))


def rows_formatted(stop_rows):
    for interpolation, kind, count, tol, steps0, error0, time0, steps1, error1, time1 in stop_rows:
        yield (
            interpolation,
            kind,
            count,
            f"{tol:.0e}",
            f"{steps0:>7.0f} {error0:>10.1e} {time0:>8.3f}",
            f"{steps1:>7.0f} {error1:>10.1e} {time1:>8.3f}",
        )


if __name__ == "__main__":
    main()
