"""The event engine: continuous-time simulation of populations, differentiable through spike times.

One loop per population.  Each iteration advances the free dynamics from the
current time to the next *scheduled* event (input spike, save point or `t1`),
stopping early at the first upward zero crossing of an armed neuron's spike
condition.  Then exactly one event is applied:

* a spike: the firing neuron's reset and (if recurrent) its targets' jumps,
  both computed from the values just before the event;
* an input spike: the `on_input` jump with the row `W[N + channel, :]`;
* a save point: the state is recorded.

A neuron is *armed* while its condition is below zero; it can fire only
when armed, and a jump that lifts an armed neuron above threshold makes it
fire at once (zero-length segment), so simultaneous spikes are all emitted
at the same time.  Populations of a `Network` are simulated one after the
other, the spikes of one being the input spikes of the next.

Gradients: the segment integrators return spike times that are
differentiable by the implicit function theorem (Diffrax's root find on the
dense interpolant, or the closed-form crossing of `exact.py`), and the loop
is a checkpointed bounded while loop, so reverse mode works with memory that
does not grow with the number of solver steps.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import diffrax
import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx

from .lanes import prefix_count
from ..network import Network, Population, Spikes, default_dtype


@dataclass(frozen=True)
class SolverConfig:
    """How segments are integrated.

    `method="auto"` uses the exact propagator where the model's free dynamics
    are linear (see `eqneuron.analyse`), Tsit5 with the given tolerances otherwise.
    """

    method: str = "auto"  # auto | exact | tsit5 | dopri5 | euler
    rtol: float | None = None  # default: 1e-8 in float64, 1e-5 in float32
    atol: float | None = None
    dt: float | None = None  # fixed step for euler
    root_tol: float | None = None  # event-time tolerance; default from dtype
    max_solver_steps: int = 16384


class SimulationResult(eqx.Module):
    """What `simulate` returns.  Spike arrays are padded with `inf` / `-1`."""

    spike_times: jax.Array  # (max_spikes,)
    spike_neurons: jax.Array  # (max_spikes,) global neuron ids
    n_spikes: jax.Array  # total number of spikes (may exceed max_spikes: see overflow)
    overflow: jax.Array  # True when max_spikes (or the event budget) was too small
    counts: list  # spikes per population, each (N_k,)
    first_spikes: list  # first spike time per population, each (N_k,), inf where silent
    states: list  # per population: dict state name -> (len(save_at), N_k), or None
    nonfinite: jax.Array  # True when some state became NaN/inf
    nonfinite_time: jax.Array
    nonfinite_neuron: jax.Array  # global id, -1 if none
    reset_failed: jax.Array  # a reset left the threshold condition satisfied
    n_neurons: int = eqx.field(static=True)

    def first_spike_times(self) -> jax.Array:
        """First spike time of every neuron of the network, inf where silent."""
        return jnp.concatenate(self.first_spikes, axis=-1)

    def spike_counts(self) -> jax.Array:
        return jnp.concatenate(self.counts, axis=-1)


# ---------------------------------------------------------------------------
# segment integrators


class _Segment(eqx.Module):
    """Advance from `t0` to `t_end`, stopping at the first crossing of an armed neuron."""

    def __call__(self, t0, y0, t_end, p, armed):  # -> (t_hit, y_hit, hit)
        raise NotImplementedError


class DiffraxSegment(_Segment):
    fn: object = eqx.field(static=True)
    solver: object = eqx.field(static=True)
    config: SolverConfig = eqx.field(static=True)

    def __call__(self, t0, y0, t_end, p, armed):
        fn, config = self.fn, self.config
        dtype = y0.dtype
        double = dtype == jnp.float64
        root_tol = config.root_tol or (1e-12 if double else 1e-5)
        rtol = config.rtol or (1e-8 if double else 1e-5)
        atol = config.atol or (1e-8 if double else 1e-5)
        nonempty = t_end > t0
        # diffeqsolve needs t1 > t0; an empty segment is solved over a dummy interval and discarded
        t_stop = jnp.where(nonempty, t_end, t0 + 1e-3)

        def vector_field(t, y, args):
            return fn.vector_field(t, y, p)

        def condition(t, y, args, **kwargs):
            # disarmed neurons sit far below zero but keep a unit slope in t, so that a
            # root find run on a lane without an event (vmap turns cond into select)
            # never divides by a zero derivative
            g = fn.spike_condition(t, y, p)
            return jnp.max(jnp.where(armed, g, (t - t0) - 1e6))

        if config.method == "euler":
            controller = diffrax.ConstantStepSize()
            dt0 = config.dt or 0.01
        else:
            controller = diffrax.PIDController(rtol=rtol, atol=atol)
            dt0 = None
        solution = diffrax.diffeqsolve(
            diffrax.ODETerm(vector_field),
            self.solver,
            t0,
            t_stop,
            dt0,
            y0,
            stepsize_controller=controller,
            event=diffrax.Event(
                condition,
                root_finder=optx.Newton(rtol=root_tol, atol=root_tol),
                direction=True,
            ),
            saveat=diffrax.SaveAt(t1=True),
            max_steps=config.max_solver_steps,
            throw=False,
        )
        hit = nonempty & jnp.any(solution.event_mask)
        failed = nonempty & (solution.result != diffrax.RESULTS.successful) & ~hit
        t_hit = jnp.where(nonempty, solution.ts[-1], t0)
        y_hit = jnp.where(nonempty, solution.ys[-1], y0)
        # a failed solve (too many steps, blow-up) poisons the offending neuron so it is reported:
        # the non-finite ones, or else the one with the fastest-changing state
        speed = jnp.max(jnp.abs(fn.vector_field(t_hit, y_hit, p)), axis=0)
        speed = jnp.where(jnp.isfinite(speed), speed, jnp.inf)
        culprit = ~jnp.all(jnp.isfinite(y_hit), axis=0)
        culprit = jnp.where(jnp.any(culprit), culprit, jnp.arange(speed.shape[0]) == jnp.argmax(speed))
        y_hit = jnp.where(failed & culprit[None, :], jnp.nan, y_hit)
        return t_hit, y_hit, hit


def make_per_neuron_advance(model, config: SolverConfig):
    """(advance, init_aux, steps): how neurons on their own clocks move forward.

    `advance(t0, y0, g0, t_end, p, armed, aux) -> (t, y, hit, aux)`, `g0` the
    spike condition at `(t0, y0)` (the loops carry it): the exact
    integrator reaches `t_end` (or the crossing) in one call; the Runge–Kutta
    stepper takes one adaptive step per call.
    """
    segment = make_segment(model, config)
    if hasattr(segment, "per_neuron"):

        def advance(t0, y0, g0, t_end, p, armed, aux):
            t, y, hit = segment.per_neuron(t0, y0, t_end, p, armed)
            return t, y, hit, aux

        return advance, (lambda t0, y0, p: None), 0
    from .runge_kutta import RKStepper

    solver = segment.solver if isinstance(segment, DiffraxSegment) else None
    if config.method == "euler":
        raise ValueError("method='euler' is only available for recurrent populations")
    stepper = RKStepper(model.fn, config, solver)
    return stepper, stepper.init, config.max_solver_steps


def make_shared_advance(model, config: SolverConfig):
    """(advance, init_aux, steps): how a population on one clock moves forward.

    `advance(t0, y0, g0, t_end, p, armed, aux) -> (t, y, hit, which, reached, aux)`:
    the exact integrator (and fixed-step Euler) reach `t_end` or the earliest
    crossing in one call; the Runge–Kutta stepper takes one adaptive step of a
    common size for all neurons, which may end before both.
    """
    fn = model.fn
    segment = make_segment(model, config)
    if not isinstance(segment, DiffraxSegment) or config.method == "euler":

        def advance(t0, y0, g0, t_end, p, armed, aux):
            t, y, hit = segment(t0, y0, t_end, p, armed)
            which = jnp.argmax(jnp.where(armed, fn.spike_condition(t, y, p), -jnp.inf))
            return t, y, hit, which, ~hit, aux

        return advance, None, 0
    from .runge_kutta import RKStepper

    stepper = RKStepper(fn, config, segment.solver)
    return stepper.shared, 0.01, config.max_solver_steps


def make_segment(model, config: SolverConfig) -> _Segment:
    method = config.method
    if method in ("auto", "exact") and model.compiled.linear is not None:
        from .closed_form import ExactSegment, exact_supported

        if exact_supported(model):
            return ExactSegment(model.fn, model.compiled, config)
        if method == "exact":
            raise ValueError(f"{model.name}: the exact integrator needs linear threshold dynamics")
    elif method == "exact":
        raise ValueError(f"{model.name}: the free dynamics are not linear; use method='tsit5'")
    solvers = {
        "auto": diffrax.Tsit5,
        "tsit5": diffrax.Tsit5,
        "dopri5": diffrax.Dopri5,
        "dopri8": diffrax.Dopri8,
        "euler": diffrax.Euler,
        "heun": diffrax.Heun,
    }
    if method not in solvers:
        raise ValueError(f"unknown method {method!r}; choose from auto, exact, {', '.join(solvers)}")
    return DiffraxSegment(model.fn, solvers[method](), config)


# ---------------------------------------------------------------------------
# one population
#
# Each population is simulated by a loop that can stop at an intermediate time
# `t_stop` and resume later: `start()` gives the initial carry, `run(carry,
# inputs, t_stop)` advances it through every event at or before `t_stop`,
# `spikes(carry)` is the time-sorted spike list so far (the next population's
# input) and `finish(carry)` the summary.  A network is run population after
# population up to `t1`, or round after round when the last population
# stops at its first spikes (`simulate`).


class _Carry(eqx.Module):
    t: jax.Array
    y: jax.Array
    armed: jax.Array
    input_index: jax.Array
    save_index: jax.Array
    spike_times: jax.Array
    spike_ids: jax.Array
    n_spikes: jax.Array
    saved: jax.Array
    done: jax.Array
    nonfinite: jax.Array
    nonfinite_time: jax.Array
    nonfinite_neuron: jax.Array
    reset_failed: jax.Array
    g: jax.Array = None  # spike condition at (t, y), carried so each iteration evaluates it once
    aux: object = None  # integrator state (next step size), or None
    paused: jax.Array = None  # reached `t_stop` before `t1`: resumes in the next round


class _Loop:
    """What both population loops set up: the model's functions, parameter values,
    weights, save points, integrator and loop budget (inputs + save points + the
    spikes one loop may see + solver steps)."""

    def __init__(self, pop: Population, n_inputs: int, t1, max_spikes: int, save_at, stop_after_first_spike: bool, advance, spike_budget: int):
        self.pop, self.n_inputs, self.max_spikes = pop, n_inputs, max_spikes
        self.buffer = max_spikes  # slots of the population's spike list
        self.fn = pop.model.fn
        self.dtype = default_dtype()
        self.p = pop.parameter_values()
        self.weights = pop.effective_weights()
        self.advance, self.init_aux, step_budget = advance
        self.n_save = 0 if save_at is None else save_at.shape[0]
        self.save_times = jnp.full((1,), jnp.inf, self.dtype) if save_at is None else jnp.asarray(save_at, self.dtype)
        self.t1 = jnp.asarray(t1, self.dtype)
        self.stop_after_first_spike = stop_after_first_spike
        self.budget = n_inputs + self.n_save + spike_budget + 2 + step_budget
        self.takes_steps = step_budget > 0  # cost grows with the time simulated


# iterations per round of each population's loop, in a network run in rounds (`windowed=True`):
# a trade between restarts (a sort and a loop restart, ~0.5-1 ms on the benchmark nets) and
# overshoot past the last population's first spikes (up to a round of hidden iterations,
# ~0.44 ms each).  9 was the best of 6, 9, 10 and 12 on each of the Izhikevich, EIF and QIF
# Yin-Yang nets (Izhikevich 13.6, 12.5, 13.2, 16.0 ms).  A population on one clock takes one
# iteration per event, not per neuron: 8 times as many.  After `_SHORT_ROUNDS` rounds, each
# round is twice as long as the one before: outputs that fire late or never cost a few
# restarts, not one every round (EIF net, outputs by 10 ms, rounds of 6: 20.6 ms; with 4
# short rounds and then one to the end, 30.5 ms).
_ROUND = 9
_ROUND_SHARED = 8 * _ROUND
_SHORT_ROUNDS = 3

# spike lists up to this length are sorted by counting comparisons (O(n^2) work in one
# kernel and a matmul: 0.41 ms for 32 lists of 272, against 0.88 ms for `lax.top_k`)
_RANK_SORT = 512


def _loop(cond, body, carry, budget: int, max_iterations=None):
    """A population's event loop: at most `budget` iterations, checkpointed for reverse mode.

    Neurons paused by an earlier call resume.  With `max_iterations` (a traced
    number) it also stops after that many, and the neurons not done are
    marked paused: the next call resumes them.
    """
    carry = eqx.tree_at(lambda c: c.paused, carry, jnp.zeros_like(carry.paused))
    if max_iterations is None:
        return eqxi.while_loop(cond, body, carry, max_steps=budget, kind="checkpointed", checkpoints=min(budget, 64))
    i, c = eqxi.while_loop(
        lambda s: cond(s[1]) & (s[0] < max_iterations),
        lambda s: (s[0] + 1, body(s[1])),
        (jnp.asarray(0), carry),
        max_steps=budget,
        kind="checkpointed",
        checkpoints=min(budget, 64),
    )
    return eqx.tree_at(lambda c: c.paused, c, c.paused | ((i >= max_iterations) & ~c.done))


class _SharedLoop(_Loop):
    """A population on one clock (recurrent, or fixed-step Euler): every spike is an event of the whole population."""

    def __init__(self, pop: Population, n_inputs: int, t1, max_spikes: int, save_at, config: SolverConfig, stop_after_first_spike: bool):
        super().__init__(pop, n_inputs, t1, max_spikes, save_at, stop_after_first_spike, make_shared_advance(pop.model, config), max_spikes)

    def start(self) -> _Carry:
        fn, dtype, n = self.fn, self.dtype, self.pop.n_neurons
        y_init = fn.initial_state(self.p, n, dtype)
        g_init = fn.spike_condition(0.0, y_init, self.p)
        return _Carry(
            t=jnp.asarray(0.0, dtype),
            y=y_init,
            armed=g_init < 0,
            input_index=jnp.asarray(0),
            save_index=jnp.asarray(0),
            spike_times=jnp.full((self.max_spikes,), jnp.inf, dtype),
            spike_ids=jnp.full((self.max_spikes,), -1, jnp.int32),
            n_spikes=jnp.asarray(0),
            saved=jnp.zeros((max(self.n_save, 1), *y_init.shape), dtype),
            done=jnp.asarray(False),
            nonfinite=jnp.asarray(False),
            nonfinite_time=jnp.asarray(jnp.inf, dtype),
            nonfinite_neuron=jnp.asarray(-1),
            reset_failed=jnp.asarray(False),
            g=g_init,
            aux=None if self.init_aux is None else jnp.asarray(self.init_aux, dtype),
            paused=jnp.asarray(False),
        )

    round = _ROUND_SHARED  # iterations per round (`simulate(windowed=True)`)

    def run(self, carry: _Carry, in_times, in_channels, in_values, t_stop, max_iterations=None) -> _Carry:
        fn, p, weights, pop, n = self.fn, self.p, self.weights, self.pop, self.pop.n_neurons
        n_inputs, n_save, save_times, t1 = self.n_inputs, self.n_save, self.save_times, self.t1
        final_window = t_stop >= t1

        def body(c: _Carry) -> _Carry:
            i = jnp.minimum(c.input_index, n_inputs - 1)
            t_in = jnp.where(c.input_index < n_inputs, in_times[i], jnp.inf)
            channel, value = in_channels[i], in_values[i]
            s = jnp.minimum(c.save_index, save_times.shape[0] - 1)
            t_save = jnp.where(c.save_index < n_save, save_times[s], jnp.inf)
            t_end = jnp.minimum(jnp.minimum(t_in, t_save), t_stop)

            immediate = jnp.any(c.armed & (c.g >= 0))
            t_hit, y_hit, hit, which, reached, aux = jax.lax.cond(
                immediate,
                lambda: (c.t, c.y, jnp.asarray(True), jnp.argmax(jnp.where(c.armed, c.g, -jnp.inf)), jnp.asarray(False), c.aux),
                lambda: self.advance(c.t, c.y, c.g, t_end, p, c.armed, c.aux),
            )

            # --- a spike of neuron `which`
            mask = jnp.arange(n) == which
            y_spike = fn.apply_reset(t_hit, y_hit, p, mask)
            if pop.recurrent:
                rows = {k: w[which] for k, w in weights.items()}
                p_pre = {k: (v[which] if jnp.ndim(v) else v) for k, v in p.items()}
                y_spike = y_spike + fn.spike_jump(t_hit, y_hit, p, y_hit[:, which], p_pre, rows)

            # --- an input spike (when no spike came first and the input is due)
            is_input = reached & (t_in <= t_end) & jnp.isfinite(t_in)
            y_input = y_hit
            if pop.in_size:
                rows_in = {k: w[n + channel] for k, w in weights.items()}
                y_input = y_hit + fn.input_jump(t_hit, y_hit, p, value, rows_in)

            # --- a save point
            is_save = reached & ~is_input & (t_save <= t_end) & jnp.isfinite(t_save)
            saved = jnp.where(is_save, c.saved.at[jnp.minimum(c.save_index, c.saved.shape[0] - 1)].set(y_hit), c.saved)

            y_next = jnp.where(hit, y_spike, jnp.where(is_input, y_input, y_hit))
            # one evaluation of the condition after the event re-arms every neuron below zero
            g_next = fn.spike_condition(t_hit, y_next, p)
            still_above = g_next[which] >= 0  # the reset left the condition satisfied
            armed = c.armed | (g_next < 0)
            armed = jnp.where(hit & mask, ~still_above, armed)
            spike_times = jnp.where(hit, c.spike_times.at[c.n_spikes].set(t_hit, mode="drop"), c.spike_times)
            spike_ids = jnp.where(hit, c.spike_ids.at[c.n_spikes].set(which.astype(jnp.int32), mode="drop"), c.spike_ids)

            finite_neurons = jnp.all(jnp.isfinite(y_next), axis=0)
            bad = ~jnp.all(finite_neurons)
            fired = jnp.zeros((n,), bool).at[jnp.where(spike_ids >= 0, spike_ids, n)].set(True, mode="drop")
            reached_stop = reached & ~is_input & ~is_save
            return _Carry(
                t=t_hit,
                y=y_next,
                armed=armed,
                input_index=c.input_index + is_input,
                save_index=c.save_index + is_save,
                spike_times=spike_times,
                spike_ids=spike_ids,
                n_spikes=c.n_spikes + hit,
                saved=saved,
                done=(reached_stop & final_window) | bad | (self.stop_after_first_spike & jnp.all(fired)),
                nonfinite=c.nonfinite | bad,
                nonfinite_time=jnp.where(bad & ~c.nonfinite, t_hit, c.nonfinite_time),
                nonfinite_neuron=jnp.where(bad & ~c.nonfinite, jnp.argmin(finite_neurons), c.nonfinite_neuron),
                reset_failed=c.reset_failed | (hit & still_above),
                g=g_next,
                aux=aux,
                paused=reached_stop & ~final_window,
            )

        return _loop(lambda c: ~c.done & ~c.paused, body, carry, self.budget, max_iterations)

    def horizon(self, c: _Carry):
        """The time up to which all of the population's spikes are known."""
        return jnp.where(c.done, jnp.inf, c.t)

    def spikes(self, c: _Carry):
        """The spikes so far, in time order (they are recorded in time order)."""
        return c.spike_times, c.spike_ids

    def finish(self, c: _Carry):
        overflow = (c.n_spikes > self.max_spikes) | ~(c.done | c.paused)
        states = None
        if self.n_save:
            states = {name: c.saved[:, k, :] for k, name in enumerate(self.fn.states)}
        return c, overflow, states


