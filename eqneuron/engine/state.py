"""The population loop's state (`LoopState`: what one iteration hands the next), and the
bookkeeping around it.

`LoopRecords`, a base class of `PopulationLoop`, holds the state a loop starts
from and what is read from a state when the loop stops: its spikes so far, the
time up to which they are known, the population's outcome.  `take_lanes` and
`put_lanes` cut out the state of some of its neurons and put it back (a block
run on its own, `compaction.py`); `bounded_loop` is the checkpointed while loop
that carries the state.  What one iteration does is the loop's (`loop.py`).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, DTypeLike, Float, Int, PyTree

from ..codegen import GeneratedFunctions
from ..network import Population
from .clocks import AbstractClock
from .integrator import AbstractIntegrator
from .lanes import earliest
from .result import EventRecord, PopulationOutcome


class LoopState(eqx.Module):
    t: Float[Array, "*lanes"]
    y: Float[Array, "states neurons"]
    g: Float[Array, "conditions neurons"]  # spike and event conditions at (t, y): evaluated once per iteration
    armed: Bool[Array, "conditions neurons"]
    input_index: Int[Array, "*lanes"]
    save_index: Int[Array, "*lanes"]
    saved: Float[Array, "saves states neurons"]
    spike_times: Float[Array, " buffer"]  # in the order written
    spike_ids: Int[Array, " buffer"]
    spike_states: Float[Array, "buffer states"]  # the state at each spike, before the reset (empty unless recorded)
    n_written: Int[Array, ""]  # spikes so far (may exceed the buffer: overflow)
    n_spikes: Int[Array, " neurons"]
    done: Bool[Array, "*lanes"]
    paused: Bool[Array, "*lanes"]  # reached `t_stop` before `t1`: resumes in the next round
    nonfinite: Bool[Array, " neurons"]
    nonfinite_time: Float[Array, " neurons"]
    reset_failed: Bool[Array, " neurons"]
    stalled: Bool[Array, "*lanes"]  # stopped: the integrator's steps fell below what the dtype resolves
    last_fired: Float[Array, "conditions neurons"]  # time each condition last fired (-inf: never)
    refractory_until: Float[Array, " neurons"]  # end of the current refractory period (-inf: none)
    event_times: Float[Array, " event_buffer"]  # internal events, in the order written
    event_ids: Int[Array, " event_buffer"]
    event_kinds: Int[Array, " event_buffer"]  # index into the model's events
    event_states: Float[Array, "event_buffer states"]  # the state at each event, before its body (empty unless recorded)
    n_events: Int[Array, ""]  # events so far (may exceed the buffer: overflow)
    event_counts: Int[Array, "events neurons"]
    aux: PyTree  # the integrator's state
    iteration: Int[Array, ""]  # loop iterations so far (paces the progress reports)
    dropped: Bool[Array, ""]  # an input spike did not fit in its neuron's inbox (`loop.INBOX`)


class LoopRecords:
    """The state a population loop starts from, and what is read from its state (a base class of
    `PopulationLoop`)."""

    # set by the loop
    pop: Population
    clock: AbstractClock
    integrator: AbstractIntegrator
    fn: GeneratedFunctions
    p: dict[str, float | Array]  # the population's parameter values
    dtype: DTypeLike
    n_save: int  # save points
    buffer: int  # slots of the spike list
    spikes_per_neuron: int
    n_events: int  # internal events of the model
    event_buffer: int  # slots of the list of internal events
    record_spike_states: bool  # the state at each spike and internal event is kept

    def start(self) -> LoopState:
        """The state at t = 0: the model's initial state, empty lists, the conditions below zero armed."""
        fn, dtype, n = self.fn, self.dtype, self.pop.n_neurons
        lanes = self.clock.lanes(n)
        y = fn.initial_state(self.p, n, dtype)
        t = jnp.zeros(lanes, dtype)
        g = self._conditions(t, y)
        return LoopState(
            t=t,
            y=y,
            g=g,
            armed=g < 0,
            input_index=jnp.zeros(lanes, jnp.int32),
            save_index=jnp.zeros(lanes, jnp.int32),
            saved=jnp.full((self.n_save, *y.shape), jnp.nan, dtype),  # NaN where never reached
            spike_times=jnp.full((self.buffer,), jnp.inf, dtype),
            spike_ids=jnp.full((self.buffer,), -1, jnp.int32),
            spike_states=jnp.full((self.buffer if self.record_spike_states else 0, y.shape[0]), jnp.nan, dtype),
            n_written=jnp.asarray(0),
            n_spikes=jnp.zeros((n,), jnp.int32),
            done=jnp.zeros(lanes, bool),
            paused=jnp.zeros(lanes, bool),
            nonfinite=jnp.zeros((n,), bool),
            nonfinite_time=jnp.full((n,), jnp.inf, dtype),
            reset_failed=jnp.zeros((n,), bool),
            stalled=jnp.zeros(lanes, bool),
            last_fired=jnp.full(g.shape, -jnp.inf, dtype),
            refractory_until=jnp.full((n,), -jnp.inf, dtype),
            event_times=jnp.full((self.event_buffer,), jnp.inf, dtype),
            event_ids=jnp.full((self.event_buffer,), -1, jnp.int32),
            event_kinds=jnp.full((self.event_buffer,), -1, jnp.int32),
            event_states=jnp.full((self.event_buffer if self.record_spike_states else 0, y.shape[0]), jnp.nan, dtype),
            n_events=jnp.asarray(0),
            event_counts=jnp.zeros((self.n_events, n), jnp.int32),
            aux=self.integrator.init(t, y, self.p),
            iteration=jnp.asarray(0),
            dropped=jnp.asarray(False),
        )

    def _conditions(self, t, y):
        """The spike condition, then those of the internal events, at `(t, y)`."""
        if self.n_events:
            return self.fn.conditions(t, y, self.p)
        return self.fn.spike_condition(t, y, self.p)[None]

    def horizon(self, c: LoopState):
        """The time up to which all of the population's spikes are known: a neuron's
        next spike comes no earlier than its own time."""
        return jnp.min(jnp.where(c.done, jnp.inf, c.t))

    def time_order(self, c: LoopState):
        """The order that puts the spike list in time order (equal times: in the order written);
        None: it is in time order."""
        return None if self.clock.spikes_in_time_order else earliest(c.spike_times, self.buffer)

    def spikes(self, c: LoopState, order=None):
        """The spikes so far, in time order (`order`: `time_order(c)`, found already)."""
        order = self.time_order(c) if order is None else order
        if order is None:
            return c.spike_times, c.spike_ids
        return c.spike_times[order], c.spike_ids[order]

    def finish(self, c: LoopState) -> PopulationOutcome:
        spike_budget = (c.n_written > self.buffer) | jnp.any(c.n_spikes > self.spikes_per_neuron)
        spike_budget = spike_budget | (c.n_events > self.event_buffer) | c.dropped
        if self.record_spike_states and self.n_events:
            # the event-based adjoint replays at most `spikes_per_neuron` internal events per neuron
            spike_budget = spike_budget | jnp.any(jnp.sum(c.event_counts, axis=0) > self.spikes_per_neuron)
        events = None
        if self.n_events:
            order = earliest(c.event_times, self.event_buffer)
            events = EventRecord(
                names=self.fn.event_names,
                times=c.event_times[order],
                neurons=c.event_ids[order],
                kinds=c.event_kinds[order],
                counts=c.event_counts,
            )
        bad = jnp.any(c.nonfinite)
        states = None
        if self.n_save:
            states = {name: c.saved[:, k, :] for k, name in enumerate(self.fn.states)}
        return PopulationOutcome(
            spike_times=c.spike_times,
            spike_ids=c.spike_ids,
            n_spikes=c.n_written,
            spike_budget=spike_budget,
            step_budget=(~jnp.all(c.done | c.paused) & ~spike_budget) | jnp.any(c.stalled),
            nonfinite=bad,
            nonfinite_time=jnp.min(c.nonfinite_time),
            nonfinite_neuron=jnp.where(bad, jnp.argmin(c.nonfinite_time), -1),
            reset_failed=jnp.any(c.reset_failed),
            states=states,
            events=events,
            time_ordered=self.clock.spikes_in_time_order,
        )


