"""eqneuron vs jaxsnn 0.3.0: gradients of a 5→H→3 LIF network (Yin-Yang, time-to-first-spike).

jaxsnn (Electronic Vision(s), Heidelberg) simulates LIF layers event by event:
a `lax.scan` of a fixed number of steps per layer, each step advancing all
neurons (the 2×2 matrix exponential) to the next input spike or to the
earliest threshold crossing (found in closed form, which needs
tau_mem = tau_syn or 2 tau_syn).  It differentiates either by plain autodiff
through that scan (`backprop_method="analytical"`) or by its EventProp
adjoint (`"eventprop"`: a custom VJP that scans the recorded events backwards,
with the adjoint jumps written out by hand).  eqneuron runs the same network
with `simulate(..., stop_after_first_spike=True)`, `adjoint="loop"` (reverse
mode through the checkpointed event loop) or `adjoint="eventprop"` (a replay of
each neuron's events, differentiated).

Both get the same network: LIF with current synapses, tau_mem = 10 ms,
tau_syn = 5 ms, threshold 1, weights drawn by jaxsnn's `Linear` (inputs N(1.5,
1), hidden→output N(0.5, 0.8)) and passed to eqneuron's layout, float32; the
same Yin-Yang inputs (x, y, 1-x, 1-y at 30 ms × value, a bias spike at 0, batch
B, t1 = 60 ms); the same loss (`ttfs_cross_entropy`, tau 2 ms) on the output
neurons' first spikes.  Two regimes: one spike per hidden neuron (reset to
-1000, as jaxsnn's Yin-Yang examples), and several (`--multi`: hidden reset to
0, input weights ×2, output weights ×0.1 so that the outputs fire after a few
hidden spikes).  The outputs are reset to -1000 (one spike) in both.

Spike budgets are the least this batch needs, found by runs with ample ones:
jaxsnn's hidden scan has 5 + (most hidden spikes of a sample before its
outputs have all fired) steps and its output scan 3 more (as its examples
size them); eqneuron's `max_spikes_per_neuron` is the most spikes of one
hidden neuron in a run to t1 and its hidden spike list (`max_spikes` less the
outputs') the most hidden spikes of a sample to t1 (its closed-form hidden
layer runs to t1 before the outputs, and its spikes are then cut where the
outputs are done).

Per size and method: forward (output first-spike times) and value_and_grad
(w.r.t. both weight matrices) median times of interleaved calls after
warm-up; the first value_and_grad call (trace + compile + run) and the peak
RSS (VmHWM), both in a fresh process per method; the memory XLA plans for the
value_and_grad program (temp + output + argument buffers, from
`memory_analysis()`).  Ratios are the method's time over eqneuron eventprop's.
Agreement: output first-spike times of jaxsnn and eqneuron (max |Δt|, to be
within 1e-4 ms), and every method's gradient against a float64 reference
(eqneuron eventprop with x64, in its own process; max |Δg| / max |g|, to be
within 1e-3).  Samples where jaxsnn loses a hidden spike (two hidden neurons
crossing threshold within float32 roundoff of each other) or where two hidden
spikes are that close are counted and left out of those checks; the
gradient errors on all samples are printed as well.

jaxsnn is imported from $JAXSNN_PATH (default /tmp/jaxsnn_site), installed
without touching this environment:
    pip install --no-deps --target /tmp/jaxsnn_site jaxsnn==0.3.0 networkx tree-math

Run: python -m benchmarks.vs_jaxsnn [--sizes 120/32,480/256] [--multi 120/32] [--quick]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import eqneuron as eqn
from eqneuron import datasets, losses

from .common import block, timed_together

T1 = 60.0
T_LATE = 30.0
TAU_MEM, TAU_SYN, THRESH = 10.0, 5.0, 1.0
ONE_SPIKE_RESET = -1000.0  # jaxsnn's Yin-Yang examples: "low v_reset only allows one spike per neuron"
LOSS_TAU = 2.0
N_IN, N_OUT = 5, 3
TIME_TOL = 1e-4  # ms: first-spike agreement
GRAD_TOL = 1e-3  # relative: gradient agreement
COINCIDENT_ULPS = 4  # hidden spikes closer than this many float32 ulps count as coincident
METHODS = ("jaxsnn_eventprop", "jaxsnn_autodiff", "eqneuron_loop", "eqneuron_eventprop")
LABELS = {
    "jaxsnn_eventprop": "jaxsnn EventProp",
    "jaxsnn_autodiff": "jaxsnn autodiff",
    "eqneuron_loop": "eqneuron loop",
    "eqneuron_eventprop": "eqneuron eventprop",
}
DEFAULT_SIZES = "120/32,120/256,480/32,480/256"
DEFAULT_MULTI = "120/32"


def import_jaxsnn():
    """jaxsnn's modules, from $JAXSNN_PATH if it is not importable as is (its logging kept quiet)."""
    path = os.environ.get("JAXSNN_PATH", "/tmp/jaxsnn_site")
    if Path(path).is_dir() and path not in sys.path:
        sys.path.append(path)
    quiet = logging.getLogger("jaxsnn")
    if not quiet.handlers:  # jaxsnn configures the root logger unless its own has a handler
        quiet.addHandler(logging.NullHandler())
    quiet.setLevel(logging.ERROR)  # "hxtorch is not installed", "Generate and attach layer functions"
    try:
        from jaxsnn.event.loss import first_spike
        from jaxsnn.event.modules import LIF, LIFParameters, Linear, Source
        from jaxsnn.event.topology import Topology
        from jaxsnn.event.types import Spike
    except ImportError as e:
        raise SystemExit(
            f"jaxsnn is not importable ({e}); install it with\n"
            "  pip install --no-deps --target /tmp/jaxsnn_site jaxsnn==0.3.0 networkx tree-math\n"
            "or point $JAXSNN_PATH at a folder holding it"
        ) from None
    return dict(first_spike=first_spike, LIF=LIF, Linear=Linear, LIFParameters=LIFParameters, Source=Source,
                Topology=Topology, Spike=Spike)


