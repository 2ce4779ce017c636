"""The checked model: every symbol classified, every expression in SymPy."""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from .errors import Source, Span


class sigmoid(sp.Function):  # noqa: N801 - the name users write
    """Logistic function 1 / (1 + exp(-x))."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))


class softplus(sp.Function):  # noqa: N801
    """log(1 + exp(x)), evaluated stably."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))


class relu(sp.Function):  # noqa: N801
    """max(x, 0)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.Heaviside(self.args[0])


class normal(sp.Function):  # noqa: N801 - a random draw in a weight initialiser
    nargs = 2


class uniform(sp.Function):  # noqa: N801
    nargs = 2


@dataclass(frozen=True)
class Parameter:
    name: str
    default: sp.Expr  # an expression of earlier parameters
    per_neuron: bool
    trainable: bool
    span: Span


@dataclass(frozen=True)
class Input:
    """An input waveform (`inputs:`): a function of time the population gives as samples."""

    name: str
    interpolation: str  # "linear" | "cubic"
    span: Span


INTERPOLATIONS = ("linear", "cubic")


@dataclass(frozen=True)
class Jump:
    """State updates of one event body: `variable -> new value` (reset) or increment (on_spike)."""

    updates: dict  # name -> sp.Expr
    text: tuple[str, ...]  # the source statements, for repr


@dataclass(frozen=True)
class InternalEvent:
    name: str
    condition: sp.Expr  # fires when this crosses zero upwards
    condition_text: str
    reset: Jump
    span: Span


@dataclass
class ModelIR:
    """Everything the code generator and the analyses need to know about a model."""

    name: str
    description: str
    source: Source
    parameters: dict[str, Parameter]
    states: tuple[str, ...]
    initial: dict[str, sp.Expr]
    derivatives: dict[str, sp.Expr]  # fully substituted: states, parameters, t
    subexpressions: dict[str, sp.Expr]  # fully substituted
    equation_text: tuple[str, ...]
    threshold: sp.Expr  # spike when this crosses zero upwards
    threshold_text: str
    reset: Jump
    on_spike: Jump  # increments; may use `X_pre` symbols and weight symbols
    on_input: Jump  # increments; may use `value` and weight symbols
    weights: dict[str, sp.Expr]  # initialiser expressions
    events: tuple[InternalEvent, ...] = ()
    refractory: sp.Expr | None = None
    delay: sp.Expr | None = None
    frozen_when_refractory: tuple[str, ...] = ()
    pre_symbols: tuple[str, ...] = field(default=())  # names X with X_pre used in on_spike
    # named input ports (`on_input NAME:`), in order; empty: the one default port `on_input`
    ports: dict[str, Jump] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)  # quantity -> its declared unit (files with units)
    # input waveforms (`inputs:`), in order; in expressions each is `input_function(name)(t)`
    inputs: dict[str, Input] = field(default_factory=dict)
    # where each statement was written, by (block, the name it defines or assigns; "" for a
    # condition or a duration): ("equations", "v") is `dv/dt = ...`, ("reset", "v") is `v = ...`
    statement_spans: dict[tuple[str, str], Span] = field(default_factory=dict)

    @property
    def trainable(self) -> tuple[str, ...]:
        return tuple(name for name, p in self.parameters.items() if p.trainable)


T = sp.Symbol("t", real=True)
VALUE = sp.Symbol("value", real=True)
FAN_IN = sp.Symbol("fan_in", positive=True)


def symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def pre_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(f"{name}_pre", real=True)


def input_function(name: str) -> sp.FunctionClass:
    """The undefined function `I(t)` an input waveform `I` is in expressions: the analyses see that it
    depends on time (no closed form), the code generator evaluates the interpolation at `t`."""
    return sp.Function(name, real=True)


def pre_input_function(name: str) -> sp.FunctionClass:
    """The firing neuron's input `I_pre(t)` in `on_spike` (per-neuron waveforms differ by neuron)."""
    return sp.Function(f"{name}_pre", real=True)


def input_calls(expr: sp.Basic) -> set:
    """The inputs `I(t)` (and `I_pre(t)`) an expression uses."""
    return {f for f in sp.sympify(expr).atoms(sp.core.function.AppliedUndef)}
