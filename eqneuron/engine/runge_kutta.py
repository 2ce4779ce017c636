"""Per-neuron adaptive Runge–Kutta stepping with event location, for nonlinear models.

One call advances every neuron by at most one accepted step of its own size
towards that neuron's next scheduled event.  The step is an explicit
Runge–Kutta step (Diffrax's Butcher tableau, Tsit5 by default) written
directly on the (states × neurons) arrays: every stage is one call of the
generated vector field on all neurons at once, with per-neuron step sizes.
(Vmapping Diffrax's own `step` over neurons gives the same numbers but costs
~20× more per step on the CPU.)

A step is rejected and shrunk when its error estimate is too large; when an
armed neuron's condition changes sign inside an accepted step, the crossing
is located on the step's dense interpolant (the solver's own interpolation
weights, safeguarded Illinois iteration) and the neuron stops there.  The
crossing time is differentiable by the implicit function theorem; the state
at the crossing by differentiating the interpolant.  No `diffeqsolve` per
segment: the event loop *is* the stepping loop, so there is no per-segment
start-up cost.
"""

from __future__ import annotations

import functools

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .lanes import Block, block_size, computed_once, converge


class RKStepper(eqx.Module):
    fn: object = eqx.field(static=True)
    config: object = eqx.field(static=True)
    solver: object = eqx.field(static=True)

    def __init__(self, fn, config, solver=None):
        solver = solver or diffrax.Tsit5()
        if not isinstance(getattr(solver, "tableau", None), diffrax.ButcherTableau):
            raise ValueError(f"per-neuron stepping needs an explicit Runge–Kutta solver, not {solver!r}")
        self.fn = fn
        self.config = config
        self.solver = solver

    def _tolerances(self, dtype):
        double = dtype == jnp.float64
        rtol = self.config.rtol or (1e-8 if double else 1e-5)
        atol = self.config.atol or (1e-8 if double else 1e-5)
        root_tol = self.config.root_tol or (1e-12 if double else 1e-5)
        return rtol, atol, root_tol

    def init(self, t0, y0, p):
        """The controller state carried per neuron: the next proposed step size, and
        the size and error ratio of the last accepted step (ratio 0: none to go by)."""
        shape = y0.shape[1:]
        return jnp.full(shape, 0.01, y0.dtype), jnp.ones(shape, y0.dtype), jnp.zeros(shape, y0.dtype)

    def _stages(self, t0, dt, y0, p):
        """Stage increments k_i = dt f(t0 + c_i dt, y0 + sum_j a_ij k_j): a list of (S, N) arrays."""
        tableau = self.solver.tableau
        f = self.fn.vector_field
        ks = [dt * f(t0, y0, p)]
        for c, a in zip(tableau.c, tableau.a_lower):
            y = y0 + _combine(a, ks)
            ks.append(dt * f(t0 + float(c) * dt, y, p))
        return ks

    def _attempt(self, t0, dt, y0, p):
        """A trial step: stages, end state, and error ratio per neuron (<= 1: acceptable)."""
        tableau = self.solver.tableau
        rtol, atol, _ = self._tolerances(y0.dtype)
        k = self._stages(t0, dt, y0, p)
        y1 = y0 + _combine(tableau.b_sol, k)
        scale = atol + rtol * jnp.maximum(jnp.abs(y0), jnp.abs(y1))
        error = _combine(tableau.b_error, k) / scale
        # RMS over the few states, written out: XLA's CPU backend sends a reduction over
        # the short leading axis to a library kernel that costs ~70 us per call
        ratio = jnp.sqrt(sum(error[i] ** 2 for i in range(error.shape[0])) / error.shape[0])
        return k, y1, jax.lax.stop_gradient(jnp.where(jnp.isfinite(ratio), ratio, jnp.inf))

    def _coefficients(self, k):
        """The step's dense output as a polynomial in theta: [c_1, ..., c_P] with
        y(theta) = y0 + sum_p theta^p c_p (each c_p a fixed combination of the stages).

        Computed once per step alongside the stages, so that every evaluation of
        the interpolant (bracket samples, root-finder iterations, the state at
        the crossing) is a Horner scheme of P terms instead of a sum over all
        stages of per-stage weight polynomials.
        """
        polys = _dense_polynomials(type(self.solver))  # (stages, P + 1), increasing powers
        return [_combine(polys[:, power], k) for power in range(1, polys.shape[1])]

    @staticmethod
    def _dense(theta, y0, c):
        """The step's dense output at `theta` (a number, or per-neuron), from its coefficients."""
        acc = c[-1]
        for c_p in reversed(c[:-1]):
            acc = c_p + theta * acc
        return y0 + theta * acc

    @staticmethod
    def _interval(t0, t_end, dt_next):
        """(dt, t1, active, last) of a step towards `t_end`; the last step ends exactly on it."""
        remaining = t_end - t0
        active = remaining > 0
        last = dt_next >= remaining
        # An inner step has a fixed size (the controller's choice is not differentiated), so
        # its end moves with t0.  The last step ends on the fixed time t_end: its size
        # t_end - t0 is differentiated, else the state at t_end would miss its dependence
        # on a start time that moved (the time of an earlier spike).  Idle lanes take a
        # harmless dummy step.
        dt = jnp.where(active & last, remaining, jax.lax.stop_gradient(jnp.where(active, dt_next, 1.0)))
        return dt, jnp.where(active & last, t_end, t0 + dt), active, last

    @staticmethod
    def _implicit_time(g_at, t_star):
        """Implicit function theorem: t* moves with the parameters as -g / (dg/dt)."""
        g, dg = jax.jvp(g_at, (t_star,), (jnp.ones_like(t_star),))
        return t_star - g / jax.lax.stop_gradient(jnp.where(dg > 0, dg, 1.0))

    def _bracket(self, t0, dt, t1, y0, c, p, g1):
        """Upper end of the first crossing bracket in a step: (t, g there) per neuron.

        A condition that rises above zero and falls back within one step has
        the same sign at both ends; the dense output is also checked at three
        interior points, and the first one found above zero ends the bracket.
        """
        t_hi = jnp.broadcast_to(t1, g1.shape)
        g_hi = g1
        for theta in (0.75, 0.5, 0.25):  # the earliest positive sample wins: scan backwards
            t = t0 + theta * dt
            g = self.fn.spike_condition(t, self._dense(theta, y0, c), p)
            t_hi = jnp.where(g >= 0, t, t_hi)
            g_hi = jnp.where(g >= 0, g, g_hi)
        return t_hi, g_hi

    def free_step(self, t0, y0, g0, t_end, p, armed, state):
        """One step per neuron towards `t_end`, kept only when no armed neuron crosses in it.

        A step that would hold a crossing is left to the event-locating step
        (`__call__`, which repeats it and locates the crossing); a rejected
        step shrinks the next one.  No root find, no gather: cheap enough to
        take several per iteration of the event loop.  Returns (t, y, g at
        (t, y), controller state).
        """
        dt, t1, active, last = self._interval(t0, t_end, state[0])
        k, y1, ratio = self._attempt(t0, dt, y0, p)
        accept = active & (ratio <= 1.0)
        g1 = self.fn.spike_condition(t1, y1, p)
        _, g_hi = self._bracket(t0, dt, t1, y0, self._coefficients(k), p, g1)
        crossing = accept & armed & (g0 < 0) & (g_hi >= 0)
        crossing = computed_once(crossing)
        keep = accept & ~crossing
        state = _control(state, dt, ratio, last, taken=keep, unchanged=~active | crossing, full=keep & ~last)
        t = jnp.where(keep, t1, t0)
        y = jnp.where(keep[None], y1, y0)
        return t, y, jnp.where(keep, g1, g0), state

    def __call__(self, t0, y0, g0, t_end, p, armed, state):
        """One step per neuron towards `t_end` (`g0`: the condition at `(t0, y0)`),
        stopping at the first crossing of an armed neuron.

        Returns (t, y, hit, controller state).
        """
        fn = self.fn
        n_states = y0.shape[0]
        root_tol = self._tolerances(y0.dtype)[2]
        dt, t1, active, last = self._interval(t0, t_end, state[0])
        k, y1, ratio = self._attempt(t0, dt, y0, p)
        c = self._coefficients(k)
        accept = active & (ratio <= 1.0)

        # an armed neuron whose condition becomes positive within the accepted step spikes;
        # the crossing is located only on those lanes (a block; more of them retry next step)
        g1 = fn.spike_condition(t1, y1, p)
        t_hi, g_hi = self._bracket(t0, dt, t1, y0, c, p, g1)
        block = Block(accept & armed & (g0 < 0) & (g_hi >= 0), block_size(t0.shape[0]))
        crossing = block.selected
        accept = accept & ~block.deferred
        state = _control(state, dt, ratio, last, taken=accept, unchanged=~active | block.deferred, full=accept & ~last & ~crossing)
        # everything the block needs, gathered in one go: a gather per array (and the
        # relayout that follows each) would cost more than the root find itself
        per_neuron = [name for name, v in p.items() if jnp.ndim(v)]
        packed = block.take(
            jnp.concatenate([jnp.stack([t0, dt, g0, t_hi, g_hi, *(p[name] for name in per_neuron)]), y0, *c])
        )
        t0_b, dt_b, g0_b, t_hi_b, g_hi_b = packed[:5]
        p_b = dict(p, **{name: packed[5 + j] for j, name in enumerate(per_neuron)})
        rest = packed[5 + len(per_neuron) :]
        y0_b = rest[:n_states]
        c_b = [rest[n_states * (j + 1) : n_states * (j + 2)] for j in range(len(c))]

        def y_at(t):
            return self._dense((t - t0_b) / dt_b, y0_b, c_b)

        def g_at(t):
            return fn.spike_condition(t, y_at(t), p_b)

        t_star = jax.lax.stop_gradient(self._locate(g_at, t0_b, t_hi_b, g0_b, g_hi_b, block.valid, root_tol))
        t_hit_b = jnp.where(block.valid, self._implicit_time(g_at, t_star), t_hi_b)
        hit_b = jnp.concatenate([t_hit_b[None], y_at(t_hit_b)])
        ty_hit = block.put(jnp.concatenate([t1[None], y1]), hit_b)
        t_hit, y_hit = ty_hit[0], ty_hit[1:]

        t_new = jnp.where(accept, t_hit, t0)
        y_new = jnp.where(accept[None], y_hit, y0)
        # a step size collapsing to nothing means the solution blows up: report it as non-finite
        collapsed = active & ~accept & (state[0] < 1e-10 * (1.0 + jnp.abs(t0)))
        y_new = jnp.where(collapsed[None], jnp.nan, y_new)
        return t_new, y_new, crossing, state

    def shared(self, t0, y0, g0, t_end, p, armed, dt_next):
        """One step of a common size for all neurons (a recurrent population, one clock).

        Returns (t, y, hit, which, reached, next step size): `hit` when an armed
        neuron crosses inside the accepted step (the state is then that at the
        earliest crossing, of neuron `which`), `reached` when the step ends at `t_end`.
        """
        fn = self.fn
        root_tol = self._tolerances(y0.dtype)[2]
        dt, t1, active, last = self._interval(t0, t_end, dt_next)
        k, y1, ratios = self._attempt(t0, dt, y0, p)
        c = self._coefficients(k)
        ratio = jnp.max(ratios)  # one clock: the worst neuron decides
        accept = active & (ratio <= 1.0)
        new_dt = jnp.where(active, _next_dt(dt, ratio), dt_next)

        g1 = fn.spike_condition(t1, y1, p)
        t_hi, g_hi = self._bracket(t0, dt, t1, y0, c, p, g1)
        crossing = accept & armed & (g0 < 0) & (g_hi >= 0)

        def y_at(t):
            return self._dense((t - t0) / dt, y0, c)

        def g_at(t):
            return fn.spike_condition(t, y_at(t), p)

        lanes = jnp.broadcast_to(t0, g0.shape)
        t_star = self._locate(g_at, lanes, t_hi, g0, g_hi, crossing, root_tol)
        which = jnp.argmin(jnp.where(crossing, t_star, jnp.inf))
        hit = jnp.any(crossing)
        # the earliest crossing, differentiable, then every neuron at that time
        t_w = jax.lax.stop_gradient(jnp.where(hit, t_star[which], t1))
        t_hit = jnp.where(hit, self._implicit_time(lambda t: g_at(t)[which], t_w), t1)
        y_hit = jnp.where(hit, y_at(t_hit), y1)

        t_new = jnp.where(accept, t_hit, t0)
        y_new = jnp.where(accept, y_hit, y0)
        collapsed = active & ~accept & (new_dt < 1e-10 * (1.0 + jnp.abs(t0)))
        y_new = jnp.where(collapsed, jnp.nan, y_new)
        reached = ~active | (accept & ~hit & last)
        return t_new, y_new, hit, which, reached, new_dt

    @staticmethod
    def _locate(g_at, lo, hi, g_lo, g_hi, active, tol):
        """First crossing of g in [lo, hi] per neuron: safeguarded Newton on the interpolant.

        Starts from the secant point; a Newton step leaving the bracket is
        replaced by bisection, so the bracket always shrinks.
        """
        g_lo = jnp.where(active, g_lo, -1.0)
        g_hi = jnp.where(active, g_hi, 1.0)
        x = lo - g_lo * (hi - lo) / (g_hi - g_lo)
        x = jnp.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))

        def body(s):
            i, lo, hi, x, todo = s
            g, dg = jax.jvp(g_at, (x,), (jnp.ones_like(x),))
            below = g < 0
            lo = jnp.where(todo & below, x, lo)
            hi = jnp.where(todo & ~below, x, hi)
            newton = x - g / jnp.where(dg != 0, dg, 1.0)
            inside = (newton > lo) & (newton < hi) & jnp.isfinite(newton)
            x_new = jnp.where(inside, newton, 0.5 * (lo + hi))
            done = (jnp.abs(x_new - x) <= tol * (1.0 + jnp.abs(x))) | (hi - lo <= tol * (1.0 + jnp.abs(hi))) | (g == 0)
            return i + 1, lo, hi, jnp.where(todo, x_new, x), todo & ~done

        _, lo, hi, x, _ = converge(body, (0, lo, hi, x, active), max_iterations=60)
        return jnp.where(active, jnp.clip(x, lo, hi), lo)


