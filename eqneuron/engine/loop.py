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
  for a channel that is a list of targets, their weights: `inputs.SparseBlock`);
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

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ..codegen.waveforms import SampledWaveform
from ..network import Population
from .clocks import AbstractClock
from .compaction import LoopCompaction
from .inputs import InputLayout, LoopInputs
from .integrator import AbstractIntegrator
from .lanes import traced_once
from .progress import ProgressMeter
from .state import LoopRecords, LoopState, bounded_loop

# input spikes one neuron may receive in one window when its population reads them from inboxes
# (more: the spike-budget result code)
INBOX = 32


class PopulationLoop(LoopInputs, LoopRecords, LoopCompaction):
    """The event loop of one population (set up at trace time).

    Its base classes hold the rest of it: its input side (`inputs.py`), the state it starts
    from and what is read from its state (`state.py`), and its run on a block of its last
    active neurons (`compaction.py`)."""

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
        undifferentiated: bool = False,
        inputs: InputLayout | None = None,
    ):
        self.pop, self.clock, self.integrator = pop, clock, integrator
        LoopInputs.__init__(self, pop, clock, inputs)
        # the neurons of the loop's lanes: all of them, or those of a block (`_block_loop`)
        self.lane_ids = jnp.arange(pop.n_neurons)
        self.lean = lean
        # `lean`: no event-free steps before an iteration's located step.  The neurons take the
        # same accepted steps either way (a free step that would hold a crossing is not kept), so
        # the values are the same; the loop body holds one solver step instead of three, which
        # is what reverse mode compiles three times over (`simulate` runs lean under it).
        # `undifferentiated`: a run that reverse mode never differentiates
        self.free_steps = 0 if lean else clock.free_steps(integrator, differentiable=not undifferentiated)
        self.fn = pop.model.fn
        self.dtype = dtype
        self.meter, self.index = meter, index  # progress reports: the bar, and this population's place in it
        self.p = pop.parameter_values()
        self.n_inputs = n_inputs
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

    def run(self, c: LoopState, in_times, in_channels, in_values, t_stop, max_iterations=None) -> LoopState:
        """Every event up to `t_stop` (at most `max_iterations` iterations, when given)."""
        loop = self
        if self.by_inbox and self.inbox is None:  # a fresh list of inputs: the neurons' inboxes
            loop = copy.copy(self)
            loop.inbox = self._fill_inboxes(in_times, in_channels, INBOX)
            c = dataclasses.replace(c, dropped=c.dropped | jnp.any(loop.inbox[1] > INBOX))
        if loop._compacts(max_iterations):
            return loop._run_compacted(c, in_times, in_channels, in_values, t_stop)
        return loop._run_loop(c, in_times, in_channels, in_values, t_stop, None, max_iterations)

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

        def body(c: LoopState) -> LoopState:
            if self.free_steps:
                # a loop of free steps rather than copies of one: XLA compiles the step once (a first
                # forward call of the eventax nets ~1 s shorter, the run as fast; docs/design.md)
                c = jax.lax.fori_loop(0, self.free_steps, lambda _, c: free(c), c)
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
        return bounded_loop(cond, traced_once(body), c, self.budget, max_iterations)
