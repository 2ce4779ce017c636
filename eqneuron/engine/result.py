"""What a simulation returns, and its outcome codes (in the spirit of Diffrax's `RESULTS`).

The network's result is collected here from its populations' outcomes
(`network_result`): one spike list in time order with global neuron ids, the
counts and first spikes per neuron, a result code per population.
"""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from ..network import Network
from .lanes import earliest


class RESULTS(eqx.Enumeration):
    """A population's outcome; the first that applies, in this order of severity."""

    ok = ""
    invalid_arguments = "an argument of `simulate` failed its check under `jit` (NaN or negative input times, channels out of range, t1 or save_at out of range): call it outside `jit` once to see which"
    non_finite = "a state, or the vector field at a state the solver reached, became NaN or infinite (e.g. an `exp` overflowed), or a state ran away faster than the dtype resolves time (a blow-up): see `nonfinite_neuron`, `nonfinite_time`"
    step_budget = "the event loop ran out of iterations before t1 (raise `max_solver_steps`), or a Runge–Kutta step size collapsed below what the dtype resolves, at a singularity of the vector field or for tolerances finer than the dtype (use float64, or loosen rtol/atol)"
    spike_budget = ("more spikes (or internal events) than the buffers hold: raise `max_spikes` (or `max_spikes_per_neuron`); in a graph "
                    "network run in windows, more input spikes in one window than `max_window_spikes`, or than one neuron's inbox holds "
                    "(32 per window: shorten the delays, or connect more sparsely)")
    reset_failed = "a reset left the threshold condition satisfied; that neuron was not re-armed"


class EventRecord(eqx.Module):
    """A population's internal events, in time order (padded with `inf` / `-1`)."""

    names: tuple[str, ...] = eqx.field(static=True)
    times: Float[Array, " buffer"]
    neurons: Int[Array, " buffer"]  # local neuron ids
    kinds: Int[Array, " buffer"]  # index into `names`
    counts: Int[Array, "events neurons"]

    def of(self, name: str):
        """`(times, neurons)` of the events called `name`, in time order, padded with `inf` / `-1`."""
        k = self.names.index(name)
        mine = self.kinds == k
        order = earliest(jnp.where(mine, self.times, jnp.inf), self.times.shape[-1])
        return jnp.where(mine, self.times, jnp.inf)[order], jnp.where(mine, self.neurons, -1)[order]

    def count(self, name: str) -> Int[Array, " neurons"]:
        """How many times each neuron had the event `name`."""
        return self.counts[self.names.index(name)]


class PopulationOutcome(eqx.Module):
    """One population's summary after its loop."""

    spike_times: Float[Array, " buffer"]  # in the order written
    spike_ids: Int[Array, " buffer"]  # local neuron ids, -1 in empty slots
    n_spikes: Int[Array, ""]
    spike_budget: Bool[Array, ""]
    step_budget: Bool[Array, ""]
    nonfinite: Bool[Array, ""]
    nonfinite_time: Float[Array, ""]
    nonfinite_neuron: Int[Array, ""]  # local id, -1 if none
    reset_failed: Bool[Array, ""]
    states: dict | None  # state name -> (len(save_at), neurons)
    events: EventRecord | None = None  # None: the model has no internal events
    # whether `spike_times` is in time order (inf after the spikes): merged, not sorted, by `simulate`
    time_ordered: bool = eqx.field(static=True, default=False)

    @property
    def result(self) -> RESULTS:
        code = RESULTS.where(self.reset_failed, RESULTS.reset_failed, RESULTS.ok)
        code = RESULTS.where(self.spike_budget, RESULTS.spike_budget, code)
        code = RESULTS.where(self.step_budget, RESULTS.step_budget, code)
        return RESULTS.where(self.nonfinite, RESULTS.non_finite, code)