def use_compilation_cache(path: str) -> None:
    """The probe processes compile each value_and_grad program cold and leave it here for the main process."""
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


# ---- the case: weights, inputs, both networks ---------------------------------------------------


def parse_sizes(text: str, multi: bool):
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        hidden, batch = item.split("/")
        out.append((int(hidden), int(batch), multi))
    return out


def hidden_reset(multi: bool) -> float:
    return 0.0 if multi else ONE_SPIKE_RESET


def draw_case(hidden: int, batch: int, multi: bool, seed: int = 0):
    """jaxsnn's initial weights (its `Linear`), Yin-Yang inputs sorted by time per sample, labels."""
    js = import_jaxsnn()
    topo = jaxsnn_topology(js, hidden, hidden + N_IN, multi, "analytical")
    init_fn, _ = topo.done()
    w = init_fn(jax.random.PRNGKey(seed))
    w1, w2 = np.asarray(w["syn1"], np.float32), np.asarray(w["syn2"], np.float32)
    if multi:
        w1, w2 = 2.0 * w1, 0.1 * w2
    data = datasets.yinyang(batch, seed=3, t_early=0.0, t_late=T_LATE, t_bias=0.0)
    times = np.asarray(data.times, np.float32)
    order = np.argsort(times, axis=1, kind="stable")  # jaxsnn walks its input queue in order
    return dict(
        w1=w1, w2=w2, times=np.take_along_axis(times, order, 1), channels=order.astype(np.int32),
        labels=np.asarray(data.labels, np.int32), mask=np.ones(batch, np.float32),
    )


