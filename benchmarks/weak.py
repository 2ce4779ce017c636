"""Exact spike times in a weakly coupled recurrent network: eqneuron and Brian2 against a reference.

A CUBA network (the LIF neurons of `benchmarks.cuba`, driven above threshold
by their rest potential El = -45 mV, a 2 ms refractory period), 20 % random
connectivity with weak synapses and a 0.5 ms delay, so that a small error in
one spike time does not change the network's later spikes.  The reference is
the event-driven simulation of the tests (`tests/test_event_windows.py`,
written with scipy: `expm` of each neuron's augmented matrix between events,
crossings located by `brentq`), independent of eqneuron's code.  Each
simulator's spikes are matched to the reference's neuron by neuron, in order;
the table gives the spikes that are missing or extra, and the largest and
median |Δt| of the matched ones.  eqneuron runs event-driven in windows of
the delay (float32 and float64); Brian2 `cython` with `method='exact'` on
its clock (spike times fall on the grid of dt).

Run: python -m benchmarks.weak [--neurons 50] [--duration 200]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .cuba import BRIAN_SCRIPT, brian_python, run_brian_script

WE, WI, P_CONNECT = 0.6, -1.2, 0.2  # mV: a spike moves its targets' potentials by a few tenths of a mV


def network(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_exc = int(0.8 * n)
    pairs = np.argwhere(rng.random((n, n)) < P_CONNECT)
    exc = pairs[pairs[:, 0] < n_exc]
    inh = pairs[pairs[:, 0] >= n_exc]
    v0 = -60.0 + 10.0 * rng.random(n)
    return (exc[:, 0], exc[:, 1]), (inh[:, 0], inh[:, 1]), v0


def errors(ids, times, reference, n):
    """(missing + extra spikes, max |Δt|, median |Δt|) against the reference's (time, neuron) pairs."""
    ref_t = np.array([t for t, _ in reference])
    ref_i = np.array([i for _, i in reference])
    diffs, unmatched = [], 0
    for k in range(n):
        ours, theirs = np.sort(times[ids == k]), np.sort(ref_t[ref_i == k])
        m = min(len(ours), len(theirs))
        unmatched += abs(len(ours) - len(theirs))
        diffs.append(np.abs(ours[:m] - theirs[:m]))
    d = np.concatenate(diffs)
    return unmatched, float(d.max()), float(np.median(d))


def run_eqneuron(n, duration, conn_e, conn_i, v0, dtype):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import eqneuron as eqn
    from tests.test_event_windows import CUBA, DELAY

    model = eqn.compile_model(CUBA)
    pop = model.population(n, 0, params={"v0": jnp.asarray(v0, dtype)}, key=jax.random.key(0))
    exc = eqn.connect.sparse_from_indices(*conn_e, n, n)
    inh = eqn.connect.sparse_from_indices(*conn_i, n, n)
    net = eqn.Network({"P": pop}, projections=[
        eqn.Projection("P", "P", weights={"w": WE}, targets=exc, delay=DELAY, port="exc"),
        eqn.Projection("P", "P", weights={"w": WI}, targets=inh, delay=DELAY, port="inh"),
    ])
    net = jax.tree_util.tree_map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, net)
    run = jax.jit(lambda net: eqn.simulate(net, None, t1=duration, max_spikes=n * int(duration)))
    t0 = time.perf_counter()
    out = run(net)
    out.spike_times.block_until_ready()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        out = run(net)
        out.spike_times.block_until_ready()
        runs.append(time.perf_counter() - t0)
    if any(str(r) != str(eqn.RESULTS.ok) for r in out.results):
        raise RuntimeError(f"eqneuron: result codes {out.results}")
    k = int(out.n_spikes)
    return first, float(np.median(runs)), np.asarray(out.spike_neurons[:k]), np.asarray(out.spike_times[:k], np.float64)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=50)
    parser.add_argument("--duration", type=float, default=200.0, help="ms")
    parser.add_argument("--dts", default="0.1,0.01,0.001", help="Brian2 time steps, ms ('' for none)")
    args = parser.parse_args(argv)
    import jax

    jax.config.update("jax_enable_x64", True)
    from tests.test_event_windows import reference

    n, duration = args.neurons, args.duration
    conn_e, conn_i, v0 = network(n)
    t0 = time.perf_counter()
    ref = reference(v0, [(s, t, WE) for s, t in zip(*conn_e)], [(s, t, WI) for s, t in zip(*conn_i)], WE, WI, duration)
    print(f"reference: {len(ref)} spikes in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    rows = []
    for name, dtype in (("float32", np.float32), ("float64", np.float64)):
        first, run, ids, times = run_eqneuron(n, duration, conn_e, conn_i, v0, dtype)
        rows.append((f"eqneuron, event-driven windows, {name}", first, run, *errors(ids, times, ref, n)))
    dts = [float(x) for x in args.dts.split(",") if x]
    if dts and brian_python() is None:
        print("Brian2 not found ($BRIAN2_PYTHON): eqneuron only", file=sys.stderr)
        dts = []
    for dt in dts:
        timing, (bi, bt) = run_brian_script(BRIAN_SCRIPT, duration, "cython", dt, conn_e, conn_i, {"v0": v0},
                                            {"we": WE, "wi": WI, "El": -45.0, "refractory": 2.0, "delay": 0.5})
        rows.append((f"Brian2 cython, exact, dt = {dt} ms", timing["first"], timing["run"], *errors(bi, bt, ref, n)))
    print(f"\nWeakly coupled CUBA: {n} neurons, {len(conn_e[0]) + len(conn_i[0])} synapses, {duration:g} ms, "
          f"delay 0.5 ms; reference: {len(ref)} spikes\n")
    print("| simulator | first call (s) | run (s) | spikes missing or extra | max |Δt| (ms) | median |Δt| (ms) |")
    print("|---|---|---|---|---|---|")
    for name, first, run, unmatched, worst, median in rows:
        print(f"| {name} | {first:.2f} | {run:.4f} | {unmatched} | {worst:.2g} | {median:.2g} |")


if __name__ == "__main__":
    main()
