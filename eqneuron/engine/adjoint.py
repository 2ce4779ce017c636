"""The event-based adjoint: `simulate(..., adjoint="eventprop")`.

Gradients through the population loop itself (the default) store or
recompute the loop's carries, whose number grows with solver steps and
iterations.  The event-based adjoint needs only what EventProp (Wunderlich &
Pehle 2021) keeps: the time of every event and the state just after it.

The forward run is the population loop, not differentiated: it finds every
spike.  Each neuron's history is then a known sequence of events — input
spikes, its own spikes and internal events, the ends of its refractory
periods, save points —
and between two of them the free dynamics.  A *replay* walks that sequence
in time order, one `lax.scan` step per event and every neuron at once:

* the free dynamics to the event (`AbstractIntegrator.flow`: the closed form,
  or adaptive Runge–Kutta steps without crossing search);
* at an input spike, the `on_input` jump; at a save point, the state;
* at a spike, found at the forward run's time `s`: the spike time as the
  implicit function of `g(t, y(t)) = 0`, written
  `t* = s - (g - stop_gradient(g)) / ġ` with `ġ = ∂g/∂t + ∇g·f` (its value is
  `s`, its derivative `-dg/ġ`), the state there `y(s) + f·(t* - s)` (its
  derivative carries `f dt*`, the transversality term), then the reset.  A
  spike at the time of the event before it (an input that lifts the neuron
  over threshold, the end of a refractory period above it) happens at that
  event's time;
* at an internal event, the same with the event's condition, then its body.

A recurrent population (one shared clock) is replayed as one sequence for all
of its neurons (`adjoint_shared.py`): a spike or internal event moves every
neuron's state with its time; a spike applies its targets' `on_spike` jumps.

Reverse mode through the replay is EventProp's backward pass: the adjoint of
each segment's flow (for the closed form, its exact propagator transposed;
for Runge–Kutta, the discrete adjoint of the segment's steps, recomputed
from the segment's start), and the adjoint jumps of resets and inputs with
the `∂g/∂y·f` terms at each spike — derived by JAX from the same generated
functions the forward run uses, rather than written out by hand.  Each scan
step is rematerialised, so the memory kept for the backward pass is one
carry (times and states of the neurons) per event of the busiest neuron, not
per solver step.

A population on its own clocks with a closed form and constant input jumps
is replayed by superposition instead (`adjoint_superposed.py`): each input's
response in one vectorised pass, and a scan over its spikes and save points
only.

Values come from the forward run (bit for bit); the replay supplies only
their derivatives.  Each neuron's sequence of events and the implicit-function
spike time are built in `adjoint_sequence.py`, shared by both replays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int

from ..errors import EqError
from ..network import Network, Population
from .adjoint_sequence import (
    EVENT,
    INPUT,
    KIND_BITS,
    PAD,
    REFRACTORY_END,
    SAVE,
    SPIKE,
    by_neuron,
    chunks_pay,
    count_real,
    crossing_time,
    event_kinds,
    replay_scan,
    sequence_positions,
    sequence_table,
    spikes_with_derivative,
    with_derivative,
)
from .adjoint_shared import replay_shared
from .adjoint_superposed import replay_superposed, superposable
from .clocks import AbstractClock, OwnClocks, SharedClock
from .graph import needs_graph
from .loop import PopulationLoop
from .state import LoopState

ADJOINTS = ("loop", "eventprop")

T = TypeVar("T")

sg = jax.lax.stop_gradient


def check_adjoint(adjoint: str, net: Network, clock_for: Callable[[Population], AbstractClock]) -> None:
    """Reject what the event-based adjoint does not handle yet (never a silently wrong gradient)."""
    if adjoint not in ADJOINTS:
        raise EqError(f"simulate: unknown adjoint {adjoint!r}", hint=f"choose from {', '.join(map(repr, ADJOINTS))}")
    if adjoint == "loop":
        return
    if net.graph or needs_graph(net):
        raise EqError(
            "simulate: adjoint='eventprop' runs feed-forward stacks; this network is a graph",
            hint="use adjoint='loop' (the default) for graph networks",
        )


def stop_gradients(tree: T) -> T:
    """`tree` with every inexact array cut from differentiation (the forward run's copy)."""
    return jax.tree_util.tree_map(
        lambda x: sg(x) if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jnp.inexact) else x, tree
    )


def replay_leaves(pop: Population) -> tuple[dict, dict]:
    """What a replay of `pop` differentiates: its parameter values and the input rows of its weights.

    The input rows only, unless the population is recurrent: under `vmap` a gradient is per
    sample, and one with respect to the whole weight matrix is a scatter into a matrix per sample.
    """
    if pop.recurrent:
        return pop.parameter_values(), pop.effective_weights()
    return pop.parameter_values(), pop.input_weights()