# the fields of `LoopState` with a neuron axis (the last); the others are the population's
PER_LANE = (
    "t", "y", "g", "armed", "input_index", "save_index", "saved", "n_spikes", "done", "paused",
    "nonfinite", "nonfinite_time", "reset_failed", "stalled", "last_fired", "refractory_until", "event_counts",
)


def take_lanes(c: LoopState, ids) -> LoopState:
    """The loop state of the neurons `ids` (population-wide fields shared)."""
    fields = {name: getattr(c, name)[..., ids] for name in PER_LANE}
    return dataclasses.replace(c, aux=jax.tree_util.tree_map(lambda x: x[..., ids], c.aux), **fields)


def put_lanes(c: LoopState, sub: LoopState, ids) -> LoopState:
    """`c` with the lanes `ids` (out of range: dropped) from `sub`, and `sub`'s population-wide fields."""
    fields = {name: getattr(c, name).at[..., ids].set(getattr(sub, name), mode="drop") for name in PER_LANE}
    aux = jax.tree_util.tree_map(lambda x, y: x.at[..., ids].set(y, mode="drop"), c.aux, sub.aux)
    return dataclasses.replace(sub, aux=aux, **fields)


def bounded_loop(cond, body, carry: LoopState, budget: int, max_iterations=None) -> LoopState:
    """At most `budget` iterations, checkpointed for reverse mode.

    Lanes paused by an earlier call resume.  With `max_iterations` (a traced
    number) it also stops after that many, and the lanes not done are
    marked paused: the next call resumes them.
    """
    carry = eqx.tree_at(lambda c: c.paused, carry, jnp.zeros_like(carry.paused))
    checkpoints = min(budget, 64)
    if max_iterations is None:
        return eqxi.while_loop(cond, body, carry, max_steps=budget, kind="checkpointed", checkpoints=checkpoints)
    i, c = eqxi.while_loop(
        lambda s: cond(s[1]) & (s[0] < max_iterations),
        lambda s: (s[0] + 1, body(s[1])),
        (jnp.asarray(0), carry),
        max_steps=budget,
        kind="checkpointed",
        checkpoints=checkpoints,
    )
    return eqx.tree_at(lambda c: c.paused, c, c.paused | ((i >= max_iterations) & ~c.done))