# ---------------------------------------------------------------------------
# a population without recurrence: every neuron on its own clock


class _IndependentCarry(eqx.Module):
    t: jax.Array  # (N,)
    y: jax.Array  # (S, N)
    armed: jax.Array
    input_index: jax.Array  # (N,)
    save_index: jax.Array  # (N,)
    spike_times: jax.Array  # (buffer,) in the order written, not in time order
    spike_ids: jax.Array  # (buffer,)
    n_total: jax.Array  # spikes written so far (may exceed max_spikes: overflow)
    n_spikes: jax.Array  # (N,) per neuron
    saved: jax.Array  # (T, S, N)
    done: jax.Array  # (N,)
    paused: jax.Array  # (N,) reached `t_stop` before `t1`: resumes in the next round
    nonfinite: jax.Array  # (N,)
    nonfinite_time: jax.Array  # (N,)
    reset_failed: jax.Array  # (N,)
    g: jax.Array  # (N,) spike condition at (t, y), carried so each iteration evaluates it once
    aux: object  # integrator state per neuron (next step sizes), or None


# event-free solver steps per iteration of a loop of neurons on their own clocks (more
# steps per iteration cost more per iteration than they save in iterations: measured
# on the Izhikevich Yin-Yang net, 2 is best)
_FREE_STEPS = 2