class SimulationResult(eqx.Module):
    """What `simulate` returns.  Spike arrays are padded with `inf` / `-1`."""

    spike_times: Float[Array, " max_spikes"]  # in time order
    spike_neurons: Int[Array, " max_spikes"]  # global neuron ids
    n_spikes: Int[Array, ""]  # all spikes, also those beyond max_spikes (see `overflow`)
    overflow: Bool[Array, ""]  # a spike or step budget was too small: results after it are incomplete
    counts: list  # per population: spikes per neuron, (N_k,)
    first_spikes: list  # per population: first spike time per neuron, (N_k,), inf where silent
    states: list  # per population: state name -> (len(save_at), N_k), or None
    events: list  # per population: its internal events (`EventRecord`), or None without any
    results: list  # per population: a `RESULTS` code
    nonfinite: Bool[Array, ""]
    nonfinite_time: Float[Array, ""]
    nonfinite_neuron: Int[Array, ""]  # global id, -1 if none
    reset_failed: Bool[Array, ""]
    invalid_arguments: Bool[Array, ""]  # a traced argument failed its check (see `RESULTS.invalid_arguments`)
    n_neurons: int = eqx.field(static=True)
    names: tuple[str, ...] = eqx.field(static=True, default=())  # the populations' names
    offsets: tuple[int, ...] = eqx.field(static=True, default=())  # each population's first global id

    def spikes_of(self, name: str) -> tuple[Float[Array, " spikes"], Int[Array, " spikes"]]:
        """`(times, neurons)` of population `name`'s spikes in time order (local neuron ids),
        padded with `inf` / `-1`."""
        if name not in self.names:
            from ..errors import EqError, did_you_mean

            raise EqError(f"no population {name!r}", hint=did_you_mean(name, self.names) or f"populations: {', '.join(self.names)}")
        k = self.names.index(name)
        start = self.offsets[k]
        stop = self.offsets[k + 1] if k + 1 < len(self.offsets) else self.n_neurons
        mine = (self.spike_neurons >= start) & (self.spike_neurons < stop)
        order = earliest(jnp.where(mine, self.spike_times, jnp.inf), self.spike_times.shape[-1])
        return jnp.where(mine, self.spike_times, jnp.inf)[order], jnp.where(mine, self.spike_neurons - start, -1)[order]

    def first_spike_times(self) -> Float[Array, " neurons"]:
        """First spike time of every neuron of the network, inf where silent."""
        return jnp.concatenate(self.first_spikes, axis=-1)

    def spike_counts(self) -> Int[Array, " neurons"]:
        return jnp.concatenate(self.counts, axis=-1)


def raise_on_failure(result: SimulationResult) -> SimulationResult:
    """Under `jit` too: raise if any population's outcome is not `ok` (`simulate(throw=True)`)."""
    for code in result.results:
        result = code.error_if(result, code != RESULTS.ok)
    return result


def _message(code) -> str:
    """A result code's message."""
    return RESULTS[code]  # type: ignore[misc]  # Equinox's enumerations map an item to its message


def warn_if_concrete(result: SimulationResult, max_spikes: int) -> None:
    """Outside `jit`, numerical trouble is reported as a warning."""
    if isinstance(result.overflow, jax.core.Tracer):
        return

    def some(code):
        return any(bool(np.any(r == code)) for r in result.results)

    if bool(np.any(result.overflow)):
        n_spikes = int(np.max(np.asarray(result.n_spikes)))
        if n_spikes > max_spikes:
            cause = f"{n_spikes} spikes for max_spikes={max_spikes}; raise max_spikes"
            warnings.warn(f"spike budget exceeded: {cause} (results after the budget are incomplete)", RuntimeWarning, stacklevel=3)
        elif some(RESULTS.step_budget):
            warnings.warn(f"stopped before t1: {_message(RESULTS.step_budget)} (results after the stop are incomplete)",
                          RuntimeWarning, stacklevel=3)
        elif some(RESULTS.spike_budget):
            warnings.warn("spike budget exceeded: a neuron exceeded max_spikes_per_neuron (its spikes, or under "
                          "adjoint='eventprop' its internal events), or, in a graph network run in windows, a "
                          "window held more spikes than max_window_spikes or a neuron more inputs than its inbox "
                          "(32 per window); raise max_spikes_per_neuron or max_window_spikes, or, for an inbox, "
                          "shorten the delays or connect more sparsely (results after the budget are incomplete)",
                          RuntimeWarning, stacklevel=3)
    if bool(np.any(result.nonfinite)):
        warnings.warn(
            f"non-finite state in neuron {int(np.max(result.nonfinite_neuron))} at "
            f"t = {float(np.min(result.nonfinite_time)):.6g} ms",
            RuntimeWarning,
            stacklevel=3,
        )
    if bool(np.any(result.invalid_arguments)):
        warnings.warn(_message(RESULTS.invalid_arguments), RuntimeWarning, stacklevel=3)
    if bool(np.any(result.reset_failed)):
        warnings.warn(_message(RESULTS.reset_failed), RuntimeWarning, stacklevel=3)