def replay(
    loop: PopulationLoop,
    state: LoopState,
    pop: Population,
    leaves: tuple[dict, dict],
    in_times: Float[Array, " inputs"],
    in_channels: Int[Array, " inputs"],
    in_values: Float[Array, " inputs"],
    save_times: Float[Array, " saves"],
) -> LoopState:
    """`state` with its spike times, internal event times and saved states differentiable (their
    values unchanged).

    `leaves` are `replay_leaves(pop)` with their derivatives, `in_times` the
    population's differentiable input spike times (`loop` ran copies of both
    cut from differentiation), `save_times` the loop's (passed in, not read
    from `loop`: the replay may be traced after the run's trace has ended).
    """
    if isinstance(loop.clock, SharedClock):
        return replay_shared(loop, state, pop, leaves, in_times, in_channels, in_values, save_times)
    if superposable(loop, pop):
        return replay_superposed(loop, state, pop, leaves, in_times, in_channels, in_values, save_times)
    assert isinstance(loop.clock, OwnClocks)
    fn, integrator, dtype = pop.model.fn, loop.integrator, loop.dtype
    n = pop.n_neurons
    neurons = jnp.arange(n)
    p, input_weights = leaves
    per_neuron = 1 if loop.stop_after_first_spike else loop.spikes_per_neuron
    spike_s, slots = by_neuron(state.spike_times, state.spike_ids, n, per_neuron, loop.buffer)
    # the state at each spike as the forward run located it: (n, per_neuron, states)
    spike_y = state.spike_states[jnp.minimum(slots, loop.buffer - 1)]
    n_events = loop.n_events
    if n_events:  # internal events: at most `spikes_per_neuron` per neuron (`loop.finish` flags more)
        per_event = loop.spikes_per_neuron
        event_s, event_slots = by_neuron(state.event_times, state.event_ids, n, per_event, loop.event_buffer)
        at_event = jnp.minimum(event_slots, loop.event_buffer - 1)
        event_which, event_y = state.event_kinds[at_event], state.event_states[at_event]
        last_event = per_event - 1
    period = fn.refractory_period(p, jnp.zeros((n,), dtype)) if loop.refractory else None
    n_in, n_save = in_times.shape[0], loop.n_save

    kinds = event_kinds(in_times, None if period is None else spike_s + sg(period)[:, None],
                   event_s if n_events else None, spike_s, save_times if n_save else None)
    positions = sequence_positions(kinds)
    position_of = {k: pos for pos, (_, k) in zip(positions, kinds)}
    length = sum(times.shape[-1] for times, _ in kinds)
    rows = neurons[:, None]
    sequence = sequence_table(kinds, positions, n, length)
    # a long sequence of closed-form flows runs in chunks (`replay_scan`), padded to whole chunks
    chunked = chunks_pay(length, integrator)

    t_end = state.t  # where each neuron's run ended
    ports = jnp.asarray(pop.ports, jnp.int32) if pop.ports else None
    last_input, last_spike, last_save = max(n_in - 1, 0), per_neuron - 1, max(n_save - 1, 0)

    def gather_inputs(k_in, targets):
        """The input spikes `k_in` (for the neuron on each row of `targets`): times, values,
        weight rows and ports."""
        channel = in_channels[k_in]
        w_rows = {name: w[channel, targets] for name, w in input_weights.items()} if pop.in_size else None
        port = None if ports is None else ports[channel]
        return in_times[k_in], in_values[k_in], w_rows, port

    def step(carry, x):
        t, y, until, aux = carry  # `until`: None without a refractory period (nothing to keep)
        code, gathered = x
        code = code.astype(jnp.int32)
        kind, k = code & (2**KIND_BITS - 1), code >> KIND_BITS
        is_input, is_spike, is_event = kind == INPUT, kind == SPIKE, kind == EVENT
        k_in, k_spike = jnp.minimum(k, last_input), jnp.minimum(k, last_spike)
        t_in, value_in, w_rows, port = gather_inputs(k_in, neurons) if gathered is None else gathered
        t_event = jnp.where(is_input, t_in, spike_s[neurons, k_spike])
        if n_events:
            k_event = jnp.minimum(k, last_event)
            t_event = jnp.where(is_event, event_s[neurons, k_event], t_event)
        if period is not None:
            t_event = jnp.where(kind == REFRACTORY_END, until, t_event)
        if n_save:
            t_event = jnp.where(kind == SAVE, save_times[jnp.minimum(k, last_save)], t_event)
        # list padding (no such event), or after the neuron's run ended (its first spike, when the
        # run stops there; the end of its last round): nothing happens
        real = jnp.isfinite(sg(t_event)) & (sg(t_event) <= t_end)
        if chunked:
            real = real & (kind != PAD)
        t_event = jnp.where(real, t_event, t)
        refractory = None if period is None else sg(t) < sg(until)
        spiking = is_spike & real
        crossing = (is_spike | is_event) & real if n_events else spiking
        to_spike = spiking if refractory is None else spiking & ~refractory
        y_at, aux = integrator.flow(t, y, t_event, p, refractory, aux, to_spike=to_spike)

        # a spike or internal event: its time by the implicit function theorem on its
        # condition, the state there moving with it
        def condition(tt, yy):
            if not n_events:
                return fn.spike_condition(tt, yy, p)
            which = jnp.where(is_event, 1 + event_which[neurons, k_event], 0)
            return fn.conditions(tt, yy, p)[which, neurons]

        f = fn.vector_field(t_event, y_at, p, refractory)
        t_spike = crossing_time(condition, t_event, y_at, f, crossing, t_event, t)
        # the state there: its value as located by the forward run (a state integrated again
        # to the same time differs by the integration error, which a threshold and a reset
        # would amplify from spike to spike), its derivative the replay's
        located = spike_y[neurons, k_spike].T
        if n_events:
            located = jnp.where(is_event[None], event_y[neurons, k_event].T, located)
        # no crossing at this step (its slot holds no record, NaN): a finite stand-in, so that the
        # reset's and the event body's derivatives, multiplied by zero, stay zero
        located = jnp.where(crossing[None], located, sg(y_at))
        y_located = y_at + f * (t_spike - sg(t_event))
        y_located = located + (y_located - sg(y_located))
        y_spike = fn.apply_reset(t_spike, y_located, p, jnp.ones((n,), bool))
        if n_events:
            body = (jnp.arange(n_events)[:, None] == event_which[neurons, k_event][None]) & is_event[None]
            y_spike = jnp.where(is_event[None], fn.apply_event_resets(t_spike, y_located, p, body), y_spike)

        y_input = y_at
        if pop.in_size:  # a population without inputs has no input rows (its input list is padding)
            y_input = y_at + fn.input_jump(t_event, y_at, p, value_in, w_rows, port)

        y_next = jnp.where(crossing[None], y_spike, jnp.where((is_input & real)[None], y_input, y_at))
        t_next = jnp.where(crossing, t_spike, t_event)
        if period is not None:
            until = jnp.where(spiking, t_spike + period, until)
        return (t_next, y_next, until, aux), (t_spike, y_at)

    t0 = jnp.zeros((n,), dtype)
    y0 = fn.initial_state(p, n, dtype)
    until0 = None if period is None else jnp.full((n,), -jnp.inf, dtype)
    carry = (t0, y0, until0, sg(integrator.init(t0, y0, p)))
    # in chunks, the steps' inputs gathered beforehand, and the chunks past every neuron's run skipped
    gathered, n_real = None, None
    if chunked:
        gathered = jax.tree_util.tree_map(
            lambda x: x.T, gather_inputs(jnp.minimum(sequence.astype(jnp.int32) >> KIND_BITS, last_input), neurons[:, None])
        )
        n_real = jnp.max(count_real(kinds, t_end))
    _, (t_rec, y_rec) = replay_scan(step, carry, sequence.T, gathered, n_real, lambda c: (c[0], c[1]), chunked)

    t_spikes = t_rec[position_of[SPIKE], rows]  # (n, per_neuron)
    spike_times = spikes_with_derivative(state, slots, loop.buffer, t_spikes)
    event_times = state.event_times
    if n_events:
        t_events = t_rec[position_of[EVENT], rows]  # (n, per_event)
        forward = state.event_times[at_event]
        t_events = jnp.where(event_slots < loop.event_buffer, forward + (t_events - sg(t_events)), jnp.inf)
        event_times = event_times.at[event_slots].set(t_events, mode="drop")
    saved = state.saved
    if n_save:
        save_pos = jnp.broadcast_to(position_of[SAVE], (n, n_save))
        saved = with_derivative(saved, jnp.transpose(y_rec[save_pos, :, rows], (1, 2, 0)))  # (saves, states, neurons)
    return eqx.tree_at(lambda c: (c.spike_times, c.saved, c.event_times), state, (spike_times, saved, event_times))
