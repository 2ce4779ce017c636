"""The closed-form integrator: linear models advance by their exact solution, no ODE solver.

The expressions come from `eqneuron.analysis.closed_form` (derived by SymPy
at compile time) through `eqneuron.codegen.closed_form`.  Per neuron, the
first crossing in `(0, horizon]` is bracketed with the condition's single
extremum and located by the engine's root finder (`roots.py`).
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ..codegen import ClosedFormFunctions, GeneratedFunctions
from .config import Tolerances
from .integrator import AbstractIntegrator, OwnClockStep, SharedClockStep
from .roots import implicit_root, locate_crossing


class ClosedFormIntegrator(AbstractIntegrator):
    fn: GeneratedFunctions = eqx.field(static=True)
    forms: ClosedFormFunctions = eqx.field(static=True)
    tolerances: Tolerances = eqx.field(static=True)

    # event-free segments (an input each) per iteration, only in a run that is never
    # differentiated: swapping in the lean loops for reverse mode (`fast_forward`) would cost the
    # default adjoint more time and memory than they save (docs/design.md)
    free_steps: ClassVar[int] = 2
    free_steps_when_differentiable: ClassVar[bool] = False
    takes_steps: ClassVar[bool] = False

    # --- the closed forms, with the degenerate regime selected safely

    def _regime(self, p, dtype):
        """Parameter values for each form, and where the degenerate one applies."""
        forms, names = self.forms, self.fn.parameters
        values = [p[k] for k in names]
        if forms.degenerate is None:
            return values, values, None
        assert forms.vanishing is not None  # given with every degenerate form
        (factor,) = forms.vanishing(*values)
        scale = jnp.abs(jnp.asarray(p[forms.perturbed], dtype)) + 1.0
        tol = 1e-7 if dtype == jnp.float64 else 1e-3
        degenerate = jnp.abs(factor) <= tol * scale
        # the general form is evaluated at a harmless value where it does not apply (a `where`
        # with a NaN branch would poison the gradient)
        safe = list(values)
        k = names.index(forms.perturbed)
        safe[k] = jnp.where(degenerate, values[k] * 1.5 + 1.0, values[k])
        return safe, values, degenerate

    def _evaluate(self, which: str, args, y, p):
        safe, raw, degenerate = self._regime(p, y.dtype)
        general = getattr(self.forms.general, which)(*args, *y, *safe)
        if degenerate is None:
            return [jnp.asarray(o) for o in general]
        special = getattr(self.forms.degenerate, which)(*args, *y, *raw)
        return [jnp.where(degenerate, b, a) for a, b in zip(general, special)]

    def propagate(self, h, y, p, refractory=None):
        """The state after `h` (per neuron) of free dynamics from `y` (refractory neurons: with
        their `(unless refractory)` states frozen)."""
        out = self._evaluate("state", (h,), y, p)
        y_h = jnp.stack([jnp.broadcast_to(o, y.shape[1:]).astype(y.dtype) for o in out])
        if refractory is None or self.forms.refractory_state is None:
            return y_h
        frozen = self.forms.refractory_state(h, *y, *[p[k] for k in self.fn.parameters])
        y_r = jnp.stack([jnp.broadcast_to(o, y.shape[1:]).astype(y.dtype) for o in frozen])
        return jnp.where(refractory[None], y_r, y_h)

    def condition(self, h, y, p):
        """`(g, dg/dh)` after `h` of free dynamics from `y`, per neuron."""
        g, dg = self._evaluate("condition", (h,), y, p)
        shape = y.shape[1:]
        return jnp.broadcast_to(g, shape).astype(y.dtype), jnp.broadcast_to(dg, shape).astype(y.dtype)

    def _extremum(self, y, p):
        safe, raw, degenerate = self._regime(p, y.dtype)
        parts = []
        for form, values in ((self.forms.general, safe), (self.forms.degenerate, raw)):
            if form is None:
                continue
            if form.extremum is None:
                parts.append(jnp.full(y.shape[1:], jnp.nan, y.dtype))
            else:
                parts.append(jnp.asarray(form.extremum(*y, *values)[0], y.dtype))
        return parts[0] if degenerate is None else jnp.where(degenerate, parts[1], parts[0])

    # --- crossings

    def _bracket(self, y0, horizon, p, armed):
        """Per neuron, whether g crosses zero upwards in (0, horizon], and the upper end of a
        bracket of the first crossing (0 where none).

        g has at most one extremum: the crossing, if any, lies before the
        extremum when g peaks above zero there, else g ends above zero.
        """
        dtype = y0.dtype
        span = jnp.broadcast_to(horizon, y0.shape[1:]).astype(dtype)
        g_end, _ = self.condition(span, y0, p)
        h_ext = self._extremum(y0, p)
        interior = jnp.isfinite(h_ext) & (h_ext > 0) & (h_ext < span)
        h_ext = jnp.where(interior, h_ext, span)
        g_ext, _ = self.condition(h_ext, y0, p)
        peak_crosses = interior & (g_ext >= 0)
        upper = jnp.where(peak_crosses, h_ext, span)
        has = armed & (peak_crosses | (g_end >= 0))
        return has, jnp.where(has, upper, 0.0)

    def _start(self, hi, y0, p):
        """Where Newton's method starts in the bracket `[0, hi]`: the root of g's quadratic
        expansion at `hi` where g is concave there, else `hi` itself.

        The upper end is often g's peak, whose slope is zero: a Newton step from there is
        useless, and the bisection that replaces it leaves the lanes six or seven iterations
        from a converged root (fourteen for the slowest of 97,000 crossings on the jaxsnn LIF
        net); from the quadratic's root every crossing there converged in five (docs/design.md).
        Where g is convex at `hi` (g rises steeply to its end), Newton's steps from `hi` approach
        the root from the right without overshooting.
        """
        (g, dg), (_, d2g) = jax.jvp(lambda h: self.condition(h, y0, p), (hi,), (jnp.ones_like(hi),))
        # the root left of `hi` of g + dg·d + d2g·d²/2, written without cancellation (g >= 0 there)
        den = dg + jnp.sqrt(jnp.maximum(dg * dg - 2.0 * d2g * g, 0.0))
        q = hi - 2.0 * g / jnp.where(den > 0, den, 1.0)
        return jnp.where((d2g < 0) & (den > 0) & jnp.isfinite(q), jnp.clip(q, 0.0, hi), hi)

    def crossing_times(self, y0, horizon, p, armed):
        """Per neuron, the first h in (0, horizon] where g crosses zero upwards (inf if none)."""
        has, hi = self._bracket(y0, horizon, p, armed)
        x = locate_crossing(
            lambda h: self.condition(h, y0, p), jnp.zeros_like(hi), hi, self._start(hi, y0, p), has,
            self.tolerances.root_tol,
        )
        return jnp.where(has, x, jnp.inf)

    def _implicit_h(self, crossing, y0, p):
        hit = jnp.isfinite(crossing)
        h = implicit_root(lambda h: self.condition(h, y0, p), jnp.where(hit, crossing, 0.0))
        return hit, jnp.where(hit, h, 0.0)

    # --- the interface

    def init(self, t, y, p):
        return None

    def free_step(self, t0, y0, G0, t_end, p, armed, refractory, aux):
        """The free dynamics to `t_end` per neuron, where no armed condition crosses before it (a
        neuron whose condition would cross waits for the iteration's located step): no root
        find.  A neuron that receives many inputs before it fires passes several per iteration."""
        horizon = jnp.where(t_end >= t0, t_end - t0, 0.0)
        crosses, _ = self._bracket(y0, horizon, p, armed[0])
        keep = ~crosses & (t_end > t0)
        y = jnp.where(keep[None], self.propagate(horizon, y0, p, refractory), y0)
        t = jnp.where(keep, t_end, t0)
        G = jnp.where(keep[None], self.fn.spike_condition(t, y, p)[None], G0)
        return t, y, G, aux

    def flow(self, t0, y0, t1, p, refractory, aux, to_spike=None):
        # exact: the crossing is where the forward run located it, nothing drifts
        return self.propagate(t1 - t0, y0, p, refractory), aux

    # a model with internal events has no closed form (`eqneuron.analysis`): one condition here,
    # and a refractory neuron's threshold is disarmed by the loop

    def step_own_clocks(self, t0, y0, G0, t_end, p, armed, refractory, aux) -> OwnClockStep:
        horizon = jnp.where(t_end >= t0, t_end - t0, 0.0)  # not `maximum`: at a tie its gradient would go half to t0
        crossing = jax.lax.stop_gradient(self.crossing_times(y0, horizon, p, armed[0]))
        hit, h_hit = self._implicit_h(crossing, y0, p)
        h = jnp.where(hit, h_hit, horizon)
        # a segment that reaches its end stops on it exactly (t0 + (t_end - t0) may round below)
        t = jnp.where(hit, t0 + h, jnp.where(t_end >= t0, t_end, t0))
        return OwnClockStep(t, self.propagate(h, y0, p, refractory), hit, aux, jnp.zeros_like(hit))

    def step_shared_clock(self, t0, y0, G0, t_end, p, armed, refractory, aux) -> SharedClockStep:
        horizon = jnp.where(t_end >= t0, t_end - t0, 0.0)  # not `maximum`: at a tie its gradient would go half to t0
        crossing = jax.lax.stop_gradient(self.crossing_times(y0, horizon, p, armed[0]))
        hits, h_hit = self._implicit_h(crossing, y0, p)
        which = jnp.argmin(crossing)
        hit = hits[which]
        h = jnp.where(hit, h_hit[which], horizon)
        y = self.propagate(jnp.broadcast_to(h, y0.shape[1:]), y0, p, refractory)
        t = jnp.where(hit, t0 + h, jnp.where(t_end >= t0, t_end, t0))
        return SharedClockStep(t, y, hit, which, ~hit, aux, jnp.asarray(False))