def jaxsnn_topology(js, hidden: int, hidden_steps: int, multi: bool, backprop: str, weights=None):
    hidden_params = js["LIFParameters"](v_reset=hidden_reset(multi), v_th=THRESH, tau_syn=TAU_SYN, tau_mem=TAU_MEM)
    out_params = js["LIFParameters"](v_reset=ONE_SPIKE_RESET, v_th=THRESH, tau_syn=TAU_SYN, tau_mem=TAU_MEM)
    topo = js["Topology"](t_max=T1, backprop_method=backprop)
    topo.add({
        "inp": js["Source"](N_IN),
        "lif1": js["LIF"](hidden, hidden_steps, hidden_params),
        "lif2": js["LIF"](N_OUT, hidden_steps + N_OUT, out_params),
        "syn1": js["Linear"](mean=1.5, std=1.0),
        "syn2": js["Linear"](mean=0.5, std=0.8),
    })
    topo.connect([("inp", "syn1"), ("syn1", "lif1"), ("lif1", "syn2"), ("syn2", "lif2")])
    return topo


def loss_of(first, labels, mask):
    per_sample = jax.vmap(lambda f, y: losses.ttfs_cross_entropy(f, y, tau=LOSS_TAU, t_silent=T1))(first, labels)
    return jnp.sum(mask * per_sample) / jnp.sum(mask)


class Case:
    """Forward and value_and_grad functions of the four methods on one network and batch.

    Every function takes `(w1, w2, times, channels, labels, mask)`: the input→hidden
    weights `(5, H)`, hidden→output `(H, 3)`, per-sample time-sorted input spikes
    `(B, 5)` and labels, and per-sample loss weights (ones, except in the agreement check).
    """

    def __init__(self, hidden: int, batch: int, multi: bool, hidden_steps: int, per_neuron: int, list_size: int | None = None):
        self.hidden, self.batch, self.multi = hidden, batch, multi
        self.hidden_steps, self.per_neuron = hidden_steps, per_neuron
        # eqneuron's hidden spike list (`max_spikes` less the outputs')
        self.list_size = hidden * per_neuron if list_size is None else list_size
        js = import_jaxsnn()
        self.js = js
        self.apply = {
            m: jaxsnn_topology(js, hidden, hidden_steps, multi, b).done()[1]
            for m, b in (("jaxsnn_eventprop", "eventprop"), ("jaxsnn_autodiff", "analytical"))
        }
        model = eqn.compile_model("lif")
        params = dict(tmem=TAU_MEM, tsyn=TAU_SYN, thresh=THRESH)
        zeros_h = {"w": jnp.zeros((hidden + N_IN, hidden))}  # float64 in the x64 reference
        zeros_o = {"w": jnp.zeros((N_OUT + hidden, N_OUT))}
        self.hidden_pop = model.population(hidden, N_IN, params=dict(params, vreset=hidden_reset(multi)), weights=zeros_h)
        self.out_pop = model.population(N_OUT, hidden, params=dict(params, vreset=ONE_SPIKE_RESET), weights=zeros_o)

    # -- jaxsnn
    def jaxsnn_events(self, method, w1, w2, times, channels):
        spike = self.js["Spike"]
        inputs = {"inp": spike(time=times, idx=channels, current=jnp.zeros_like(times),
                               layer_idx=jnp.zeros(times.shape, jnp.int32), internal=jnp.ones(times.shape, bool))}
        weights = {"inp": None, "lif1": None, "lif2": None, "syn1": w1, "syn2": w2}
        return self.apply[method](inputs, weights)

    def jaxsnn_first(self, method, w1, w2, times, channels):
        events = self.jaxsnn_events(method, w1, w2, times, channels)
        return jax.vmap(self.js["first_spike"], in_axes=(0, None))(events["lif2"], N_OUT)

    # -- eqneuron
    def network(self, w1, w2):
        h = eqx.tree_at(lambda p: p.weights["w"], self.hidden_pop, self.hidden_pop.weights["w"].at[self.hidden:].set(w1))
        o = eqx.tree_at(lambda p: p.weights["w"], self.out_pop, self.out_pop.weights["w"].at[N_OUT:].set(w2))
        return eqn.Network([h, o])

    def eqneuron_run(self, adjoint, w1, w2, times, channels, per_neuron=None):
        size = self.list_size if per_neuron is None else self.hidden * per_neuron
        per_neuron = per_neuron or self.per_neuron
        net = self.network(w1, w2)
        return jax.vmap(lambda t, c: eqn.simulate(
            net, eqn.Spikes(t, c), t1=T1, max_spikes=size + N_OUT, max_spikes_per_neuron=per_neuron,
            stop_after_first_spike=True, adjoint=adjoint,
        ))(times, channels)

    def eqneuron_first(self, adjoint, w1, w2, times, channels):
        return self.eqneuron_run(adjoint, w1, w2, times, channels).first_spikes[-1]

    # -- the four methods
    def forward(self, method):
        if method.startswith("jaxsnn"):
            return jax.jit(lambda w1, w2, t, c, y, m: self.jaxsnn_first(method, w1, w2, t, c))
        adjoint = method.split("_")[1]
        return jax.jit(lambda w1, w2, t, c, y, m: self.eqneuron_first(adjoint, w1, w2, t, c))

    def value_and_grad(self, method):
        if method.startswith("jaxsnn"):
            def loss(w1, w2, t, c, y, m):
                return loss_of(self.jaxsnn_first(method, w1, w2, t, c), y, m)
        else:
            adjoint = method.split("_")[1]

            def loss(w1, w2, t, c, y, m):
                return loss_of(self.eqneuron_first(adjoint, w1, w2, t, c), y, m)
        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))


