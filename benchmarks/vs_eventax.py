"""eqneuron vs eventax on eventax's own models: a Yin-Yang-shaped 5→120→3 net, batch 32, 60 ms.

Identical weights and input spike times; forward (first output spike times)
and value_and_grad of a TTFS loss; median of 15 forward / 5 value_and_grad
runs after warm-up, plus the first call (jit compile), and the number of
non-finite entries of each gradient (a timed gradient must be one).  eqneuron's nonlinear
models are timed twice: by default (the forward pass in rounds, which stop
the hidden layer soon after the outputs' first spikes; value_and_grad
without them) and with `rounds=True` (rounds under reverse mode too).  Spike-time error of both against a float64
reference at tight tolerance (eqneuron exact/Tsit5 1e-11, run in a subprocess).

With `--eventprop`: value_and_grad only, eventax with its `EventPropAdjoint`
(the continuous adjoint solved backwards with Diffrax, Euler dt = 0.01 ms as
its forward pass) against eqneuron with `adjoint="loop"`,
`adjoint="eventprop"` and (where the hidden layer takes solver steps) the loop
adjoint with `rounds=True`, and each gradient's error against central finite
differences of a float64 reference (eqneuron at tolerance 1e-11, in a
subprocess) along one random direction of the hidden and output weights.

Run: python -m benchmarks.vs_eventax [--models lif,izhikevich,...] [--hidden 120] [--eventprop]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import diffrax as dfx
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

import eqneuron as eqn
from eqneuron import datasets, losses

from .common import peak_rss_mb, timed_together

T1 = 60.0
FORWARD_REPEATS = 15  # a forward pass takes a few ms: more repeats steady the median
BATCH = 32

# eventax classes and kwargs, our per-neuron parameter and weight names
EVENTAX = {
    # weights uniform(0, 2 wmean) / sqrt(fan_in): hidden neurons fire 1-3 times, outputs fire
    "lif": ("LIF", dict(thresh=1.0, tmem=10.0, tsyn=5.0, wmean=2.0, wlim=4.0, fan_in_mode="sqrt", init_bias=0.0), {"ic": "ic"}, {"w": "weights"}),
    "qif": ("QIF", dict(tmem=10.0, tsyn=5.0, wmean=4.0, wlim=8.0, fan_in_mode="sqrt", init_bias=0.0), {"ic": "ic"}, {"w": "weights"}),
    "eif": ("EIF", dict(tmem=10.0, tsyn=5.0, wmean=3.0, wlim=6.0, fan_in_mode="sqrt", init_bias=0.0), {"ic": "ic"}, {"w": "weights"}),
    "izhikevich": ("Izhikevich", dict(wmean=4.0, wlim=8.0, fan_in_mode="sqrt", init_bias=0.0), {"ic": "ic"}, {"w": "weights"}),
    "egru": ("EGRU", dict(bias_u_mean=0.0, bias_z_mean=2.0, weight_scale=1.0), {"b_u": "b_u", "b_r": "b_r", "b_z": "b_z"}, {"w_u": "W_u", "w_r": "W_r", "w_z": "W_z"}),
}


def eventax_net(name, hidden, key, dtype=jnp.float32, tight=False, adjoint=None):
    from eventax import neuron_models
    from eventax.evnn import FFEvNN

    cls_name, kwargs, _, _ = EVENTAX[name]
    if tight:
        solver = dict(solver=dfx.Tsit5(), stepsize_controller=dfx.PIDController(rtol=1e-11, atol=1e-11), root_finder=optx.Newton(1e-13, 1e-13))
    else:
        solver = dict(solver=dfx.Euler(), stepsize_controller=dfx.ConstantStepSize(), solver_stepsize=0.01)
    return FFEvNN(
        layers=[hidden, 3], in_size=5, neuron_model=getattr(neuron_models, cls_name), max_solver_time=T1,
        key=key, dtype=dtype, max_event_steps=4 * hidden + 64, output_no_spike_value=jnp.inf, adjoint=adjoint, **solver, **kwargs,
    )


def eqneuron_net(name, theirs_model, hidden):
    _, _, param_map, weight_map = EVENTAX[name]
    model = eqn.compile_model(name)
    hidden_w, out_w = {}, {}
    for ours, attr in weight_map.items():
        W = jnp.asarray(getattr(theirs_model, attr))
        hidden_w[ours] = jnp.zeros((hidden + 5, hidden), W.dtype).at[hidden:].set(W[hidden + 3 :, :hidden])
        out_w[ours] = jnp.zeros((3 + hidden, 3), W.dtype).at[3:].set(W[:hidden, hidden : hidden + 3])
    hp = {k: jnp.asarray(getattr(theirs_model, a))[:hidden] for k, a in param_map.items()}
    op = {k: jnp.asarray(getattr(theirs_model, a))[hidden:] for k, a in param_map.items()}
    return eqn.Network([model.population(hidden, 5, weights=hidden_w, params=hp), model.population(3, hidden, weights=out_w, params=op)])


def inputs_and_labels():
    data = datasets.yinyang(BATCH, seed=3, t_early=0.0, t_late=10.0, t_bias=0.0)
    return jnp.asarray(data.times, jnp.float32), jnp.asarray(data.labels)


def ttfs_loss(first, label):
    return losses.ttfs_cross_entropy(first, label, tau=2.0, t_silent=T1)


def bench_model(name, hidden, max_spikes, tol=None):
    key = jax.random.key(0)
    theirs = eventax_net(name, hidden, key)
    ours = eqneuron_net(name, theirs.neuron_model, hidden)
    times, labels = inputs_and_labels()
    channels = jnp.broadcast_to(jnp.arange(5), times.shape)

    ev_forward = jax.jit(jax.vmap(lambda t: theirs.ttfs(t[:, None])))

    def ev_loss(net, times, labels):
        first = jax.vmap(lambda t: net.ttfs(t[:, None]))(times)
        return jnp.mean(jax.vmap(ttfs_loss)(first, labels))

    ev_grad = eqx.filter_jit(eqx.filter_value_and_grad(ev_loss))

    def our_first(net, t, c, in_rounds=None):
        return eqn.simulate(
            net, eqn.Spikes(t, c), t1=T1, max_spikes=max_spikes, stop_after_first_spike=True, rtol=tol, atol=tol, rounds=in_rounds
        ).first_spikes[-1]

    def eq_loss(net, times, labels, in_rounds=None):
        first = jax.vmap(lambda t, c: our_first(net, t, c, in_rounds))(times, channels)
        return jnp.mean(jax.vmap(ttfs_loss)(first, labels))

    row = {"model": name, "hidden": hidden, "integrator": ours.populations[0].model.integrator, "tol": tol}
    # `rounds=True` (rounds) applies where the hidden layer takes solver steps (refused for exact LIF)
    variants = [""] if name == "lif" else ["", "_w"]
    # eventax and eqneuron are called in turn (`timed_together`): a slower stretch of the
    # shared machine costs both alike
    forwards = {v: jax.jit(jax.vmap(lambda t, c, w=(True if v == "_w" else None): our_first(ours, t, c, w))) for v in variants}
    timings = timed_together([(ev_forward, (times,))] + [(forwards[v], (times, channels)) for v in variants], FORWARD_REPEATS)
    row["ev_fwd_first"], row["ev_fwd"] = timings[0]
    for v, (first, median) in zip(variants, timings[1:]):
        row[f"eq_fwd{v}_first"], row[f"eq_fwd{v}"] = first, median
        row[f"eq_times{v}"] = np.asarray(forwards[v](times, channels))
    grads = {v: eqx.filter_jit(eqx.filter_value_and_grad(lambda net, t, y, w=(True if v == "_w" else None): eq_loss(net, t, y, w))) for v in variants}
    timings = timed_together([(ev_grad, (theirs, times, labels))] + [(grads[v], (ours, times, labels)) for v in variants], 5)
    row["ev_grad_first"], row["ev_grad"] = timings[0]
    for v, (first, median) in zip(variants, timings[1:]):
        row[f"eq_grad{v}_first"], row[f"eq_grad{v}"] = first, median
    # a time is only worth reporting for a gradient that is one: non-finite entries counted
    row["ev_nonfinite"] = nonfinite_entries(ev_grad(theirs, times, labels)[1])
    for v in variants:
        row[f"eq_nonfinite{v}"] = nonfinite_entries(grads[v](ours, times, labels)[1])
    ev_times = np.asarray(ev_forward(times))
    reference = reference_times(name, hidden, theirs, times, max_spikes)
    row["ev_err"] = max_error(ev_times, reference)
    for v in variants:
        row[f"eq_err{v}"] = max_error(row.pop(f"eq_times{v}"), reference)
    row["rss_mb"] = peak_rss_mb()
    return row


def nonfinite_entries(grads) -> int:
    """How many entries of a gradient (a pytree) are NaN or infinite."""
    return sum(int(np.sum(~np.isfinite(np.asarray(x)))) for x in jax.tree_util.tree_leaves(eqx.filter(grads, eqx.is_inexact_array)))


def weight_direction(name, theirs_model, hidden, key):
    """A random direction in eventax's weight matrices, nonzero only on the entries that
    `eqneuron_net` maps (input -> hidden, hidden -> output), as attribute -> array."""
    _, _, _, weight_map = EVENTAX[name]
    direction = {}
    for k, attr in enumerate(weight_map.values()):
        W = np.asarray(getattr(theirs_model, attr))
        d = np.zeros(W.shape, np.float64)
        noise = np.asarray(jax.random.normal(jax.random.fold_in(key, k), W.shape, jnp.float64 if jax.config.jax_enable_x64 else jnp.float32))
        d[hidden + 3 :, :hidden] = noise[hidden + 3 :, :hidden]
        d[:hidden, hidden : hidden + 3] = noise[:hidden, hidden : hidden + 3]
        direction[attr] = d
    return direction


def bench_eventprop(name, hidden, max_spikes, tol=None):
    """value_and_grad: eventax's EventPropAdjoint against eqneuron's two adjoints, with each
    gradient's error along one direction against float64 central differences."""
    from eventax.adjoint import EventPropAdjoint

    key = jax.random.key(0)
    theirs = eventax_net(name, hidden, key, adjoint=EventPropAdjoint())
    ours = eqneuron_net(name, theirs.neuron_model, hidden)
    times, labels = inputs_and_labels()
    channels = jnp.broadcast_to(jnp.arange(5), times.shape)

    def ev_loss(net, times, labels):
        first = jax.vmap(lambda t: net.ttfs(t[:, None]))(times)
        return jnp.mean(jax.vmap(ttfs_loss)(first, labels))

    def eq_loss(net, times, labels, adjoint):
        # "rounds": the loop adjoint with `rounds=True` (rounds under reverse mode too)
        options = dict(adjoint="loop", rounds=True) if adjoint == "rounds" else dict(adjoint=adjoint)
        first = jax.vmap(
            lambda t, c: eqn.simulate(net, eqn.Spikes(t, c), t1=T1, max_spikes=max_spikes, stop_after_first_spike=True, rtol=tol, atol=tol, **options
            ).first_spikes[-1]
        )(times, channels)
        return jnp.mean(jax.vmap(ttfs_loss)(first, labels))

    ev_grad = eqx.filter_jit(eqx.filter_value_and_grad(ev_loss))
    # `rounds=True` where the hidden layer takes solver steps (refused for exact LIF)
    adjoints = ("loop", "eventprop") if name == "lif" else ("loop", "eventprop", "rounds")
    eq_grads = {a: eqx.filter_jit(eqx.filter_value_and_grad(lambda net, t, y, a=a: eq_loss(net, t, y, a))) for a in adjoints}
    timings = timed_together([(ev_grad, (theirs, times, labels))] + [(eq_grads[a], (ours, times, labels)) for a in adjoints], 5)
    row = {"model": name, "hidden": hidden, "integrator": ours.populations[0].model.integrator, "tol": tol}
    row["ev_first"], row["ev"] = timings[0]
    for a, (first, median) in zip(adjoints, timings[1:]):
        row[f"eq_{a}_first"], row[f"eq_{a}"] = first, median

    # a direction along which the float64 loss is smooth at the scale of the differences (a
    # spike that appears or vanishes within +-eps makes a jump, not a derivative)
    candidates = [weight_direction(name, theirs.neuron_model, hidden, jax.random.key(11 + k)) for k in range(4)]
    choice, fd = finite_difference(name, hidden, theirs, candidates, times, labels, max_spikes)
    direction = candidates[max(choice, 0)]
    _, ev_g = ev_grad(theirs, times, labels)
    directional = {"eventax": sum(float(np.vdot(np.asarray(getattr(ev_g.neuron_model, attr)), d)) for attr, d in direction.items())}
    # the same direction in eqneuron's layout: eqneuron_net is linear in the weights it maps
    class Direction:
        pass

    holder = Direction()
    for attr, d in direction.items():
        setattr(holder, attr, jnp.asarray(d, jnp.float32))
    for a in EVENTAX[name][2].values():  # per-neuron parameters: not moved
        setattr(holder, a, jnp.zeros_like(jnp.asarray(getattr(theirs.neuron_model, a))))
    d_ours = eqneuron_net(name, holder, hidden)
    for a in adjoints:
        _, g = eq_grads[a](ours, times, labels)
        directional[a] = sum(
            float(jnp.vdot(g.populations[k].weights[w], d_ours.populations[k].weights[w])) for k in range(2) for w in g.populations[k].weights
        )
    row["fd"], row["direction"] = fd, choice
    row["directional"] = directional
    row["grad_err"] = {m: abs(v - fd) / abs(fd) for m, v in directional.items()}  # nan: no smooth direction
    row["rss_mb"] = peak_rss_mb()
    return row


