"""`eqneuron gradcheck`: exact gradients against central finite differences (float64)."""

from __future__ import annotations

import argparse

import numpy as np


def run_gradcheck(args: argparse.Namespace) -> int:
    """`eqneuron gradcheck`, in float64 (a `jax.enable_x64` context: nothing changes for the caller)."""
    import jax

    with jax.enable_x64(True):
        return _gradcheck(args)


def _gradcheck(args: argparse.Namespace) -> int:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from ..cli.simulate import waveforms_for
    from ..engine import simulate
    from ..model import compile_model
    from ..network import Spikes

    model = compile_model(args.model)
    key = jax.random.key(args.seed)
    k_pop, k_in = jax.random.split(key)
    waveforms = waveforms_for(model, getattr(args, "waveform", []))
    pop = model.population(args.neurons, args.channels, key=k_pop, waveforms=waveforms or None)
    times = jnp.sort(jax.random.uniform(k_in, (3 * args.channels,), minval=0.0, maxval=20.0))
    inputs = Spikes(times, jnp.arange(times.shape[0]) % args.channels)
    t1 = 60.0
    save = jnp.array([t1])

    def loss(p):
        out = simulate(p, inputs, t1=t1, max_spikes=256, save_at=save, rtol=1e-11, atol=1e-11)
        first = out.first_spike_times()
        spikes = jnp.sum(jnp.where(jnp.isfinite(first), first, 0.0))
        final = sum(jnp.sum(jnp.tanh(v)) for v in out.states[0].values())
        return spikes + final

    params, static = eqx.partition(pop, eqx.is_inexact_array)
    f = jax.jit(lambda q: loss(eqx.combine(q, static)))
    value, grads = jax.value_and_grad(f)(params)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    g_leaves = jax.tree_util.tree_leaves(grads)
    rng = np.random.default_rng(args.seed)
    eps, worst, rows = 1e-6, 0.0, []
    flat = [leaf for _, leaf in leaves]
    for index, ((path, leaf), g) in enumerate(zip(leaves, g_leaves)):
        samples = _name(path) == "values" and getattr(path[0], "name", None) == "waveforms"
        if not model.ir.parameters.get(_name(path), None) and _name(path) not in model.weight_names and not samples:
            continue
        if _name(path) in model.ir.parameters and not model.ir.parameters[_name(path)].trainable:
            continue
        candidates = np.arange(leaf.size)
        if leaf.ndim == 2 and not pop.recurrent and not samples:  # own-neuron rows carry no connections
            candidates = candidates[candidates // leaf.shape[1] >= pop.n_neurons]
        for flat_index in rng.choice(candidates, size=min(4, candidates.size), replace=False):
            position = tuple(int(k) for k in np.unravel_index(flat_index, leaf.shape))

            def shifted(delta, index=index, position=position):
                new = list(flat)
                new[index] = flat[index].at[position].add(delta)
                return float(f(jax.tree_util.tree_unflatten(treedef, new)))

            fd = (shifted(eps) - shifted(-eps)) / (2 * eps)
            exact = float(g[position])
            error = abs(fd - exact) / max(abs(fd), 1e-8)
            worst = max(worst, error if abs(fd) > 1e-8 or abs(exact) > 1e-6 else 0.0)
            label = _name(path[:2]) if samples else _name(path)  # a waveform: its input's name
            rows.append((f"{label}{list(position)}", exact, fd, error))
    print(f"gradcheck {model.name}: loss = {float(value):.6g} ({model.integrator})")
    print(f"  {'leaf':<18} {'exact':>14} {'finite diff':>14} {'rel. error':>11}")
    for name, exact, fd, error in rows:
        print(f"  {name:<18} {exact:>14.6e} {fd:>14.6e} {error:>11.2e}")
    ok = worst < 1e-4
    print(f"worst relative error {worst:.2e}: {'OK' if ok else 'MISMATCH'}")
    return 0 if ok else 1


def _name(path) -> str:
    return str(getattr(path[-1], "key", getattr(path[-1], "name", path[-1])))