def case_args(arrays):
    return tuple(jnp.asarray(arrays[k]) for k in ("w1", "w2", "times", "channels", "labels", "mask"))


# ---- budgets and the agreement check --------------------------------------------------------------


def budgets(hidden, batch, multi, arrays):
    """jaxsnn hidden scan steps and eqneuron spikes per hidden neuron that this batch needs.

    jaxsnn walks the events in time order, so its hidden scan needs the hidden spikes up to the
    outputs' last first spike (later ones cannot change the outputs): those of an ample
    first-spike run, which ends there.  eqneuron runs a hidden layer of closed-form neurons to
    t1 before its outputs (and then cuts its spikes where the outputs are done), so its list
    holds every hidden spike to t1: the most of one neuron in a run to t1."""
    ample = 32
    case = Case(hidden, batch, multi, hidden + N_IN, ample)
    args = case_args(arrays)
    first = jax.jit(lambda w1, w2, t, c: case.eqneuron_run("loop", w1, w2, t, c, ample))(*args[:4])
    hid = case.network(*args[:2]).populations[0]
    whole = jax.jit(jax.vmap(lambda t, c: eqn.simulate(hid, eqn.Spikes(t, c), t1=T1, max_spikes=hidden * ample,
                                                       max_spikes_per_neuron=ample)))(*args[2:4])
    for run in (first, whole):
        assert not np.any(np.asarray(run.overflow)), "the ample run overflowed: raise `ample`"
    cut, counts = np.asarray(first.counts[0]), np.asarray(whole.counts[0])
    assert counts.max() < ample
    hidden_steps = N_IN + int(cut.sum(axis=1).max())
    return hidden_steps, int(max(counts.max(), 1)), int(max(counts.sum(axis=1).max(), 1))


def hidden_trains(times, ids, hidden):
    """Per sample: {neuron: sorted spike times} of the hidden population from a result's merged list."""
    trains = []
    for t, i in zip(times, ids):
        keep = np.isfinite(t) & (i >= 0) & (i < hidden)
        trains.append({int(n): np.sort(t[keep & (i == n)]) for n in np.unique(i[keep])})
    return trains


def coincident(train, until):
    """Spikes of two hidden neurons within COINCIDENT_ULPS float32 ulps of each other before `until`."""
    pairs = sorted((float(t), n) for n, ts in train.items() for t in ts if t <= until)
    for (ta, na), (tb, nb) in zip(pairs, pairs[1:]):
        if na != nb and tb - ta <= COINCIDENT_ULPS * np.spacing(np.float32(max(abs(ta), 1.0))):
            return True
    return False


