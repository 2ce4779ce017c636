"""`simulate`: a network of populations from t = 0 to t1, differentiable through spike times.

This module is the entry point: it checks the arguments (`validate.py`) and
decides whether the run is traced into the caller's program or compiled as
one program of its own, cached by structure, shapes and settings.  The run
itself is planned in `run.py`: each population by the population loop
(`loop.py`) with the clock its coupling needs and the integrator its model
and the chosen method give (`strategies.py`), a graph network in windows
(`graph_run.py`) or event-driven (`event_windows.py`), reverse mode through
the custom VJPs of `reverse_mode.py`; the result is collected by `result.py`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ..compilation_cache import committed
from ..errors import EqError
from ..network import Network, Population, Spikes
from .adjoint import check_adjoint
from .graph import as_graph, connected_delays, needs_graph
from .progress import progress_meter
from .result import SimulationResult, warn_if_concrete
from .run import Settings, run
from .strategies import clock_for
from .validate import SimulateArguments, check_simulate_arguments


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
    settings = Settings(
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
        result = run(network, checked, settings)
    warn_if_concrete(result, max_spikes)
    return result


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


# eager calls: one trace and one compilation per structure, shapes and settings
_run_compiled = eqx.filter_jit(run)
