"""Step-size controllers of the Runge–Kutta integrator, per lane (neuron or population)."""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


class AbstractStepSizeController(eqx.Module):
    """Chooses each lane's next step size from the error of the step just attempted.

    Its state is a tuple of arrays of the lanes' shape; element 0 is the next
    proposed step size.
    """

    @abc.abstractmethod
    def init(self, like: jax.Array):
        """The initial state, for lanes shaped like `like`."""

    @abc.abstractmethod
    def error_ratio(self, y0, y1, y_error) -> jax.Array:
        """Per neuron, the step's error relative to the tolerance (<= 1: acceptable)."""

    @abc.abstractmethod
    def adapt(self, state, dt, ratio, last, taken, unchanged, full):
        """The state after a step attempt of size `dt` with error `ratio`.

        `taken`: the step was accepted and kept; `unchanged`: the lane did not
        step (idle, or its step is left to another call); `full`: a kept step
        of unchanged dynamics (not cut short by, nor ending at, an event);
        `last`: the step ended on a fixed time short of the proposal (the segment's end, or a
        kink of an input waveform).
        """


class ConstantStepSize(AbstractStepSizeController):
    """Fixed steps of `dt` (every step accepted), as a clock-driven simulator takes."""

    dt: float = eqx.field(static=True)

    def init(self, like):
        return (jnp.full(like.shape, self.dt, like.dtype),)

    def error_ratio(self, y0, y1, y_error):
        return jnp.zeros(y0.shape[1:], y0.dtype)

    def adapt(self, state, dt, ratio, last, taken, unchanged, full):
        return state


class AdaptiveStepSize(AbstractStepSizeController):
    """Error-per-step control with the solver's error order, and Gustafsson's prediction.

    Elementary control chooses `0.9 dt ratio^(-1/q)` from the step just taken
    (`q` the order of the solver's error estimate, as Diffrax's
    `PIDController` reads it from the solver).  Given the previous accepted
    step of the same dynamics (`h_last`, `ratio_last > 0`), the smaller of
    that and Gustafsson's predictive choice (Hairer & Wanner II, IV.8)

        0.9 dt (dt / h_last) (ratio_last / ratio^2)^(1/q)

    which follows the error constant's trend: on the upswing of an
    Izhikevich or EIF spike the solution accelerates and the elementary
    choice, made for the step just taken, is too large for the next.
    Growth is clipped to [0.2, 10] (at most 1 after a rejection).

    The choice is not differentiated, and it is rounded down to a power of
    2^(1/16): reverse mode recomputes the loop in a separately compiled
    program whose last bits can differ, and an unrounded step size would send
    the recomputation along other steps than the forward pass took.
    """

    rtol: float = eqx.field(static=True)
    atol: float = eqx.field(static=True)
    error_order: float = eqx.field(static=True)

    def init(self, like):
        return jnp.full(like.shape, 0.01, like.dtype), jnp.ones(like.shape, like.dtype), jnp.zeros(like.shape, like.dtype)

    def error_ratio(self, y0, y1, y_error):
        scale = self.atol + self.rtol * jnp.maximum(jnp.abs(y0), jnp.abs(y1))
        error = y_error / scale
        # RMS over the few states, written out: XLA's CPU backend sends a reduction over
        # the short leading axis to a library kernel that costs ~70 us per call
        ratio = jnp.sqrt(sum(error[i] ** 2 for i in range(error.shape[0])) / error.shape[0])
        return jax.lax.stop_gradient(jnp.where(jnp.isfinite(ratio), ratio, jnp.inf))

    def adapt(self, state, dt, ratio, last, taken, unchanged, full):
        dt_next, h_last, ratio_last = state
        new_dt = self._next_dt(dt, ratio, h_last, ratio_last)
        # a step cut short by the segment's end or a kink says little about the next: keep the larger proposal
        new_dt = jnp.where(taken & last, jnp.maximum(new_dt, dt_next), new_dt)
        new_dt = jnp.where(unchanged, dt_next, new_dt)
        h_last = jnp.where(full, dt, jnp.where(taken, 0.0, h_last))
        ratio_last = jnp.where(full, ratio, jnp.where(taken, 0.0, ratio_last))
        return new_dt, h_last, ratio_last

    def _next_dt(self, dt, ratio, h_last, ratio_last):
        exponent = 1.0 / self.error_order
        log_ratio = jnp.log2(jnp.maximum(ratio, 1e-10))
        log_dt = jnp.log2(dt)
        log_factor = np.log2(0.9) - exponent * log_ratio
        remembered = ratio_last > 0
        predictive = (
            np.log2(0.9)
            + log_dt
            - jnp.log2(jnp.where(remembered, h_last, 1.0))
            + exponent * (jnp.log2(jnp.maximum(ratio_last, 1e-2)) - 2.0 * log_ratio)
        )
        log_factor = jnp.where(remembered, jnp.minimum(log_factor, predictive), log_factor)
        upper = jnp.where(ratio <= 1.0, np.log2(10.0), 0.0)
        log_factor = jnp.clip(log_factor, np.log2(0.2), upper)
        return jax.lax.stop_gradient(jnp.exp2(jnp.floor(16.0 * (log_dt + log_factor)) / 16.0))
