"""The arguments of `simulate`, checked before anything is traced or run.

Values known in Python (outside `jit`, or static under it) are checked here
and raise an `EqError` naming the argument.  Values that are traced (under
`jit` or `vmap`: input spikes, `t1`, `save_at`) are checked at run time: the
result is `invalid`, a traced boolean that `simulate` turns into the result
code `RESULTS.invalid_arguments` of every population (raised with
`throw=True`).  A host callback (`eqx.error_if`) in every compiled simulation
would keep JAX's persistent compilation cache from storing it.

Documented behaviours (not errors): input spikes with `time = inf` are padding
(their channel may be anything); input spikes after `t1` are ignored; `save_at`
in any order (the states are returned in the order given).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from jaxtyping import Array, ArrayLike, Float, Int

from ..errors import EqError
from ..ir import symbol
from ..network import Network, Population, Spikes, default_dtype
from .config import METHODS
from .graph import per_synapse


class SimulateArguments(NamedTuple):
    """What `check_simulate_arguments` returns: the arguments ready for the engine."""

    inputs: Spikes | None  # the input spikes
    t1: float | jax.Array  # the end time
    save_at: jax.Array | None  # (n_save,) the save times in ascending order
    restore_order: jax.Array | None  # (n_save,) int: `sorted_states[restore_order]` is in the user's order;
    # None when `save_at` is None or already ascending
    invalid: jax.Array | None = None  # traced: True when a traced argument fails its check


def check_simulate_arguments(
    net: Network | Population,
    inputs: Spikes | None,
    t1: float | Float[Array, ""],
    max_spikes: int,
    save_at: Float[ArrayLike, " saves"] | None,
    method: str,
    rtol: float | None,
    atol: float | None,
    dt: float | None,
    root_tol: float | None,
    max_solver_steps: int,
    max_spikes_per_neuron: int | None,
) -> SimulateArguments:
    """Check the arguments of `simulate`; return the inputs, `t1` and `save_at` to use.

    `check_simulate_arguments(net, inputs, t1, max_spikes, save_at, method, rtol,
    atol, dt, root_tol, max_solver_steps, max_spikes_per_neuron) -> SimulateArguments`

    **Arguments:** those of `simulate`, with the same meaning.  `net` is a
    `Network` or a `Population`.

    **Returns:** `SimulateArguments(inputs, t1, save_at, restore_order)`:

    - `inputs`: `None` or the `Spikes` (same values), carrying the run-time checks
      when traced;
    - `t1`: as given, carrying its run-time check when traced;
    - `save_at`: `None`, or a 1-D array of the default float dtype sorted ascending;
    - `restore_order`: `None` (no reordering needed), or integer indices such that
      `states_sorted[restore_order]` (along the time axis) is in the user's order.

    **Raises** `EqError` (naming the argument, what was expected and a hint) for
    concrete values; traced ones set `invalid`.

    Checks: `net` a Network or Population; `t1` finite and > 0; `max_spikes` an
    int >= 1; `save_at` 1-D, non-empty, finite and within [0, t1]; input spike
    times not NaN and not negative (inf is padding, times after `t1` are ignored);
    channels of every finite-time input in 0..K-1 (K the first population's
    `in_size`), and inputs given to a first population with `in_size=0` an error;
    input values finite; `method` one of `METHODS`; `rtol`, `atol`, `root_tol`,
    `dt` finite and > 0 when given (0 is an error, not "the default");
    `max_solver_steps` an int >= 1; `max_spikes_per_neuron` None or an int >= 1.
    """
    net = _check_net(net)
    _check_static_options(max_spikes, method, rtol, atol, dt, root_tol, max_solver_steps, max_spikes_per_neuron)
    failed: list[jax.Array] = []  # traced conditions, each True when its check fails
    t1 = _check_t1(t1, failed)
    inputs = _check_inputs(inputs, net.populations[net.input].in_size, failed)
    save_times, restore_order = _prepare_save_at(save_at, t1, failed)
    invalid = jnp.any(jnp.stack([jnp.asarray(f) for f in failed])) if failed else None
    return SimulateArguments(inputs, t1, save_times, restore_order, invalid)


# ---------------------------------------------------------------------------
# options known in Python (static under jit)


def _check_net(net) -> Network:
    if isinstance(net, Population):
        net = Network([net])
    if not isinstance(net, Network):
        raise EqError(
            f"simulate: `net` must be a Network or a Population, got {type(net).__name__}",
            hint="build one with model.population(...) and eqn.Network([...])",
        )
    _check_unweighted_jumps(net)
    return net


def _unweighted_jump(jump, weight_names) -> str | None:
    """The first increment of `jump` that is not zero when every weight is zero (None: none)."""
    zero = {symbol(w): sp.Integer(0) for w in weight_names}  # the model's own symbols
    for state, increment in jump.updates.items():
        if sp.simplify(sp.sympify(increment).xreplace(zero)) != 0:
            return f"{state} += {increment}"
    return None


def _check_unweighted_jumps(net: Network) -> None:
    """Refuse what the engine would simulate wrongly: a jump that does not scale with the weight
    (`c += 1`) through masked or sparse connections, where the engine applies it to every neuron.
    Honoured: a graph's populations on their own clocks (each neuron passes over the spikes that
    do not reach it, `graph_layout.loop_inputs`)."""
    for k, pop in enumerate(net.populations):
        name = net.names[k]
        sparse_inputs = pop.wmask is not None and (not net.graph or pop.recurrent)
        if net.graph and pop.recurrent:  # a shared clock: every input spike reaches every neuron
            # (a projection with per-synapse delays: each of its input spikes reaches one neuron)
            sparse_inputs = sparse_inputs or any(
                proj.target == name and (proj.mask is not None or proj.targets is not None or per_synapse(proj))
                for proj in net.projections
            )
        if not sparse_inputs and not (pop.recurrent and pop.wmask is not None):
            continue  # nothing masked: the jumps are not read (SymPy only where they matter)
        ir, weights = pop.model.ir, pop.model.weight_names
        on_input = next(filter(None, (_unweighted_jump(j, weights) for j in [ir.on_input, *ir.ports.values()])), None)
        on_spike = _unweighted_jump(ir.on_spike, weights) if pop.recurrent else None
        delayed = pop.recurrent and pop.model.fn.delay_raw is not None  # its own spikes arrive as inputs
        problem = None
        if sparse_inputs and on_input:
            problem = f"its input jump `{on_input}`"
        elif pop.recurrent and pop.wmask is not None and (on_spike or (delayed and on_input)):
            problem = f"its jump `{on_spike or on_input}`"
        if problem:
            raise EqError(
                f"simulate: population {name!r} has masked or sparse connections, and {problem} does not scale "
                "with the weight: it would reach every neuron, connected or not (not simulated yet)",
                hint="multiply the jump by a weight (e.g. `c += w`), or drop the mask",
            )


def _check_static_options(max_spikes, method, rtol, atol, dt, root_tol, max_solver_steps, max_spikes_per_neuron):
    _check_int("max_spikes", max_spikes, "the size of the spike buffer, e.g. max_spikes=512")
    _check_int("max_solver_steps", max_solver_steps, "the most solver steps of one segment, e.g. 16384")
    if max_spikes_per_neuron is not None:
        _check_int(
            "max_spikes_per_neuron",
            max_spikes_per_neuron,
            "the most spikes one neuron may fire, or None for min(max_spikes, 64)",
        )
    if not isinstance(method, str) or method not in METHODS:
        raise EqError(
            f"simulate: unknown `method` {method!r}",
            hint=f"choose one of {', '.join(METHODS)}",
        )
    for name, value in (("rtol", rtol), ("atol", atol), ("root_tol", root_tol), ("dt", dt)):
        if value is not None:
            _check_positive_float(name, value)


def _check_int(name: str, value, hint: str):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise EqError(f"simulate: `{name}` must be an int >= 1, got {value!r}", hint=hint)
    if value < 1:
        raise EqError(f"simulate: `{name}` must be an int >= 1, got {value}", hint=hint)


def _check_positive_float(name: str, value):
    defaults = "leave it out (None) for the default"
    if isinstance(value, jax.core.Tracer):
        raise EqError(
            f"simulate: `{name}` must be a Python number, not a traced array",
            hint=f"it configures the solver, which is fixed when compiled: pass a float, or {defaults}",
        )
    number = _as_float(name, value, defaults)
    if not (math.isfinite(number) and number > 0):
        raise EqError(f"simulate: `{name}` must be finite and > 0, got {number:g}", hint=defaults)


def _as_float(name: str, value, hint: str) -> float:
    if isinstance(value, (bool, np.bool_, str)) or np.ndim(value) != 0:
        raise EqError(f"simulate: `{name}` must be a number, got {value!r}", hint=hint)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise EqError(f"simulate: `{name}` must be a number, got {value!r}", hint=hint) from None


# ---------------------------------------------------------------------------
# values that may be traced


def _concrete(*values) -> bool:
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree_util.tree_leaves(values))


def _check_t1(t1, failed: list):
    if np.ndim(t1) != 0:
        raise EqError(f"simulate: `t1` must be a scalar, got shape {np.shape(t1)}", hint="the end time in ms, e.g. t1=100.0")
    if _concrete(t1):
        number = _as_float("t1", t1, "the end time in ms, e.g. t1=100.0")
        if not (math.isfinite(number) and number > 0):
            raise EqError(f"simulate: `t1` must be finite and > 0, got {number:g}", hint="the end time in ms, e.g. t1=100.0")
        return t1
    failed.append(~(jnp.isfinite(t1) & (t1 > 0)))  # `t1` must be finite and > 0
    return t1


def _check_inputs(inputs, in_size: int, failed: list):
    if inputs is None:
        return None
    if not isinstance(inputs, Spikes):
        raise EqError(
            f"simulate: `inputs` must be Spikes or None, got {type(inputs).__name__}",
            hint="eqn.Spikes(times=..., channels=...)",
        )
    if in_size == 0:
        raise EqError(
            "simulate: `inputs` were given, but the first population has in_size=0 (no input channels)",
            hint="create it with model.population(n, in_size=K, ...) or pass inputs=None",
        )
    if inputs.times.ndim != 1:
        raise EqError(
            f"simulate: `inputs.times` must be 1-D (one sample), got shape {inputs.times.shape}",
            hint="simulate a batch with jax.vmap(lambda s: simulate(net, s, ...))(inputs)",
        )
    concrete = _concrete(inputs)
    xp = np if concrete else jnp  # concrete values are checked in NumPy (also while `jit` traces)
    times: jax.Array | np.ndarray = inputs.times
    channels: jax.Array | np.ndarray = inputs.channels
    values: jax.Array | np.ndarray | None = inputs.values
    if concrete:
        times, channels = np.asarray(times), np.asarray(channels)
        values = None if values is None else np.asarray(values)
    spikes = xp.isfinite(times)  # inf is padding
    checks = [
        (
            xp.isnan(times),
            "simulate: `inputs.times` contains NaN",
            "unused entries have time = inf; times after t1 are ignored",
        ),
        (
            times < 0,
            "simulate: `inputs.times` contains negative times",
            "input times are in ms from t = 0; unused entries have time = inf",
        ),
        (
            spikes & ((channels < 0) | (channels >= in_size)),
            f"simulate: `inputs.channels` must be in 0..{in_size - 1} (the first population's in_size={in_size})",
            "entries with time = inf (padding) may have any channel",
        ),
    ]
    if values is not None:
        checks.append(
            (
                spikes & ~xp.isfinite(values),
                "simulate: `inputs.values` must be finite where the time is finite",
                "give finite values, or leave `values` out (every value is then 1)",
            )
        )
    if concrete:
        for bad, message, hint in checks:
            bad = np.asarray(bad)
            if np.any(bad):
                index = int(np.argmax(bad))
                where = f"entry {index} has time {float(times[index]):g} and channel {int(channels[index])}"
                raise EqError(f"{message}: {where}", hint=hint)
        return inputs
    failed.extend(jnp.any(bad) for bad, _, _ in checks)
    return inputs


def _sorted_save_at(times: np.ndarray, t1: float) -> tuple[jax.Array, jax.Array | None]:
    """Concrete save times checked and sorted, and the order that restores the given one (None: sorted)."""
    hint = "save times are in ms within [0, t1]"
    if not np.all(np.isfinite(times)):
        raise EqError("simulate: `save_at` must be finite", hint=hint)
    outside = (times < 0) | (times > t1)
    if np.any(outside):
        bad = float(times[np.argmax(outside)])
        raise EqError(f"simulate: `save_at` must be within [0, t1] = [0, {t1:g}], got {bad:g}", hint=hint)
    if np.all(np.diff(times) >= 0):
        return jnp.asarray(times), None
    order = np.argsort(times, kind="stable")
    return jnp.asarray(times[order]), jnp.asarray(np.argsort(order), dtype=jnp.int32)


def _prepare_save_at(
    save_at: Float[ArrayLike, " saves"] | None, t1: float | Float[Array, ""], failed: list[jax.Array]
) -> tuple[Float[Array, " saves"] | None, Int[Array, " saves"] | None]:
    if save_at is None:
        return None, None
    if np.ndim(save_at) != 1 or np.shape(save_at)[0] == 0:
        raise EqError(
            f"simulate: `save_at` must be a non-empty 1-D array of times, got shape {np.shape(save_at)}",
            hint="e.g. save_at=jnp.linspace(0, t1, 101), or None to save nothing",
        )
    dtype = default_dtype()
    if _concrete(save_at, t1):
        return _sorted_save_at(np.asarray(save_at, dtype=dtype), float(t1))
    times = jnp.asarray(save_at, dtype)
    failed.append(~jnp.all(jnp.isfinite(times)))  # `save_at` must be finite
    failed.append(jnp.any((times < 0) | (times > t1)))  # `save_at` must be within [0, t1]
    order = jnp.argsort(times, stable=True)
    return times[order], jnp.argsort(order).astype(jnp.int32)
