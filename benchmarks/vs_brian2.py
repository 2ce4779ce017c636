"""eqneuron vs Brian2: forward simulation of 1000 LIF neurons (and Izhikevich) driven by Poisson input, 1 s.

Both get identical input spike trains (100 channels) and identical weights.
Brian2 is clock-driven (its default `dt` = 0.1 ms and finer), with its
fastest available target (`cython`, else `numpy`), run in the interpreter
named by $BRIAN2_PYTHON (Brian2 needs NumPy < 2.3; default
/tmp/brian_venv/bin/python).  Accuracy: spike times of each against an
eqneuron float64 exact reference (mean |Δt| over matched spikes, count error).

Run: python -m benchmarks.vs_brian2
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

N, K, RATE, DURATION = 1000, 100, 20.0, 1000.0

BRIAN_SCRIPT = r"""
import json, sys, time, numpy as np
from brian2 import *
case = json.loads(sys.argv[1])
d = np.load(case["path"])
target = case["target"]
prefs.codegen.target = target
defaultclock.dt = case["dt"] * ms
N, K = d["w"].shape[1], d["w"].shape[0]
if case["model"] == "lif":
    eqs = '''dv/dt = (-v + I_syn) / (10*ms) : 1
             dI_syn/dt = -I_syn / (5*ms) : 1'''
    G = NeuronGroup(N, eqs, threshold='v > 1', reset='v -= 1', method='exact')
else:
    eqs = '''dv/dt = (0.04*v**2 + 5*v + 140 - u + I_syn) / ms : 1
             du/dt = 0.02 * (0.2*v - u) / ms : 1
             dI_syn/dt = -I_syn / (5*ms) : 1'''
    G = NeuronGroup(N, eqs, threshold='v > 30', reset='v = v - (30 - (-65)); u += 8', method=case["method"])
    G.v = -65
    G.u = 0.2 * -65
P = SpikeGeneratorGroup(K, d["channels"].astype(int), d["times"] * ms)
S = Synapses(P, G, 'w : 1', on_pre='I_syn_post += w')
S.connect()
S.w = d["w"][S.i[:], S.j[:]]
M = SpikeMonitor(G)
net = Network(G, P, S, M)
t0 = time.perf_counter(); net.run(1 * ms); first = time.perf_counter() - t0
t0 = time.perf_counter(); net.run(case["duration"] * ms - 1 * ms); rest = time.perf_counter() - t0
np.savez(case["out"], i=np.asarray(M.i), t=np.asarray(M.t / ms))
print(json.dumps({"first": first, "run": rest}))
"""


def brian_python() -> str | None:
    candidate = os.environ.get("BRIAN2_PYTHON", "/tmp/brian_venv/bin/python")
    return candidate if Path(candidate).exists() else None


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    times, channels = [], []
    for c in range(K):
        t = np.cumsum(rng.exponential(1000.0 / RATE, size=int(3 * RATE * DURATION / 1000) + 20))
        t = t[t < DURATION]
        times.append(t)
        channels.append(np.full(t.shape, c))
    times, channels = np.concatenate(times), np.concatenate(channels)
    order = np.argsort(times)
    return times[order], channels[order]


def run_eqneuron(model_name, w, times, channels, x64=False, repeats=3):
    """Time an eqneuron run in a subprocess (float32 or float64); returns timings and spikes."""
    with tempfile.TemporaryDirectory() as tmp:
        case = Path(tmp) / "case.npz"
        out = Path(tmp) / "out.npz"
        np.savez(case, w=w, times=times, channels=channels)
        code = f"""
import jax, json, time, numpy as np
jax.config.update('jax_enable_x64', {x64})
import jax.numpy as jnp, eqneuron as eqn
d = np.load({str(case)!r})
params = {{}} if {model_name!r} == 'lif' else eqn.izhikevich_pattern('regular_spiking')
model = eqn.compile_model({model_name!r}, params=params)
N = d['w'].shape[1]; K = d['w'].shape[0]
W = jnp.zeros((N + K, N)).at[N:].set(jnp.asarray(d['w']))
pop = model.population(N, K, weights={{'w': W}})
spikes = eqn.Spikes(jnp.asarray(d['times']), jnp.asarray(d['channels']))
f = jax.jit(lambda s: eqn.simulate(pop, s, t1={DURATION}, max_spikes=200000, max_spikes_per_neuron=400))
t0 = time.perf_counter(); out = f(spikes); out.spike_times.block_until_ready(); first = time.perf_counter() - t0
runs = []
for _ in range({repeats}):
    t0 = time.perf_counter(); out = f(spikes); out.spike_times.block_until_ready(); runs.append(time.perf_counter() - t0)