def finite_difference(name, hidden, theirs, directions, times, labels, max_spikes, eps=(1e-5, 1e-6)):
    """(index, d loss / d s) of the first of `directions` along which central differences of the
    loss at two step sizes agree to 1e-3 (float64, tolerance 1e-11); (-1, nan) if along none."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.npz"
        _, _, param_map, weight_map = EVENTAX[name]
        m = theirs.neuron_model
        arrays = {f"w_{k}": np.asarray(getattr(m, a)) for k, a in weight_map.items()}
        for j, direction in enumerate(directions):
            arrays.update({f"d{j}_{k}": direction[a] for k, a in weight_map.items()})
        arrays.update({f"p_{k}": np.asarray(getattr(m, a)) for k, a in param_map.items()})
        np.savez(path, times=np.asarray(times), labels=np.asarray(labels), **arrays)
        code = f"""
import jax; jax.config.update('jax_enable_x64', True)
import numpy as np, jax.numpy as jnp, eqneuron as eqn
from benchmarks.vs_eventax import EVENTAX, eqneuron_net, ttfs_loss
d = np.load({str(path)!r}); name = {name!r}; hidden = {hidden}; steps = {eps!r}
_, _, pm, wm = EVENTAX[name]
t = jnp.asarray(d['times'], jnp.float64); c = jnp.broadcast_to(jnp.arange(5), t.shape); y = jnp.asarray(d['labels'])
def net_at(j, s):
    class M: pass
    m = M()
    for k, a in wm.items(): setattr(m, a, jnp.asarray(d['w_' + k], jnp.float64) + s * jnp.asarray(d[f'd{{j}}_' + k], jnp.float64))
    for k, a in pm.items(): setattr(m, a, jnp.asarray(d['p_' + k], jnp.float64))
    return eqneuron_net(name, m, hidden)