@functools.cache
def _dense_polynomials(solver_cls) -> np.ndarray:
    """Coefficients (stages x powers, increasing powers of theta) of the solver's dense-output weights.

    Diffrax's interpolation is linear in the stage increments and polynomial in
    theta; evaluating it (in float64) at Chebyshev points of [0, 1] with unit
    increments and solving the Vandermonde system recovers the polynomials.
    """
    tableau = solver_cls.tableau
    n = len(tableau.b_sol)
    degree = 8
    theta = 0.5 + 0.5 * np.cos(np.pi * (np.arange(degree + 1) + 0.5) / (degree + 1))
    with jax.ensure_compile_time_eval(), jax.enable_x64(True):
        interp = solver_cls.interpolation_cls(
            t0=jnp.float64(0.0), t1=jnp.float64(1.0), y0=jnp.zeros(n), y1=jnp.asarray(tableau.b_sol), k=jnp.eye(n)
        )
        values = np.stack([np.asarray(interp.evaluate(jnp.float64(t)), np.float64) for t in theta])
    coeffs = np.linalg.solve(np.vander(theta, degree + 1, increasing=True), values)
    # refit at the true degree (well conditioned), then drop round-off
    degree = int(np.max(np.nonzero(np.max(np.abs(coeffs), axis=1) > 1e-8 * np.max(np.abs(coeffs)))[0]))
    coeffs = np.linalg.lstsq(np.vander(theta, degree + 1, increasing=True), values, rcond=None)[0].T
    coeffs[np.abs(coeffs) < 1e-13 * np.max(np.abs(coeffs))] = 0.0
    if not np.allclose(coeffs.sum(axis=1), tableau.b_sol, rtol=0, atol=1e-9):
        raise ValueError(f"{solver_cls.__name__}: dense output does not reproduce the step at theta = 1 ({coeffs.sum(axis=1) - tableau.b_sol})")
    if not np.allclose(coeffs[:, 0], 0.0, rtol=0, atol=1e-9):
        raise ValueError(f"{solver_cls.__name__}: dense output does not start at y0 ({coeffs[:, 0]})")
    coeffs[:, 0] = 0.0
    return coeffs


