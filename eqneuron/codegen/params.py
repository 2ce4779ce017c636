"""Parameter values: the IR's symbolic defaults evaluated with the user's overrides.

Values are checked where they are known (compile time, population creation):
a parameter that is not finite, or that makes an expression of the model
infinite or undefined (`tmem = 0` in `dv/dt = -v / tmem`), is an `EqError`
naming the parameter, never a `ZeroDivisionError` or a silent NaN later.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp
from jaxtyping import Array, Float

from ..check import evaluate_defaults
from ..errors import EqError, Span, did_you_mean
from ..ir import ModelIR, normal, symbol, uniform

# parameter values by name: one for every neuron, or one per neuron
ParameterValues = Mapping[str, float | Float[Array, " neurons"] | Float[np.ndarray, " neurons"]]


def parameter_values(ir: ModelIR, overrides: ParameterValues | None = None) -> dict[str, float | Float[Array, " neurons"]]:
    """Default parameter values (dependent defaults follow overridden parameters)."""
    overrides = dict(overrides or {})
    unknown = [k for k in overrides if k not in ir.parameters]
    if unknown:
        raise EqError(
            f"`{unknown[0]}` is not a parameter of {ir.name}",
            hint=did_you_mean(unknown[0], ir.parameters) or f"parameters: {', '.join(ir.parameters)}",
        )
    for name, value in overrides.items():
        _check_finite(ir, name, value)
    scalars = {k: v for k, v in overrides.items() if np.ndim(v) == 0}
    symbolic = evaluate_defaults(ir.parameters, {k: sp.Float(float(v)) for k, v in scalars.items()})
    values: dict[str, float | Float[Array, " neurons"]] = {}
    for name in ir.parameters:
        if name in overrides and np.ndim(overrides[name]) > 0:
            values[name] = jnp.asarray(overrides[name])
            continue
        default = symbolic[symbol(name)]
        if default.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            raise EqError(
                f"the default of `{name}` is not finite with these parameter values",
                ir.parameters[name].span,
                ir.source,
                hint=f"`{name}` = {ir.parameters[name].default}: give it a value explicitly, "
                "or change the parameters it depends on",
            )
        try:
            values[name] = float(default)
        except TypeError:
            raise EqError(
                f"the default of `{name}` depends on a per-neuron parameter",
                ir.parameters[name].span,
                ir.source,
                hint=f"give `{name}` a value explicitly",
            ) from None
    check_parameter_values(ir, values)
    return values


def check_parameter_values(ir: ModelIR, values: dict) -> None:
    """Raise an `EqError` naming the parameter when a value makes the model meaningless.

    Checks that every value is finite and that every part of the model's
    expressions that depends on parameters alone (`1/tmem`, `log(tau)`,
    `sqrt(a)`) is finite.  Traced values (under `jit`) are not checked.
    """
    if any(isinstance(v, jax.core.Tracer) for v in values.values()):
        return
    for name, value in values.items():
        _check_finite(ir, name, value)
    nodes, evaluate = _parameter_subexpressions(ir)
    if not nodes:
        return
    arguments = [np.asarray(values[name], dtype=float) for name in ir.parameters]
    with np.errstate(all="ignore"):
        results = evaluate(*arguments)
    for (where, key, node), result in zip(nodes, results):
        if np.all(np.isfinite(result)):
            continue
        names = sorted(s.name for s in node.free_symbols)
        bad = ~np.isfinite(result)
        shown = ", ".join(f"`{n}` = {_show(values[n], bad)}" for n in names)
        raise EqError(
            f"parameter{'s' if len(names) > 1 else ''} {shown} makes `{sp.sstr(node)}` in {where} infinite or undefined",
            _location(ir, names, key),
            ir.source,
            hint=f"choose {' and '.join(f'`{n}`' for n in names)} so that `{sp.sstr(node)}` is finite "
            "(e.g. a time constant must not be 0)",
        )


def _location(ir: ModelIR, names: list[str], key: tuple[str, str]) -> Span:
    """Where to point for an expression `key` of the parameters `names` that is not finite: the
    first of those parameters defined in the model's own text, else the statement, else the
    first parameter where it was inherited from (`extends`)."""

    def own(span: Span | None) -> bool:
        if span is None:
            return False
        return span.source is None or (ir.source is not None and span.source.filename == ir.source.filename)

    for name in names:
        if own(ir.parameters[name].span):
            return ir.parameters[name].span
    statement = ir.statement_spans.get(key)
    if statement is not None and own(statement):
        return statement
    return ir.parameters[names[0]].span


def _check_finite(ir: ModelIR, name: str, value) -> None:
    if isinstance(value, jax.core.Tracer):
        return
    array = np.asarray(value)
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise EqError(
            f"parameter `{name}` must be a number or an array of numbers, got {type(value).__name__}",
            ir.parameters[name].span,
            ir.source,
            hint=f"pass `{name}` as a float (all neurons) or an array with one value per neuron",
        )
    if not np.all(np.isfinite(array)):
        raise EqError(
            f"parameter `{name}` = {_show(value, ~np.isfinite(array))} is not finite",
            ir.parameters[name].span,
            ir.source,
            hint=f"give `{name}` a finite value",
        )


def _show(value, bad) -> str:
    """A parameter's value where `bad` (a boolean array, or a scalar) first holds."""
    if np.ndim(value) == 0:
        return f"{float(value):g}"
    index = int(np.argmax(np.broadcast_to(bad, np.shape(value))))
    return f"{float(np.asarray(value).flat[index]):g} (neuron {index})"


