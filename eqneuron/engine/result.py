"""What a simulation returns, and its outcome codes (in the spirit of Diffrax's `RESULTS`)."""

from __future__ import annotations

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int


class RESULTS(eqx.Enumeration):
    """A population's outcome; the first that applies, in this order of severity."""

    ok = ""
    invalid_arguments = "an argument of `simulate` failed its check under `jit` (NaN or negative input times, channels out of range, t1 or save_at out of range): call it outside `jit` once to see which"
    non_finite = "a state, or the vector field at a state the solver reached, became NaN or infinite (e.g. an `exp` overflowed), or a state ran away faster than the dtype resolves time (a blow-up): see `nonfinite_neuron`, `nonfinite_time`"
    step_budget = "the event loop ran out of iterations before t1 (raise `max_solver_steps`), or a Runge–Kutta step size collapsed below what the dtype resolves, at a singularity of the vector field or for tolerances finer than the dtype (use float64, or loosen rtol/atol)"
    spike_budget = "more spikes (or internal events) than the buffers hold: raise `max_spikes` (or `max_spikes_per_neuron`)"
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
        order = jnp.argsort(jnp.where(mine, self.times, jnp.inf), stable=True)
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
        order = jnp.argsort(jnp.where(mine, self.spike_times, jnp.inf), stable=True)
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
                          "adjoint='eventprop' its internal events); raise max_spikes_per_neuron "
                          "(results after the budget are incomplete)", RuntimeWarning, stacklevel=3)
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
