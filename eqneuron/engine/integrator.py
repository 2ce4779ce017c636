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
from jaxtyping import Array, Bool, Float, Int, PyTree

from .config import Tolerances


class OwnClockStep(NamedTuple):
    t: Float[Array, " neurons"]
    y: Float[Array, "states neurons"]
    hit: Bool[Array, " neurons"]  # stopped at a crossing of its spike condition
    aux: PyTree  # the integrator's state


class SharedClockStep(NamedTuple):
    t: Float[Array, ""]
    y: Float[Array, "states neurons"]
    hit: Bool[Array, ""]  # stopped at the earliest crossing, of neuron `which`
    which: Int[Array, ""]
    reached: Bool[Array, ""]  # reached `t_end`
    aux: PyTree


class AbstractIntegrator(eqx.Module):
    """Advance the free dynamics from `t0` towards `t_end`, stopping at the first
    upward crossing of an armed neuron's spike condition `g` (`g0`: its value at `t0`)."""

    tolerances: eqx.AbstractVar[Tolerances]
    # event-free steps per loop iteration on neurons' own clocks (`free_step`)
    free_steps: eqx.AbstractClassVar[int]
    # whether the cost grows with the time simulated (steps), not only with events
    takes_steps: eqx.AbstractClassVar[bool]

    @abc.abstractmethod
    def init(self, t: jax.Array, y: jax.Array, p: dict) -> PyTree:
        """The integrator's state per lane of `t` (`()` for one clock, `(neurons,)` for own clocks)."""

    @abc.abstractmethod
    def step_own_clocks(self, t0, y0, g0, t_end, p, armed, aux) -> OwnClockStep:
        """Every neuron towards its own `t_end` (all arguments per neuron)."""

    @abc.abstractmethod
    def step_shared_clock(self, t0, y0, g0, t_end, p, armed, aux) -> SharedClockStep:
        """All neurons together (scalar `t0`, `t_end`)."""

    @abc.abstractmethod
    def free_step(self, t0, y0, g0, t_end, p, armed, aux):
        """One step per neuron that is kept only where no armed neuron crosses in it.

        Returns `(t, y, g, aux)`.  Called `free_steps` times per iteration.
        """