_SUBEXPRESSIONS: dict[int, tuple] = {}


def _parameter_subexpressions(ir: ModelIR):
    """The parameter-only subexpressions of the model, innermost first, and one function
    evaluating them all with NumPy (built once per model)."""
    cached = _SUBEXPRESSIONS.get(id(ir))
    if cached is not None and cached[0] is ir:
        return cached[1], cached[2]
    params = {symbol(n) for n in ir.parameters}
    nodes, seen = [], set()
    for where, key, expr in _model_expressions(ir):
        for node in sp.postorder_traversal(sp.sympify(expr)):
            if (
                isinstance(node, sp.Expr)  # not the (value, condition) pairs of a Piecewise
                and not node.is_Symbol
                and not node.is_Number
                and node.free_symbols
                and node.free_symbols <= params
                and not node.has(normal, uniform)
                and node not in seen
            ):
                seen.add(node)
                nodes.append((where, key, node))
    evaluate = None
    if nodes:
        evaluate = sp.lambdify(
            [symbol(n) for n in ir.parameters], [node for _, _, node in nodes], modules=[_NUMPY_FUNCTIONS, "numpy"]
        )
    _SUBEXPRESSIONS[id(ir)] = (ir, nodes, evaluate)
    return nodes, evaluate


def _model_expressions(ir: ModelIR):
    """(where, key in `ir.statement_spans`, expression) for every expression evaluated at run time."""
    for name in ir.states:
        yield f"d{name}/dt", ("equations", name), ir.derivatives[name]
        yield f"the initial value of `{name}`", ("state", name), ir.initial[name]
    for name, expr in ir.subexpressions.items():
        yield f"`{name}`", ("equations", name), expr
    yield "the threshold", ("threshold", ""), ir.threshold
    for label, jump in (("reset", ir.reset), ("on_spike", ir.on_spike), ("on_input", ir.on_input)):
        for name, expr in jump.updates.items():
            yield f"{label} of `{name}`", (label, name), expr
    for port, jump in ir.ports.items():
        for name, expr in jump.updates.items():
            yield f"on_input {port} of `{name}`", (f"on_input {port}", name), expr
    for event in ir.events:
        yield f"the condition of event `{event.name}`", (f"event {event.name}", ""), event.condition
        for name, expr in event.reset.updates.items():
            yield f"event `{event.name}` of `{name}`", (f"event {event.name}", name), expr
    for name, expr in ir.weights.items():
        yield f"the initialiser of weight `{name}`", ("weights", name), expr
    if ir.refractory is not None:
        yield "refractory", ("refractory", ""), ir.refractory
    if ir.delay is not None:
        yield "delay", ("delay", ""), ir.delay


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


_NUMPY_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "sigmoid": _sigmoid,
    "softplus": lambda x: np.logaddexp(0.0, x),
    "relu": lambda x: np.maximum(x, 0.0),
    "Heaviside": lambda x, h0=0.5: np.heaviside(x, h0),
}
