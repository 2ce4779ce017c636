"""The event-based adjoint's replay of a linear population, by superposition.

For a population on own clocks whose free dynamics have a closed form (linear)
and whose input jumps are constant increments (free of states and time:
`Analysis.additive_inputs`), a neuron's state just before its spike `j` is
its state after spike `j - 1` carried by the free dynamics, plus each input's
jump since then carried by the free dynamics from its arrival:

    y(s_j⁻) = φ(s_j - t_{j-1}, y(t_{j-1}⁺)) + Σ_{t_{j-1} < s_k ≤ s_j} Φ(s_j - s_k) J_k

(`φ` the flow, `Φ` its homogeneous part, `J_k` input `k`'s jump).  The replay
of `adjoint.py` walks every event of every neuron in time order, one scan step
each, a carry per input event; here every input's term is computed in one
vectorised pass, added up per segment, and only each neuron's spikes and save
points (the *boundaries*, where the state is needed) are walked.  At a spike
the time, the state there and the reset are those of `adjoint.py` (the
implicit-function spike time and the located state); its reverse mode is the
same EventProp backward pass, with the adjoint carried across the inputs in
closed form instead of step by step.  Values come from the forward run, bit
for bit, as in every replay.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..network import Population
from .adjoint_sequence import (
    KIND_BITS,
    SAVE,
    SPIKE,
    by_neuron,
    crossing_time,
    sequence_positions,
    sequence_table,
    spikes_with_derivative,
    with_derivative,
)
from .clocks import OwnClocks
from .closed_form import ClosedFormIntegrator
from .lanes import traced_once
from .loop import PopulationLoop
from .state import LoopState

sg = jax.lax.stop_gradient

# boundaries per neuron up to which each input's is found by comparing with all of them (beyond,
# by a gather and a scatter, whose indices under `vmap` are the largest buffers of the program)
_FEW = 16


def superposable(loop: PopulationLoop, pop: Population) -> bool:
    """Whether `replay_superposed` replays `pop`: own clocks, a closed form, constant input jumps
    (a refractory period freezes states, and an internal event has no closed form)."""
    return (
        isinstance(loop.clock, OwnClocks)
        and isinstance(loop.integrator, ClosedFormIntegrator)
        and not loop.refractory
        and not loop.n_events
        and pop.model.compiled.analysis.additive_inputs
    )


def replay_superposed(
    loop: PopulationLoop,
    state: LoopState,
    pop: Population,
    leaves: tuple[dict, dict],
    in_times: Float[Array, " inputs"],
    in_channels: Int[Array, " inputs"],
    in_values: Float[Array, " inputs"],
    save_times: Float[Array, " saves"],
) -> LoopState:
    """`replay` (same arguments, same result) of a population that `superposable` accepts."""
    fn, integrator, dtype = pop.model.fn, loop.integrator, loop.dtype
    assert isinstance(integrator, ClosedFormIntegrator)
    n = pop.n_neurons
    neurons = jnp.arange(n)
    rows = neurons[:, None]
    p, input_weights = leaves
    per_neuron = 1 if loop.stop_after_first_spike else loop.spikes_per_neuron
    spike_s, slots = by_neuron(state.spike_times, state.spike_ids, n, per_neuron, loop.buffer)
    spike_y = state.spike_states[jnp.minimum(slots, loop.buffer - 1)]  # (n, per_neuron, states); NaN: none
    n_save, n_in = loop.n_save, in_times.shape[0]
    t_end = state.t  # where each neuron's run ended: what comes after it never happened

    # the boundaries, per neuron in time order (a spike before a save point at its time)
    kinds = [(spike_s, SPIKE)] + ([(sg(save_times), SAVE)] if n_save else [])
    positions = sequence_positions(kinds)
    position_of = {k: pos for pos, (_, k) in zip(positions, kinds)}
    length = per_neuron + n_save
    if n_save:
        table = sequence_table(kinds, positions, n, length).astype(jnp.int32)
        kind, index = table & (2**KIND_BITS - 1), table >> KIND_BITS
        at = spike_s[rows, jnp.minimum(index, per_neuron - 1)]  # (n, length): when each boundary is
        at = jnp.where(kind == SAVE, save_times[jnp.minimum(index, n_save - 1)], at)
    else:  # the spikes, in order (a gather would leave them in a layout that slows what reads them)
        kind = jnp.full((n, length), SPIKE, jnp.int32)
        index, at = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), (n, length)), spike_s
    real = jnp.isfinite(sg(at)) & (sg(at) <= t_end[:, None])

    # each input's term at the boundary that ends its segment (an input at a boundary's time
    # comes before it), added up in the scan's step at that boundary (`terms`: the terms
    # `(states, n, inputs)` and each one's boundary `(n, inputs)`) or, past a few boundaries,
    # beforehand by a scatter (`sums`: `(states, n, length)`)
    terms, sums = None, None
    if pop.in_size and n_in:
        s_in = sg(in_times)
        # an input after the neuron's last boundary, or whose boundary never happened, adds to nothing
        arrived = jnp.isfinite(s_in)[None] & (s_in[None] <= t_end[:, None])
        if length == 1:  # one boundary (a first-spike run): no index at all (an axis of one
            # left XLA's fused exponentials of the terms unvectorised, 8x slower)
            boundary = jnp.zeros((n, n_in), jnp.int32)
            arrived = arrived & (s_in[None] <= sg(at)) & real
            end = jnp.broadcast_to(sg(at), (n, n_in))
        elif length <= _FEW:  # each input's boundary by comparison: no gather or scatter indices
            boundary = jnp.sum(sg(at)[:, None, :] < s_in[None, :, None], axis=-1)  # (n, inputs)
            which = boundary[..., None] == jnp.arange(length)  # (n, inputs, length)
            arrived = arrived & jnp.any(which & real[:, None, :], axis=-1)
            end = jnp.sum(jnp.where(which, sg(at)[:, None, :], 0.0), axis=-1)
        else:
            boundary = jax.vmap(lambda b: jnp.searchsorted(b, s_in, side="left"))(sg(at))
            arrived = arrived & (boundary < length)
            boundary = jnp.minimum(boundary, length - 1)
            arrived = arrived & real[rows, boundary]
            end = sg(at)[rows, boundary]
        # lanes (n, inputs): per-neuron parameters as columns (the save times, the boundaries'
        # only differentiable times, are not among what the replay differentiates)
        h = jnp.where(arrived, end - in_times[None], 0.0)
        columns = {k: v[:, None] if jnp.ndim(v) == 1 and jnp.shape(v)[0] == n else v for k, v in p.items()}
        weight_rows = {name: w[in_channels].T for name, w in input_weights.items()}
        port = None if not pop.ports else jnp.asarray(pop.ports, jnp.int32)[in_channels][None, :]
        value = jnp.where(jnp.isfinite(s_in), in_values, 0.0)[None, :]
        blank = jnp.zeros((len(fn.states), n, n_in), dtype)
        jump = fn.input_jump(s_in[None, :], blank, columns, value, weight_rows, port)
        # Φ(h) J: the flow's derivative along the jump (its constant part, if any, is not the input's)
        _, term = jax.jvp(lambda y: integrator.propagate(h, y, columns), (blank,), (jump,))
        term = jnp.where(arrived[None], term, 0.0)
        if length == 1:
            sums = jnp.sum(term, axis=-1)[..., None]
        elif length <= _FEW:  # (summed with a one-hot of the boundaries, whose pullback would
            terms = (term, boundary)  # hold a select of `(states, n, inputs, length)`)
        else:
            sums = jnp.zeros((len(fn.states), n, length), dtype).at[:, rows, boundary].add(term)

    def step(carry, x):
        t, y = carry  # after the boundary before (its time differentiable: a spike's t*)
        q, code_kind, k, t_at, real_at, last, sum_at = x
        spiking = (code_kind == SPIKE) & real_at
        t_at = jnp.where(real_at, t_at, t)  # no such boundary (inf), or after the run ended: nothing happens
        # the free dynamics from the boundary before, plus the inputs' terms since
        y_at = integrator.propagate(t_at - t, y, p)
        if terms is not None:
            term, boundary = terms
            y_at = y_at + jnp.sum(jnp.where(boundary[None] == q, term, 0.0), axis=-1)
        elif sum_at is not None:
            y_at = y_at + sum_at
        y_at = jnp.where(real_at[None], y_at, y)
        # the event before the spike (`crossing_time`): the latest of the boundary before and the
        # inputs since (their times are sorted, and an input at the boundary comes before it)
        if n_in:
            latest = in_times[jnp.maximum(last, 0)]
            before = jnp.where((last >= 0) & (sg(latest) > sg(t)), latest, t)
        else:
            before = t
        f = fn.vector_field(t_at, y_at, p, None)
        t_spike = crossing_time(lambda tt, yy: fn.spike_condition(tt, yy, p), t_at, y_at, f, spiking, sg(t_at), before)
        # the state there: its value as the forward run located it, its derivative the replay's
        located = jnp.where(spiking[None], spike_y[neurons, jnp.minimum(k, per_neuron - 1)].T, sg(y_at))
        y_located = y_at + f * (t_spike - sg(t_at))
        y_located = located + (y_located - sg(y_located))
        y_spike = fn.apply_reset(t_spike, y_located, p, jnp.ones((n,), bool))
        y_next = jnp.where(spiking[None], y_spike, y_at)
        t_next = jnp.where(spiking, t_spike, t_at)
        return (t_next, y_next), (t_spike, y_at)

    # each boundary's latest input at or before it (the inputs are sorted), found once here
    # rather than in every step of the scan and of its rematerialised pullback
    last = jnp.searchsorted(sg(in_times), sg(at), side="right") - 1 if n_in else None
    carry = (jnp.zeros((n,), dtype), fn.initial_state(p, n, dtype))
    xs = (jnp.arange(length), kind.T, index.T, at.T, real.T, None if last is None else last.T,
          None if sums is None else jnp.transpose(sums, (2, 0, 1)))
    _, (t_rec, y_rec) = jax.lax.scan(jax.checkpoint(traced_once(step), prevent_cse=False), carry, xs)

    t_spikes = t_rec[position_of[SPIKE], rows]  # (n, per_neuron)
    spike_times = spikes_with_derivative(state, slots, loop.buffer, t_spikes)
    saved = state.saved
    if n_save:
        save_pos = jnp.broadcast_to(position_of[SAVE], (n, n_save))
        saved = with_derivative(saved, jnp.transpose(y_rec[save_pos, :, rows], (1, 2, 0)))  # (saves, states, neurons)
    return eqx.tree_at(lambda c: (c.spike_times, c.saved), state, (spike_times, saved))

