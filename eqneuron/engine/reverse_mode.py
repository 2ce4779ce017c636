"""Reverse mode through another computation than the run itself, as custom VJPs.

`fast_forward` runs the fastest forward computation (the event-driven windows,
or the loops with event-free steps) and, under reverse mode, differentiates the
same outcomes computed another way (the lean population loops).  `replayed`
returns the spike times, event times and saved states of a stack run
undifferentiated, with the derivative of the event-based adjoint's replay of
every neuron's events (`adjoint.replay`, one population at a time).  Either way a run that
is not differentiated pays nothing for its derivative.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from .adjoint import replay, stop_gradients
from .inputs import input_feed, spikes_as_inputs


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
    """The replay's pullback one population at a time, from the last to the first.

    Each population is replayed with the spikes of the one before as the forward run
    recorded them (the replay's spike times are those values), so its replay and pullback
    run only once the populations after it are done: the replay's residuals (a carry per
    event) are held for one population at a time, not for the whole stack at once."""
    leaves, inputs = differentiable
    dtype = states[0].t.dtype
    feed, feed_vjp = eqx.filter_vjp(lambda i: input_feed(i, dtype), inputs)
    feeds = [feed]
    for loop, state, pop, own, order in zip(loops[:-1], states[:-1], pops[:-1], leaves[:-1], orders[:-1]):
        feeds.append(spikes_as_inputs(loop, state, pop, stop_gradients(own[0]), order))

    def zeros_for_none(out, given):  # outputs that nothing differentiated arrive as None
        return jax.tree_util.tree_map(lambda o, g: jnp.zeros_like(o) if g is None else g, out, given)

    grads: list = [None] * len(loops)
    feed_cotangent: tuple = (None, None)
    for k in reversed(range(len(loops))):
        loop, state, pop, saves, order = loops[k], states[k], pops[k], save_times[k], orders[k]
        channels = feeds[k][1]
        is_last = k == len(loops) - 1

        def population(own, floats, loop=loop, state=state, pop=pop, saves=saves, order=order, channels=channels,
                       is_last=is_last):
            in_times, in_values = floats
            c = replay(loop, state, pop, own, in_times, channels, in_values, saves)
            out = (c.spike_times, c.saved, c.event_times)
            if is_last:
                return out, None
            next_times, _, next_values = spikes_as_inputs(loop, c, pop, own[0], order)
            return out, (next_times, next_values)

        (out, _), vjp = eqx.filter_vjp(population, leaves[k], (feeds[k][0], feeds[k][2]))
        grads[k], (g_times, g_values) = vjp((zeros_for_none(out, cotangents[k]), None if is_last else feed_cotangent))
        feed_cotangent = (g_times, g_values)
    g_times, g_values = feed_cotangent
    (g_inputs,) = feed_vjp((g_times, None, g_values))
    return grads, g_inputs


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