class _IndependentLoop(_Loop):
    """A population whose neurons do not interact (no recurrence).

    Neurons are independent given the input spikes, so each advances on its
    own clock: the loop runs (inputs + own spikes of the busiest neuron)
    iterations instead of (inputs + all spikes), every one vectorised over
    neurons.  Same semantics as `_SharedLoop`.
    """

    def __init__(self, pop: Population, n_inputs: int, t1, max_spikes: int, save_at, config: SolverConfig, stop_after_first_spike: bool, per_neuron_budget: int):
        advance = make_per_neuron_advance(pop.model, config)
        super().__init__(pop, n_inputs, t1, max_spikes, save_at, stop_after_first_spike, advance, per_neuron_budget)
        self.per_neuron_budget = per_neuron_budget
        self.free_steps = _FREE_STEPS if hasattr(self.advance, "free_step") else 0
        # no more slots than the neurons can fill within their budget: every iteration of a
        # vmapped loop copies the whole list (a 3-neuron readout stopping at its first
        # spikes needs 3 slots, not max_spikes)
        per_neuron = 1 if stop_after_first_spike else per_neuron_budget
        self.buffer = min(max_spikes, pop.n_neurons * per_neuron)

    def start(self) -> _IndependentCarry:
        fn, dtype, n = self.fn, self.dtype, self.pop.n_neurons
        y_init = fn.initial_state(self.p, n, dtype)
        t_init = jnp.zeros((n,), dtype)
        g_init = fn.spike_condition(0.0, y_init, self.p)
        return _IndependentCarry(
            t=t_init,
            y=y_init,
            armed=g_init < 0,
            input_index=jnp.zeros((n,), jnp.int32),
            save_index=jnp.zeros((n,), jnp.int32),
            spike_times=jnp.full((self.buffer,), jnp.inf, dtype),
            spike_ids=jnp.full((self.buffer,), -1, jnp.int32),
            n_total=jnp.asarray(0),
            n_spikes=jnp.zeros((n,), jnp.int32),
            saved=jnp.zeros((max(self.n_save, 1), *y_init.shape), dtype),
            done=jnp.zeros((n,), bool),
            paused=jnp.zeros((n,), bool),
            nonfinite=jnp.zeros((n,), bool),
            nonfinite_time=jnp.full((n,), jnp.inf, dtype),
            reset_failed=jnp.zeros((n,), bool),
            g=g_init,
            aux=self.init_aux(t_init, y_init, self.p),
        )

    round = _ROUND  # iterations per round (`simulate(windowed=True)`)

    def run(self, carry: _IndependentCarry, in_times, in_channels, in_values, t_stop, max_iterations=None) -> _IndependentCarry:
        fn, p, weights, pop, n = self.fn, self.p, self.weights, self.pop, self.pop.n_neurons
        n_inputs, n_save, save_times = self.n_inputs, self.n_save, self.save_times
        final_window = t_stop >= self.t1
        neurons = jnp.arange(n)
        buffer = self.buffer

        def schedule(c: _IndependentCarry):
            """Each neuron's next scheduled event: input (time, channel, value), save point, and
            the time the neuron advances to (its own time when finished or paused)."""
            k = jnp.minimum(c.input_index, n_inputs - 1)
            t_in = jnp.where(c.input_index < n_inputs, in_times[k], jnp.inf)
            s = jnp.minimum(c.save_index, save_times.shape[0] - 1)
            t_save = jnp.where(c.save_index < n_save, save_times[s], jnp.inf)
            still = c.done | c.paused
            t_end = jnp.where(still, c.t, jnp.minimum(jnp.minimum(t_in, t_save), t_stop))
            return t_in, in_channels[k], in_values[k], s, t_save, still, t_end

        def scheduled_events(c, t, y, reached, t_in, channel, value, s, t_save, t_end):
            """The input spike or save point that a neuron has reached at `t_end`."""
            is_input = reached & (t_in <= t_end) & jnp.isfinite(t_in)
            if pop.in_size:
                rows = {name: w[n + channel, neurons] for name, w in weights.items()}
                y = y + jnp.where(is_input[None], fn.input_jump(t, y, p, value, rows), 0.0)
            is_save = reached & ~is_input & (t_save <= t_end) & jnp.isfinite(t_save)
            saved = c.saved
            if n_save:
                save_slot = jnp.where(is_save, s, c.saved.shape[0])  # out of range: dropped
                saved = c.saved.at[save_slot, :, neurons].set(y.T, mode="drop")
            return y, is_input, is_save, saved

        def free(c: _IndependentCarry) -> _IndependentCarry:
            """An event-free solver step and the input or save point it reaches; no spikes.

            A loop iteration (spike location, reset, spike list) costs far more than a
            solver step, while a neuron usually takes several steps (and sees
            several inputs) between two of its spikes: each iteration first takes
            `_FREE_STEPS` of these.  A neuron whose step would hold a crossing, or
            that is above threshold after an input, waits for the full step.
            """
            t_in, channel, value, s, t_save, still, t_end = schedule(c)
            waiting = still | (c.armed & (c.g >= 0))
            t_end = jnp.where(waiting, c.t, t_end)
            t, y, g, aux = self.advance.free_step(c.t, c.y, c.g, t_end, p, c.armed, c.aux)
            reached = ~waiting & (t >= t_end)
            y, is_input, is_save, saved = scheduled_events(c, t, y, reached, t_in, channel, value, s, t_save, t_end)
            g = jnp.where(is_input, fn.spike_condition(t, y, p), g)
            return eqx.tree_at(
                lambda c: (c.t, c.y, c.g, c.aux, c.armed, c.input_index, c.save_index, c.saved, c.paused),
                c,
                (t, y, g, aux, c.armed | (g < 0), c.input_index + is_input, c.save_index + is_save, saved,
                 c.paused | (reached & ~is_input & ~is_save & ~final_window)),
            )

        def body(c: _IndependentCarry) -> _IndependentCarry:
            for _ in range(self.free_steps):
                c = free(c)
            t_in, channel, value, s, t_save, still, t_end = schedule(c)

            immediate = c.armed & (c.g >= 0) & ~still
            t_seg, y_seg, hit_seg, aux = self.advance(c.t, c.y, c.g, t_end, p, c.armed & ~still & ~immediate, c.aux)
            t_hit = jnp.where(immediate | still, c.t, t_seg)
            y_hit = jnp.where((immediate | still)[None], c.y, y_seg)
            hit = (immediate | hit_seg) & ~still
            reached = ~hit & ~still & (t_hit >= t_end)

            y_spike = fn.apply_reset(t_hit, y_hit, p, hit)
            y_input, is_input, is_save, saved = scheduled_events(c, t_hit, y_hit, reached, t_in, channel, value, s, t_save, t_end)

            y_next = jnp.where(hit[None], y_spike, jnp.where(is_input[None], y_input, y_hit))
            y_next = jnp.where(still[None], c.y, y_next)
            g_next = fn.spike_condition(t_hit, y_next, p)
            still_above = hit & (g_next >= 0)  # the reset left the condition satisfied
            armed = jnp.where(hit, ~still_above, c.armed | (g_next < 0))
            # one flat buffer for the population (a buffer per neuron would be copied whole
            # by every iteration of a vmapped loop): the spikes of this iteration go to
            # consecutive slots, and the list is sorted by time when it is read
            slot = jnp.where(hit, c.n_total + prefix_count(hit) - 1, buffer)  # out of range: dropped
            spike_times = c.spike_times.at[slot].set(t_hit, mode="drop")
            spike_ids = c.spike_ids.at[slot].set(neurons.astype(jnp.int32), mode="drop")
            bad = ~jnp.all(jnp.isfinite(y_next), axis=0) & ~still
            reached_stop = reached & ~is_input & ~is_save
            return _IndependentCarry(
                t=t_hit,
                y=y_next,
                armed=armed,
                input_index=c.input_index + is_input,
                save_index=c.save_index + is_save,
                spike_times=spike_times,
                spike_ids=spike_ids,
                n_total=c.n_total + jnp.sum(hit),
                n_spikes=c.n_spikes + hit,
                saved=saved,
                done=c.done | (reached_stop & final_window) | bad | (hit & self.stop_after_first_spike),
                paused=c.paused | (reached_stop & ~final_window),
                nonfinite=c.nonfinite | bad,
                nonfinite_time=jnp.where(bad & ~c.nonfinite, t_hit, c.nonfinite_time),
                reset_failed=c.reset_failed | still_above,
                g=g_next,
                aux=aux,
            )

        return _loop(lambda c: ~jnp.all(c.done | c.paused), body, carry, self.budget, max_iterations)

    def horizon(self, c: _IndependentCarry):
        """The time up to which all of the population's spikes are known: a neuron's
        next spike comes no earlier than its own time."""
        return jnp.min(jnp.where(c.done, jnp.inf, c.t))

    def spikes(self, c: _IndependentCarry):
        """The spikes so far, in time order (equal times: in the order written)."""
        order = _earliest(c.spike_times, self.buffer)
        return c.spike_times[order], c.spike_ids[order]

    def finish(self, c: _IndependentCarry):
        # the summary keeps the spikes in the order written (`simulate` sorts them all once)
        spike_times, spike_ids = c.spike_times, c.spike_ids
        # (a full list of fewer than max_spikes slots means a neuron exceeded its budget)
        overflow = (c.n_total > self.buffer) | jnp.any(c.n_spikes > self.per_neuron_budget) | ~jnp.all(c.done | c.paused)
        bad = jnp.any(c.nonfinite)
        states = None
        if self.n_save:
            states = {name: c.saved[:, k, :] for k, name in enumerate(self.fn.states)}
        summary = _Carry(
            t=jnp.max(c.t),
            y=c.y,
            armed=c.armed,
            input_index=jnp.max(c.input_index),
            save_index=jnp.max(c.save_index),
            spike_times=spike_times,
            spike_ids=spike_ids,
            n_spikes=c.n_total,
            saved=c.saved,
            done=jnp.all(c.done),
            nonfinite=bad,
            nonfinite_time=jnp.min(c.nonfinite_time),
            nonfinite_neuron=jnp.where(bad, jnp.argmin(c.nonfinite_time), -1),
            reset_failed=jnp.any(c.reset_failed),
        )
        return summary, overflow, states


