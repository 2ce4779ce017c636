"""Event-driven windows: recurrent networks of linear neurons, stepped exactly where it matters.

A graph network whose every projection has a delay runs in windows of the
shortest delay d (NEST's scheme, `graph.py`): the spikes of a window reach
their targets in a later window.  When every population's free dynamics are
sums of exponentials (`modal.py`) and input spikes add constants to states,
a window is:

- delivery: each spike due in the window is fanned out to its targets
  through index lists (`Projection(targets=...)`, or a dense matrix's rows),
  one source spike and projection per loop iteration (the projections of a
  pair of populations stacked, each spike through those with targets for
  its source): each synaptic event adds its jump,
  carried exactly to the window's end, to its target (superposition: the
  dynamics are linear), with an upper bound of what it can add to the
  threshold condition, and is kept in the target's inbox (`INBOX` events);
- every neuron moves by the window's propagator (one small matrix) plus its
  carried jumps; one whose bound over the window stays below threshold is
  done;
- the others (candidates, a few per window) are stepped again from the
  window's start, event by event in time order (from their inboxes, or from
  the spike records when an inbox overflowed), with the exact first
  crossing of `modal.ModalSystem.first_crossing`, reset, and made
  refractory; their spikes are recorded and sorted by time.

The cost grows with neurons × windows (a fused pass) and with synaptic
events and spikes.  Not differentiated itself: under `jax.grad` the run and
its derivative are the population loops' (`simulate` routes them there).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ..ir import symbol
from ..network import Network
from .graph import per_synapse, plan, projection_delay
from .lanes import prefix_count, some_true, sort_recent, traced_once
from .modal import ModalSystem, Structure, structure
from .result import PopulationOutcome
from .synapse_groups import SynapseGroup, build_groups, stack_group
from .synapse_groups import fan_out as synapse_fan_out

# candidates stepped event by event together (at least; more in large populations)
CANDIDATE_BLOCK = 16
# events one neuron keeps of a window (more: its events are found again from the spike records)
INBOX = 8
DEEP_INBOX = 32  # ... and when found again (more: the spike-budget result code)
# a window's spikes are sorted in the first of these slices of slots that holds them (else in the
# whole segment)
_SHORT_SEGMENTS = (8, 64)


def why_not(net: Network, inputs, save_at, method: str) -> str | None:
    """Why the network does not run in event-driven windows (None: it does)."""
    if not net.graph:
        return "not a graph network"
    if inputs is not None:
        return "it has external input spikes"
    if save_at is not None:
        return "states are saved"
    if method != "auto":
        return f"method={method!r} was asked for"
    p = plan(net)
    for k, pop in enumerate(net.populations):
        ir = pop.model.ir
        if pop.recurrent and not p.delayed_self[k]:
            return f"{net.names[k]!r} is coupled to itself without delay"
        if ir.events or ir.inputs or ir.pre_symbols or not ir.reset.updates:
            return f"{net.names[k]!r}'s model has internal events, input waveforms, `_pre` values or no reset"
        s = structure(pop.model)
        if not isinstance(s, Structure):
            return f"{net.names[k]!r}: {s}"
        states = {symbol(n) for n in ir.states}
        jumps = [ir.on_input, *ir.ports.values()]
        if any(sp.sympify(e).free_symbols & states for j in jumps for e in j.updates.values()):
            return f"{net.names[k]!r}'s input jumps depend on its states"
        linear = pop.model.compiled.analysis.linear
        assert linear is not None  # `structure` has checked
        used = set().union(*(sp.sympify(e).free_symbols for e in [*linear.A, *linear.b, ir.threshold]))
        used |= set().union(set(), *(sp.sympify(e).free_symbols for j in jumps for e in j.updates.values()))
        if any(jnp.ndim(v) for name, v in pop.params.items() if symbol(name) in used):
            return f"{net.names[k]!r} has per-neuron parameters in its dynamics, threshold or jumps"
    for k, proj in enumerate(net.projections):
        if projection_delay(net, k) is None:
            return f"projection {k} has no delay"
        if per_synapse(proj) and proj.targets is not None:
            # a target's events of one source spike and projection share one inbox slot
            if isinstance(proj.targets, jax.core.Tracer):
                return f"projection {k} has per-synapse delays and traced `targets`"
            rows = np.sort(np.asarray(proj.targets), axis=1)
            if np.any((rows[:, 1:] == rows[:, :-1]) & (rows[:, 1:] >= 0)):
                return f"projection {k} has per-synapse delays and lists a target twice for one source"
    return None


class _Pop(NamedTuple):
    y: jax.Array  # (m, N) augmented states at the window's start
    re: jax.Array  # (N,) end of the refractory period
    acc: jax.Array  # (m+1, N+1) the window's input jumps carried to its end; last row: their bound on g
    # (N+1, INBOX, m) the window's events at each neuron (its inbox): along the last axis, entry 0
    # an event's arrival time (in a jump, the augmented constant's place: zero), the others its jump
    box: jax.Array
    box_n: jax.Array  # (N+1,) how many arrived (more than INBOX: the inbox overflowed)
    # (N+1,) the window whose events `acc` and `box_n` hold at each neuron (elsewhere: none, and
    # what they hold is left from an earlier window): nothing is reset between windows
    box_w: jax.Array
    rec_t: jax.Array  # spike times, in time order, inf after `count`
    rec_i: jax.Array
    n_spikes: jax.Array  # spikes so far (a NamedTuple's `count` is a method)
    spike_budget: jax.Array
    step_budget: jax.Array
    reset_failed: jax.Array
    nf_time: jax.Array
    nf_neuron: jax.Array


def run_event_windows(net: Network, t1, buffers: list[int], max_window_spikes: int | None, tol: float, dtype, meter=None):
    """Every population of `net` from 0 to `t1` (see the module's docstring).

    `buffers`: each population's spike list size.  Returns the populations'
    outcomes and a flag for an invalid window length (a delay traced to <= 0).
    """
    p = plan(net)
    n_pop = len(net.populations)
    pops = net.populations
    shapes = [structure(pop.model) for pop in pops]
    assert all(isinstance(s, Structure) for s in shapes)  # `why_not` has checked
    systems = [ModalSystem(pop.model, pop.parameter_values(), s, dtype) for pop, s in zip(pops, shapes)]  # type: ignore[arg-type]
    params = [pop.parameter_values() for pop in pops]
    fns = [pop.model.fn for pop in pops]
    # the spikes one population may emit in a window, and the candidates stepped together
    segment = [_segment(pop.n_neurons) if max_window_spikes is None else int(max_window_spikes) for pop in pops]
    candidate_block = [min(pop.n_neurons, _candidate_block(pop.n_neurons)) for pop in pops]

    projections, groups = build_groups(net, p, dtype)
    d = jnp.min(jnp.stack([pr.shortest() for pr in projections]))
    invalid = ~(d > 0)
    t1 = jnp.asarray(t1, dtype)
    step = jnp.where(invalid, t1, d)
    pad = max(segment)

    def start(k):
        n = pops[k].n_neurons
        sys_ = systems[k]
        m = len(sys_.order) + 1
        y = sys_.augment(fns[k].initial_state(params[k], n, dtype))
        re = jnp.full((n,), -jnp.inf, dtype)
        size = buffers[k] + pad
        return _Pop(
            y=y, re=re,
            acc=jnp.zeros((m + 1, n + 1), dtype),
            box=jnp.zeros((n + 1, INBOX, m), dtype),
            box_n=jnp.zeros((n + 1,), jnp.int32), box_w=jnp.full((n + 1,), -1, jnp.int32),
            rec_t=jnp.full((size,), jnp.inf, dtype), rec_i=jnp.full((size,), -1, jnp.int32), n_spikes=jnp.asarray(0, jnp.int32),
            spike_budget=jnp.asarray(False), step_budget=jnp.asarray(False), reset_failed=jnp.asarray(False),
            nf_time=jnp.asarray(jnp.inf, dtype), nf_neuron=jnp.asarray(-1, jnp.int32),
        )

    jumps = []
    for k in range(n_pop):
        def jump_of(arrival, rows, port, k=k):
            zeros = jnp.zeros((len(systems[k].order), arrival.shape[0]), dtype)
            jump = fns[k].input_jump(arrival, zeros, params[k], 1.0, rows, port)
            return jnp.concatenate([jnp.zeros_like(jump[:1]), jump[jnp.asarray(systems[k].order)]])
        jumps.append(jump_of)

    def fan_out(pr: SynapseGroup, src: _Pop, T0, T1, visit, carry):
        return synapse_fan_out(pr, src.rec_t, src.rec_i, T0, T1, visit, carry, jumps[pr.target], pops[pr.target].n_neurons)

    def deliver(k, states, T0, T1, w):
        """The jumps of the window's events onto population k (window `w`): accumulated at the window's end."""
        sys_ = systems[k]
        state = states[k]
        n = pops[k].n_neurons

        def visit(st: _Pop, arrival, target, jump, valid):
            # carried to T1: freely, or with the frozen states kept where the target is refractory
            # throughout (a target whose refractory period ends inside is a candidate: stepped again)
            re = st.re[jnp.minimum(target, n - 1)]
            carried, lift = sys_.carry(jump, T1 - arrival, re >= T1)
            # the inbox: one source spike and projection per call, so a target's events take
            # distinct slots (a target listed twice in a projection's row gets one slot, its
            # jumps added: they arrive together, the projection's delays being one per source)
            # a target's first event of the window starts its sum and its inbox afresh (a target
            # listed twice sets the same zeros twice, then both jumps are added)
            stamp = st.box_w[target]
            fresh = stamp != w
            box = jnp.where(fresh, 0, st.box_n[target])
            slot = jnp.where(valid & (box < INBOX), box, INBOX)
            acc = st.acc.at[:, target].set(jnp.where(fresh[None, :], 0.0, st.acc[:, target]))
            return st._replace(
                acc=acc.at[:, target].add(jnp.concatenate([carried, jnp.where(valid, lift, 0.0)[None, :]])),
                # the time set with zero jumps, then the jumps added (a target listed twice: summed)
                # (a neuron's inbox is contiguous: one event's values side by side, read together)
                box=st.box.at[target, slot, :].set(jnp.concatenate([arrival[:, None], jnp.zeros_like(jump[1:].T)], axis=1), mode="drop")
                .at[target, slot, 1:].add(jump[1:].T, mode="drop"),
                box_n=st.box_n.at[target].set(jnp.where(valid, box + 1, box)),
                # `w` (stamps never exceed it), computed from the stamps read: the write then
                # follows that read, and XLA updates the array in place (a write of `w` alone was
                # not ordered after it, and XLA copied the array twice per source spike)
                box_w=st.box_w.at[target].set(jnp.maximum(stamp, w)),
            )

        # one source spike and projection per loop iteration: more (a chunk of 4 or 8 spikes, the
        # inbox slots assigned spike by spike) was slower on CUBA at 4,000 and 40,000 neurons
        for pr in groups:
            if pr.target == k:
                state = fan_out(pr, states[pr.source], T0, T1, visit, state)
        return state

    def candidates(k, states, st: _Pop, y0, lanes_ids, T0, T1, w):
        """Candidates (`lanes_ids`, CANDIDATE_BLOCK neuron ids, n: empty) from T0 to T1, event by event."""
        sys_, fn, n = systems[k], fns[k], pops[k].n_neurons
        C, D = candidate_block[k], DEEP_INBOX
        valid_lane = lanes_ids < n
        m = y0.shape[0]
        # each lane's events of the window: times (C, D) (inf: none) and jumps (m, C, D)

        def visit(ev, arrival, target, jump, valid):  # one source spike per call, as for the inboxes
            et, ed, got, slot = ev
            s = slot[target]
            mine = valid & (s >= 0)
            lane = jnp.where(mine, s, C)
            pos = jnp.where(mine, got[jnp.minimum(lane, C - 1)], D)
            return (et.at[lane, pos].set(arrival, mode="drop"),
                    ed.at[:, lane, pos].set(0.0, mode="drop").at[:, lane, pos].add(jump, mode="drop"),
                    got.at[lane].set(pos + 1, mode="drop"), slot)

        def again(_):  # some candidate's inbox overflowed: its events from the spike records
            slot = jnp.full((n + 1,), -1, jnp.int32).at[lanes_ids].set(jnp.where(valid_lane, jnp.arange(C, dtype=jnp.int32), -1))
            ev = (jnp.full((C, D), jnp.inf, dtype), jnp.zeros((m, C, D), dtype), jnp.zeros((C,), jnp.int32), slot)
            for pr in projections:
                if pr.target == k:
                    ev = fan_out(stack_group([pr], dtype), st if pr.source == k else states[pr.source], T0, T1, visit, ev)
            return ev[:3]

        def from_inboxes(_):
            got = inbox_count(st, lanes_ids, w)  # (C,)
            here = jnp.arange(INBOX)[None, :] < got[:, None]  # (C, INBOX)
            events = jnp.transpose(st.box[lanes_ids], (2, 0, 1))  # (m, C, INBOX)
            et = jnp.where(here, events[0], jnp.inf)
            ed = events.at[0].set(0.0)
            return (jnp.concatenate([et, jnp.full((C, D - INBOX), jnp.inf, dtype)], axis=1),
                    jnp.concatenate([ed, jnp.zeros((m, C, D - INBOX), dtype)], axis=2), got)

        overflowed = jnp.any(valid_lane & (inbox_count(st, lanes_ids, w) > INBOX))
        et, ed, got = jax.lax.cond(overflowed, again, from_inboxes, None)
        over = jnp.any(got > D)
        refractory = fn.refractory_raw is not None
        tref = fn.refractory_period(params[k], jnp.zeros((C,), dtype)) if refractory else jnp.zeros((C,), dtype)
        re0 = st.re[jnp.minimum(lanes_ids, n - 1)]

        lanes = jnp.arange(C)

        def pending(t, done):
            return valid_lane & ((t < T1) | jnp.any(~done, axis=1))

        def body(c):
            t, y, re, done, rec_t, rec_i, count, failed, it, lane = c
            times = jnp.where(done, jnp.inf, et)
            # the earliest event (the first of equal ones) by two plain reductions: XLA's CPU argmin
            # is a variadic reduction, several times slower
            t_next = jnp.min(times, axis=1)
            j = jnp.min(jnp.where(times == t_next[:, None], jnp.arange(D)[None, :], D - 1), axis=1)
            te = jnp.minimum(t_next, T1)
            # a refractory period that ends before te: to its end, and the search from there
            t_s = jnp.where(lane, jnp.clip(re, t, te), t)
            y = sys_.propagate_refractory(y, t_s - t)  # [t, t_s] is refractory (or empty)
            free = lane & (re <= t_s) & (t_s < te)
            s = sys_.first_crossing(y, te - t_s, free, tol, t_s)
            spike = free & (s <= te - t_s)
            t_new = jnp.where(lane, jnp.where(spike, t_s + s, te), t)
            y = sys_.propagate(y, t_new - t_s)  # free (or empty)
            # the spike: recorded, reset, refractory
            rank = count + prefix_count(spike) - 1
            pos = jnp.where(spike, rank, rec_t.shape[0])
            rec_t = rec_t.at[pos].set(t_new, mode="drop")
            rec_i = rec_i.at[pos].set(lanes_ids, mode="drop")
            count = count + jnp.sum(spike, dtype=jnp.int32)
            x = sys_.states(y)
            x = fn.apply_reset(t_new, x, params[k], spike)
            y = jnp.where(spike[None, :], sys_.augment(x), y)
            if refractory:
                re = jnp.where(spike, t_new + tref, re)
                # fired, with no event left and refractory past the window's end: to T1 now
                # (spares the loop an iteration for the commonest case)
                rest = spike & ~jnp.isfinite(t_next) & (re >= T1)
                y = jnp.where(rest[None, :], sys_.propagate_refractory(y, T1 - t_new), y)
                t_new = jnp.where(rest, T1, t_new)
            else:
                failed = failed | jnp.any(spike & (sys_.condition(y) >= 0))
            # the event at t_new: its jump
            hit = lane & ~spike & (t_next <= te)
            y = y + jnp.where(hit[None, :], ed[:, lanes, j], 0.0)
            done = done.at[lanes, j].set(done[lanes, j] | hit)
            return t_new, y, re, done, rec_t, rec_i, count, failed, it + 1, pending(t_new, done)

        limit = 4 * D + 64
        t0, done0 = jnp.full((C,), T0, dtype), ~jnp.isfinite(et)
        c0 = (t0, y0, re0, done0, st.rec_t, st.rec_i, st.n_spikes, st.reset_failed, 0, pending(t0, done0))
        t, y, re, _, rec_t, rec_i, count, failed, it, _ = jax.lax.while_loop(
            lambda c: jnp.any(c[-1]) & (c[-2] < limit), traced_once(body), c0
        )
        st = st._replace(
            rec_t=rec_t, rec_i=rec_i, n_spikes=count, reset_failed=failed,
            spike_budget=st.spike_budget | over, step_budget=st.step_budget | (it >= limit),
        )
        return st, y, re

    def inbox_count(st: _Pop, ids, w):
        """How many of window `w`'s events arrived at neurons `ids`."""
        return jnp.where(st.box_w[ids] == w, st.box_n[ids], 0)

    def advance_population(k, states, st: _Pop, T0, T1, w):
        """Every neuron of population k to T1: all by the window's propagator, the candidates exactly."""
        sys_, n = systems[k], pops[k].n_neurons
        C = candidate_block[k]
        h = T1 - T0
        re = st.re
        y0 = st.y
        # the free propagator over the window; frozen states keep their values while refractory throughout
        acc = jnp.where((st.box_w[:n] == w)[None, :], st.acc[:, :n], 0.0)
        y1 = jnp.where(sys_.frozen & (re >= T1)[None, :], y0, sys_.propagate_all(y0, h)) + acc[:-1]
        within = (re > T0) & (re < T1)
        cand = within | ((re <= T0) & (sys_.bound_all(y0, h) + acc[-1] >= 0))
        count0 = st.n_spikes

        def one(c):
            # the refractory ends are updated in `st` itself (a block reads those of its own lanes,
            # not changed before): an old copy kept beside them would be copied every window
            st, y1, cand = c
            lanes_ids = some_true(cand, C)  # n: an empty lane
            st, yc, rc = candidates(k, states, st, y0[:, jnp.minimum(lanes_ids, n - 1)], lanes_ids, T0, T1, w)
            return (st._replace(re=st.re.at[lanes_ids].set(rc, mode="drop")), y1.at[:, lanes_ids].set(yc, mode="drop"),
                    cand.at[lanes_ids].set(False, mode="drop"))

        st, y1, _ = jax.lax.while_loop(lambda c: jnp.any(c[2]), traced_once(one), (st, y1, cand))
        re = st.re
        # the first non-finite state: a sum over all states (a plain reduction, fast) flags a window
        # that may hold one; only then is each neuron checked (a variadic argmax over every
        # neuron cost a tenth of a quiet window at 40,000 neurons)
        def first_bad(_):
            bad = ~jnp.isfinite(sum(y1[i] for i in range(y1.shape[0])))
            return jnp.any(bad), jnp.argmax(bad).astype(jnp.int32)

        unseen = ~jnp.isfinite(st.nf_time)
        nf, bad_neuron = jax.lax.cond(
            unseen & ~jnp.isfinite(jnp.sum(y1)), first_bad, lambda _: (jnp.asarray(False), st.nf_neuron), None
        )
        nf = nf & unseen
        st = st._replace(
            y=y1, re=re,
            nf_time=jnp.where(nf, T1, st.nf_time), nf_neuron=jnp.where(nf, bad_neuron, st.nf_neuron),
        )
        # the window's spikes (found candidate by candidate) in time order
        made = st.n_spikes - count0
        rec_t, rec_i = sort_recent(st.rec_t, st.rec_i, jnp.minimum(count0, buffers[k]), made, segment[k], _SHORT_SEGMENTS)
        return st._replace(rec_t=rec_t, rec_i=rec_i, spike_budget=st.spike_budget | (made > segment[k]))

    def window(c):
        T0, states, w = c
        T1 = jnp.minimum(T0 + step, t1)
        T1 = jnp.where(t1 - T1 <= 1e-9 * t1, t1, T1)
        # each population reads the others' (and its own) current spike records: the spikes due in
        # this window were emitted before T0, and reading the arrays being written spares XLA a copy
        new = list(states)
        for k in range(n_pop):
            new[k] = deliver(k, new, T0, T1, w)
        for k in range(n_pop):
            new[k] = advance_population(k, new, new[k], T0, T1, w)
        if meter is not None:
            for k, st in enumerate(new):
                meter.report(k, w, T1 / t1, st.n_spikes)
        return T1, new, w + 1

    _, states, _ = jax.lax.while_loop(lambda c: c[0] < t1, traced_once(window), (jnp.asarray(0.0, dtype), [start(k) for k in range(n_pop)], 0))
    outcomes = []
    for k, st in enumerate(states):
        bad = jnp.isfinite(st.nf_time)
        outcomes.append(
            PopulationOutcome(
                spike_times=st.rec_t[: buffers[k]],
                spike_ids=st.rec_i[: buffers[k]],
                n_spikes=st.n_spikes,
                spike_budget=st.spike_budget | (st.n_spikes > buffers[k]),
                step_budget=st.step_budget,
                nonfinite=bad,
                nonfinite_time=st.nf_time,
                nonfinite_neuron=st.nf_neuron,
                reset_failed=st.reset_failed,
                states=None,
                events=None,
                time_ordered=True,
            )
        )
    return outcomes, invalid


def _segment(n: int) -> int:
    """Default of the most spikes a population of n neurons emits in one window."""
    return int(min(4096, max(64, 1 << max(0, (n // 64 - 1).bit_length()))))


def _candidate_block(n: int) -> int:
    return int(min(256, max(CANDIDATE_BLOCK, 1 << max(0, (n // 256 - 1).bit_length()))))
