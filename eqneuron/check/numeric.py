"""Evaluate a constant SymPy expression the way the generated float64 code would.

SymPy's own `evalf` is exact, so `exp(exp(exp(20)))` makes it work with
numbers of billions of digits; here every operation is one float64
operation, and an overflow is reported instead of computed.
"""

from __future__ import annotations

import math

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from ..ir import relu, sigmoid, softplus
from .functions import exprel, heaviside


class NotReal(ArithmeticError):
    """The value is complex (`log(-1)`, `(-8)**0.5`)."""


class Overflow(ArithmeticError):
    """A finite operation whose float64 result is infinite (`exp(1000)`)."""


class Unknown(ValueError):
    """An expression this evaluator does not know how to compute."""


def float_value(expr: sp.Basic, values: dict | None = None) -> float:
    """The float64 value of `expr` with symbols from `values`; raises `NotReal`, `Overflow` or `Unknown`."""
    if expr.is_Symbol:
        if values is None or expr not in values:
            raise Unknown(expr.name)
        return values[expr]
    if expr.is_Number or expr in (sp.oo, -sp.oo, sp.nan):
        try:
            return float(expr)
        except OverflowError:
            raise Overflow from None
    if expr is sp.pi or expr is sp.E:
        return float(expr)
    if expr is sp.zoo:
        return math.nan
    if expr is sp.I:
        raise NotReal
    if expr.is_Add:
        return _finite(sum, [float_value(a, values) for a in expr.args])
    if expr.is_Mul:
        return _finite(math.prod, [float_value(a, values) for a in expr.args])
    if expr.is_Pow:
        return _power(float_value(expr.base, values), float_value(expr.exp, values))
    if isinstance(expr, sp.Piecewise):
        for value, condition in expr.args:
            if _truth(condition, values):
                return float_value(value, values)
        return math.nan
    if isinstance(expr, sp.Min | sp.Max):
        candidates = [float_value(a, values) for a in expr.args]
        return min(candidates) if isinstance(expr, sp.Min) else max(candidates)
    function = _FUNCTIONS.get(type(expr))
    if function is None or len(expr.args) != 1:
        raise Unknown(type(expr).__name__)
    return function(float_value(expr.args[0], values))


def _finite(operation, values):
    result = operation(values)
    if math.isinf(result) and all(math.isfinite(v) for v in values):
        raise Overflow
    return result


def _power(base: float, exponent: float) -> float:
    if base < 0 and math.isfinite(exponent) and not exponent.is_integer():
        raise NotReal
    if base == 0 and exponent < 0:
        return math.inf
    try:
        return math.pow(base, exponent)
    except OverflowError:
        raise Overflow from None
    except ValueError:
        return math.nan


def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        raise Overflow from None


def _log(x: float) -> float:
    if x < 0:
        raise NotReal
    return -math.inf if x == 0 else math.log(x)


def _periodic(function):
    def evaluate(x: float) -> float:
        return function(x) if math.isfinite(x) else math.nan

    return evaluate


def _hyperbolic(function):
    def evaluate(x: float) -> float:
        try:
            return function(x)
        except OverflowError:
            raise Overflow from None

    return evaluate


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1 / (1 + math.exp(-x))
    return math.exp(x) / (1 + math.exp(x))


def _softplus(x: float) -> float:
    return max(x, 0.0) + math.log1p(math.exp(-abs(x))) if not math.isnan(x) else x


def _exprel(x: float) -> float:
    return 1.0 if x == 0 else _hyperbolic(math.expm1)(x) / x


def _log1p(x: float) -> float:
    if x < -1:
        raise NotReal
    return -math.inf if x == -1 else math.log1p(x)


_FUNCTIONS = {
    sp.exp: _exp,
    sp.log: _log,
    sp.sin: _periodic(math.sin),
    sp.cos: _periodic(math.cos),
    sp.tan: _periodic(math.tan),
    sp.tanh: math.tanh,
    sp.sinh: _hyperbolic(math.sinh),
    sp.cosh: _hyperbolic(math.cosh),
    sp.Abs: abs,
    log1p: _log1p,
    expm1: _hyperbolic(math.expm1),
    exprel: _exprel,
    heaviside: lambda x: 1.0 if x > 0 else 0.0,
    sp.Heaviside: lambda x: 1.0 if x > 0 else 0.5 if x == 0 else 0.0,
    sigmoid: _sigmoid,
    softplus: _softplus,
    relu: lambda x: max(x, 0.0),
}

_COMPARISONS = {
    sp.StrictGreaterThan: lambda a, b: a > b,
    sp.GreaterThan: lambda a, b: a >= b,
    sp.StrictLessThan: lambda a, b: a < b,
    sp.LessThan: lambda a, b: a <= b,
    sp.Equality: lambda a, b: a == b,
    sp.Unequality: lambda a, b: a != b,
}


def _truth(condition, values) -> bool:
    if condition is sp.true or condition is True:
        return True
    if condition is sp.false or condition is False:
        return False
    if isinstance(condition, sp.And):
        return all(_truth(c, values) for c in condition.args)
    if isinstance(condition, sp.Or):
        return any(_truth(c, values) for c in condition.args)
    if isinstance(condition, sp.Not):
        return not _truth(condition.args[0], values)
    compare = _COMPARISONS.get(type(condition))
    if compare is None:
        raise Unknown(type(condition).__name__)
    return compare(float_value(condition.lhs, values), float_value(condition.rhs, values))