# ---------------------------------------------------------------------------
# the public entry point


def _earliest(times, k: int):
    """Indices of the `k` smallest times, in increasing order (equal times: in list order).

    Long lists: `lax.top_k`, a partial selection (on CPU ~20x faster than a
    full `argsort` of the neurons x per-neuron budget spike buffers).
    """
    n = times.shape[-1]
    k = min(k, n)
    if n > _RANK_SORT:
        return jax.lax.top_k(-times, k)[1]
    # a short list: each time's rank is a count of comparisons (ties: in list order)
    i = jnp.arange(n)
    before = (times[None, :] < times[:, None]) | ((times[None, :] == times[:, None]) & (i[None, :] < i[:, None]))
    rank = (before.astype(jnp.float32) @ np.ones((n,), np.float32)).astype(jnp.int32)  # a matmul: faster than a sum
    return jnp.zeros((n,), jnp.int32).at[rank].set(i.astype(jnp.int32))[:k]


def simulate(
    net: Network | Population,
    inputs: Spikes | None = None,
    t1: float = 100.0,
    max_spikes: int = 256,
    save_at=None,
    method: str = "auto",
    rtol: float | None = None,
    atol: float | None = None,
    dt: float | None = None,
    root_tol: float | None = None,
    max_solver_steps: int = 16384,
    max_spikes_per_neuron: int | None = None,
    stop_after_first_spike: bool = False,
    windowed: bool = False,
) -> SimulationResult:
    """Simulate a network (or one population) from t=0 to `t1` ms.

    **Arguments:**

    - `net`: a `Network` or a single `Population`.
    - `inputs`: external input spikes of the first population (`None`: none).
    - `t1`: end time (ms).
    - `max_spikes`: size of the spike buffers, per population and in the result.
      Exceeding it sets `overflow` (and warns outside `jit`); spikes are never
      silently dropped.
    - `save_at`: times at which to record every population's state.
    - `method`: `"auto"` (exact propagator when the dynamics are linear,
      Tsit5 otherwise), `"exact"`, `"tsit5"`, `"dopri5"`, `"euler"` (fixed `dt`).
    - `rtol`, `atol`: adaptive step tolerances (default 1e-8 in float64, 1e-5 in
      float32); `root_tol`: event-time tolerance (1e-12 / 1e-5).
    - `max_spikes_per_neuron`: the most spikes one neuron of a population
      without recurrence may fire (such populations are simulated neuron by
      neuron, and this bounds their loop; default `min(max_spikes, 64)`);
      exceeding it also sets `overflow`.
    - `stop_after_first_spike`: neurons of the last population stop at their
      first spike (all that a time-to-first-spike loss needs); their later
      spikes, counts and states are then not computed.
    - `windowed`: with `stop_after_first_spike`, run the network in rounds:
      each earlier population advances for a few iterations of its loop (9
      for neurons on their own clocks, 72 for a population on one clock;
      twice as many each round after the third), the next one up to the time
      until which those spikes are all known, and so on; the rounds stop once
      the last population is done, so that earlier populations are not
      simulated to t1 (their spikes, counts and states then end there too).
      Pays off when an earlier population takes solver steps and the outputs
      fire early (Izhikevich Yin-Yang net: forward 1.5x faster, EIF net
      1.4x); each round costs a sort of the spike lists and a restart of every
      loop (QIF net, outputs at 15 of 60 ms: 1.1x slower; EGRU net, where an
      output stays silent: 1.2x slower), and `value_and_grad` compiles about
      three times longer.  Ignored for networks of exact (linear) populations
      and with `save_at`.
    """
    if isinstance(net, Population):
        net = Network([net])
    config = SolverConfig(method, rtol, atol, dt, root_tol, max_solver_steps)
    dtype = default_dtype()
    save = None if save_at is None else jnp.asarray(save_at, dtype)

    if inputs is None:
        times = jnp.full((1,), jnp.inf, dtype)
        channels = jnp.zeros((1,), jnp.int32)
        values = jnp.ones((1,), dtype)
    else:
        order = _earliest(inputs.times, inputs.times.shape[0])
        times = inputs.times[order]
        channels = inputs.channels[order]
        values = jnp.ones_like(times) if inputs.values is None else inputs.values[order]

    loops = []
    n_in = times.shape[0]
    for k, pop in enumerate(net.populations):
        last = stop_after_first_spike and k == len(net.populations) - 1
        # neurons coupled within the population share one clock; otherwise each has its own
        if pop.recurrent or config.method == "euler":
            loops.append(_SharedLoop(pop, n_in, t1, max_spikes, save, config, last))
        else:
            budget = max_spikes_per_neuron or min(max_spikes, 64)
            loops.append(_IndependentLoop(pop, n_in, t1, max_spikes, save, config, last, budget))
        n_in = loops[-1].buffer

    def run_all(carries, t_stop, r=None):
        """Every population through `t_stop`, each driven by the spikes of the one before.

        In round `r` of a run in rounds, each earlier population runs at most its round's
        iterations, and the next one only up to its horizon."""
        inputs, out = (times, channels, values), []
        for k, (loop, carry) in enumerate(zip(loops, carries)):
            last = k + 1 == len(loops)
            cap = None if r is None or last else jnp.minimum(loop.round * 2 ** jnp.maximum(r + 1 - _SHORT_ROUNDS, 0), loop.budget)
            carry = loop.run(carry, *inputs, t_stop, cap)
            out.append(carry)
            if not last:  # the last population's spikes drive nothing (`simulate` sorts them once)
                if r is not None:
                    t_stop = jnp.minimum(t_stop, loop.horizon(carry))
                spike_times, spike_ids = loop.spikes(carry)
                inputs = (spike_times, jnp.maximum(spike_ids, 0), jnp.ones_like(spike_times))
        return out

    carries = [loop.start() for loop in loops]
    exhausted = jnp.asarray(False)
    if windowed and stop_after_first_spike and any(loop.takes_steps for loop in loops[:-1]) and save is None:
        # the last population stops at its neurons' first spikes, so the earlier ones are
        # needed only up to then: run the network in rounds, each population for at most
        # `loop.round` iterations of its loop (the last one without limit) and up to the time
        # where the spikes of the one before are all known, until the last population is done.
        # After `_SHORT_ROUNDS` rounds, each round is twice as long as the one before.
        t1_ = jnp.asarray(t1, dtype)
        rounds = _SHORT_ROUNDS + max(int(np.ceil(np.log2(max(loop.budget / loop.round, 1)))) for loop in loops[:-1]) + 1

        def round_(state):
            r, carries = state
            return r + 1, run_all(carries, t1_, r)

        _, carries = eqxi.while_loop(
            lambda state: ~jnp.all(state[1][-1].done),
            round_,
            (jnp.asarray(0), carries),
            max_steps=rounds,
            kind="checkpointed",
        )
        exhausted = ~jnp.all(carries[-1].done)
    else:
        carries = run_all(carries, jnp.asarray(t1, dtype))
    results = [loop.finish(carry) for loop, carry in zip(loops, carries)]

    offsets = net.offsets
    all_times = jnp.concatenate([r[0].spike_times for r in results])
    all_ids = jnp.concatenate(
        [jnp.where(r[0].spike_ids >= 0, r[0].spike_ids + off, -1) for r, off in zip(results, offsets)]
    )
    if all_times.shape[0] < max_spikes:  # the result has max_spikes slots whatever the lists' sizes
        all_times = jnp.concatenate([all_times, jnp.full((max_spikes - all_times.shape[0],), jnp.inf, dtype)])
        all_ids = jnp.concatenate([all_ids, jnp.full((max_spikes - all_ids.shape[0],), -1, all_ids.dtype)])
    order = _earliest(all_times, max_spikes)
    total = sum(r[0].n_spikes for r in results)
    overflow = (total > max_spikes) | jnp.any(jnp.stack([r[1] for r in results])) | exhausted

    counts, firsts = [], []
    for (final, _, _), pop in zip(results, net.populations):
        valid = final.spike_ids >= 0
        ids = jnp.where(valid, final.spike_ids, pop.n_neurons)
        counts.append(jnp.zeros((pop.n_neurons + 1,), jnp.int32).at[ids].add(1)[:-1])
        firsts.append(
            jnp.full((pop.n_neurons + 1,), jnp.inf, dtype).at[ids].min(final.spike_times)[:-1]
        )
    nonfinite = jnp.any(jnp.stack([r[0].nonfinite for r in results]))
    bad_neuron = jnp.asarray(-1)
    bad_time = jnp.asarray(jnp.inf, dtype)
    for (final, _, _), off in reversed(list(zip(results, offsets))):
        bad_neuron = jnp.where(final.nonfinite, final.nonfinite_neuron + off, bad_neuron)
        bad_time = jnp.where(final.nonfinite, final.nonfinite_time, bad_time)

    result = SimulationResult(
        spike_times=all_times[order],
        spike_neurons=all_ids[order],
        n_spikes=total,
        overflow=overflow,
        counts=counts,
        first_spikes=firsts,
        states=[r[2] for r in results],
        nonfinite=nonfinite,
        nonfinite_time=bad_time,
        nonfinite_neuron=bad_neuron,
        reset_failed=jnp.any(jnp.stack([r[0].reset_failed for r in results])),
        n_neurons=net.n_neurons,
    )
    _warn_if_concrete(result, max_spikes)
    return result