def first_spikes_of(outcome: PopulationOutcome, n_neurons: int) -> Float[Array, " neurons"]:
    """Each neuron's first spike time in a population's outcome (`inf`: silent)."""
    local = jnp.where(outcome.spike_ids >= 0, outcome.spike_ids, n_neurons)
    return jnp.full((n_neurons + 1,), jnp.inf, outcome.spike_times.dtype).at[local].min(outcome.spike_times)[:-1]


def done_time(last: PopulationOutcome, n_neurons: int):
    """When a population stopped at its neurons' first spikes is done: its last first spike, or
    `inf` when one of its neurons stays silent (then it ran to t1).  Not differentiated: where
    the earlier populations' spike lists end (`cut_at`)."""
    first = first_spikes_of(last, n_neurons)
    return jax.lax.stop_gradient(jnp.where(jnp.all(jnp.isfinite(first)), jnp.max(first), jnp.inf))


def cut_at(outcome: PopulationOutcome, t_cut) -> PopulationOutcome:
    """The outcome with its spikes, internal events and non-finite states before `t_cut` only.

    A population of a first-spike run ends where the last population is done, whether it ran in
    rounds (which stop about there) or to t1: both give this outcome.  Overflowed lists keep
    their counts (the `spike_budget` code stands)."""
    keep = outcome.spike_times < t_cut
    buffer = outcome.spike_times.shape[0]
    n_spikes = jnp.where(outcome.n_spikes > buffer, outcome.n_spikes, jnp.sum(keep).astype(outcome.n_spikes.dtype))
    bad = outcome.nonfinite & (outcome.nonfinite_time < t_cut)
    events = outcome.events
    if events is not None:
        kept = events.times < t_cut
        n_kinds, n = events.counts.shape
        slot = jnp.where(kept, events.kinds * n + events.neurons, n_kinds * n)
        counts = jnp.zeros((n_kinds * n + 1,), events.counts.dtype).at[slot].add(1)[:-1].reshape(n_kinds, n)
        overflowed = jnp.sum(events.counts) > events.times.shape[0]
        events = EventRecord(
            names=events.names,
            times=jnp.where(kept, events.times, jnp.inf),
            neurons=jnp.where(kept, events.neurons, -1),
            kinds=jnp.where(kept, events.kinds, -1),
            counts=jnp.where(overflowed, events.counts, counts),
        )
    return PopulationOutcome(
        spike_times=jnp.where(keep, outcome.spike_times, jnp.inf),
        spike_ids=jnp.where(keep, outcome.spike_ids, -1),
        n_spikes=n_spikes,
        spike_budget=outcome.spike_budget,
        step_budget=outcome.step_budget,
        nonfinite=bad,
        nonfinite_time=jnp.where(bad, outcome.nonfinite_time, jnp.inf),
        nonfinite_neuron=jnp.where(bad, outcome.nonfinite_neuron, -1),
        reset_failed=outcome.reset_failed,
        states=outcome.states,
        events=events,
        time_ordered=outcome.time_ordered,
    )


def network_result(net: Network, outcomes, checked, max_spikes, dtype, invalid, throw, meter) -> SimulationResult:
    """The run's result from its populations' outcomes: the progress bar closed, the saved states
    in the order of the user's `save_at` (`checked`: `simulate`'s checked arguments), and with
    `throw` an error where a result code is not `ok`."""
    if meter is not None:  # the bar closes on the run's spike count
        meter.close(sum(o.n_spikes for o in outcomes))
    if checked.restore_order is not None:  # states in the order of the user's save_at
        outcomes = [
            eqx.tree_at(lambda o: o.states, o, {k: v[checked.restore_order] for k, v in o.states.items()}) for o in outcomes
        ]
    invalid = jnp.asarray(False) if invalid is None else invalid
    result = _collect(net, outcomes, max_spikes, dtype, invalid)
    return raise_on_failure(result) if throw else result


