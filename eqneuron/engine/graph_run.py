"""A graph network run window after window (NEST's scheme, `graph.py`).

Each window, every population in the plan's order advances its loop (laid out
by `graph_layout.py`) to the window's end with the input spikes due in it: the
external inputs and its sources' spikes shifted by their delays, read from the
sources' spike lists as they stand; its new spikes are then read by its targets
in the same window (forward projections) or in later ones (backward
projections, whose delays are at least the window's length).  A network
without backward projections is one window.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int

from ..errors import EqError
from ..network import Network, Population
from .graph import connected_delays, model_delay, plan, window_length
from .graph_layout import loop_inputs
from .inputs import InputLayout
from .lanes import earliest, traced_once
from .loop import PopulationLoop
from .state import LoopState

# the most input spikes of one population in one window, unless the user says otherwise
DEFAULT_WINDOW_SPIKES = 1024
# a window reads this many times as many of each source's latest spikes (those emitted since two
# windows before its longest delay; more: the window-overflow flag)
SLICE_WINDOWS = 4


def run_graph(
    net: Network,
    make_loop: Callable[[Population, int, int, InputLayout], PopulationLoop],
    times: Float[Array, " inputs"],
    channels: Int[Array, " inputs"],
    values: Float[Array, " inputs"],
    t1: float | Float[Array, ""],
    max_spikes: int,
    max_window_spikes: int | None,
) -> tuple[list[LoopState], list[PopulationLoop], Bool[Array, ""], Bool[Array, ""]]:
    """Every population of a graph network from 0 to `t1`.

    `make_loop(pop, n_inputs, k, inputs)` builds the `PopulationLoop` of population k
    (`inputs`: how it reads its input channels, `loop_inputs`).
    Returns the populations' final loop states, their loops, a flag for an
    invalid window length (a backward delay traced to 0) and a flag for a
    window with more input spikes than `max_window_spikes`.
    """
    p = plan(net)
    n = len(net.populations)
    pops, layouts = zip(*(loop_inputs(net, p, k) for k in range(n)))
    dtype = times.dtype
    t1 = jnp.asarray(t1, dtype)
    d = window_length(net, p)
    windowed = d is not None
    if max_window_spikes is None:
        max_window_spikes = DEFAULT_WINDOW_SPIKES
    elif not windowed:
        raise EqError(
            f"simulate: max_window_spikes={max_window_spikes} applies to networks run in windows of the "
            "shortest delay, and this one has no cycle with a delay: it runs event by event",
            hint="drop max_window_spikes (max_spikes bounds the spike lists of this network)",
        )
    # each loop's spike buffer, then the size of its input list: everything for one window,
    # at most `max_window_spikes` per window (each window gets the list of its own inputs)
    buffers = [make_loop(pop, 1, k, layouts[k]).buffer for k, pop in enumerate(pops)]
    n_inputs = []
    for k in range(n):
        # a spike through a projection with per-synapse delays: an input spike per synapse
        size = (times.shape[0] if p.external[k] else 0) + sum(buffers[inc.source] * max(inc.synapses, 1) for inc in p.incoming[k])
        n_inputs.append(max(min(size, max_window_spikes) if windowed else size, 1))
    loops: list[PopulationLoop] = [make_loop(pops[k], n_inputs[k], k, layouts[k]) for k in range(n)]
    # per synapse: +inf where there is none (its arrivals are never due)
    delays = [
        tuple(
            model_delay(net.populations[k]) if inc.projection is None else connected_delays(net, inc.projection)
            for inc in p.incoming[k]
        )
        for k in range(n)
    ]
    longest = [tuple(0.0 if d is None else jnp.max(jnp.where(jnp.isfinite(d), d, 0.0)) for d in ds) for ds in delays]

    def arrivals(k, states, t_start):
        """The input spikes of population k that may be due from `t_start` on: (times, channels,
        values), unsorted; and whether a source's spikes of that span were more than its slice."""
        parts_t, parts_c, parts_v = [], [], []
        missed = jnp.asarray(False)
        if p.external[k]:
            parts_t, parts_c, parts_v = [times], [channels], [values]
        for inc, delay, latest in zip(p.incoming[k], delays[k], longest[k]):
            state = states[inc.source]
            st, sid = state.spike_times, state.spike_ids  # in the order written
            size = min(st.shape[0], SLICE_WINDOWS * n_inputs[k])
            if windowed and size < st.shape[0]:
                # the spikes emitted since two windows before the longest delay: the list is written
                # window after window, so it is in time order from one window to the next (not
                # within one), and a binary search for a time lands in the window that holds it
                lo = jnp.minimum(jnp.searchsorted(st, t_start - latest - 2 * step), st.shape[0] - size)
                st = jax.lax.dynamic_slice(st, (lo,), (size,))
                sid = jax.lax.dynamic_slice(sid, (lo,), (size,))
                missed = missed | (jnp.minimum(state.n_written, state.spike_times.shape[0]) > lo + size)
            src = jnp.maximum(sid, 0)
            if inc.kind == "synapses":  # an input spike per synapse, at its own delay: channel offset + synapse
                assert delay is not None
                slot = jnp.arange(inc.synapses)
                parts_t.append(jnp.where((sid >= 0)[:, None], st[:, None] + delay[src], jnp.inf).astype(dtype).reshape(-1))
                parts_c.append((inc.offset + src[:, None] * inc.synapses + slot).astype(jnp.int32).reshape(-1))
                parts_v.append(jnp.ones((st.shape[0] * inc.synapses,), dtype))
                continue
            shift = 0.0 if delay is None else (delay[src] if jnp.ndim(delay) else delay)
            parts_t.append(jnp.where(sid >= 0, st + shift, jnp.inf).astype(dtype))
            parts_c.append((inc.offset + src).astype(jnp.int32))
            parts_v.append(jnp.ones_like(st, dtype))
        if not parts_t:
            return (jnp.full((1,), jnp.inf, dtype), jnp.zeros((1,), jnp.int32), jnp.ones((1,), dtype)), missed
        return (jnp.concatenate(parts_t), jnp.concatenate(parts_c), jnp.concatenate(parts_v)), missed

    def inputs_of(k, states, t_start, t_stop):
        """Population k's input spikes due in [t_start, t_stop) (the last window: from t_start
        on), in time order; and whether there were more than its list holds."""
        (t_all, c_all, v_all), missed = arrivals(k, states, t_start)
        if windowed:
            due = jnp.isfinite(t_all) & (t_all >= t_start) & ((t_all < t_stop) | (t_stop >= t1))
            t_all = jnp.where(due, t_all, jnp.inf)
            too_many = (jnp.sum(due) > n_inputs[k]) | missed
        else:
            too_many = jnp.asarray(False)
        order = earliest(t_all, n_inputs[k])
        return (t_all[order], c_all[order], v_all[order]), too_many

    def window(states, t_start, t_stop, overflow):
        states = list(states)
        for k in p.order:
            (t_in, c_in, v_in), too_many = inputs_of(k, states, t_start, t_stop)
            state = states[k]
            # a fresh list of inputs each window (in one window: the only list)
            state = dataclasses.replace(state, input_index=loops[k].first_input(c_in))
            states[k] = loops[k].run(state, t_in, c_in, v_in, t_stop)
            overflow = overflow | too_many
        return states, overflow

    states = [loop.start() for loop in loops]
    no = jnp.asarray(False)
    if not windowed:
        states, _ = window(states, jnp.asarray(0.0, dtype), t1, no)
        return states, loops, no, no
    d = jnp.asarray(d, dtype)
    invalid = ~(d > 0)  # a backward delay traced to 0: no window can be formed
    step = jnp.where(invalid, t1, d)
    concrete = not isinstance(d, jax.core.Tracer) and not isinstance(t1, jax.core.Tracer)
    max_windows = int(math.ceil(float(t1) / float(d))) + 2 if concrete and float(d) > 0 else None

    def body(carry):
        t_start, states, overflow = carry
        t_stop = jnp.minimum(t_start + step, t1)
        # the last window ends on t1 exactly (a sum of window lengths may round below it)
        t_stop = jnp.where(t1 - t_stop <= 1e-9 * t1, t1, t_stop)
        states, overflow = window(states, t_start, t_stop, overflow)
        return t_stop, states, overflow

    _, states, overflow = eqxi.while_loop(
        lambda c: c[0] < t1,
        traced_once(body),
        (jnp.asarray(0.0, dtype), states, no),
        max_steps=max_windows,
        kind="checkpointed",
        checkpoints=None if max_windows is not None else 64,
    )
    return states, loops, invalid, overflow
