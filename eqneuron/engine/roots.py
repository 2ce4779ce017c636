"""The engine's one root finder and its implicit-function derivative.

Both integrators locate a spike the same way: a bracket `[lo, hi]` with
`g(lo) < 0 <= g(hi)` of the spike condition along a closed form or a
Runge–Kutta step's dense output, refined by Newton's method safeguarded by
bisection.  The root is then made differentiable by the implicit function
theorem: `x = x* - g(x*) / g'(x*)` with `x*` and the slope held constant, so
that `dx = -dg / g'` is what reverse and forward mode see.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from .lanes import converge

# `g_and_slope(x) -> (g(x), g'(x))`, elementwise over lanes
ConditionAlong = Callable[[jax.Array], tuple[jax.Array, jax.Array]]


def locate_crossing(
    g_and_slope: ConditionAlong,
    lo: jax.Array,
    hi: jax.Array,
    start: jax.Array,
    active: jax.Array,
    tol: float,
    max_iterations: int = 100,
    origin: jax.Array | float = 0.0,
) -> jax.Array:
    """The first upward zero of g in `[lo, hi]` per lane, given `g(lo) < 0 <= g(hi)`.

    Newton steps from `start`, kept half a tolerance inside the bracket; a
    step that leaves the bracket by more than a tenth of its width (or a
    non-positive slope) is replaced by bisection, so the bracket always
    shrinks.  Stops when the step or the bracket is below `tol` relative to
    `1 + |origin + x|`: positions may be offsets from `origin` (per lane), so
    that a bracket shorter than the resolution of `origin` is still resolved.
    Returns a point of `[lo, hi]` (meaningless where not `active`): the
    last Newton point where it lies in the final bracket.

    A Newton step from the far side of a root close to one end of the bracket
    lands just outside that end (a concave condition's tangent from the right
    meets zero left of the root); kept inside, the next point closes the
    bracket to half a tolerance, where bisection would need a dozen halvings
    (docs/design.md).
    """

    def body(state):
        i, lo, hi, x, todo = state
        g, dg = g_and_slope(x)
        below = g < 0
        lo = jnp.where(todo & below, x, lo)
        hi = jnp.where(todo & ~below, x, hi)
        newton = x - g / jnp.where(dg != 0, dg, 1.0)
        width = hi - lo
        step_tol = tol * (1.0 + jnp.abs(origin + x))
        margin = 0.5 * step_tol
        near = (newton > lo - 0.1 * width) & (newton < hi + 0.1 * width) & (width > 2 * margin)
        usable = near & (dg > 0) & jnp.isfinite(newton)
        x_new = jnp.where(usable, jnp.clip(newton, lo + margin, hi - margin), 0.5 * (lo + hi))
        # g(x) == 0 exactly: x is the crossing (the bracket update has just set hi = x, and the
        # bisection midpoint would replace it)
        x_new = jnp.where(g == 0, x, x_new)
        done = (
            (jnp.abs(x_new - x) <= step_tol)
            | (hi - lo <= tol * (1.0 + jnp.abs(origin + hi)))
            | (g == 0)
        )
        # the answer: Newton's point where it lies in the final bracket (closer to the root than
        # the points kept a margin inside it)
        last = done & (g != 0) & (dg > 0) & (newton >= lo) & (newton <= hi)
        x_new = jnp.where(last, newton, x_new)
        return i + 1, lo, hi, jnp.where(todo, x_new, x), todo & ~done

    _, lo, hi, x, _ = converge(body, (0, lo, hi, start, active), max_iterations=max_iterations)
    return jnp.clip(x, lo, hi)


def implicit_root(g_and_slope: ConditionAlong, x_star: jax.Array) -> jax.Array:
    """`x_star` (a root found numerically, no gradient) with the implicit function theorem's derivative."""
    x_star = jax.lax.stop_gradient(x_star)
    g, dg = g_and_slope(x_star)
    return x_star - g / jax.lax.stop_gradient(jnp.where(dg > 0, dg, 1.0))


def along(g_at: Callable[[jax.Array], jax.Array]) -> ConditionAlong:
    """`(g, g')` of a differentiable function of the position, by forward mode."""

    def g_and_slope(x):
        return jax.jvp(g_at, (x,), (jnp.ones_like(x),))

    return g_and_slope
