"""Exact integration of linear constant-coefficient dynamics (no ODE solver).

For dy/dt = A y + b, SymPy derives at compile time the closed form
y(h) = expm(A h) y0 + (integral term), the threshold along it, g(h), and the
time of its extremum (g'(h) = 0).  When g has at most one extremum (sums of
two decaying exponentials, as LIF with an exponential synapse), whether and
when g crosses zero in a segment is decidable: bracket the first crossing
using the extremum, then a safeguarded Newton iteration finds it to machine
precision.  The spike time is made differentiable by the implicit function
theorem: h = h* - g(h*) / g'(h*) with h* held constant.

A removable singularity of the closed form (e.g. `tmem == tsyn`) gets its own
limit expression, chosen at run time with a gradient-safe `where`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import sympy as sp

from ..codegen.functions import lambdify
from ..ir import symbol
from .lanes import converge

_H = sp.Symbol("h", real=True)


@dataclass(frozen=True)
class _Form:
    """Closed-form functions of (h, *states, *params) for one parameter regime."""

    propagate: object  # -> states at y0 advanced by h
    threshold: object  # -> (g(h), g'(h))
    extremum: object  # -> (h_ext,) or None when g' has no root


@dataclass(frozen=True)
class ExactForms:
    general: _Form
    degenerate: _Form | None
    vanishing: object | None  # params -> the factor that vanishes in the degenerate regime
    perturbed: str | None  # the parameter nudged to evaluate the general form safely


def _closed_form(model_ir, linear):
    states = [symbol(n) for n in model_ir.states]
    n = len(states)
    M = sp.zeros(n + 1, n + 1)
    M[:n, :n] = linear.A
    M[:n, n] = linear.b
    E = (M * _H).exp()
    y = E[:n, :n] * sp.Matrix(states) + E[:n, n]
    return [_tidy(e) for e in y]


def _tidy(expr):
    """Write every exponential as a decaying one (no exp(+h/tau) overflow)."""
    expr = sp.expand(sp.powsimp(sp.expand(expr)))
    terms = []
    for term in sp.Add.make_args(expr):
        terms.append(sp.powsimp(sp.factor_terms(sp.together(term)), combine="exp"))
    return sp.Add(*terms)


def _extremum(g_of_h):
    try:
        roots = sp.solve(sp.diff(g_of_h, _H), _H)
    except (NotImplementedError, ValueError):
        return False
    if len(roots) > 1:
        return False
    return roots[0] if roots else None


def _form(model_ir, y_of_h, states, params):
    g = model_ir.threshold.xreplace(dict(zip(states, y_of_h)))
    ext = _extremum(g)
    if ext is False:
        return None
    args = [_H, *states, *params]
    return _Form(
        propagate=lambdify(args, y_of_h),
        threshold=lambdify(args, [g, sp.diff(g, _H)]),
        extremum=None if ext is None else lambdify([*states, *params], [ext]),
    )


@functools.cache
def derive(compiled) -> ExactForms | None:
    """Closed forms for a compiled model, or None when the exact path does not apply."""
    ir, linear = compiled.ir, compiled.linear
    if linear is None or len(ir.states) > 4 or ir.events:
        return None
    states = [symbol(n) for n in ir.states]
    params = [symbol(n) for n in ir.parameters]
    g = ir.threshold
    if sp.Poly(g, *states).total_degree() > 1 if g.free_symbols & set(states) else True:
        return None
    y_of_h = _closed_form(ir, linear)
    vanishing = set()
    for e in y_of_h:
        for factor, _ in sp.factor_list(sp.denom(sp.together(e)))[1]:
            if factor.has(_H) or not factor.free_symbols:
                continue
            if factor.is_Symbol:
                continue  # a time constant: assumed non-zero
            vanishing.add(factor)
    if len(vanishing) > 1:
        return None
    general = _form(ir, y_of_h, states, params)
    if general is None:
        return None
    if not vanishing:
        return ExactForms(general, None, None, None)
    (factor,) = vanishing
    perturbed = sorted(factor.free_symbols & set(params), key=str)[-1]
    solutions = sp.solve(factor, perturbed)
    if len(solutions) != 1:
        return None
    y_deg = [_tidy(sp.limit(e, perturbed, solutions[0])) for e in y_of_h]
    degenerate = _form(ir, y_deg, states, params)
    if degenerate is None:
        return None
    return ExactForms(general, degenerate, lambdify(params, [factor]), perturbed.name)


def exact_supported(model) -> bool:
    return derive(model.compiled) is not None


class ExactSegment(eqx.Module):
    fn: object = eqx.field(static=True)
    compiled: object = eqx.field(static=True)
    config: object = eqx.field(static=True)

    # --- the closed forms, with the degenerate regime selected safely
    def _regime(self, p, dtype):
        forms = derive(self.compiled)
        names = self.fn.parameters
        values = [p[k] for k in names]
        if forms.degenerate is None:
            return forms, values, values, None
        (factor,) = forms.vanishing(*values)
        scale = jnp.abs(jnp.asarray(p[forms.perturbed], dtype)) + 1.0
        tol = 1e-7 if dtype == jnp.float64 else 1e-3
        degenerate = jnp.abs(factor) <= tol * scale
        safe = list(values)
        k = names.index(forms.perturbed)
        safe[k] = jnp.where(degenerate, values[k] * 1.5 + 1.0, values[k])
        return forms, safe, values, degenerate

    def _eval(self, which, h, y, p):
        forms, safe, raw, degenerate = self._regime(p, y.dtype)
        general = getattr(forms.general, which)(h, *y, *safe)
        if degenerate is None:
            return [jnp.asarray(o) for o in general]
        special = getattr(forms.degenerate, which)(h, *y, *raw)
        return [jnp.where(degenerate, b, a) for a, b in zip(general, special)]

    def _extremum(self, y, p):
        forms, safe, raw, degenerate = self._regime(p, y.dtype)
        parts = []
        for form, values in ((forms.general, safe), (forms.degenerate, raw)):
            if form is None:
                continue
            if form.extremum is None:
                parts.append(jnp.full(y.shape[1:], jnp.nan, y.dtype))
            else:
                parts.append(jnp.asarray(form.extremum(*y, *values)[0], y.dtype))
        if degenerate is None:
            return parts[0]
        return jnp.where(degenerate, parts[1], parts[0])

    def propagate(self, h, y, p):
        out = self._eval("propagate", h, y, p)
        return jnp.stack([jnp.broadcast_to(o, y.shape[1:]).astype(y.dtype) for o in out])

    def threshold(self, h, y, p):
        g, dg = self._eval("threshold", h, y, p)
        shape = y.shape[1:]
        return jnp.broadcast_to(g, shape).astype(y.dtype), jnp.broadcast_to(dg, shape).astype(y.dtype)

    def crossing_times(self, y0, horizon, p, armed):
        """Per neuron, the first h in (0, horizon] where g crosses zero upwards (inf if none)."""
        dtype = y0.dtype
        span = jnp.broadcast_to(horizon, y0.shape[1:]).astype(dtype)
        g_end, _ = self.threshold(span, y0, p)
        h_ext = self._extremum(y0, p)
        interior = jnp.isfinite(h_ext) & (h_ext > 0) & (h_ext < span)
        h_ext = jnp.where(interior, h_ext, span)
        g_ext, _ = self.threshold(h_ext, y0, p)
        peak_crosses = interior & (g_ext >= 0)
        upper = jnp.where(peak_crosses, h_ext, span)
        has = armed & (peak_crosses | (g_end >= 0))

        tol = 1e-13 if dtype == jnp.float64 else 1e-6
        lo = jnp.zeros_like(upper)
        hi = jnp.where(has, upper, 0.0)
        # start from the upper end: g rises towards it, so Newton's first step is informative

        def body(state):
            i, lo, hi, x, active = state
            g, dg = self.threshold(x, y0, p)
            below = g < 0
            lo = jnp.where(below, x, lo)
            hi = jnp.where(below, hi, x)
            newton = x - g / jnp.where(dg != 0, dg, 1.0)
            inside = (newton > lo) & (newton < hi) & (dg > 0) & jnp.isfinite(newton)
            # Newton inside the bracket, bisection otherwise (safeguarded)
            x_new = jnp.where(inside, newton, 0.5 * (lo + hi))
            step = jnp.abs(x_new - x)
            done = (step <= tol * (1.0 + jnp.abs(x))) | (hi - lo <= tol * (1.0 + hi)) | (g == 0)
            x_new = jnp.where(active, x_new, x)
            return i + 1, lo, hi, x_new, active & ~done

        _, lo, hi, x, _ = converge(body, (0, lo, hi, hi, has), max_iterations=100)
        return jnp.where(has, jnp.clip(x, lo, hi), jnp.inf)

    def _implicit_h(self, crossing, y0, p):
        """Per neuron, h* made differentiable by the implicit function theorem (0 where no crossing).

        dh = -dg / g'(h*): g is evaluated differentiably at the fixed h*.
        """
        hit = jnp.isfinite(crossing)
        h_fixed = jnp.where(hit, crossing, 0.0)
        g, dg = self.threshold(h_fixed, y0, p)
        slope = jax.lax.stop_gradient(jnp.where(dg > 0, dg, 1.0))
        return hit, jnp.where(hit, h_fixed - g / slope, 0.0)

    def __call__(self, t0, y0, t_end, p, armed):
        """One clock for all neurons: advance to the earliest crossing or to `t_end`."""
        horizon = jnp.maximum(t_end - t0, 0.0)
        crossing = jax.lax.stop_gradient(self.crossing_times(y0, horizon, p, armed))
        hits, h_hit = self._implicit_h(crossing, y0, p)
        which = jnp.argmin(crossing)
        hit = hits[which]
        h = jnp.where(hit, h_hit[which], horizon)
        # the same closed form for every neuron, h a traced scalar
        y_hit = self.propagate(jnp.broadcast_to(h, y0.shape[1:]), y0, p)
        return t0 + h, y_hit, hit

    def per_neuron(self, t0, y0, t_end, p, armed):
        """Every neuron on its own clock: t0, t_end are (N,); returns (t_hit, y_hit, hit) per neuron."""
        horizon = jnp.maximum(t_end - t0, 0.0)
        crossing = jax.lax.stop_gradient(self.crossing_times(y0, horizon, p, armed))
        hit, h_hit = self._implicit_h(crossing, y0, p)
        h = jnp.where(hit, h_hit, horizon)
        return t0 + h, self.propagate(h, y0, p), hit
