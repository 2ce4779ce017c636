"""Clock strategies of the population loop.

* `OwnClocks`: neurons that do not interact within the population (no
  recurrence) are independent given their input spikes, so each advances on
  its own clock: the loop runs (inputs + own spikes of the busiest neuron)
  iterations instead of (inputs + all spikes), each vectorised over neurons,
  and a neuron takes its own solver steps.
* `SharedClock`: coupled neurons (a recurrent population) advance together;
  every spike is an event of the whole population, applied before time moves on.

The loop (`loop.py`) is written once for arrays whose *lanes* are the
clock's: `()` for a shared clock, `(neurons,)` for own clocks.
"""

from __future__ import annotations

import abc
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, PyTree

from .integrator import AbstractIntegrator
from .lanes import prefix_count


class Advance(NamedTuple):
    """The free dynamics up to the next event (or a solver step short of it)."""

    t: Float[Array, "*lanes"]
    y: Float[Array, "states neurons"]
    fired: Bool[Array, " neurons"]  # neurons at a crossing of an armed condition at `t`
    reached: Bool[Array, "*lanes"]  # reached the scheduled time `t_end`
    aux: PyTree
    stalled: Bool[Array, "*lanes"]  # the integrator cannot advance (`OwnClockStep.stalled`)


class AbstractClock(eqx.Module):
    # iterations of the population's loop per round (`simulate` runs networks in rounds)
    round: eqx.AbstractClassVar[int]
    # whether the spike list is written in time order (else sorted when read)
    spikes_in_time_order: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def lanes(self, n_neurons: int) -> tuple[int, ...]:
        """The shape of time, input and save indices, and the loop's flags."""

    @abc.abstractmethod
    def free_steps(self, integrator: AbstractIntegrator, differentiable: bool = True) -> int:
        """Event-free integrator steps per loop iteration, in a run that reverse mode may
        differentiate (`differentiable`) or in one that it never does."""

    @abc.abstractmethod
    def advance(self, integrator, t, y, G, armed, t_end, p, still, refractory, aux) -> Advance:
        """Advance towards `t_end`; a neuron with an armed condition at or above zero fires at once."""

    @abc.abstractmethod
    def any(self, x: Bool[Array, " neurons"]) -> Bool[Array, "*lanes"]:
        """Per lane: whether some of its neurons are True."""

    @abc.abstractmethod
    def all(self, x: Bool[Array, " neurons"]) -> Bool[Array, "*lanes"]:
        """Per lane: whether all of its neurons are True."""

    @abc.abstractmethod
    def spike_slots(self, fired, n_written, size):
        """Slots of the spike list for the neurons that fired (`size`: dropped)."""


class OwnClocks(AbstractClock):
    round: ClassVar[int] = 9  # measured best of 6, 9, 10, 12 on the benchmark nets (docs/design.md)
    spikes_in_time_order: ClassVar[bool] = False

    def lanes(self, n_neurons):
        return (n_neurons,)

    def free_steps(self, integrator, differentiable=True):
        if differentiable and not integrator.free_steps_when_differentiable:
            return 0
        return integrator.free_steps

    def advance(self, integrator, t, y, G, armed, t_end, p, still, refractory, aux) -> Advance:
        immediate = jnp.any(armed & (G >= 0), axis=0) & ~still
        step = integrator.step_own_clocks(t, y, G, t_end, p, armed & ~(still | immediate)[None], refractory, aux)
        stay = immediate | still
        t_new = jnp.where(stay, t, step.t)
        y_new = jnp.where(stay[None], y, step.y)
        fired = (immediate | step.hit) & ~still
        return Advance(t_new, y_new, fired, ~fired & ~still & (t_new >= t_end), step.aux, step.stalled & ~stay)

    def any(self, x):
        return x

    def all(self, x):
        return x

    def spike_slots(self, fired, n_written, size):
        # the spikes of this iteration go to consecutive slots (a buffer per neuron would be
        # copied whole by every iteration of a vmapped loop); the list is sorted when read
        return jnp.where(fired, n_written + prefix_count(fired) - 1, size)


class SharedClock(AbstractClock):
    round: ClassVar[int] = 72  # one iteration per event of the population, not per neuron: 8× the own clocks' round
    spikes_in_time_order: ClassVar[bool] = True

    def lanes(self, n_neurons):
        return ()

    def free_steps(self, integrator, differentiable=True):
        return 0

    def advance(self, integrator, t, y, G, armed, t_end, p, still, refractory, aux) -> Advance:
        n = G.shape[1]

        def fire_now():
            which = jnp.argmax(jnp.max(jnp.where(armed, G, -jnp.inf), axis=0))
            return t, y, jnp.asarray(True), which, jnp.asarray(False), aux, jnp.asarray(False)

        def step():
            s = integrator.step_shared_clock(t, y, G, t_end, p, armed, refractory, aux)
            return s.t, s.y, s.hit, s.which, s.reached, s.aux, s.stalled

        # simultaneous events: a neuron with an armed condition at or above zero fires before time moves on
        t_new, y_new, hit, which, reached, aux, stalled = jax.lax.cond(jnp.any(armed & (G >= 0)), fire_now, step)
        fired = hit & (jnp.arange(n) == which)
        return Advance(t_new, y_new, fired, reached, aux, stalled)

    def any(self, x):
        return jnp.any(x)

    def all(self, x):
        return jnp.all(x)

    def spike_slots(self, fired, n_written, size):
        return jnp.where(fired, n_written, size)  # at most one spike per iteration