@jax.jit
def loss(net):
    first = jax.vmap(lambda t, c: eqn.simulate(net, eqn.Spikes(t, c), t1={T1}, max_spikes={max_spikes}, rtol=1e-11, atol=1e-11,
                                               stop_after_first_spike=True).first_spikes[-1])(t, c)
    return jnp.mean(jax.vmap(ttfs_loss)(first, y))
found = (-1, float('nan'))
for j in range({len(directions)}):
    fd = [(float(loss(net_at(j, e))) - float(loss(net_at(j, -e)))) / (2 * e) for e in steps]
    if abs(fd[0] - fd[1]) <= 1e-3 * abs(fd[1]):
        found = (j, fd[1])
        break
np.save({str(Path(tmp) / "fd.npy")!r}, np.array(found))
"""
        subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)
        j, fd = np.load(Path(tmp) / "fd.npy")
        return int(j), float(fd)  # (-1, nan): the loss jumps within +-eps along every direction


def print_eventprop_row(r):
    e = r["grad_err"]
    print(
        f"{r['model']:<11} {r['hidden']:>4} tol {r['tol'] or 'default'}  v&g eventax EventProp {r['ev']:.3f}s  eqneuron loop {r['eq_loop']:.3f}s ({r['ev'] / r['eq_loop']:.1f}x)"
        f"  eventprop {r['eq_eventprop']:.3f}s ({r['ev'] / r['eq_eventprop']:.1f}x)"
        f"  first call {r['ev_first']:.1f} / {r['eq_loop_first']:.1f} / {r['eq_eventprop_first']:.1f}s"
        f"  gradient error vs finite differences: eventax {e['eventax']:.1e}, loop {e['loop']:.1e}, eventprop {e['eventprop']:.1e}"
        f" (fd {r['fd']:.4g})  rss {r['rss_mb']:.0f} MB"
        + (
            f"\n{'':<11} loop with rounds=True: {r['eq_rounds']:.3f}s ({r['ev'] / r['eq_rounds']:.1f}x)  first call {r['eq_rounds_first']:.1f}s"
            f"  gradient error {e['rounds']:.1e}"
            if "eq_rounds" in r
            else ""
        ),
        flush=True,
    )


def max_error(times, reference):
    both = np.isfinite(times) & np.isfinite(reference)
    mismatch = int(np.sum(np.isfinite(times) != np.isfinite(reference)))
    diff = np.abs(times[both] - reference[both])
    err = float(np.max(diff)) if both.any() else float("nan")
    median = float(np.median(diff)) if both.any() else float("nan")
    return {"max_abs_ms": err, "median_abs_ms": median, "silent_mismatch": mismatch}


def reference_times(name, hidden, theirs, times, max_spikes):
    """float64, Tsit5/exact at 1e-11, in a subprocess (x64 is process-wide in JAX)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "case.npz"
        _, _, param_map, weight_map = EVENTAX[name]
        m = theirs.neuron_model
        arrays = {f"w_{k}": np.asarray(getattr(m, a)) for k, a in weight_map.items()}
        arrays.update({f"p_{k}": np.asarray(getattr(m, a)) for k, a in param_map.items()})
        np.savez(path, times=np.asarray(times), **arrays)
        code = f"""
import jax; jax.config.update('jax_enable_x64', True)
import numpy as np, jax.numpy as jnp, eqneuron as eqn
from benchmarks.vs_eventax import EVENTAX
d = np.load({str(path)!r}); name = {name!r}; hidden = {hidden}
_, _, pm, wm = EVENTAX[name]
class M: pass
m = M()
for k, a in wm.items(): setattr(m, a, jnp.asarray(d['w_' + k], jnp.float64))
for k, a in pm.items(): setattr(m, a, jnp.asarray(d['p_' + k], jnp.float64))
from benchmarks.vs_eventax import eqneuron_net
net = eqneuron_net(name, m, hidden)
t = jnp.asarray(d['times'], jnp.float64); c = jnp.broadcast_to(jnp.arange(5), t.shape)
f = jax.jit(jax.vmap(lambda t, c: eqn.simulate(net, eqn.Spikes(t, c), t1={T1}, max_spikes={max_spikes}, rtol=1e-11, atol=1e-11, stop_after_first_spike=True).first_spikes[-1]))
np.save({str(Path(tmp) / "ref.npy")!r}, np.asarray(f(t, c)))
"""
        subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)
        return np.load(Path(tmp) / "ref.npy")


