"""Reverse mode through another computation than the run itself, as custom VJPs.

`fast_forward` runs the fastest forward computation (the event-driven windows,
or the loops with event-free steps) and, under reverse mode, differentiates the
same outcomes computed another way (the lean population loops).  `replayed`
returns the spike times, event times and saved states of a stack run
undifferentiated, with the derivative of the event-based adjoint's replay of
every neuron's events (`replay_stack`, `adjoint.py`).  Either way a run that
is not differentiated pays nothing for its derivative.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ..network import Population
from .adjoint import replay
from .inputs import input_feed, spikes_as_inputs
from .loop import PopulationLoop


def replay_stack(loops: list[PopulationLoop], states, pops: list[Population], leaves, inputs, save_times, orders):
    """The loops' states with differentiable spike times, event times and saved states (`adjoint.replay`),
    each population replayed with the differentiable spikes of the one before (`orders`: each
    one's `time_order` in the forward run, whose spike times the replay's equal)."""
    in_times, in_channels, in_values = input_feed(inputs, states[0].t.dtype)
    out = []
    for loop, state, pop, own, saves, order in zip(loops, states, pops, leaves, save_times, orders):
        state = replay(loop, state, pop, own, in_times, in_channels, in_values, saves)
        out.append(state)
        in_times, in_channels, in_values = spikes_as_inputs(loop, state, pop, own[0], order)
    return out


@eqx.filter_custom_vjp
def replayed(differentiable, loops, states, pops, save_times, orders):
    """The spike times, event times and saved states of the forward run, whose reverse-mode derivative with
    respect to `differentiable = (each population's replay_leaves, input spikes)` is that of the
    replay: a run that is not differentiated never replays.

    Every array the replay reads is an argument (`save_times`: each loop's save times;
    `orders`: each one's `time_order` of its spikes, found by the forward run), never
    read from `loops` in the backward pass: a traced array held by a loop belongs to the
    forward trace, and a backward pass traced later (reverse mode of a `jit` that holds the
    run) would find it leaked."""
    del differentiable, pops, save_times, orders
    return [(c.spike_times, c.saved, c.event_times) for c in states]


@replayed.def_fwd
def _replayed_fwd(perturbed, differentiable, loops, states, pops, save_times, orders):
    return replayed.fn(differentiable, loops, states, pops, save_times, orders), None


@replayed.def_bwd
def _replayed_bwd(residuals, cotangents, perturbed, differentiable, loops, states, pops, save_times, orders):
    def outputs(d):
        leaves, inputs = d
        replays = replay_stack(loops, states, pops, leaves, inputs, save_times, orders)
        return [(c.spike_times, c.saved, c.event_times) for c in replays]

    out, vjp = eqx.filter_vjp(outputs, differentiable)
    # outputs that nothing differentiated arrive as None
    leaves, treedef = jax.tree_util.tree_flatten(out)
    given = jax.tree_util.tree_leaves(cotangents, is_leaf=lambda x: x is None)
    (grads,) = vjp(jax.tree_util.tree_unflatten(treedef, [jnp.zeros_like(o) if g is None else g for o, g in zip(leaves, given)]))
    return grads


class Runs(eqx.Module):
    """Two ways of computing the same outcomes: `fast` for a run that is not differentiated,
    `differentiable` for reverse mode."""

    fast: Callable = eqx.field(static=True)
    differentiable: Callable = eqx.field(static=True)


@eqx.filter_custom_vjp
def fast_forward(args, runs: Runs):
    """`runs.fast(args)`; differentiated (and, under differentiation, run) by `runs.differentiable`."""
    return runs.fast(args)


@fast_forward.def_fwd
def _fast_forward_fwd(perturbed, args, runs):
    out, vjp = eqx.filter_vjp(runs.differentiable, args)
    return out, (vjp, eqx.filter(out, eqx.is_inexact_array))


@fast_forward.def_bwd
def _fast_forward_bwd(residuals, cotangents, perturbed, args, runs):
    vjp, differentiable = residuals
    given = jax.tree_util.tree_map(
        lambda o, g: None if o is None else (jnp.zeros_like(o) if g is None else g),
        differentiable, cotangents, is_leaf=lambda x: x is None,
    )
    (grads,) = vjp(given)
    return grads