def _warn_if_concrete(result: SimulationResult, max_spikes: int):
    """Outside `jit`, numerical trouble is also reported as a warning."""
    if isinstance(result.overflow, jax.core.Tracer):
        return
    if bool(np.any(result.overflow)):
        if int(np.max(result.n_spikes)) > max_spikes:
            cause = f"{int(np.max(result.n_spikes))} spikes for max_spikes={max_spikes}; raise max_spikes"
        else:
            cause = (
                "a neuron exceeded max_spikes_per_neuron, or the loop ran out of steps before t1 "
                "(raise max_spikes_per_neuron or max_solver_steps)"
            )
        warnings.warn(
            f"spike budget exceeded: {cause} (results after the budget are incomplete)",
            RuntimeWarning,
            stacklevel=3,
        )
    if bool(np.any(result.nonfinite)):
        warnings.warn(
            f"non-finite state in neuron {int(np.max(result.nonfinite_neuron))} at "
            f"t = {float(np.min(result.nonfinite_time)):.6g} ms",
            RuntimeWarning,
            stacklevel=3,
        )
    if bool(np.any(result.reset_failed)):
        warnings.warn(
            "a reset left the threshold condition satisfied; that neuron was not re-armed",
            RuntimeWarning,
            stacklevel=3,
        )
