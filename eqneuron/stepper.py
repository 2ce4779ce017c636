"""Per-neuron adaptive Runge–Kutta stepping with event location, for nonlinear models.

One call advances every neuron by at most one accepted step of its own size
(Diffrax's `Tsit5.step`, vmapped over neurons), towards that neuron's next
scheduled event.  A step is rejected and shrunk when its error estimate is too
large; when an armed neuron's condition changes sign inside an accepted step,
the crossing is located on the step's dense interpolant (safeguarded secant
iteration) and the neuron stops there.  The crossing time is differentiable by
the implicit function theorem; the state at the crossing by differentiating
the interpolant.  No `diffeqsolve` per segment: the event loop *is* the
stepping loop, so there is no per-segment start-up cost.
"""

from __future__ import annotations

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp


class StepperState(eqx.Module):
    dt: jax.Array  # (N,) proposed next step
    fsal: object  # Tsit5's first-same-as-last state, batched over neurons
    fresh: jax.Array  # (N,) the state jumped: recompute the first stage


class RKStepper(eqx.Module):
    fn: object = eqx.field(static=True)
    config: object = eqx.field(static=True)
    solver: object = eqx.field(static=True)

    def __init__(self, fn, config, solver=None):
        self.fn = fn
        self.config = config
        self.solver = solver or diffrax.Tsit5()

    def _tolerances(self, dtype):
        double = dtype == jnp.float64
        rtol = self.config.rtol or (1e-8 if double else 1e-5)
        atol = self.config.atol or (1e-8 if double else 1e-5)
        root_tol = self.config.root_tol or (1e-12 if double else 1e-5)
        return rtol, atol, root_tol

    def _term(self):
        fn = self.fn

        def field(t, y, p_n):
            return fn.vector_field(t, y[:, None], p_n)[:, 0]

        return diffrax.ODETerm(field)

    def _axes(self, p):
        return {k: (0 if jnp.ndim(v) else None) for k, v in p.items()}

    def init(self, t0, y0, p):
        term = self._term()
        fsal = jax.vmap(
            lambda t, y, pn: self.solver.init(term, t, t + 1.0, y, pn), in_axes=(0, 1, self._axes(p))
        )(t0, y0, p)
        n = y0.shape[1]
        return StepperState(jnp.full((n,), 0.01, y0.dtype), fsal, jnp.ones((n,), bool))

    def mark_jumped(self, state: StepperState, jumped):
        return eqx.tree_at(lambda s: s.fresh, state, state.fresh | jumped)

    def __call__(self, t0, y0, t_end, p, armed, state: StepperState):
        """One step per neuron towards `t_end`: (t, y, hit, state)."""
        fn = self.fn
        dtype = y0.dtype
        rtol, atol, root_tol = self._tolerances(dtype)
        term = self._term()
        axes = self._axes(p)
        remaining = t_end - t0
        active = remaining > 0
        dt = jax.lax.stop_gradient(jnp.minimum(state.dt, remaining))
        dt = jnp.where(active, dt, 1.0)  # idle lanes take a harmless dummy step
        t1 = t0 + dt

        def step(t0_n, t1_n, y_n, p_n, fsal_n, fresh_n):
            y1, err, dense, fsal1, _ = self.solver.step(term, t0_n, t1_n, y_n, p_n, fsal_n, fresh_n)
            return y1, err, dense, fsal1

        y1, err, dense, fsal1 = jax.vmap(step, in_axes=(0, 0, 1, axes, 0, 0), out_axes=(1, 1, 1, 0))(
            t0, t1, y0, p, state.fsal, state.fresh
        )
        scale = atol + rtol * jnp.maximum(jnp.abs(y0), jnp.abs(y1))
        ratio = jnp.sqrt(jnp.mean((err / scale) ** 2, axis=0))
        ratio = jax.lax.stop_gradient(jnp.where(jnp.isfinite(ratio), ratio, jnp.inf))
        accept = active & (ratio <= 1.0)
        factor = jnp.clip(0.9 * jnp.where(ratio > 0, ratio, 1e-10) ** (-0.2), 0.2, 10.0)
        new_dt = jnp.where(active, dt * factor, state.dt)

        # an armed neuron whose condition becomes positive within the accepted step spikes
        g0 = fn.spike_condition(t0, y0, p)
        g1 = fn.spike_condition(t1, y1, p)
        crossing = accept & armed & (g0 < 0) & (g1 >= 0)

        def interpolate(t, t0_n, t1_n, y0_n, y1_n, k_n):
            interp = self.solver.interpolation_cls(t0=t0_n, t1=t1_n, y0=y0_n, y1=y1_n, k=k_n)
            return interp.evaluate(t)

        def y_at(t):
            return jax.vmap(interpolate, in_axes=(0, 0, 0, 1, 1, 1), out_axes=1)(t, t0, t1, y0, y1, dense["k"])

        def g_at(t):
            return fn.spike_condition(t, y_at(t), p)

        t_star = jax.lax.stop_gradient(self._locate(g_at, t0, t1, g0, g1, crossing, root_tol))
        # implicit function theorem: t* moves with the parameters as -g / (dg/dt)
        g_star, dg_star = jax.jvp(g_at, (t_star,), (jnp.ones_like(t_star),))
        slope = jax.lax.stop_gradient(jnp.where(dg_star > 0, dg_star, 1.0))
        t_hit = jnp.where(crossing, t_star - g_star / slope, t1)
        y_hit = jnp.where(crossing[None], y_at(jnp.where(crossing, t_hit, t1)), y1)

        t_new = jnp.where(accept, t_hit, t0)
        y_new = jnp.where(accept[None], y_hit, y0)
        # a step size collapsing to nothing means the solution blows up: report it as non-finite
        collapsed = active & ~accept & (new_dt < 1e-10 * (1.0 + jnp.abs(t0)))
        y_new = jnp.where(collapsed[None], jnp.nan, y_new)
        # after a crossing the state will jump: the stored first stage is stale
        fsal = jax.tree_util.tree_map(
            lambda new, old: jnp.where(_expand(accept & ~crossing, new), new, old), fsal1, state.fsal
        )
        fresh = jnp.where(accept, crossing, state.fresh)
        return t_new, y_new, crossing, StepperState(new_dt, fsal, fresh)

    @staticmethod
    def _locate(g_at, lo, hi, g_lo, g_hi, active, tol):
        """Illinois (modified regula falsi) on [lo, hi], vectorised over neurons."""
        g_lo = jnp.where(active, g_lo, -1.0)
        g_hi = jnp.where(active, g_hi, 1.0)

        def cond(s):
            i, lo, hi, g_lo, g_hi, _ = s
            return (i < 80) & jnp.any(active & (hi - lo > tol * (1.0 + jnp.abs(hi))))

        def body(s):
            i, lo, hi, g_lo, g_hi, side = s
            denom = g_hi - g_lo
            x = jnp.where(denom > 0, hi - g_hi * (hi - lo) / jnp.where(denom > 0, denom, 1.0), 0.5 * (lo + hi))
            x = jnp.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))
            # every third iteration bisect: guarantees the bracket shrinks
            x = jnp.where(i % 3 == 2, 0.5 * (lo + hi), x)
            g = g_at(x)
            below = g < 0
            new_lo, new_hi = jnp.where(below, x, lo), jnp.where(below, hi, x)
            g_lo_new = jnp.where(below, g, jnp.where(side == -1, 0.5 * g_lo, g_lo))
            g_hi_new = jnp.where(below, jnp.where(side == 1, 0.5 * g_hi, g_hi), g)
            side = jnp.where(below, 1, -1).astype(jnp.int32)
            keep = active & (hi - lo > tol * (1.0 + jnp.abs(hi)))
            return (
                i + 1,
                jnp.where(keep, new_lo, lo),
                jnp.where(keep, new_hi, hi),
                jnp.where(keep, g_lo_new, g_lo),
                jnp.where(keep, g_hi_new, g_hi),
                side,
            )

        side = jnp.zeros(lo.shape, jnp.int32)
        _, lo, hi, _, _, _ = jax.lax.while_loop(cond, body, (0, lo, hi, g_lo, g_hi, side))
        return jnp.where(active, hi, lo)


def _expand(mask, like):
    return jnp.reshape(mask, mask.shape + (1,) * (jnp.ndim(like) - 1))