def agreement(case: Case, arrays, firsts, vg):
    """Output first-spike times of jaxsnn vs eqneuron, the samples where they disagree and why,
    and the gradients of all four methods: on the samples where the outputs agree and no two
    hidden spikes coincide (`keep`), and on all samples."""
    hidden = case.hidden
    args = case_args(arrays)
    ours = np.asarray(firsts["eqneuron_eventprop"])
    theirs = np.asarray(firsts["jaxsnn_eventprop"])
    for a, b in (("jaxsnn_autodiff", "jaxsnn_eventprop"), ("eqneuron_loop", "eqneuron_eventprop")):
        x, y = np.asarray(firsts[a]), np.asarray(firsts[b])
        assert np.array_equal(np.isfinite(x), np.isfinite(y)) and np.max(
            np.abs(np.where(np.isfinite(x), x - y, 0.0))) <= TIME_TOL, f"{a} and {b} run different forwards"
    both = np.isfinite(ours) & np.isfinite(theirs)
    diff = np.where(both, np.abs(ours - theirs), 0.0)
    bad = (diff.max(axis=1) > TIME_TOL) | np.any(np.isfinite(ours) != np.isfinite(theirs), axis=1)

    # the hidden spikes of both (other programs: their float32 roundoff may differ from the timed ones by an ulp)
    ev = jax.jit(lambda w1, w2, t, c: case.jaxsnn_events("jaxsnn_eventprop", w1, w2, t, c)["lif1"])(*args[:4])
    internal = np.asarray(ev.internal)
    js_trains = hidden_trains(np.where(internal, np.asarray(ev.time), np.inf), np.where(internal, np.asarray(ev.idx), -1), hidden)
    run = jax.jit(lambda w1, w2, t, c: case.eqneuron_run("eventprop", w1, w2, t, c))(*args[:4])
    assert not np.any(np.asarray(run.overflow)), "eqneuron: a spike budget was too small"
    eq_trains = hidden_trains(np.asarray(run.spike_times), np.asarray(run.spike_neurons), hidden)
    # the budget covers jaxsnn's hidden spikes up to the outputs' last first spike (eqneuron's run
    # ends there, so `budgets` counted those; later ones cannot change the outputs)
    done = np.max(np.where(np.isfinite(ours), ours, T1), axis=1)
    assert max(sum(int(np.sum(v <= d)) for v in tr.values()) for tr, d in zip(js_trains, done)) <= case.hidden_steps - N_IN

    lost, unexplained = 0, []
    close = np.zeros(case.batch, bool)
    for b in range(case.batch):
        last = np.max(np.where(np.isfinite(ours[b]), ours[b], T1))
        close[b] = coincident(eq_trains[b], last)
        if bad[b]:
            # the earliest hidden spike of eqneuron's that jaxsnn does not have (to TIME_TOL)
            missing = []
            for n, ts in eq_trains[b].items():
                other = js_trains[b].get(n, np.zeros(0))
                for k, t in enumerate(ts):
                    if k >= len(other) or abs(other[k] - t) > TIME_TOL:
                        missing.append((float(t), n))
                        break
            t_miss, n_miss = min(missing) if missing else (np.inf, -1)
            window = COINCIDENT_ULPS * np.spacing(np.float32(max(t_miss, 1.0)))
            if any(n != n_miss and np.any(np.abs(ts - t_miss) <= window) for n, ts in eq_trains[b].items()):
                lost += 1
            else:
                unexplained.append((b, t_miss, n_miss))
    assert not unexplained, f"jaxsnn and eqneuron disagree on samples not explained by coincident spikes: {unexplained}"

    keep = ~bad & ~close
    out = dict(
        t_max_diff=float(diff[~bad].max()) if (~bad).any() else float("nan"),
        n_disagree=int(bad.sum()), n_lost=lost, n_close=int((close & ~bad).sum()), n_checked=int(keep.sum()),
    )
    masked = args[:5] + (jnp.asarray(keep, jnp.float32),)
    grads = {m: [np.asarray(g) for g in vg[m](*masked)[1]] for m in METHODS}
    full = {m: [np.asarray(g) for g in vg[m](*args)[1]] for m in METHODS}
    return out, keep, grads, full


def rel_error(g, ref) -> float:
    """max |g - ref| / max |ref| over both weight matrices."""
    return max(float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30)) for a, b in zip(g, ref))


# ---- the float64 reference: eqneuron eventprop with x64, in its own process ------------------------