def print_row(r):
    ratio = lambda a, b: a / b if b > 0 else float("nan")
    in_rounds = ""
    if "eq_fwd_w" in r:
        in_rounds = (
            f"\n{'':<11} rounds=True: fwd {r['eq_fwd_w']:.3f}s ({ratio(r['ev_fwd'], r['eq_fwd_w']):.1f}x)"
            f"  v&g {r['eq_grad_w']:.3f}s ({ratio(r['ev_grad'], r['eq_grad_w']):.1f}x)"
            f"  jit fwd {r['eq_fwd_w_first']:.1f}s v&g {r['eq_grad_w_first']:.1f}s"
            f"  err max/median {r['eq_err_w']['max_abs_ms']:.1e}/{r['eq_err_w']['median_abs_ms']:.1e} ms ({r['eq_err_w']['silent_mismatch']} mism.)"
            f"  non-finite gradient entries {r['eq_nonfinite_w']}"
        )
    print(
        f"{r['model']:<11} {r['hidden']:>4} tol {r['tol'] or 'default'}  fwd {r['ev_fwd']:.3f}s vs {r['eq_fwd']:.3f}s ({ratio(r['ev_fwd'], r['eq_fwd']):.1f}x)"
        f"  v&g {r['ev_grad']:.3f}s vs {r['eq_grad']:.3f}s ({ratio(r['ev_grad'], r['eq_grad']):.1f}x)"
        f"  jit fwd {r['ev_fwd_first']:.1f}/{r['eq_fwd_first']:.1f}s v&g {r['ev_grad_first']:.1f}/{r['eq_grad_first']:.1f}s"
        f"  err max/median eventax {r['ev_err']['max_abs_ms']:.1e}/{r['ev_err']['median_abs_ms']:.1e} ms ({r['ev_err']['silent_mismatch']} mism.)"
        f" eqneuron {r['eq_err']['max_abs_ms']:.1e}/{r['eq_err']['median_abs_ms']:.1e} ms ({r['eq_err']['silent_mismatch']} mism.)  rss {r['rss_mb']:.0f} MB"
        f"  non-finite gradient entries eventax {r['ev_nonfinite']} eqneuron {r['eq_nonfinite']}"
        + in_rounds,
        flush=True,
    )


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="lif,izhikevich,egru,qif,eif")
    parser.add_argument("--hidden", type=int, default=120)
    parser.add_argument("--max-spikes", type=int, default=None)
    parser.add_argument("--json", default=None)
    parser.add_argument("--tol", type=float, default=None, help="eqneuron rtol = atol (default: float32 default 1e-5)")
    parser.add_argument("--eventprop", action="store_true", help="value_and_grad against eventax's EventPropAdjoint, with gradient errors")
    args = parser.parse_args(argv)
    rows = []
    if args.eventprop:
        print("value_and_grad: eventax EventPropAdjoint (Euler dt=0.01, float32) vs eqneuron adjoint='loop' / 'eventprop' (float32); ratio = eventax / eqneuron")
        bench, show = bench_eventprop, print_eventprop_row
    else:
        tol = "float32 default 1e-5" if args.tol is None else f"{args.tol:g}"
        print(f"eventax (Euler dt=0.01, float32) vs eqneuron (auto: exact or Tsit5 rtol = atol = {tol}, float32); ratio = eventax / eqneuron")
        bench, show = bench_model, print_row
    for name in args.models.split(","):
        row = bench(name, args.hidden, args.max_spikes or 2 * args.hidden + 32, args.tol)
        show(row)
        rows.append(row)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
