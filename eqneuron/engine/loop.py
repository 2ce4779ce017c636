"""The population loop: one event loop for every clock and integrator.

Each iteration advances the free dynamics from the current time to the next
*scheduled* event (input spike, save point, the end of a refractory period
or the stop time), stopping early at the first upward zero crossing of an
armed condition of a neuron: its spike condition or an internal event's.
Then the events at that time are applied:

* spikes: the firing neurons' reset and (in a recurrent population) their
  targets' jumps, all computed from the values just before the event; a
  refractory period starts;
* internal events: the event's own body, not sent to targets;
* an input spike: the `on_input` jump with the row `W[N + channel, :]` (or,
  for a channel that is a list of targets, their weights: `SparseBlock`);
* a save point: the state is recorded.

Each condition of a neuron is *armed* while it is below zero; it can fire
only when armed, and re-arms when it falls below zero again.  A jump that
lifts an armed condition above zero makes it fire at once (zero-length
segment), so simultaneous spikes are all emitted at the same time.  While a
neuron is refractory its spike condition cannot fire and its
`(unless refractory)` states are frozen; the end of the period is a
scheduled time, so it is exact and differentiable.  Arrays indexed by
*lanes* have the clock's shape (`clocks.py`).

The loop can stop at an intermediate time `t_stop` and resume later
(`start`, `run`, `spikes`, `finish`), so that a network can run in rounds.
It is a checkpointed bounded while loop: reverse mode works with memory that
does not grow with the number of iterations.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import NamedTuple

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PyTree

from ..codegen.waveforms import SampledWaveform
from ..network import Population
from .clocks import AbstractClock
from .integrator import AbstractIntegrator
from .lanes import earliest, traced_once
from .progress import ProgressMeter
from .result import EventRecord, PopulationOutcome

# input spikes looked at per lane for the next one that reaches its neuron (`PopulationLoop.next_input`)
LOOKAHEAD = 8
# ... where some channels are lists of targets (projections of more than `graph.DENSE_LIMIT` pairs:
# a window's list holds many spikes, each reaching few of the neurons)
LOOKAHEAD_LISTS = 64
# input spikes one neuron may receive in one window when its population reads them from inboxes
# (more: the spike-budget result code)
INBOX = 32
# populations on own clocks at least this large gather their last active neurons into a block
COMPACT_MIN = 512
# ... into a block of this share of its lanes (rounded up to a power of two)
COMPACT_SHARE = 8


class SparseBlock(NamedTuple):
    """Input channels whose targets are lists (a sparse projection read without rows of weights,
    or, one target each, the synapses of a projection with per-synapse delays): channel
    `offset + i` reaches the neurons `targets[i]` (ascending; empty slots: the number of
    neurons, after the others) with the weights `weights[name][i]` (a neuron listed twice: the
    sum, at its first slot), at the input port `port`."""

    offset: int
    targets: Int[Array, "rows k"]
    weights: dict[str, Float[Array, "rows k"]]
    port: int | None
    # which neurons each channel reaches, 32 to a word (bit j % 32 of word j // 32): the test a
    # neuron makes for each of the next input spikes is one read, the search of `targets` is
    # made for the one it takes.  None: one target per channel, compared directly
    bits: Array | None

    def reaches(self, r, neurons):
        if self.bits is None:
            return self.targets[r, 0] == neurons
        return ((self.bits[r, neurons >> 5] >> (neurons & 31).astype(jnp.uint32)) & 1) == 1


class InputLayout(NamedTuple):
    """How the loop of a graph's population reads its input channels (`graph.loop_inputs`): the
    first `in_size` of them through rows of `weights` (after the neurons' own rows when the
    population is recurrent), reaching the neurons `connected` marks (None: all); then the
    channels of `lists`."""

    weights: dict[str, Float[Array, "rows neurons"]]
    connected: Bool[Array, "rows neurons"] | None
    lists: tuple[SparseBlock, ...] = ()


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
    dropped: Bool[Array, ""]  # an input spike did not fit in its neuron's inbox (`INBOX`)


class PopulationLoop:
    """The event loop of one population (set up at trace time)."""

    def __init__(
        self,
        pop: Population,
        clock: AbstractClock,
        integrator: AbstractIntegrator,
        *,
        n_inputs: int,
        t1,
        save_at,
        max_spikes: int,
        spikes_per_neuron: int,
        max_solver_steps: int,
        stop_after_first_spike: bool,
        dtype,
        meter: ProgressMeter | None = None,
        index: int = 0,
        record_spike_states: bool = False,
        lean: bool = False,
        inputs: InputLayout | None = None,
    ):
        self.pop, self.clock, self.integrator = pop, clock, integrator
        n = pop.n_neurons
        layout = InputLayout(pop.effective_weights(), None) if inputs is None else inputs
        # the weights' rows: the neurons' own (a stack's population has them, zero without
        # recurrence; a graph's only when recurrent), then a row per input channel
        self.weights = layout.weights
        self.row0 = n if inputs is None or pop.recurrent else 0
        self.rows_in = pop.in_size  # the channels with a row of weights
        # which input channels reach which neurons (rows as the channels'; None: all).  On own
        # clocks a neuron then passes over the input spikes that do not reach it: they neither
        # jump its state nor end its solver steps (in a sparse network most of a window's spikes
        # reach few of its neurons, and each spike was a loop iteration of every neuron)
        self.connected = layout.connected if clock.lanes(n) else None
        # the channels after those: lists of targets (sparse projections, per-synapse delays)
        self.lists = layout.lists
        sparse = bool(clock.lanes(n)) and (self.connected is not None or bool(self.lists))
        # every channel a list of targets (a sparse network): each window, every neuron's input
        # spikes are put in its own inbox first, so that it stops at those only
        # (`_fill_inboxes`); otherwise a neuron looks along the window's list for them (`skips`)
        self.by_inbox = sparse and not self.rows_in
        self.skips = sparse and not self.by_inbox
        self.inbox: tuple[Int[Array, "slots lanes"], Int[Array, " lanes"]] | None = None
        # the neurons of the loop's lanes: all of them, or those of a block (`_block_loop`)
        self.lane_ids = jnp.arange(pop.n_neurons)
        self.lean = lean
        # `lean`: no event-free steps before an iteration's located step.  The neurons take the
        # same accepted steps either way (a free step that would hold a crossing is not kept), so
        # the values are the same; the loop body holds one solver step instead of three, which
        # is what reverse mode compiles three times over (`simulate` runs lean under it)
        self.free_steps = 0 if lean else clock.free_steps(integrator)
        self.fn = pop.model.fn
        self.dtype = dtype
        self.meter, self.index = meter, index  # progress reports: the bar, and this population's place in it
        self.p = pop.parameter_values()
        self.n_inputs = n_inputs
        self.in_size = pop.in_size + sum(int(b.targets.shape[0]) for b in self.lists)
        self.n_save = 0 if save_at is None else save_at.shape[0]
        self.save_times = jnp.full((1,), jnp.inf, dtype) if save_at is None else save_at
        self.t1 = jnp.asarray(t1, dtype)
        self.stop_after_first_spike = stop_after_first_spike
        self.spikes_per_neuron = spikes_per_neuron
        # no more slots than the neurons can fill: every iteration of a vmapped loop copies the
        # whole list (a readout stopping at its first spikes needs one slot per neuron)
        per_neuron = 1 if stop_after_first_spike else spikes_per_neuron
        self.buffer = min(max_spikes, pop.n_neurons * per_neuron)
        # the state at each spike and internal event is kept for the event-based adjoint
        # (`adjoint.py`), which replays each neuron's events from it
        self.record_spike_states = record_spike_states
        self.n_events = len(self.fn.event_names)
        self.event_buffer = max_spikes if self.n_events else 0
        self.refractory = self.fn.refractory_raw is not None
        steps = max_solver_steps if integrator.takes_steps else 0
        if integrator.takes_steps:
            # every sample time of an input waveform ends a step (a kink of its interpolant):
            # those steps come on top of the ones the tolerances ask for
            steps += sum(
                int(entry.path.ts.shape[0]) for entry in self.p.values() if isinstance(entry, SampledWaveform)
            )
        lanes_spikes = spikes_per_neuron if clock.lanes(pop.n_neurons) else max_spikes
        # iterations: inputs, saves, spikes (and the ends of their refractory periods), events, steps
        per_spike = 2 if self.refractory else 1
        self.budget = n_inputs + self.n_save + lanes_spikes * per_spike + (self.event_buffer and lanes_spikes) + 2 + steps
        self.takes_steps = integrator.takes_steps
        # a model without `reset:` detects spikes: its threshold fires once per upward crossing
        self.detector = not pop.model.ir.reset.updates

    @property
    def round(self) -> int:
        return self.clock.round

    def start(self) -> LoopState:
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
            saved=jnp.full((max(self.n_save, 1), *y.shape), jnp.nan, dtype),  # NaN where never reached
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
        if self.n_events:
            return self.fn.conditions(t, y, self.p)
        return self.fn.spike_condition(t, y, self.p)[None]

    def _refractory(self, c: LoopState):
        """Per neuron: whether it is refractory at its current time (None: the model has no period)."""
        if not self.refractory:
            return None
        return c.t < c.refractory_until

    @staticmethod
    def _can_fire(armed, refractory):
        """The conditions that can fire: the spike condition not while refractory."""
        if refractory is None:
            return armed
        return armed.at[0].set(armed[0] & ~refractory)

    def _reaches(self, index, in_channels):
        """Whether input spike `index` (per lane, any shape ending in neurons) reaches the lane's neuron."""
        n_inputs = in_channels.shape[0]
        channel = in_channels[jnp.clip(index, 0, n_inputs - 1)]
        hit = jnp.broadcast_to(True, channel.shape)
        if self.connected is not None and self.rows_in:
            hit = self.connected[jnp.minimum(channel, self.rows_in - 1), self.lane_ids]
        for lists in self.lists:
            r, inside = _in_block(lists, channel)
            hit = jnp.where(inside, lists.reaches(r, self.lane_ids), hit)
        return (index < n_inputs) & hit

    def _input_rows(self, channel, neurons):
        """The weights of input channel `channel` at `neurons` (shapes broadcast), by name, and
        its input port (None: the model has no named ports)."""
        row = self.row0 + jnp.minimum(channel, max(self.rows_in - 1, 0))
        shape = jnp.broadcast_shapes(jnp.shape(channel), neurons.shape)
        rows = {name: w[row, neurons] if self.rows_in else jnp.zeros(shape, w.dtype) for name, w in self.weights.items()}
        ports = self.pop.ports
        port = jnp.asarray(ports, jnp.int32)[jnp.minimum(channel, len(ports) - 1)] if ports else None
        for lists in self.lists:
            r, inside = _in_block(lists, channel)
            slot, hit = _find(lists.targets, r, neurons)
            rows = {name: jnp.where(inside, jnp.where(hit, lists.weights[name][r, slot], 0.0), w) for name, w in rows.items()}
            if lists.port is not None:
                port = jnp.where(inside, lists.port, 0 if port is None else port)
        return rows, port

    def next_input(self, index, in_channels):
        """Per lane, the input spike after `index` that reaches its neuron, among the next
        `LOOKAHEAD` (`LOOKAHEAD_LISTS`); where none does, the last of them (a stop without a
        jump, from which the next search starts).  When every channel reaches every neuron:
        `index + 1`."""
        if not self.skips:
            return index + 1
        look = LOOKAHEAD_LISTS if self.lists else LOOKAHEAD
        ahead = index[None, :] + 1 + jnp.arange(look)[:, None]  # (look, neurons)
        hit = self._reaches(ahead, in_channels)
        # the first that reaches it, by a plain reduction (XLA's CPU argmax is a slower variadic one)
        first = jnp.min(jnp.where(hit, jnp.arange(look)[:, None], look), axis=0)
        found = jnp.where(first < look, index + 1 + first, index + look)
        return jnp.minimum(found, in_channels.shape[0]).astype(index.dtype)

    def first_input(self, in_channels):
        """Per lane, the index of the first input spike of a fresh list (`next_input` from -1)."""
        lanes = self.clock.lanes(self.pop.n_neurons)
        return self.next_input(jnp.full(lanes, -1, jnp.int32), in_channels) if self.skips else jnp.zeros(lanes, jnp.int32)

    def run(self, c: LoopState, in_times, in_channels, in_values, t_stop, max_iterations=None) -> LoopState:
        """Every event up to `t_stop` (at most `max_iterations` iterations, when given)."""
        loop = self
        if self.by_inbox and self.inbox is None:  # a fresh list of inputs: the neurons' inboxes
            loop = copy.copy(self)
            loop.inbox = self._fill_inboxes(in_times, in_channels)
            c = dataclasses.replace(c, dropped=c.dropped | jnp.any(loop.inbox[1] > INBOX))
        if loop._compacts(max_iterations):
            return loop._run_compacted(c, in_times, in_channels, in_values, t_stop)
        return loop._run_loop(c, in_times, in_channels, in_values, t_stop, None, max_iterations)

    def _fill_inboxes(self, in_times, in_channels):
        """Each neuron's input spikes of a list (in time order, unused entries last with time
        +inf): their places in the list, `(INBOX, neurons)`, and how many there are.  One list
        entry per iteration, its targets written at once."""
        n = self.pop.n_neurons
        used = jnp.sum(jnp.isfinite(jax.lax.stop_gradient(in_times)))

        def body(carry):
            i, places, count = carry
            channel = in_channels[i]
            for block in self.lists:
                r, inside = _in_block(block, channel)
                targets = block.targets[r]
                # a neuron listed twice for one source is one input (its weights summed)
                first = jnp.concatenate([jnp.ones((1,), bool), targets[1:] != targets[:-1]])
                to = jnp.where(inside & first & (targets >= 0) & (targets < n), targets, n)  # n: dropped
                slot = count[jnp.minimum(to, n - 1)]
                places = places.at[slot, to].set(i, mode="drop")
                count = count.at[to].add(1, mode="drop")
            return i + 1, places, count

        start = (jnp.asarray(0), jnp.zeros((INBOX, n), jnp.int32), jnp.zeros((n,), jnp.int32))
        _, places, count = jax.lax.while_loop(lambda c: c[0] < used, body, start)
        return places, count

    def _run_loop(self, c: LoopState, in_times, in_channels, in_values, t_stop, until, max_iterations=None) -> LoopState:
        """The loop of `run`, while `until(c)` (default: some lane not done nor paused)."""
        fn, p, weights, clock, integrator = self.fn, self.p, self.weights, self.clock, self.integrator
        n, n_inputs, n_save, save_times = self.pop.n_neurons, self.n_inputs, self.n_save, self.save_times
        in_size, recurrent = self.in_size, self.pop.recurrent
        n_events, event_buffer = self.n_events, self.event_buffer
        final_window = t_stop >= self.t1
        neurons = self.lane_ids  # the neurons' ids (columns of the weights, ids of their spikes)
        local = jnp.arange(neurons.shape[0])  # their positions in the lanes' arrays
        buffer = self.buffer
        shared = not clock.lanes(n)

        root_tol = integrator.tolerances.root_tol
        # a function of the parameters only: computed once, outside the loop body
        period = fn.refractory_period(p, jnp.zeros(neurons.shape, self.dtype)) if self.refractory else None

        def rearm(armed, g, t, last_fired):
            """A disarmed condition re-arms once it is below zero, at a time clearly after it
            last fired: at that time itself (within the spike-time tolerance) it is zero up to
            roundoff, on either side."""
            fired_before = jnp.isfinite(last_fired)
            after = ~fired_before | (t > jnp.where(fired_before, last_fired, 0.0) * (1.0 + root_tol) + root_tol)
            return armed | ((g < 0) & after)

        def advance(index, is_input):
            if not self.skips:
                return index + is_input
            return jnp.where(is_input, self.next_input(index, in_channels), index)

        def schedule(c: LoopState):
            """Each lane's next input (time, channel, value), save point, end of a refractory
            period, and the time it advances to (its own time when finished or paused)."""
            if self.inbox is not None:  # the lane's own inputs, in its inbox
                places, count = self.inbox
                k = places[jnp.minimum(c.input_index, INBOX - 1), local]
                t_in = jnp.where(c.input_index < jnp.minimum(count, INBOX), in_times[k], jnp.inf)
            else:
                k = jnp.minimum(c.input_index, n_inputs - 1)
                t_in = jnp.where(c.input_index < n_inputs, in_times[k], jnp.inf)
            s = jnp.minimum(c.save_index, save_times.shape[0] - 1)
            t_save = jnp.where(c.save_index < n_save, save_times[s], jnp.inf)
            t_next = jnp.minimum(t_in, t_save)
            t_ref: float | Array = jnp.inf
            if self.refractory:
                ends = jnp.where(c.refractory_until > c.t, c.refractory_until, jnp.inf)
                t_ref = jnp.min(ends) if shared else ends
                t_next = jnp.minimum(t_next, t_ref)
            still = c.done | c.paused
            t_end = jnp.where(still, c.t, jnp.minimum(t_next, t_stop))
            return t_in, in_channels[k], in_values[k], s, t_save, t_ref, still, t_end

        def scheduled_events(c, t, y, reached, t_in, channel, value, s, t_save, t_ref, t_end):
            """The input spike, save point or end of a refractory period that a lane has reached at `t_end`."""
            is_input = reached & (t_in <= t_end) & jnp.isfinite(t_in)
            if in_size:
                rows, port = self._input_rows(channel, neurons)
                # an input that does not reach the neuron (`connected`) is a stop without a jump
                jumps = is_input & self._reaches(c.input_index, in_channels) if self.skips else is_input
                y = y + jnp.where(jumps[None], fn.input_jump(t, y, p, value, rows, port), 0.0)
            is_save = reached & ~is_input & (t_save <= t_end) & jnp.isfinite(t_save)
            saved = c.saved
            if n_save:
                slot = jnp.where(is_save, s, c.saved.shape[0])  # out of range: dropped
                saved = c.saved.at[slot, :, local].set(y.T, mode="drop")
            is_stop = reached & ~is_input & ~is_save
            if self.refractory:
                is_stop = is_stop & ~((t_ref <= t_end) & jnp.isfinite(t_ref))
            return y, is_input, is_save, is_stop, saved

        def free(c: LoopState) -> LoopState:
            """An event-free solver step and the input or save point it reaches; no spikes.

            A loop iteration (spike location, reset, spike list) costs far more
            than a solver step, while a neuron usually takes several steps (and
            sees several inputs) between two of its spikes.  A neuron whose
            step would hold a crossing, or that has an armed condition above zero, waits.
            """
            t_in, channel, value, s, t_save, t_ref, still, t_end = schedule(c)
            refractory = self._refractory(c)
            armed = self._can_fire(c.armed, refractory)
            waiting = still | jnp.any(armed & (c.g >= 0), axis=0)
            t_end = jnp.where(waiting, c.t, t_end)
            t, y, g, aux = integrator.free_step(c.t, c.y, c.g, t_end, p, armed, refractory, c.aux)
            reached = ~waiting & (t >= t_end)
            y, is_input, is_save, is_stop, saved = scheduled_events(
                c, t, y, reached, t_in, channel, value, s, t_save, t_ref, t_end
            )
            g = jnp.where(is_input[None], self._conditions(t, y), g)
            return eqx.tree_at(
                lambda c: (c.t, c.y, c.g, c.aux, c.armed, c.input_index, c.save_index, c.saved, c.paused),
                c,
                (t, y, g, aux, rearm(c.armed, g, t, c.last_fired), advance(c.input_index, is_input), c.save_index + is_save, saved,
                 c.paused | (is_stop & ~final_window)),
            )

        free_step = traced_once(free)  # called free_steps times per iteration, traced once

        def body(c: LoopState) -> LoopState:
            for _ in range(self.free_steps):
                c = free_step(c)
            t_in, channel, value, s, t_save, t_ref, still, t_end = schedule(c)
            refractory = self._refractory(c)
            can_fire = self._can_fire(c.armed, refractory)
            step = clock.advance(integrator, c.t, c.y, c.g, can_fire, t_end, p, still, refractory, c.aux)
            t, y, fired = step.t, step.y, step.fired

            # which condition fired: the armed one at (or, by roundoff, nearest) zero
            if n_events:
                kind = jnp.argmax(jnp.where(can_fire, fn.conditions(t, y, p), -jnp.inf), axis=0)
                spike = fired & (kind == 0)
                event = fired[None] & (kind[None] == jnp.arange(1, n_events + 1)[:, None])
            else:
                spike = fired

            # spikes: reset, and the recurrent targets' jumps (one spike per iteration on a shared clock);
            # internal events: their own bodies
            y_fired = fn.apply_reset(t, y, p, spike)
            if n_events:
                y_fired = jnp.where(spike[None], y_fired, fn.apply_event_resets(t, y, p, event))
            if recurrent:
                which = jnp.argmax(spike)
                rows = {k: w[which] for k, w in weights.items()}
                # per-neuron values are arrays; scalars and waveforms (ndim 0) are not indexed
                p_pre = {k: (v[which] if isinstance(v, (jax.Array, np.ndarray)) and v.ndim else v) for k, v in p.items()}
                jump = fn.spike_jump(t, y, p, y[:, which], p_pre, rows)
                y_fired = y_fired + jnp.where(jnp.any(spike), jump, 0.0) if n_events else y_fired + jump
            any_fired = clock.any(fired)

            y_input, is_input, is_save, is_stop, saved = scheduled_events(
                c, t, y, step.reached, t_in, channel, value, s, t_save, t_ref, t_end
            )
            y_next = jnp.where(any_fired[None], y_fired, y_input)
            # one evaluation of the conditions after the events re-arms every condition below zero
            g_next = self._conditions(t, y_next)
            rearmed = rearm(c.armed, g_next, t, c.last_fired)
            if self.detector:
                # no reset: the condition sits at zero after the crossing (either side, by
                # roundoff); the neuron re-arms only once the condition has fallen below zero
                still_above = jnp.zeros_like(spike)
                armed_spike = jnp.where(spike, False, rearmed[0])
            elif self.refractory:
                # a reset that leaves the condition satisfied fires again when the period ends
                still_above = jnp.zeros_like(spike)
                armed_spike = jnp.where(spike, True, rearmed[0])
            else:
                # the reset left the condition satisfied; a reset onto the threshold itself (g = 0)
                # is not: the neuron re-arms once its condition falls below zero
                still_above = spike & (g_next[0] > 0)
                armed_spike = jnp.where(spike, g_next[0] < 0, rearmed[0])
            armed = rearmed.at[0].set(armed_spike)
            fired_kinds = spike[None]
            if n_events:
                # an internal event is a detector: it re-arms once its condition falls below zero
                armed = armed.at[1:].set(jnp.where(event, False, rearmed[1:]))
                fired_kinds = jnp.concatenate([spike[None], event])
            refractory_until = c.refractory_until
            if period is not None:
                refractory_until = jnp.where(spike, t + period, refractory_until)

            slot = clock.spike_slots(spike, c.n_written, buffer)
            n_spikes = c.n_spikes + spike
            event_times, event_ids, event_kinds, event_states, n_written_events, event_counts = (
                c.event_times, c.event_ids, c.event_kinds, c.event_states, c.n_events, c.event_counts
            )
            if n_events:
                happened = jnp.any(event, axis=0)
                e_slot = clock.spike_slots(happened, c.n_events, event_buffer)
                event_times = event_times.at[e_slot].set(jnp.broadcast_to(t, happened.shape), mode="drop")
                event_ids = event_ids.at[e_slot].set(neurons.astype(jnp.int32), mode="drop")
                event_kinds = event_kinds.at[e_slot].set((kind - 1).astype(jnp.int32), mode="drop")
                if self.record_spike_states:
                    event_states = event_states.at[e_slot].set(y.T, mode="drop")
                n_written_events = n_written_events + jnp.sum(happened)
                event_counts = event_counts + event
            bad = ~jnp.all(jnp.isfinite(y_next), axis=0) & ~still
            n_written = c.n_written + jnp.sum(spike)
            if self.meter is not None:
                self.meter.report(self.index, c.iteration + 1, jnp.min(jnp.where(c.done, self.t1, t)) / self.t1, n_written)
            return LoopState(
                t=t,
                y=y_next,
                g=g_next,
                armed=armed,
                input_index=advance(c.input_index, is_input),
                save_index=c.save_index + is_save,
                saved=saved,
                spike_times=c.spike_times.at[slot].set(jnp.broadcast_to(t, spike.shape), mode="drop"),
                spike_ids=c.spike_ids.at[slot].set(neurons.astype(jnp.int32), mode="drop"),
                spike_states=c.spike_states.at[slot].set(y.T, mode="drop") if self.record_spike_states else c.spike_states,
                n_written=n_written,
                n_spikes=n_spikes,
                done=c.done
                | (is_stop & final_window)
                | clock.any(bad)
                | step.stalled
                | (self.stop_after_first_spike & clock.all(n_spikes > 0)),
                paused=c.paused | (is_stop & ~final_window),
                nonfinite=c.nonfinite | bad,
                nonfinite_time=jnp.where(bad & ~c.nonfinite, t, c.nonfinite_time),
                reset_failed=c.reset_failed | still_above,
                stalled=c.stalled | step.stalled,
                last_fired=jnp.where(fired_kinds, t, c.last_fired),
                refractory_until=refractory_until,
                event_times=event_times,
                event_ids=event_ids,
                event_kinds=event_kinds,
                event_states=event_states,
                n_events=n_written_events,
                event_counts=event_counts,
                aux=step.aux,
                iteration=c.iteration + 1,
                dropped=c.dropped,
            )

        cond = (lambda c: ~jnp.all(c.done | c.paused)) if until is None else until
        return _loop(cond, traced_once(body), c, self.budget, max_iterations)

    def _compacts(self, max_iterations) -> bool:
        """Whether `run` gathers its last active neurons into a block (`_run_compacted`)."""
        return self.compact_block is not None and max_iterations is None and not self.lean

    @property
    def compact_block(self) -> int | None:
        """Lanes of the block that takes over once few neurons are active (None: no block): an
        eighth of the loop's lanes (a power of two, at least 64), and a block of a block in turn."""
        lanes = self.lane_ids.shape[0]
        if not self.clock.lanes(self.pop.n_neurons) or lanes < COMPACT_MIN:
            return None
        if any(not isinstance(v, (jax.Array, np.ndarray, float, int)) for v in self.p.values()):
            return None  # input waveforms: their samples are not gathered
        return int(max(64, 1 << (lanes // COMPACT_SHARE - 1).bit_length()))

    def _run_compacted(self, c: LoopState, in_times, in_channels, in_values, t_stop) -> LoopState:
        """`run` in two parts: all neurons while more than a block's are active, then the active
        ones gathered into a block (their own loop, `_block_loop`) and scattered back.

        A loop iteration computes a solver step for every lane, also for neurons that have
        reached `t_stop` and wait; in a window most neurons get there in an iteration or two
        while a few (those spiking) take many short steps.  The block's iterations cost what
        its lanes do.  Each neuron's arithmetic is the same either way.
        """
        k = self.compact_block
        assert k is not None

        def many_active(c: LoopState):
            return jnp.sum(~(c.done | c.paused)) > k

        c = self._run_loop(c, in_times, in_channels, in_values, t_stop, many_active)
        # every active lane (at most k of them): `lanes` marks an empty slot
        lanes = self.lane_ids.shape[0]
        ids = jnp.nonzero(~(c.done | c.paused), size=k, fill_value=lanes)[0]
        valid = ids < lanes
        block = self._block_loop(jnp.where(valid, ids, 0))
        sub = _take_lanes(c, jnp.where(valid, ids, 0))
        sub = dataclasses.replace(sub, done=sub.done | ~valid)  # empty slots do nothing
        sub = block.run(sub, in_times, in_channels, in_values, t_stop)  # a block of the block in turn
        return _put_lanes(c, sub, ids)

    def _block_loop(self, ids) -> PopulationLoop:
        """This loop for its lanes `ids` only: their parameters gathered, the rest shared."""
        block = copy.copy(self)
        lanes = self.lane_ids.shape[0]
        block.p = {name: (jnp.asarray(v)[..., ids] if jnp.ndim(v) and jnp.shape(v)[-1] == lanes else v)
                   for name, v in self.p.items()}
        block.lane_ids = self.lane_ids[ids]
        if self.inbox is not None:
            block.inbox = (self.inbox[0][:, ids], self.inbox[1][ids])
        return block

    def horizon(self, c: LoopState):
        """The time up to which all of the population's spikes are known: a neuron's
        next spike comes no earlier than its own time."""
        return jnp.min(jnp.where(c.done, jnp.inf, c.t))

    def spikes(self, c: LoopState):
        """The spikes so far, in time order (equal times: in the order written)."""
        if self.clock.spikes_in_time_order:
            return c.spike_times, c.spike_ids
        order = earliest(c.spike_times, self.buffer)
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


def _in_block(block: SparseBlock, channel):
    """The row of `block` that input channel `channel` is (clipped), and whether it is one of
    the block's."""
    size = block.targets.shape[0]
    inside = (channel >= block.offset) & (channel < block.offset + size)
    return jnp.clip(channel - block.offset, 0, size - 1), inside


def _find(targets: Int[Array, "rows k"], r, neurons):
    """The first slot of row `r` of ascending `targets` that holds `neurons` (shapes broadcast;
    a binary search of fixed length), and whether it is there."""
    k = targets.shape[1]
    lo = jnp.zeros(jnp.broadcast_shapes(jnp.shape(r), jnp.shape(neurons)), jnp.int32)
    hi = jnp.full_like(lo, k)
    for _ in range(k.bit_length()):
        mid = (lo + hi) // 2
        below = targets[r, jnp.minimum(mid, k - 1)] < neurons
        active = lo < hi
        lo = jnp.where(active & below, mid + 1, lo)
        hi = jnp.where(active & ~below, mid, hi)
    slot = jnp.minimum(lo, k - 1)
    return slot, targets[r, slot] == neurons


def _loop(cond, body, carry: LoopState, budget: int, max_iterations=None) -> LoopState:
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


# the fields of `LoopState` with a neuron axis (the last); the others are the population's
_PER_LANE = (
    "t", "y", "g", "armed", "input_index", "save_index", "saved", "n_spikes", "done", "paused",
    "nonfinite", "nonfinite_time", "reset_failed", "stalled", "last_fired", "refractory_until", "event_counts",
)


def _take_lanes(c: LoopState, ids) -> LoopState:
    """The loop state of the neurons `ids` (population-wide fields shared)."""
    fields = {name: getattr(c, name)[..., ids] for name in _PER_LANE}
    return dataclasses.replace(c, aux=jax.tree_util.tree_map(lambda x: x[..., ids], c.aux), **fields)


def _put_lanes(c: LoopState, sub: LoopState, ids) -> LoopState:
    """`c` with the lanes `ids` (out of range: dropped) from `sub`, and `sub`'s population-wide fields."""
    fields = {name: getattr(c, name).at[..., ids].set(getattr(sub, name), mode="drop") for name in _PER_LANE}
    aux = jax.tree_util.tree_map(lambda x, y: x.at[..., ids].set(y, mode="drop"), c.aux, sub.aux)
    return dataclasses.replace(sub, aux=aux, **fields)