def reference(spec: dict) -> None:
    jax.config.update("jax_enable_x64", True)
    arrays = {k: v.astype(np.float64) if v.dtype == np.float32 else v for k, v in np.load(spec["arrays"]).items()}
    case = Case(spec["hidden"], spec["batch"], spec["multi"], spec["hidden_steps"], spec["per_neuron"] + 2)
    args = case_args(arrays)
    run = jax.jit(lambda w1, w2, t, c: case.eqneuron_run("eventprop", w1, w2, t, c))(*args[:4])
    assert not np.any(np.asarray(run.overflow))
    vg = case.value_and_grad("eqneuron_eventprop")
    keep = vg(*args[:5], jnp.asarray(np.load(spec["keep"]), jnp.float64))[1]
    full = vg(*args)[1]
    np.savez(spec["out"], first=np.asarray(run.first_spikes[-1]), keep_w1=keep[0], keep_w2=keep[1], all_w1=full[0], all_w2=full[1])


def run_reference(spec: dict):
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.vs_jaxsnn", "--reference", json.dumps(spec)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
    )
    if result.returncode != 0:
        raise RuntimeError(f"float64 reference failed:\n{result.stderr[-3000:]}")
    d = np.load(spec["out"])
    return d["first"], [d["keep_w1"], d["keep_w2"]], [d["all_w1"], d["all_w2"]]


# ---- one value_and_grad call in a fresh process: first-call time and peak RSS --------------------


