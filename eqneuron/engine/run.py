"""The plan of one run of `simulate`: which loops run the network, in which order, and which
of them reverse mode differentiates.

A graph network runs in windows of its shortest delay (`graph_run.py`) or event-driven
(`event_windows.py`); a feed-forward stack runs each population to t1 in turn, or in
rounds that end once the last population is done.  Runs that only speed up the forward
pass go through `reverse_mode.fast_forward`, whose reverse mode runs the lean loops; the
event-based adjoint replays undifferentiated loops (`adjoint.py`).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import equinox as eqx
import equinox.internal as eqxi
import jax.numpy as jnp
import numpy as np

from ..errors import EqError
from ..network import Network, Population, default_dtype
from .adjoint import replay_leaves, stop_gradients
from .config import SolverConfig
from .event_windows import run_event_windows, why_not
from .graph import as_graph, needs_graph
from .graph_run import run_graph
from .inputs import InputLayout, input_feed, spikes_as_inputs
from .integrator import AbstractIntegrator
from .lanes import traced_once
from .loop import PopulationLoop
from .progress import progress_meter
from .result import SimulationResult, cut_at, done_time, network_result
from .reverse_mode import Runs, fast_forward, replayed
from .strategies import clock_for, make_integrator
from .validate import SimulateArguments

# after this many rounds, each round of a network run in rounds is twice as long as the one
# before: outputs that fire late or never cost a few restarts, not one every round
_SHORT_ROUNDS = 3


class Settings(NamedTuple):
    """`simulate`'s arguments that configure the run (Python values: static under `jit`)."""

    max_spikes: int
    method: str
    rtol: float | None
    atol: float | None
    dt: float | None
    root_tol: float | None
    max_solver_steps: int
    max_spikes_per_neuron: int | None
    stop_after_first_spike: bool
    rounds: bool | None
    throw: bool
    max_window_spikes: int | None
    progress: bool | float
    adjoint: str