n = int(out.n_spikes)
np.savez({str(out)!r}, i=np.asarray(out.spike_neurons[:n]), t=np.asarray(out.spike_times[:n]))
print(json.dumps({{"first": first, "run": float(np.median(runs)), "overflow": bool(out.overflow)}}))
"""
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).resolve().parent.parent)
        timing = json.loads(result.stdout.strip().splitlines()[-1])
        data = np.load(out)
        return timing, (data["i"], data["t"])


def run_brian(model_name, w, times, channels, dt, target, method="euler"):
    python = brian_python()
    with tempfile.TemporaryDirectory() as tmp:
        case = Path(tmp) / "case.npz"
        out = Path(tmp) / "out.npz"
        np.savez(case, w=w, times=times, channels=channels)
        spec = json.dumps({"path": str(case), "out": str(out), "dt": dt, "target": target, "model": model_name,
                           "duration": DURATION, "method": method})
        result = subprocess.run([python, "-c", BRIAN_SCRIPT, spec], capture_output=True, text=True, cwd=tmp)
        if result.returncode != 0:
            raise RuntimeError(result.stderr[-2000:])
        timing = json.loads(result.stdout.strip().splitlines()[-1])
        data = np.load(out)
        return timing, (data["i"], data["t"])


def spike_error(spikes, reference):
    """Mean |Δt| over spikes matched in order per neuron, and the total count difference."""
    (i, t), (ri, rt) = spikes, reference
    errors, count_diff = [], 0
    for n in np.unique(np.concatenate([i, ri])):
        a, b = np.sort(t[i == n]), np.sort(rt[ri == n])
        count_diff += abs(len(a) - len(b))
        m = min(len(a), len(b))
        errors.append(np.abs(a[:m] - b[:m]))
    errors = np.concatenate(errors) if errors else np.zeros(0)
    # only the spikes before the first count mismatch of a neuron are comparable in time
    return float(np.median(errors)) if errors.size else float("nan"), count_diff


def main():
    times, channels = inputs()
    rng = np.random.default_rng(1)
    rows = []
    for model_name, scale in (("lif", 0.6), ("izhikevich", 6.0)):
        w = rng.normal(0.5, 1.0, size=(K, N)) * scale / np.sqrt(K) * 4
        ref_timing, reference = run_eqneuron(model_name, w, times, channels, x64=True, repeats=1)
        timing, spikes = run_eqneuron(model_name, w, times, channels, x64=False)
        err, dcount = spike_error(spikes, reference)
        n_ref = len(reference[0])
        print(f"{model_name}: {N} neurons, {len(times)} input spikes, {n_ref} output spikes in {DURATION:g} ms", flush=True)
        print(f"  eqneuron float32 ({'exact' if model_name == 'lif' else 'Tsit5'}): run {timing['run']:.3f} s (first call {timing['first']:.1f} s)"
              f"  median |dt| {err:.1e} ms, count diff {dcount}", flush=True)
        row = {"model": model_name, "eqneuron": timing, "eqneuron_err": err, "eqneuron_count_diff": dcount, "brian2": []}
        if brian_python() is None:
            print("  Brian2: not available (set BRIAN2_PYTHON to an interpreter with brian2 and numpy<2.3)")
        else:
            for target in ("cython", "numpy"):
                for dt in (0.1, 0.01):
                    try:
                        b_timing, b_spikes = run_brian(model_name, w, times, channels, dt, target)
                    except RuntimeError as error:
                        print(f"  Brian2 {target} dt={dt}: failed ({str(error).splitlines()[-1]})")
                        continue
                    b_err, b_dcount = spike_error(b_spikes, reference)
                    ratio = b_timing["run"] / timing["run"]
                    print(f"  Brian2 {target:<6} dt={dt:<5} run {b_timing['run']:.3f} s (first {b_timing['first']:.1f} s)"
                          f"  median |dt| {b_err:.1e} ms, count diff {b_dcount}   eqneuron speed-up {ratio:.1f}x", flush=True)
                    row["brian2"].append({"target": target, "dt": dt, **b_timing, "err": b_err, "count_diff": b_dcount})
                if target == "cython":
                    break
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()