def high_water_mb() -> float:
    """This process's peak resident set (VmHWM).  Not `ru_maxrss`: on Linux that keeps the
    parent's peak across fork and exec, so a probe would report the benchmark's own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def probe(spec: dict) -> dict:
    use_compilation_cache(spec["cache"])
    arrays = dict(np.load(spec["arrays"]))
    case = Case(spec["hidden"], spec["batch"], spec["multi"], spec["hidden_steps"], spec["per_neuron"], spec["list_size"])
    fn = case.value_and_grad(spec["method"])
    args = case_args(arrays)
    block(args)
    base = high_water_mb()
    t0 = time.perf_counter()
    block(fn(*args))
    first = time.perf_counter() - t0
    peak = high_water_mb()
    return {"first": first, "rss_mb": peak, "rss_base_mb": base}


def run_probe(spec: dict) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.vs_jaxsnn", "--probe", json.dumps(spec)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent,
    )
    if result.returncode != 0:
        raise RuntimeError(f"probe {spec['method']} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---- one size ------------------------------------------------------------------------------------


def xla_memory_mb(compiled) -> float:
    m = compiled.memory_analysis()
    return (m.temp_size_in_bytes + m.output_size_in_bytes + m.argument_size_in_bytes) / 2**20


def timed_interleaved(fns, args, budget_s: float, most: int, least: int = 3):
    """Medians of interleaved calls of already compiled functions (as many rounds as fit `budget_s`)."""
    t0 = time.perf_counter()
    for fn in fns:
        block(fn(*args))
    once = time.perf_counter() - t0
    repeats = int(min(most, max(least, budget_s // max(once, 1e-9))))
    return [median for _, median in timed_together([(fn, args) for fn in fns], repeats)], repeats


def bench_size(hidden, batch, multi, cache, tmp):
    arrays = draw_case(hidden, batch, multi)
    hidden_steps, per_neuron, list_size = budgets(hidden, batch, multi, arrays)
    path = Path(tmp) / f"case_{hidden}_{batch}_{int(multi)}.npz"
    np.savez(path, **arrays)
    spec = dict(arrays=str(path), cache=cache, hidden=hidden, batch=batch, multi=multi,
                hidden_steps=hidden_steps, per_neuron=per_neuron, list_size=list_size)
    probes = {m: run_probe(dict(spec, method=m)) for m in METHODS}

    case = Case(hidden, batch, multi, hidden_steps, per_neuron, list_size)
    args = case_args(arrays)
    block(args)
    fwd = {m: case.forward(m) for m in METHODS}
    fwd_first = {}
    for m in METHODS:
        t0 = time.perf_counter()
        block(fwd[m](*args))
        fwd_first[m] = time.perf_counter() - t0
    fwd_med, fwd_reps = timed_interleaved([fwd[m] for m in METHODS], args, 20.0, 15)
    vg_jit = {m: case.value_and_grad(m) for m in METHODS}
    t0 = time.perf_counter()
    compiled = {m: vg_jit[m].lower(*args).compile() for m in METHODS}  # from the probes' cache
    cache_load = time.perf_counter() - t0
    memory = {m: xla_memory_mb(compiled[m]) for m in METHODS}
    vg_med, vg_reps = timed_interleaved([compiled[m] for m in METHODS], args, 40.0, 5, least=5)

    firsts = {m: np.asarray(fwd[m](*args)) for m in METHODS}
    agree, keep, grads, full = agreement(case, arrays, firsts, compiled)
    np.save(Path(tmp) / "keep.npy", keep)
    ref_first, ref_keep, ref_full = run_reference(dict(spec, keep=str(Path(tmp) / "keep.npy"), out=str(Path(tmp) / "ref.npz")))
    ok = keep[:, None] & np.isfinite(ref_first)
    for m in ("jaxsnn_eventprop", "eqneuron_eventprop"):
        assert np.array_equal(np.isfinite(firsts[m])[keep], np.isfinite(ref_first)[keep]), f"{m}: silent outputs differ from float64"
        agree[f"t_err_{m}"] = float(np.max(np.abs(np.where(ok, firsts[m] - ref_first, 0.0))))
    agree["grad_err"] = {m: rel_error(grads[m], ref_keep) for m in METHODS}
    agree["grad_err_all"] = {m: rel_error(full[m], ref_full) for m in METHODS}
    assert agree["t_max_diff"] <= TIME_TOL, agree
    assert max(agree["grad_err"].values()) <= GRAD_TOL, agree
    row = dict(hidden=hidden, batch=batch, multi=multi, hidden_steps=hidden_steps, per_neuron=per_neuron, list_size=list_size,
               fwd_reps=fwd_reps, vg_reps=vg_reps, cache_load=cache_load, agreement=agree, methods={})
    for k, m in enumerate(METHODS):
        row["methods"][m] = dict(fwd=fwd_med[k], fwd_first=fwd_first[m], vg=vg_med[k], vg_first=probes[m]["first"],
                                 xla_mb=memory[m], rss_mb=probes[m]["rss_mb"], rss_base_mb=probes[m]["rss_base_mb"])
    return row


# ---- output --------------------------------------------------------------------------------------


def regime(row) -> str:
    return "several spikes" if row["multi"] else "one spike"


def print_row(r):
    eq = r["methods"]["eqneuron_eventprop"]
    a = r["agreement"]
    print(f"\nH={r['hidden']} B={r['batch']} ({regime(r)} per hidden neuron): jaxsnn hidden scan {r['hidden_steps']} steps, "
          f"eqneuron max_spikes_per_neuron={r['per_neuron']}, hidden list {r['list_size']}  (medians of {r['fwd_reps']} forward, {r['vg_reps']} v&g calls; "
          f"the four v&g programs traced again and read from the probes' cache in {r['cache_load']:.1f} s)")
    for m in METHODS:
        x = r["methods"][m]
        print(f"  {LABELS[m]:<19} fwd {1e3 * x['fwd']:8.1f} ms ({x['fwd'] / eq['fwd']:5.2f}x)  v&g {1e3 * x['vg']:8.1f} ms "
              f"({x['vg'] / eq['vg']:5.2f}x)  first v&g {x['vg_first']:5.1f} s  XLA {x['xla_mb']:7.1f} MB  "
              f"peak RSS {x['rss_mb']:6.0f} MB (base {x['rss_base_mb']:.0f})", flush=True)
    print(f"  first spikes: jaxsnn vs eqneuron max |Δt| {a['t_max_diff']:.1e} ms on {r['batch'] - a['n_disagree']} samples; "
          f"{a['n_disagree']} disagree ({a['n_lost']} where jaxsnn lost a hidden spike coincident with another's); "
          f"vs float64: jaxsnn {a['t_err_jaxsnn_eventprop']:.1e} ms, eqneuron {a['t_err_eqneuron_eventprop']:.1e} ms")
    print(f"  gradients, max |Δg| / max |g| vs float64, on {a['n_checked']} samples ({a['n_close']} more with coincident hidden spikes left out):"
          + "".join(f" {LABELS[m]} {v:.1e}" for m, v in a["grad_err"].items())
          + "; on all samples:" + "".join(f" {LABELS[m]} {v:.1e}" for m, v in a["grad_err_all"].items()), flush=True)


def markdown(rows) -> str:
    lines = [
        "| regime | H | B | budget jaxsnn / eqneuron | method | forward ms | × eq EP | v&g ms | × eq EP | first v&g s | XLA MB | peak RSS MB (+ over base) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        eq = r["methods"]["eqneuron_eventprop"]
        for m in METHODS:
            x = r["methods"][m]
            lines.append(
                f"| {regime(r)} | {r['hidden']} | {r['batch']} | {r['hidden_steps']} steps / {r['per_neuron']} per neuron, list {r['list_size']} "
                f"| {LABELS[m]} | {1e3 * x['fwd']:.1f} | {x['fwd'] / eq['fwd']:.2f} | {1e3 * x['vg']:.1f} | {x['vg'] / eq['vg']:.2f} "
                f"| {x['vg_first']:.1f} | {x['xla_mb']:.1f} | {x['rss_mb']:.0f} (+{x['rss_mb'] - x['rss_base_mb']:.0f}) |"
            )
    lines += [
        "",
        "Agreement: first spikes jaxsnn vs eqneuron (float32), samples where they disagree (of which jaxsnn lost a coincident "
        "hidden spike), each against float64; gradient error max |Δg| / max |g| against float64 on the checked samples "
        "(and on all samples).",
        "",
        "| regime | H | B | max \\|Δt\\| ms | disagree (lost) | \\|Δt\\| vs f64 jaxsnn / eqneuron | checked | "
        "jaxsnn EP | jaxsnn autodiff | eq loop | eq EP | all samples: jaxsnn EP / autodiff / eq loop / eq EP |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a = r["agreement"]
        g, ga = a["grad_err"], a["grad_err_all"]
        lines.append(
            f"| {regime(r)} | {r['hidden']} | {r['batch']} | {a['t_max_diff']:.1e} | {a['n_disagree']} ({a['n_lost']}) "
            f"| {a['t_err_jaxsnn_eventprop']:.1e} / {a['t_err_eqneuron_eventprop']:.1e} | {a['n_checked']} "
            + "".join(f"| {g[m]:.1e} " for m in METHODS)
            + "| " + " / ".join(f"{ga[m]:.1e}" for m in METHODS) + " |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help=f"hidden/batch pairs, one spike per hidden neuron (default {DEFAULT_SIZES})")
    parser.add_argument("--multi", default=None, help=f"hidden/batch pairs, several spikes per hidden neuron (default {DEFAULT_MULTI}; '' for none)")
    parser.add_argument("--quick", action="store_true", help="one small size (120/32, one spike per hidden neuron)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--reference", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe))))
        return
    if args.reference:
        reference(json.loads(args.reference))
        return
    import_jaxsnn()
    sizes = args.sizes if args.sizes is not None else ("120/32" if args.quick else DEFAULT_SIZES)
    multi = args.multi if args.multi is not None else ("" if args.quick else DEFAULT_MULTI)
    cases = parse_sizes(sizes, False) + parse_sizes(multi, True)
    print(f"jaxsnn 0.3.0 vs eqneuron, LIF 5→H→3, float32, jax {jax.__version__}, {jax.devices()[0].platform}; "
          "× eq EP = time / eqneuron eventprop's")
    rows = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        cache = str(Path(tmp) / "xla_cache")
        use_compilation_cache(cache)
        for hidden, batch, is_multi in cases:
            row = bench_size(hidden, batch, is_multi, cache, tmp)
            print_row(row)
            rows.append(row)
    print(f"\n(total {time.perf_counter() - t_start:.0f} s)\n")
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