def run(net: Network, checked: SimulateArguments, settings: Settings) -> SimulationResult:
    """`simulate` once its arguments are checked: the plan of the run, traced into one program."""
    (max_spikes, method, rtol, atol, dt, root_tol, max_solver_steps, max_spikes_per_neuron,
     stop_after_first_spike, rounds, throw, max_window_spikes, progress, adjoint) = settings
    inputs, t1, save = checked.inputs, checked.t1, checked.save_at
    meter = progress_meter(progress, len(net.populations))
    config = SolverConfig(method, rtol, atol, dt, root_tol, max_solver_steps)
    dtype = default_dtype()

    # the event-based adjoint differentiates a replay of the run, not the run itself
    eventprop, differentiable = adjoint == "eventprop", net
    if eventprop:
        net, inputs = stop_gradients(net), stop_gradients(inputs)
    times, channels, values = input_feed(inputs, dtype)

    def make_loop(
        pop: Population, n_inputs: int, index: int, stop_after_first: bool = False, *, t1, save, lean: bool = False,
        undifferentiated: bool = False, inputs: InputLayout | None = None,
    ) -> PopulationLoop:
        clock = clock_for(pop)
        own_clocks = bool(clock.lanes(pop.n_neurons))
        return PopulationLoop(
            pop,
            clock,
            integrator_of(pop),
            n_inputs=n_inputs,
            t1=t1,
            save_at=save,
            max_spikes=max_spikes,
            spikes_per_neuron=(max_spikes_per_neuron or min(max_spikes, 64)) if own_clocks else max_spikes,
            max_solver_steps=max_solver_steps,
            stop_after_first_spike=stop_after_first,
            dtype=dtype,
            meter=meter,
            index=index,
            record_spike_states=eventprop,
            lean=lean,
            undifferentiated=undifferentiated,
            inputs=inputs,
        )

    def integrator_of(pop: Population) -> AbstractIntegrator:
        return make_integrator(pop.model, config, dtype)

    def free_steps(pop: Population) -> int:
        """Event-free steps per iteration of `pop`'s loop (`PopulationLoop`), when not lean."""
        return clock_for(pop).free_steps(integrator_of(pop))

    if needs_graph(net):
        net = as_graph(net)
    if net.graph:
        if stop_after_first_spike or rounds:
            raise EqError(
                "simulate: stop_after_first_spike and rounds apply to feed-forward stacks, not to graph networks",
                hint="drop them, or build the network as Network([a, b, ...])",
            )

        def by_loops(args, lean: bool = False, undifferentiated: bool = False):
            net, t1, (times, channels, values), save = args
            states, loops, bad_window, window_overflow = run_graph(
                net,
                lambda pop, n_inputs, k, layout: make_loop(
                    pop, n_inputs, k, t1=t1, save=save, lean=lean, undifferentiated=undifferentiated, inputs=layout
                ),
                times, channels, values, t1, max_spikes, max_window_spikes,
            )
            outcomes = [loop.finish(state) for loop, state in zip(loops, states)]
            # a window with more input spikes than its list holds: reported as a spike budget
            outcomes = [eqx.tree_at(lambda o: o.spike_budget, o, o.spike_budget | window_overflow) for o in outcomes]
            return outcomes, bad_window

        args = (net, jnp.asarray(t1, dtype), (times, channels, values), save)
        reason = why_not(net, checked.inputs, save, method)
        if reason is None and max_spikes_per_neuron is None:
            # the loops' spike lists (every population on its own clocks here), without building
            # their dense weights: the shapes of both paths' outcomes are one
            per_neuron = min(max_spikes, 64)
            buffers = [min(max_spikes, pop.n_neurons * per_neuron) for pop in net.populations]
            tol = config.tolerances(dtype).root_tol

            def by_events(args):
                return run_event_windows(args[0], args[1], buffers, max_window_spikes, tol, dtype, meter)

            # the event-driven windows for a run that is not differentiated, the population
            # loops under reverse mode: the same spikes, exactly located by both
            outcomes, bad_window = fast_forward(args, Runs(by_events, functools.partial(by_loops, lean=True)))
        elif any(free_steps(pop) for pop in net.populations):
            # the loops with event-free steps, and without them under reverse mode (as a stack's)
            fast = functools.partial(by_loops, undifferentiated=True)
            outcomes, bad_window = fast_forward(args, Runs(fast, functools.partial(by_loops, lean=True)))
        else:
            outcomes, bad_window = by_loops(args)
        invalid = bad_window if checked.invalid is None else checked.invalid | bad_window
        return network_result(net, outcomes, checked, max_spikes, dtype, invalid, throw, meter)

    if max_window_spikes is not None:
        raise EqError(
            f"simulate: max_window_spikes={max_window_spikes} applies to graph networks run in windows of the "
            "shortest delay; a feed-forward stack runs each population to t1 in turn",
            hint="drop max_window_spikes (max_spikes bounds the spike lists of this network)",
        )
    last = len(net.populations) - 1

    def stack(net: Network, t1, save, lean: bool = False, undifferentiated: bool = False) -> list[PopulationLoop]:
        loops, n_in = [], times.shape[0]
        for k, pop in enumerate(net.populations):
            loops.append(make_loop(pop, n_in, k, stop_after_first_spike and k == last, t1=t1, save=save, lean=lean,
                                   undifferentiated=undifferentiated))
            n_in = loops[-1].buffer
        return loops

    def run_all(loops, feed, states, t_stop, r=None, earlier_until=None):
        """Every population through `t_stop` (the earlier ones through `earlier_until` where
        given), each driven by the spikes of the one before.

        In round `r` of a run in rounds, each earlier population runs at most its round's
        iterations, and the next one only up to its horizon."""
        inputs, out = feed, []
        for k, (loop, state) in enumerate(zip(loops, states)):
            is_last = k == last
            cap = None if r is None or is_last else jnp.minimum(loop.round * 2 ** jnp.maximum(r + 1 - _SHORT_ROUNDS, 0), loop.budget)
            until = t_stop if is_last or earlier_until is None else earlier_until
            state = loop.run(state, *inputs, until, cap)
            out.append(state)
            if not is_last:  # the last population's spikes drive nothing (sorted once below)
                if r is not None:
                    t_stop = jnp.minimum(t_stop, loop.horizon(state))
                inputs = spikes_as_inputs(loop, state, loop.pop)
        return out

    feed = (times, channels, values)
    t1_ = jnp.asarray(t1, dtype)
    earlier_steps = any(integrator_of(pop).takes_steps for pop in net.populations[:-1])
    if rounds and not earlier_steps:
        raise EqError(
            "simulate: `rounds=True` runs the earlier populations of a stack a few solver steps at a time, and no "
            "population before the last takes solver steps here (closed-form populations cost their events, "
            "not their time to t1)",
            hint="drop rounds=True: the run ends where the last population is done all the same",
        )
    # the engine's choice (`rounds=None`): rounds for a first-spike run without save points where an
    # earlier population takes solver steps, when the loops are not differentiated: always with the
    # event-based adjoint (it replays them instead), else only in a run that is not differentiated
    # (reverse mode runs the lean loops, `fast_forward`; docs/design.md).  `rounds=True` implies an
    # earlier population that takes steps (refused above otherwise)
    by_default = rounds is None and stop_after_first_spike and save is None and earlier_steps
    in_rounds = eventprop and (bool(rounds) or by_default)

    def run_states(loops, feed, t1, in_rounds: bool):
        """The stack's states at the end of the run, and whether its rounds ran out first: in
        rounds that end once the last population is done, or each population to t1 in turn."""
        if not in_rounds:
            return run_all(loops, feed, [loop.start() for loop in loops], t1), jnp.asarray(False)
        max_rounds = _SHORT_ROUNDS + max(int(np.ceil(np.log2(max(loop.budget / loop.round, 1)))) for loop in loops[:-1]) + 1
        _, states = eqxi.while_loop(
            lambda s: ~jnp.all(s[1][-1].done),
            traced_once(lambda s: (s[0] + 1, run_all(loops, feed, s[1], t1, s[0]))),
            (jnp.asarray(0), [loop.start() for loop in loops]),
            max_steps=max_rounds,
            kind="checkpointed",
        )
        return states, ~jnp.all(states[-1].done)

    if in_rounds or eventprop:
        loops = stack(net, t1_, save, undifferentiated=True)  # the replay differentiates
        states, rounds_exhausted = run_states(loops, feed, t1_, in_rounds)
        if eventprop:  # the loops ran undifferentiated: derivatives come from the replay
            leaves = [replay_leaves(pop) for pop in differentiable.populations]
            # each earlier population's spikes in time order for the next one, found once here for
            # the backward pass (in a run to t1 the sort that fed the next population: XLA
            # computes it once; in rounds, one more sort of the final list)
            orders = [loop.time_order(state) for loop, state in zip(loops[:-1], states[:-1])] + [None]
            save_times = [loop.save_times for loop in loops]
            replays = replayed((leaves, checked.inputs), loops, states, net.populations, save_times, orders)
            states = [eqx.tree_at(lambda c: (c.spike_times, c.saved, c.event_times), c, r) for c, r in zip(states, replays)]
        outcomes = [loop.finish(state) for loop, state in zip(loops, states)]
    else:

        def run_stack(args, lean: bool = False, in_rounds: bool = False, undifferentiated: bool = False):
            net, feed, t1, save = args
            loops = stack(net, t1, save, lean, undifferentiated)
            states, exhausted = run_states(loops, feed, t1, in_rounds)
            return [loop.finish(state) for loop, state in zip(loops, states)], exhausted

        def stack_to_done(args):
            """The rounds, undifferentiated, for when the last population is done; then the lean
            loops, the earlier populations only to a little past that time (all that the outcomes
            keep of them), the last one until it is done."""
            found, exhausted = run_stack(stop_gradients(args), in_rounds=True, undifferentiated=True)
            net, feed, t1, save = args
            t_done = done_time(found[-1], net.populations[-1].n_neurons)
            # past it by 1 % of t1: the lean loops' spikes agree with the rounds' to the solver's
            # tolerance, not to the last bit, and an earlier population's spike about then (on
            # either side of it in one run or the other) must still reach the last population
            until = jnp.minimum(t_done + 0.01 * t1, t1)
            loops = stack(net, t1, save, lean=True)
            states = run_all(loops, feed, [loop.start() for loop in loops], t1, earlier_until=until)
            return [loop.finish(state) for loop, state in zip(loops, states)], exhausted

        stack_args = (net, feed, t1_, save)
        # free steps (and rounds) speed up the forward run; reverse mode compiles each loop body
        # three times (forward, recomputed, transposed), so it runs the lean loops instead: the
        # same steps and values, a third of the body (docs/design.md)
        lean = functools.partial(run_stack, lean=True)
        if rounds or by_default:
            # in rounds when not differentiated; under reverse mode the lean loops give the same
            # outcomes once cut where the last population is done (`cut_at`): to t1 by default,
            # with `rounds=True` only to about where the rounds found it done (`stack_to_done`:
            # reverse mode through the rounds' loop of loops compiled two to three times longer
            # than through the stack; docs/design.md)
            under_reverse_mode = stack_to_done if rounds else lean
            fast = functools.partial(run_stack, in_rounds=True, undifferentiated=True)
            outcomes, rounds_exhausted = fast_forward(stack_args, Runs(fast, under_reverse_mode))
        elif any(free_steps(pop) for pop in net.populations):
            fast = functools.partial(run_stack, undifferentiated=True)
            outcomes, rounds_exhausted = fast_forward(stack_args, Runs(fast, lean))
        else:
            outcomes, rounds_exhausted = run_stack(stack_args)
    if stop_after_first_spike and save is None and last > 0:
        # earlier populations end where the last one is done, however the run got there
        t_done = done_time(outcomes[-1], net.populations[-1].n_neurons)
        outcomes = [cut_at(o, t_done) for o in outcomes[:-1]] + [outcomes[-1]]
    # rounds that ran out leave the last population short of its first spikes
    outcomes[-1] = eqx.tree_at(lambda o: o.step_budget, outcomes[-1], outcomes[-1].step_budget | rounds_exhausted)
    return network_result(net, outcomes, checked, max_spikes, dtype, checked.invalid, throw, meter)
