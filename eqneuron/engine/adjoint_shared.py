"""The event-based adjoint's replay of a recurrent population, on its one shared clock.

The population's history is one sequence for all of its neurons (not one per
neuron, as on own clocks in `adjoint.py`): a spike or internal event moves
every neuron's state with its time, and a spike applies its targets'
`on_spike` jumps.  Kept apart from the replay on own clocks, whose steps
move each neuron along its own sequence.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from ..network import Population
from .adjoint_sequence import (
    EVENT,
    INPUT,
    KIND_BITS,
    REFRACTORY_END,
    SAVE,
    SPIKE,
    crossing_time,
    event_kinds,
    sequence_positions,
    with_derivative,
)
from .lanes import earliest, stable_order, traced_once
from .loop import PopulationLoop
from .state import LoopState

sg = jax.lax.stop_gradient


def replay_shared(
    loop: PopulationLoop,
    state: LoopState,
    pop: Population,
    leaves: tuple[dict, dict],
    in_times: Float[Array, " inputs"],
    in_channels: Int[Array, " inputs"],
    in_values: Float[Array, " inputs"],
    save_times: Float[Array, " saves"],
) -> LoopState:
    """`replay` of a recurrent population (one shared clock): the population's history is one
    sequence in time order — input spikes, its spikes and internal events (each in the order the
    loop emitted them), the ends of refractory periods, save points — and each step moves every
    neuron.  A spike of neuron `j` at the forward run's time `s`: `t*` from `j`'s condition as in
    `replay`, every neuron's state there `y(s) + f·(t* - s)` (`j`'s value the located one), then
    `j`'s reset and its targets' `on_spike` jumps with the row `W[j, :]`; an internal event the
    same with its own condition, then its body."""
    fn, integrator, dtype = pop.model.fn, loop.integrator, loop.dtype
    n, buffer = pop.n_neurons, loop.buffer
    neurons = jnp.arange(n)
    p, weights = leaves
    input_weights = {name: w[n:] for name, w in weights.items()}
    # the spike list is in emission order (time order, simultaneous spikes in the loop's order)
    spike_s = jnp.where(state.spike_ids >= 0, state.spike_times, jnp.inf)
    spike_ids = jnp.maximum(state.spike_ids, 0)
    period = fn.refractory_period(p, jnp.zeros((n,), dtype)) if loop.refractory else None
    n_in, n_save = in_times.shape[0], loop.n_save
    n_events, event_buffer = loop.n_events, loop.event_buffer
    if n_events:
        event_s = jnp.where(state.event_ids >= 0, state.event_times, jnp.inf)
        event_ids = jnp.maximum(state.event_ids, 0)
        event_which = jnp.maximum(state.event_kinds, 0)

    ends = None
    if period is not None:
        ends = sg(spike_s + period[spike_ids])
        end_order = earliest(ends, ends.shape[0])
        ends = ends[end_order]  # the ends of the periods in time order, and whose they are
        ended = spike_ids[end_order]
    kinds = event_kinds(in_times, ends, event_s if n_events else None, spike_s, save_times if n_save else None)
    positions = sequence_positions(kinds)
    position_of = {k: pos for pos, (_, k) in zip(positions, kinds)}
    pos = jnp.concatenate(positions).astype(jnp.int32)
    codes = jnp.concatenate([jnp.arange(times.shape[0], dtype=jnp.int32) * 2**KIND_BITS + k for times, k in kinds])
    sequence = codes[stable_order(pos, pos.shape[0] - 1)]  # `pos`: each event's place, a permutation

    t_end = state.t  # where the run ended (one clock)
    ports = jnp.asarray(pop.ports, jnp.int32) if pop.ports else None
    last_input, last_spike, last_save = max(n_in - 1, 0), buffer - 1, max(n_save - 1, 0)
    per_neuron_params = {k for k, v in p.items() if isinstance(v, (jax.Array, np.ndarray)) and v.ndim}

    def step(carry, code):
        t, y, until, aux = carry
        kind, k = code & (2**KIND_BITS - 1), code >> KIND_BITS
        is_input, is_spike, is_event = kind == INPUT, kind == SPIKE, kind == EVENT
        k_in, k_spike = jnp.minimum(k, last_input), jnp.minimum(k, last_spike)
        t_event = jnp.where(is_input, in_times[k_in], spike_s[k_spike])
        which, recorded = spike_ids[k_spike], state.spike_states[k_spike]
        if n_events:
            k_event = jnp.minimum(k, event_buffer - 1)
            t_event = jnp.where(is_event, event_s[k_event], t_event)
            which = jnp.where(is_event, event_ids[k_event], which)
            recorded = jnp.where(is_event, state.event_states[k_event], recorded)
        if ends is not None:  # its value the forward run's, its derivative that of the spike's t* + period
            t_end_of = until[ended[k_spike]]
            t_event = jnp.where(kind == REFRACTORY_END, ends[k_spike] + (t_end_of - sg(t_end_of)), t_event)
        if n_save:
            t_event = jnp.where(kind == SAVE, save_times[jnp.minimum(k, last_save)], t_event)
        real = jnp.isfinite(sg(t_event)) & (sg(t_event) <= t_end)
        t_event = jnp.where(real, t_event, t)
        refractory = None if period is None else sg(t) < sg(until)
        spiking = is_spike & real
        crossing = (is_spike | is_event) & real if n_events else spiking
        at = jnp.broadcast_to(t_event, (n,))
        to_spike = (neurons == which) & spiking
        if refractory is not None:
            to_spike = to_spike & ~refractory
        y_at, aux = integrator.flow(jnp.broadcast_to(t, (n,)), y, at, p, refractory, aux, to_spike=to_spike)

        f = fn.vector_field(at, y_at, p, refractory)
        def condition(tt, yy):
            if not n_events:
                return fn.spike_condition(tt, yy, p)[which]
            return fn.conditions(tt, yy, p)[jnp.where(is_event, 1 + event_which[k_event], 0), which]

        t_spike = crossing_time(condition, at, y_at, f, crossing, t_event, t)
        y_located = y_at + f * (t_spike - sg(t_event))
        recorded = jnp.where(crossing, recorded, sg(y_at[:, which]))  # NaN where none
        y_located = y_located.at[:, which].add(recorded - sg(y_located[:, which]))
        fired = neurons == which
        y_spike = fn.apply_reset(t_spike, y_located, p, fired)
        rows = {name: w[which] for name, w in weights.items()}
        p_pre = {name: (v[which] if name in per_neuron_params else v) for name, v in p.items()}
        y_spike = y_spike + fn.spike_jump(t_spike, y_located, p, y_located[:, which], p_pre, rows)
        if n_events:
            body = (jnp.arange(n_events)[:, None] == event_which[k_event]) & fired[None]
            y_spike = jnp.where(is_event, fn.apply_event_resets(t_spike, y_located, p, body), y_spike)

        y_input = y_at
        if pop.in_size:
            channel = in_channels[k_in]
            w_rows = {name: w[channel] for name, w in input_weights.items()}
            port = None if ports is None else ports[channel]
            y_input = y_at + fn.input_jump(t_event, y_at, p, in_values[k_in], w_rows, port)

        y_next = jnp.where(crossing, y_spike, jnp.where(is_input & real, y_input, y_at))
        t_next = jnp.where(crossing, t_spike, t_event)
        if period is not None:
            until = jnp.where(spiking & fired, t_spike + period, until)
        return (t_next, y_next, until, aux), (t_spike, y_at if n_save else None)

    t0 = jnp.zeros((), dtype)
    y0 = fn.initial_state(p, n, dtype)
    until0 = None if period is None else jnp.full((n,), -jnp.inf, dtype)
    carry = (t0, y0, until0, sg(integrator.init(jnp.zeros((n,), dtype), y0, p)))
    _, (t_rec, y_rec) = jax.lax.scan(jax.checkpoint(traced_once(step), prevent_cse=False), carry, sequence)

    t_spikes = t_rec[position_of[SPIKE]]  # (buffer,), in the list's order
    spike_times = jnp.where(state.spike_ids >= 0, state.spike_times + (t_spikes - sg(t_spikes)), state.spike_times)
    event_times = state.event_times
    if n_events:
        t_events = t_rec[position_of[EVENT]]
        event_times = jnp.where(state.event_ids >= 0, event_times + (t_events - sg(t_events)), event_times)
    saved = state.saved
    if n_save:
        saved = with_derivative(saved, y_rec[position_of[SAVE]])  # (saves, states, neurons)
    return eqx.tree_at(lambda c: (c.spike_times, c.saved, c.event_times), state, (spike_times, saved, event_times))
