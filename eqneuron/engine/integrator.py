"""The integrator interface: how a population's free dynamics advance to the next event.

Two implementations: `ClosedFormIntegrator` (linear models; one call reaches
the segment's end or the first crossing) and `RungeKuttaIntegrator` (one
adaptive or fixed step per call).  The population loop calls them through a
clock (`clocks.py`): each neuron on its own clock, or all on one.
"""

from __future__ import annotations

import abc
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PyTree

from .config import Tolerances


class OwnClockStep(NamedTuple):
    t: Float[Array, " neurons"]
    y: Float[Array, "states neurons"]
    hit: Bool[Array, " neurons"]  # stopped at a crossing of its spike condition
    aux: PyTree  # the integrator's state
    stalled: Bool[Array, " neurons"]  # cannot advance: its steps fall below what the dtype resolves


class SharedClockStep(NamedTuple):
    t: Float[Array, ""]
    y: Float[Array, "states neurons"]
    hit: Bool[Array, ""]  # stopped at the earliest crossing, of neuron `which`
    which: Int[Array, ""]
    reached: Bool[Array, ""]  # reached `t_end`
    aux: PyTree
    stalled: Bool[Array, ""]  # cannot advance: its steps fall below what the dtype resolves


def combine(G: Float[Array, "conditions neurons"], armed: Bool[Array, "conditions neurons"]) -> Float[Array, " neurons"]:
    """One function per neuron whose first upward zero crossing is the first crossing of any of
    its armed conditions (the spike condition, then each internal event's): their maximum.
    With the spike condition alone it is that condition (arming is then checked separately)."""
    if G.shape[0] == 1:
        return G[0]
    return jnp.max(jnp.where(armed, G, -jnp.inf), axis=0)


class AbstractIntegrator(eqx.Module):
    """Advance the free dynamics from `t0` towards `t_end`, stopping at the first upward crossing
    of an armed condition of a neuron.

    `G0` (conditions × neurons) holds the conditions at `t0`, `armed` which of them can fire;
    `refractory` (per neuron, or None) freezes the `(unless refractory)` states, constant over a
    call (the end of a refractory period is a scheduled time, never inside a step).
    """

    tolerances: eqx.AbstractVar[Tolerances]
    # event-free steps per loop iteration on neurons' own clocks (`free_step`)
    free_steps: eqx.AbstractClassVar[int]
    # whether they are taken in a run that reverse mode may differentiate too (`simulate` then
    # differentiates the lean loops in their place, `reverse_mode.fast_forward`), or only in a
    # run that is never differentiated (the event-based adjoint's forward run, `fast_forward`'s
    # own forward runs)
    free_steps_when_differentiable: eqx.AbstractClassVar[bool]
    # whether the cost grows with the time simulated (steps), not only with events
    takes_steps: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def init(self, t: jax.Array, y: jax.Array, p: dict) -> PyTree:
        """The integrator's state per lane of `t` (`()` for one clock, `(neurons,)` for own clocks)."""

    @abc.abstractmethod
    def step_own_clocks(self, t0, y0, G0, t_end, p, armed, refractory, aux) -> OwnClockStep:
        """Every neuron towards its own `t_end` (all arguments per neuron)."""

    @abc.abstractmethod
    def step_shared_clock(self, t0, y0, G0, t_end, p, armed, refractory, aux) -> SharedClockStep:
        """All neurons together (scalar `t0`, `t_end`)."""

    @abc.abstractmethod
    def free_step(self, t0, y0, G0, t_end, p, armed, refractory, aux):
        """One step per neuron that is kept only where no armed condition crosses in it.

        Returns `(t, y, G, aux)`.  Called `free_steps` times per iteration (`AbstractClock.free_steps`).
        """

    @abc.abstractmethod
    def flow(self, t0, y0, t1, p, refractory, aux, to_spike=None):
        """The free dynamics from `(t0, y0)` to `t1` per neuron, with no event in between
        (`t1 == t0`: the state itself).  Returns `(y, aux)`; differentiable with respect to
        every argument (the event-based adjoint, `adjoint.py`, differentiates it).

        `to_spike`: per neuron, `t1` is a spike's time as the forward run located it.  An
        integrator whose flow can drift from the forward run's (Runge–Kutta: steps of its
        own) stops such a lane at the end of the first step after which the spike
        condition holds, rather than integrate on past a threshold it crossed early (into
        a blow-up, for models whose spike is one)."""