def merge_in_time_order(times: list, ids: list, size: int):
    """Lists each in time order as one of `size` slots, in time order (equal times: in the order of
    the lists, then of their slots, as a stable sort of their concatenation; inf / -1 after them).

    Each element's place is its index plus the number of elements of the other lists before it
    (binary searches): O(n log n) like a sort, but a sort of a long spike budget (161,000 slots in
    Brian2's CUBA at 4000 neurons) costs the CPU several milliseconds per run.
    """
    if len(times) == 1 and times[0].shape[0] >= size:
        return times[0][:size], ids[0][:size]
    out_t = jnp.full((max(size, sum(t.shape[0] for t in times)),), jnp.inf, times[0].dtype)
    out_i = jnp.full(out_t.shape, -1, ids[0].dtype)
    for p, (t, i) in enumerate(zip(times, ids)):
        place = jnp.arange(t.shape[0])
        for q, other in enumerate(times):
            if q != p:
                place = place + jnp.searchsorted(other, t, side="right" if q < p else "left")
        out_t = out_t.at[place].set(t)
        out_i = out_i.at[place].set(i)
    return out_t[:size], out_i[:size]


def _collect(net: Network, outcomes, max_spikes: int, dtype, invalid) -> SimulationResult:
    """The network's result from its populations' outcomes: one time-ordered spike list, global ids."""
    offsets = net.offsets
    times = [o.spike_times for o in outcomes]
    ids = [jnp.where(o.spike_ids >= 0, o.spike_ids + off, -1) for o, off in zip(outcomes, offsets)]
    if all(o.time_ordered for o in outcomes):
        spike_times, spike_neurons = merge_in_time_order(times, ids, max_spikes)
    else:
        all_times, all_ids = jnp.concatenate(times), jnp.concatenate(ids)
        if all_times.shape[0] < max_spikes:  # the result has max_spikes slots whatever the lists' sizes
            all_times = jnp.concatenate([all_times, jnp.full((max_spikes - all_times.shape[0],), jnp.inf, dtype)])
            all_ids = jnp.concatenate([all_ids, jnp.full((max_spikes - all_ids.shape[0],), -1, all_ids.dtype)])
        order = earliest(all_times, max_spikes)
        spike_times, spike_neurons = all_times[order], all_ids[order]
    total = sum(o.n_spikes for o in outcomes)
    overflow = (total > max_spikes) | jnp.any(jnp.stack([o.spike_budget | o.step_budget for o in outcomes]))

    counts, firsts = [], []
    for o, pop in zip(outcomes, net.populations):
        local = jnp.where(o.spike_ids >= 0, o.spike_ids, pop.n_neurons)
        counts.append(jnp.zeros((pop.n_neurons + 1,), jnp.int32).at[local].add(1)[:-1])
        firsts.append(first_spikes_of(o, pop.n_neurons))
    bad_neuron, bad_time = jnp.asarray(-1), jnp.asarray(jnp.inf, dtype)
    for o, off in reversed(list(zip(outcomes, offsets))):
        bad_neuron = jnp.where(o.nonfinite, o.nonfinite_neuron + off, bad_neuron)
        bad_time = jnp.where(o.nonfinite, o.nonfinite_time, bad_time)
    return SimulationResult(
        spike_times=spike_times,
        spike_neurons=spike_neurons,
        n_spikes=total,
        overflow=overflow,
        counts=counts,
        first_spikes=firsts,
        states=[o.states for o in outcomes],
        events=[o.events for o in outcomes],
        results=[RESULTS.where(invalid, RESULTS.invalid_arguments, o.result) for o in outcomes],
        nonfinite=jnp.any(jnp.stack([o.nonfinite for o in outcomes])),
        nonfinite_time=bad_time,
        nonfinite_neuron=bad_neuron,
        reset_failed=jnp.any(jnp.stack([o.reset_failed for o in outcomes])),
        invalid_arguments=invalid,
        n_neurons=net.n_neurons,
        names=net.names,
        offsets=tuple(offsets),
    )