def _control(state, dt, ratio, last, taken, unchanged, full):
    """The controller state after a step attempt, per neuron.

    `taken`: the step was accepted and kept; `unchanged`: the neuron did not
    step (idle, or its step is left to another call), so its state stays;
    `full`: a kept step of unchanged dynamics (not cut short by, nor ending
    at, an event), the only kind the predictive controller learns from: a
    step ending at an input, spike or save point starts its memory afresh.
    A step cut short by an event says little about the next one: a kept last
    step keeps the larger of the two proposals.
    """
    dt_next, h_last, ratio_last = state
    new_dt = _next_dt(dt, ratio, h_last, ratio_last)
    new_dt = jnp.where(taken & last, jnp.maximum(new_dt, dt_next), new_dt)
    new_dt = jnp.where(unchanged, dt_next, new_dt)
    h_last = jnp.where(full, dt, jnp.where(taken, 0.0, h_last))
    ratio_last = jnp.where(full, ratio, jnp.where(taken, 0.0, ratio_last))
    return new_dt, h_last, ratio_last


def _next_dt(dt, ratio, h_last=None, ratio_last=None):
    """Step-size controller: safety 0.9, growth in [0.2, 10] (at most 1 after a
    rejection), rounded down to a power of 2^(1/16).

    Elementary control chooses 0.9 dt ratio^(-1/5) from the step just taken
    (Tsit5's error is O(dt^5)).  Given the previous accepted step of the
    same dynamics (`h_last`, `ratio_last > 0`), the smaller of that and
    Gustafsson's predictive choice (Hairer & Wanner II, IV.8, as in Radau5)

        0.9 dt (dt / h_last) (ratio_last / ratio^2)^(1/5)

    which follows the error constant's trend from one step to the next.  On
    the upswing of an Izhikevich or EIF spike the solution accelerates and
    the elementary choice, made for the step just taken, is too large for the
    next: every other step was rejected there.  The predictive choice
    anticipates the shrinking steps (Izhikevich Yin-Yang net: 96 -> 89 loop
    iterations before free steps).

    The choice is not differentiated (a last step's `dt` carries a derivative),
    and it is rounded down to a power of 2^(1/16).  Reverse mode recomputes
    the loop from checkpoints in a separately compiled program whose last bits
    can differ (XLA contracts a*b + c into fused multiply-adds where its fusion
    allows); near the tolerance's roundoff floor the error estimate is mostly
    such bits, and an unrounded step size would send the recomputation along
    other steps than the forward pass took, so that its gradient belongs to
    another path.  Rounded, both take the same steps unless a size falls
    within that noise of a grid point.
    """
    log_ratio = jnp.log2(jnp.maximum(ratio, 1e-10))
    log_dt = jnp.log2(dt)
    log_factor = np.log2(0.9) - 0.2 * log_ratio
    if h_last is not None:
        remembered = ratio_last > 0
        predictive = (
            np.log2(0.9)
            + log_dt
            - jnp.log2(jnp.where(remembered, h_last, 1.0))
            + 0.2 * (jnp.log2(jnp.maximum(ratio_last, 1e-2)) - 2.0 * log_ratio)
        )
        log_factor = jnp.where(remembered, jnp.minimum(log_factor, predictive), log_factor)
    upper = jnp.where(ratio <= 1.0, np.log2(10.0), 0.0)
    log_factor = jnp.clip(log_factor, np.log2(0.2), upper)
    return jax.lax.stop_gradient(jnp.exp2(jnp.floor(16.0 * (log_dt + log_factor)) / 16.0))


def _combine(weights, k):
    """sum_i weights[i] k[i] with constant weights (zeros skipped)."""
    return sum(float(w) * k[i] for i, w in enumerate(np.asarray(weights)) if w != 0)
