"""`simulate`: a network of populations from t = 0 to t1, differentiable through spike times.

Populations of a `Network` are simulated one after the other, the spikes of
one being the input spikes of the next: each by the population loop
(`loop.py`) with the clock its coupling needs and the integrator its model
and the chosen method give (`strategies.py`).  A graph network runs in
windows (`graph_run.py`) or event-driven (`event_windows.py`); reverse mode
goes through the custom VJPs of `reverse_mode.py`, and the result is
collected by `result.py`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import equinox as eqx
import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..compilation_cache import committed
from ..errors import EqError
from ..network import Network, Population, Spikes, default_dtype
from .adjoint import check_adjoint, replay_leaves, stop_gradients
from .config import SolverConfig
from .event_windows import run_event_windows, why_not
from .graph import as_graph, connected_delays, needs_graph
from .graph_run import run_graph
from .inputs import InputLayout, input_feed, spikes_as_inputs
from .integrator import AbstractIntegrator
from .lanes import traced_once
from .loop import PopulationLoop
from .progress import progress_meter
from .result import SimulationResult, cut_at, done_time, network_result, warn_if_concrete
from .reverse_mode import Runs, fast_forward, replayed
from .strategies import clock_for, make_integrator
from .validate import SimulateArguments, check_simulate_arguments

# after this many rounds, each round of a network run in rounds is twice as long as the one
# before: outputs that fire late or never cost a few restarts, not one every round
_SHORT_ROUNDS = 3


def simulate(
    net: Network | Population,
    inputs: Spikes | None = None,
    t1: float | Float[Array, ""] = 100.0,
    max_spikes: int = 256,
    save_at: Float[ArrayLike, " saves"] | None = None,
    method: str = "auto",
    rtol: float | None = None,
    atol: float | None = None,
    dt: float | None = None,
    root_tol: float | None = None,
    max_solver_steps: int = 16384,
    max_spikes_per_neuron: int | None = None,
    stop_after_first_spike: bool = False,
    rounds: bool | None = None,
    throw: bool = False,
    max_window_spikes: int | None = None,
    progress: bool | float = False,
    adjoint: str = "loop",
) -> SimulationResult:
    """Simulate a network (or one population) from t=0 to `t1` ms.

    **Arguments:**

    - `net`: a `Network` or a single `Population`.
    - `inputs`: external input spikes of the first population (`None`: none).
    - `t1`: end time (ms).
    - `max_spikes`: size of the spike buffers, per population and in the result.
      Exceeding it sets `overflow` and the population's result code (and warns
      outside `jit`); spikes are never silently dropped.
    - `save_at`: times at which to record every population's state.
    - `method`: `"auto"` (the model's closed form where it has one, Tsit5
      otherwise: `repr(model)` says which), `"exact"`, `"tsit5"`,
      `"dopri5"`, `"dopri8"`, `"heun"`, `"euler"` (fixed steps of `dt`).
    - `rtol`, `atol`: adaptive step tolerances (default 1e-8 in float64, 1e-5 in
      float32); `root_tol`: relative spike-time tolerance (1e-12 / 1e-5).
    - `max_solver_steps`: the most solver steps one loop may take.
    - `max_spikes_per_neuron`: the most spikes one neuron of a population
      without recurrence may fire (such neurons run on their own clocks, and
      this bounds their loop; default `min(max_spikes, 64)`); exceeding it
      sets `overflow`.
    - `stop_after_first_spike`: neurons of the last population stop at their
      first spike (all that a time-to-first-spike loss needs); their later
      spikes, counts and states are then not computed.  Without `save_at`,
      the earlier populations end there too: their spikes, counts and internal
      events are those before the last population is done (its last first
      spike; to t1 when one of its neurons stays silent).  With `save_at` they
      run to t1, for their saved states.
    - `rounds`: how such a first-spike run gets there when an earlier
      population takes solver steps (Runge–Kutta).  In rounds, each earlier
      population advances a few iterations of its loop, the next one up to the
      time until which those spikes are all known, and so on, until the last
      population is done: earlier populations are not simulated to `t1`.
      `None` (default): in rounds when the run is not differentiated, and
      without them under reverse mode (whose derivative is the same), except
      with `adjoint="eventprop"`, whose loops are never differentiated;
      `True`: in rounds also under reverse mode, where the rounds (not
      differentiated) find when the last population is done, and the
      differentiated loops run the earlier populations only to a little past
      then (by 1 % of `t1`);
      `False`: never.  Rounds pay when the outputs fire early.  `True` needs
      `stop_after_first_spike=True`, no `save_at`, and a population before the
      last that takes solver steps.
    - `throw`: raise (also under `jit`) when a population's result code is not `ok`.
    - `max_window_spikes`: in a graph network run in windows (a cycle with delays), the most
      input spikes one population receives in one window (default 1024; a window reads 4 times
      as many of each source's latest spikes, those since two windows before the longest
      delay) — or, where the network
      runs event-driven (docs/engine.md), the most spikes one population emits in one window
      (default N/64 rounded up to a power of two, 64 to 4096); more set `overflow` and the
      spike-budget result code.  A network that runs without windows rejects it.
    - `progress`: `True` draws a progress bar (tqdm, on stderr) over simulated time, with
      the spikes so far and spikes per second; a number of seconds draws it only for runs
      that last longer (the CLI uses 2).  The loops report every 64 iterations; the bar
      is meant for forward runs (under `jax.grad` the checkpointed loops report again as
      they are recomputed).
    - `adjoint`: how reverse mode differentiates the run.  `"loop"`: through the
      population loops (checkpointed).  `"eventprop"`: the event-based adjoint
      (`eqneuron.engine.adjoint`): the loops run undifferentiated and each neuron's
      events are replayed, so the memory of the backward pass grows with events, not
      with solver steps.  Feed-forward stacks (a recurrent population in them is
      replayed on its shared clock); internal events are replayed too, at most
      `max_spikes_per_neuron` per neuron (more: a spike-budget result code).  The same values either way.
      Either way, reverse mode only (`jax.grad`, `jax.jacrev`): the loops are
      checkpointed while loops, which forward mode (`jax.jvp`, `jax.jacfwd`) cannot
      differentiate.

    **Returns:** a `SimulationResult`; `results` holds each population's `RESULTS` code.

    The run is compiled once per network structure, argument shapes and settings
    and reused by later calls with other values; inside the caller's `jit` it is
    part of the caller's program, and under an eager `grad` or `vmap` it runs
    compiled rather than operation by operation (docs/engine.md, "Batches,
    precision, devices").
    """
    checked = check_simulate_arguments(
        net, inputs, t1, max_spikes, save_at, method, rtol, atol, dt, root_tol, max_solver_steps, max_spikes_per_neuron
    )
    if max_window_spikes is not None and (
        isinstance(max_window_spikes, bool) or not isinstance(max_window_spikes, (int, np.integer)) or max_window_spikes < 1
    ):
        raise EqError(f"simulate: `max_window_spikes` must be an integer >= 1, got {max_window_spikes!r}",
                      hint="the most input spikes of one population in one window, e.g. 1024")
    if rounds is not None and not isinstance(rounds, (bool, np.bool_)):
        raise EqError(f"simulate: `rounds` must be None, True or False, got {rounds!r}",
                      hint="leave it out: the engine runs first-spike runs in rounds where that pays")
    if rounds and (not stop_after_first_spike or checked.save_at is not None):
        raise EqError(
            "simulate: `rounds=True` stops earlier populations soon after the last one's first spikes; "
            "it needs stop_after_first_spike=True and no save_at",
            hint="pass stop_after_first_spike=True, or drop rounds=True",
        )
    if isinstance(net, Population):
        net = Network([net])
    check_adjoint(adjoint, net, clock_for)
    progress_meter(progress, len(net.populations))  # checks `progress` (the run makes its own meter)
    settings = _Settings(
        max_spikes, method, rtol, atol, dt, root_tol, max_solver_steps, max_spikes_per_neuron,
        stop_after_first_spike, rounds, throw, max_window_spikes, progress, adjoint,
    )
    network: Network = net
    if not _under_jit() and _compiled_once(network, checked):
        if not _traced(network, checked):
            # every array committed to its device: the placement is part of the program's key
            network, checked = jax.tree_util.tree_map(committed, (network, checked))
        result = _run_compiled(network, checked, settings)
    else:
        result = _run(network, checked, settings)
    warn_if_concrete(result, max_spikes)
    return result


class _Settings(NamedTuple):
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


def _traced(net: Network, checked: SimulateArguments) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves((net, checked)))


def _under_jit() -> bool:
    """Whether the call is being traced into a program (the caller's `jit`, possibly under other
    transformations inside it): the run is then traced into the caller's program as it is.  An
    inner `jit` there changed the compiled program: the vmapped Izhikevich forward pass of
    benchmarks/vs_eventax.py took 19 ms against 13 ms."""
    try:
        from jax._src import core
        from jax._src.interpreters import partial_eval as pe

        trace = core.trace_ctx.trace
        while trace is not None:
            if isinstance(trace, pe.DynamicJaxprTrace):
                return True
            trace = getattr(trace, "parent_trace", None)
    except (ImportError, AttributeError):  # JAX's internals moved: as under a jit (the run inlined)
        return True
    return False


def _compiled_once(net: Network, checked: SimulateArguments) -> bool:
    """Whether the run is one `jit` of its own (`_run_compiled`), cached by the network's
    structure, the arguments' shapes and the settings.

    Called eagerly, a run would otherwise be traced again on every call: seconds
    of Python for a program that takes milliseconds.  Under the caller's eager
    transformations too: an eager `jax.grad` or `jax.vmap` of a function that
    calls `simulate` then runs the simulation as compiled programs (its forward
    run and its derivative) rather than operation by operation, each operation
    compiled on its own.  (Inside the caller's `jit`, `_under_jit`, the run is
    traced into the caller's program.)  Not when a projection's delay is zero somewhere, or traced by the
    caller: the network's plan (`graph.plan`) reads such a delay's value, which a
    compiled program only sees traced.
    """
    if not net.graph and not needs_graph(net):
        return True
    graph = as_graph(net) if needs_graph(net) else net
    for k in range(len(graph.projections)):
        delay = connected_delays(graph, k)
        if delay is not None and (isinstance(delay, jax.core.Tracer) or not bool(np.all(np.asarray(delay) > 0))):
            return False  # traced: inlined, as the plan reads it
    return True


def _run(net: Network, checked: SimulateArguments, settings: _Settings) -> SimulationResult:
    """`simulate` once its arguments are checked."""
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
            replays = replayed((leaves, checked.inputs), loops, states, net.populations, [loop.save_times for loop in loops])
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


# eager calls: one trace and one compilation per structure, shapes and settings
_run_compiled = eqx.filter_jit(_run)
