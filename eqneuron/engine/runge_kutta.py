"""The Runge–Kutta integrator: explicit steps with event location, for nonlinear models.

One call advances every neuron by at most one accepted step, of its own size
(own clocks) or of one common size (a shared clock), towards the next
scheduled event.  A step is an explicit Runge–Kutta step (Diffrax's Butcher
tableaus: Tsit5 by default) written directly on the (states × neurons)
arrays: every stage is one call of the generated vector field on all
neurons at once.  (Vmapping Diffrax's own `step` over neurons gives the same
numbers at ~20× the cost per step on the CPU; see docs/design.md.)

When an armed neuron's condition changes sign inside an accepted step, the
crossing is located on the step's dense output (the solver's own
interpolation, as a polynomial in θ) by the engine's root finder, and the
neuron stops there.  The crossing time is differentiable by the implicit
function theorem, the state there by differentiating the interpolant.
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp

from ..codegen import GeneratedFunctions
from ..codegen.waveforms import next_kink
from .config import Tolerances
from .controller import AbstractStepSizeController
from .integrator import AbstractIntegrator, OwnClockStep, SharedClockStep, combine
from .lanes import Block, block_size, computed_once, traced_once
from .roots import along, implicit_root, locate_crossing
from .runge_kutta_tableau import Tableau, weighted_sum

# kept steps in a row that leave the time unchanged after which a neuron is taken to blow up (the
# approach to an AdEx peak in float32 takes up to 47 at 0 mV, 75 at 20 mV)
_FROZEN_STEPS = 1000

# checkpoints of one `flow` under reverse mode: a segment between two events of a neuron takes a
# handful of steps
_FLOW_CHECKPOINTS = 8


class RungeKuttaIntegrator(AbstractIntegrator):
    fn: GeneratedFunctions = eqx.field(static=True)
    tableau: Tableau = eqx.field(static=True)
    controller: AbstractStepSizeController
    tolerances: Tolerances = eqx.field(static=True)
    max_steps: int = eqx.field(static=True, default=16384)  # the most steps of one `flow`

    free_steps: ClassVar[int] = 2  # event-free steps per iteration on own clocks (docs/design.md)
    free_steps_when_differentiable: ClassVar[bool] = True
    takes_steps: ClassVar[bool] = True

    # --- one step

    def _stages(self, t0, dt, y0, p, refractory):
        """Stage increments k_i = dt f(t0 + c_i dt, y0 + sum_j a_ij k_j), shape (stages, S, N)."""
        @traced_once  # one trace for the stages' calls
        def f(t, y):
            return self.fn.vector_field(t, y, p, refractory)

        ks = [dt * f(t0, y0)]
        for c, a in zip(self.tableau.c, self.tableau.a_lower):
            ks.append(dt * f(t0 + c * dt, y0 + weighted_sum(a, ks)))
        return ks

    def _attempt(self, t0, dt, y0, p, refractory):
        """A trial step: stages, end state, and error ratio per neuron (<= 1: acceptable)."""
        k = self._stages(t0, dt, y0, p, refractory)
        increment, error = weighted_sum(self.tableau.b_sol, k), weighted_sum(self.tableau.b_error, k)
        y1 = y0 + increment
        return k, y1, self.controller.error_ratio(y0, y1, error)

    def _coefficients(self, k):
        """The step's dense output as a polynomial in θ: [c_1, ..., c_P] with
        y(θ) = y0 + Σ_p θ^p c_p, computed once per step so that every
        evaluation of the interpolant is a Horner scheme of P terms."""
        dense = self.tableau.dense
        return [weighted_sum(row, k) for row in dense[:, 1:].T]

    @staticmethod
    def _dense(theta, y0, c):
        acc = c[-1]
        for c_p in reversed(c[:-1]):
            acc = c_p + theta * acc
        return y0 + theta * acc

    @staticmethod
    def _interval(t0, t_end, dt_next, p):
        """(dt, t1, active, last, stop) of a step towards `t_end`.

        The step ends exactly on `t_end` (`last`) or on the next kink of an
        input waveform before it (its next sample time),
        whichever comes first and lies within the proposed step (`stop`): a
        step never straddles a kink, where the error estimate of a smooth
        solution does not hold (as Diffrax's `PIDController(jump_ts=...)`).

        An inner step has a fixed size (the controller's choice is not
        differentiated), so its end moves with t0.  A step that stops ends on
        a fixed time: its size is differentiated, else the state there would
        miss its dependence on a start time that moved.  Idle lanes take a
        harmless dummy step.
        """
        kink = next_kink(p, t0)
        t_stop = t_end if kink is None else jnp.minimum(t_end, kink)
        active = t_end > t0
        stop = dt_next >= t_stop - t0
        last = stop & (t_stop >= t_end)
        dt = jnp.where(active & stop, t_stop - t0, jax.lax.stop_gradient(jnp.where(active, dt_next, 1.0)))
        return dt, jnp.where(active & stop, t_stop, t0 + dt), active, last, stop

    def _conditions(self, t, y, p, armed):
        """All conditions (conditions × neurons) and their combination (`integrator.combine`)."""
        if self.fn.n_conditions == 1:
            g = self.fn.spike_condition(t, y, p)
            return g[None], g
        G = self.fn.conditions(t, y, p)
        return G, combine(G, armed)

    def _bracket(self, t0, dt, y0, c, p, g1, armed):
        """Upper end of the first crossing bracket in a step: (its offset from t0, g there) per neuron.

        A condition that rises above zero and falls back within one step has
        the same sign at both ends; the dense output is also checked at three
        interior points, and the first one found above zero ends the bracket.
        Not differentiated: the bracket only decides where the root finder
        looks, and the crossing's derivative is the implicit function
        theorem's at the root (`implicit_root`); its samples' derivatives
        would otherwise be computed and transposed in every reverse-mode step.
        """
        t0, dt, y0, c, p, g1 = jax.lax.stop_gradient((t0, dt, y0, c, p, g1))
        s_hi, g_hi = jnp.broadcast_to(dt, g1.shape), g1
        for theta in (0.75, 0.5, 0.25):  # the earliest positive sample wins: scan backwards
            _, g = self._conditions(t0 + theta * dt, self._dense(theta, y0, c), p, armed)
            s_hi = jnp.where(g >= 0, theta * dt, s_hi)
            g_hi = jnp.where(g >= 0, g, g_hi)
        return s_hi, g_hi

    @staticmethod
    def _at_offset(t0, s, t1):
        """The time `t0 + s` of a crossing at offset `s` into a step ending at `t1`, no later than `t1`.

        The crossing is located in the offset from the step's start, not in
        the time itself: a step shorter than the resolution of `t` (float32
        near an exponential spike) still locates the crossing's state
        precisely, and the time is `t0 + s` rounded.  The rounding may not
        take it past `t1` (the segment's end); the derivative is that of `t0 + s`.
        """
        t = t0 + s
        return t - jax.lax.stop_gradient(jnp.maximum(t - t1, 0.0))

    @staticmethod
    def _at_end(t0, y0, t_end, k1, t, y):
        """`(t, y)`, or for a lane already at its segment's end (`t_end == t0`: an event at the
        time of the one before) `t_end` and `y0 + f (t_end - t0)`.

        Such a lane takes no step, yet its state moves with the segment's end
        (the second of two inputs at one time: the state after it depends on
        both times).  The value is `y0`; the derivative that of the first-order
        flow, with `f` the dummy step's first stage (`_interval`: size 1).
        """
        at_end = t_end == t0
        moved = _first_order_flow(y0, k1, t_end - t0)
        return jnp.where(at_end, t_end, t), jnp.where(at_end[None] if jnp.ndim(at_end) else at_end, moved, y)

    @staticmethod
    def _stuck(t0, dt, t1, y0, k1, active, accept):
        """Per neuron: (stalled, diverged) after a step attempt that was not accepted.

        The controller answers a rejected step (its error too large, or its
        trial state non-finite) with a smaller one, also below the resolution
        of the time: near the spike of an exponential or quadratic model the
        state needs steps far shorter than one unit in the last place of `t`
        in float32, and takes them with `t` unchanged.  That ends in two ways.
        *Diverged*: the vector field at the current state (the first stage
        `k1 / dt`) is not finite: an `exp` or a power overflowed (also when
        more than `_FROZEN_STEPS` kept steps in a row left `t` unchanged: the
        state runs away faster than the dtype resolves time, a blow-up such as
        dv/dt = v^2 that would otherwise take ~10^4 steps to overflow).  *Stalled*:
        a step that changes neither the time nor any state is still rejected,
        so that no smaller one can advance either (a singularity of the vector
        field closer than the dtype resolves, or tolerances finer than it).
        """
        rejected = active & ~(accept & (dt > 0))
        diverged = rejected & ~jnp.all(jnp.isfinite(k1), axis=0)
        stalled = rejected & ~diverged & (t1 == t0) & jnp.all(y0 + k1 == y0, axis=0)
        return stalled, diverged

    @staticmethod
    def _secant(lo, hi, g_lo, g_hi, active):
        g_lo = jnp.where(active, g_lo, -1.0)
        g_hi = jnp.where(active, g_hi, 1.0)
        x = lo - g_lo * (hi - lo) / (g_hi - g_lo)
        return jnp.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))

    # --- the interface

    def init(self, t, y, p):
        # the controller's state, then the count of consecutive kept steps that left `t` unchanged
        return (*self.controller.init(t), jnp.zeros(t.shape, jnp.int32))

    def _adapt(self, state, t0, t1, dt, ratio, stop, taken, unchanged, full):
        """The controller's next state (`AbstractStepSizeController.adapt`), and the count of
        consecutive kept steps too short to change the time (`_stuck`)."""
        frozen = jnp.where(taken, jnp.where(t1 == t0, state[-1] + 1, 0), state[-1])
        adapted = self.controller.adapt(state[:-1], dt, ratio, stop, taken=taken, unchanged=unchanged, full=full)
        return (*adapted, frozen)

    def free_step(self, t0, y0, G0, t_end, p, armed, refractory, state):
        """One step per neuron towards `t_end`, kept only when no armed condition crosses in it.

        A step that would hold a crossing is left to `step_own_clocks`; no
        root find, no gather: cheap enough to take several per iteration.
        """
        g0 = combine(G0, armed)
        dt, t1, active, _, stop = self._interval(t0, t_end, state[0], p)
        k, y1, ratio = self._attempt(t0, dt, y0, p, refractory)
        accept = active & (ratio <= 1.0)
        G1, g1 = self._conditions(t1, y1, p, armed)
        _, g_hi = self._bracket(t0, dt, y0, self._coefficients(k), p, g1, armed)
        crossing = computed_once(accept & jnp.any(armed, axis=0) & (g0 < 0) & (g_hi >= 0))
        keep = accept & ~crossing
        state = self._adapt(state, t0, t1, dt, ratio, stop, taken=keep, unchanged=~active | crossing, full=keep & ~stop)
        t = jnp.where(keep, t1, t0)
        y = jnp.where(keep[None], y1, y0)
        t, y = self._at_end(t0, y0, t_end, k[0], t, y)
        return t, y, jnp.where(keep[None], G1, G0), state

    def flow(self, t0, y0, t1, p, refractory, state, to_spike=None):
        """Adaptive steps from `t0` to exactly `t1` per neuron, no crossing sought.

        A checkpointed loop, so that reverse mode through it keeps a few of its
        states (`_FLOW_CHECKPOINTS`), not one per step.  As in the event loop,
        the steps' sizes are not differentiated, but the last one, which ends on
        `t1`, is.  A `to_spike` lane whose spike condition holds after a step that
        ends before `t1` stops there: its steps are not the forward run's, and a
        neuron that lingers near its rheobase can leave it earlier than the forward
        run did; integrated on to `t1`, such a neuron's `v` blows up (1.8e19 on the eventax
        Izhikevich net at rtol 1e-3) and its gradient is not finite (docs/engine.md)."""

        def body(c):
            t, y, s, stuck = c
            dt, t_next, active, _, stop = self._interval(t, t1, s[0], p)
            k, y_next, ratio = self._attempt(t, dt, y, p, refractory)
            active = active & ~stuck
            accept = active & (ratio <= 1.0)
            # a lane that blows up or stalls (a run whose spikes overflowed its list, and so
            # misses a reset) stops here rather than spin to the step budget
            stalled, diverged = self._stuck(t, dt, t_next, y, k[0], active, accept)
            s = self._adapt(s, t, t_next, dt, ratio, stop, taken=accept, unchanged=~active, full=accept & ~stop)
            stuck = stuck | stalled | diverged
            if to_spike is not None:
                early = jax.lax.stop_gradient(self.fn.spike_condition(t_next, y_next, p)) >= 0
                stuck = stuck | (to_spike & accept & (t_next < t1) & early)
            return jnp.where(accept, t_next, t), jnp.where(accept[None], y_next, y), s, stuck

        t, y, state, _ = eqxi.while_loop(
            lambda c: jnp.any((c[0] < t1) & ~c[3]), traced_once(body), (t0, y0, state, jnp.zeros(t0.shape, bool)),
            max_steps=self.max_steps, kind="checkpointed", checkpoints=_FLOW_CHECKPOINTS,
        )
        _, y = self._at_end(t0, y0, t1, self.fn.vector_field(t0, y0, p, refractory), t, y)
        return y, state

    def step_own_clocks(self, t0, y0, G0, t_end, p, armed, refractory, state) -> OwnClockStep:
        fn = self.fn
        n_states = y0.shape[0]
        n_conditions = fn.n_conditions
        g0 = combine(G0, armed)
        dt, t1, active, _, stop = self._interval(t0, t_end, state[0], p)
        k, y1, ratio = self._attempt(t0, dt, y0, p, refractory)
        c = self._coefficients(k)
        accept = active & (ratio <= 1.0)
        stalled, diverged = self._stuck(t0, dt, t1, y0, k[0], active, accept)

        # a neuron with an armed condition that becomes positive within the accepted step stops
        # there; the crossing is located only on those lanes (a block; more of them retry next step)
        _, g1 = self._conditions(t1, y1, p, armed)
        s_hi, g_hi = self._bracket(t0, dt, y0, c, p, g1, armed)
        block = Block(accept & jnp.any(armed, axis=0) & (g0 < 0) & (g_hi >= 0), block_size(t0.shape[0]))
        crossing = block.selected
        accept = accept & ~block.deferred
        state = self._adapt(
            state, t0, t1, dt, ratio, stop, taken=accept, unchanged=~active | block.deferred, full=accept & ~stop & ~crossing
        )
        diverged = diverged | (state[-1] > _FROZEN_STEPS)
        # everything the block needs, gathered in one go: a gather per array (and the
        # relayout that follows each) would cost more than the root find itself
        per_neuron = [name for name, v in p.items() if jnp.ndim(v)]
        flags = [armed.astype(y0.dtype)] if n_conditions > 1 else []
        packed = block.take(
            jnp.concatenate([jnp.stack([t0, dt, t1, g0, s_hi, g_hi, *(p[name] for name in per_neuron)]), *flags, y0, *c])
        )
        t0_b, dt_b, t1_b, g0_b, s_hi_b, g_hi_b = packed[:6]
        p_b = dict(p, **{name: packed[6 + j] for j, name in enumerate(per_neuron)})
        rest = packed[6 + len(per_neuron) :]
        armed_b = rest[:n_conditions] > 0.5 if flags else None
        rest = rest[n_conditions:] if flags else rest
        y0_b = rest[:n_states]
        c_b = [rest[n_states * (j + 1) : n_states * (j + 2)] for j in range(len(c))]

        # positions are offsets from the step's start (`_at_offset`)
        def y_at(s):
            return self._dense(s / dt_b, y0_b, c_b)

        def g_at(s):
            return self._conditions(t0_b + s, y_at(s), p_b, armed_b)[1]

        zero = jnp.zeros_like(s_hi_b)
        start = self._secant(zero, s_hi_b, g0_b, g_hi_b, block.valid)
        s_star = locate_crossing(
            along(g_at), zero, s_hi_b, start, block.valid, self.tolerances.root_tol, max_iterations=60, origin=t0_b
        )
        s_hit_b = jnp.where(block.valid, implicit_root(along(g_at), s_star), s_hi_b)
        hit_b = jnp.concatenate([self._at_offset(t0_b, s_hit_b, t1_b)[None], y_at(s_hit_b)])
        ty_hit = block.put(jnp.concatenate([t1[None], y1]), hit_b)
        t_hit, y_hit = ty_hit[0], ty_hit[1:]

        t_new = jnp.where(accept, t_hit, t0)
        y_new = jnp.where(accept[None], y_hit, y0)
        t_new, y_new = self._at_end(t0, y0, t_end, k[0], t_new, y_new)
        y_new = jnp.where(diverged[None], jnp.nan, y_new)
        return OwnClockStep(t_new, y_new, crossing, state, stalled)

    def step_shared_clock(self, t0, y0, G0, t_end, p, armed, refractory, state) -> SharedClockStep:
        g0 = combine(G0, armed)
        dt, t1, active, last, stop = self._interval(t0, t_end, state[0], p)
        k, y1, ratios = self._attempt(t0, dt, y0, p, refractory)
        c = self._coefficients(k)
        ratio = jnp.max(ratios)  # one clock: the worst neuron decides
        accept = active & (ratio <= 1.0)
        stalled, diverged = self._stuck(t0, dt, t1, y0, k[0], active, accept)

        _, g1 = self._conditions(t1, y1, p, armed)
        s_hi, g_hi = self._bracket(t0, dt, y0, c, p, g1, armed)
        crossing = accept & jnp.any(armed, axis=0) & (g0 < 0) & (g_hi >= 0)
        hit = jnp.any(crossing)
        state = self._adapt(state, t0, t1, dt, ratio, stop, taken=accept, unchanged=~active, full=accept & ~stop & ~hit)
        diverged = diverged | (state[-1] > _FROZEN_STEPS)

        # positions are offsets from the step's start (`_at_offset`)
        def y_at(s):
            return self._dense(s / dt, y0, c)

        def g_at(s):
            return self._conditions(t0 + s, y_at(s), p, armed)[1]

        zero = jnp.zeros_like(g0)
        start = self._secant(zero, s_hi, g0, g_hi, crossing)
        s_star = locate_crossing(
            along(g_at), zero, s_hi, start, crossing, self.tolerances.root_tol, max_iterations=60, origin=t0
        )
        which = jnp.argmin(jnp.where(crossing, s_star, jnp.inf))
        # the earliest crossing, differentiable, then every neuron at that time
        s_w = jnp.where(hit, s_star[which], dt)
        s_hit = implicit_root(along(lambda s: g_at(s)[which]), s_w)
        t_hit = jnp.where(hit, self._at_offset(t0, s_hit, t1), t1)
        y_hit = jnp.where(hit, y_at(s_hit), y1)

        t_new = jnp.where(accept, t_hit, t0)
        y_new = jnp.where(accept, y_hit, y0)
        t_new, y_new = self._at_end(t0, y0, t_end, k[0], t_new, y_new)
        y_new = jnp.where(diverged[None], jnp.nan, y_new)
        reached = ~active | (accept & ~hit & last)
        return SharedClockStep(t_new, y_new, accept & hit, which, reached, state, jnp.all(stalled))


@jax.custom_jvp
def _first_order_flow(y0, f, span):
    """`y0`, differentiated as `y0 + f span` at `span = 0` (`_at_end`).

    A custom JVP rather than `y0 + f (span - stop_gradient(span))`: that
    product of zeros is computed in every forward step (XLA keeps `x - x`,
    which is NaN for infinite x), inside the fusion that writes the state,
    where it cost a quarter of an Izhikevich net's forward pass.
    """
    return y0


@_first_order_flow.defjvp
def _first_order_flow_jvp(primals, tangents):
    y0, f, _ = primals
    dy0, _, dspan = tangents
    return y0, dy0 + f * dspan
