"""The functions and constants of the `.eq` language, as SymPy builders.

A builder evaluates what it can on numbers (`relu(5)` is `5`), so that
`min`, `max` and `clip` can compare constants; everything else stays
symbolic for the analyses and the code generator.
"""

from __future__ import annotations

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from ..ir import normal, relu, sigmoid, softplus, uniform

# below this |x|, exprel uses its Taylor series (error x**3/24: 4e-14 at 1e-4)
_EXPREL_SERIES_BELOW = 1e-4


def _array_function(printer, name: str) -> str:
    """`numpy.name` / `jax.numpy.name` as the printer in use spells it."""
    return printer._module_format(f"{printer._module}.{name}")


class exprel(sp.Function):  # noqa: N801 - the name users write
    """(exp(x) - 1) / x, with its limit 1 at x = 0 (Brian2's `exprel`)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_number:
            if x.is_zero:
                return sp.Integer(1)
            if x.is_zero is False:
                return (sp.exp(x) - 1) / x
        return None  # not a number: stays `exprel(x)`

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        x = self.args[0]
        return sp.Piecewise((sp.Rational(1, 2), sp.Eq(x, 0)), ((sp.exp(x) - exprel(x)) / x, True))

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.Piecewise((1, sp.Eq(x, 0)), ((sp.exp(x) - 1) / x, True))

    def _array_code(self, printer):
        # `where` twice, so that neither the value nor the gradient divides by 0
        where, absolute = _array_function(printer, "where"), _array_function(printer, "abs")
        x = f"({printer._print(self.args[0])})"
        small = f"{absolute}({x}) < {_EXPREL_SERIES_BELOW!r}"
        safe = f"{where}({small}, 1.0, {x})"
        series = f"1.0 + {x}/2 + {x}**2/6"
        return f"{where}({small}, {series}, {_array_function(printer, 'expm1')}({safe}) / {safe})"

    _numpycode = _array_code
    _jaxcode = _array_code


class heaviside(sp.Function):  # noqa: N801
    """1 where x > 0, else 0; its derivative is 0 (as JAX differentiates it)."""

    nargs = 1

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_extended_positive:
            return sp.Integer(1)
        if x.is_extended_nonpositive:
            return sp.Integer(0)
        return None  # the sign is unknown: stays `heaviside(x)`

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.Integer(0)

    def _array_code(self, printer):
        return f"{_array_function(printer, 'heaviside')}({printer._print(self.args[0])}, 0.0)"

    _numpycode = _array_code
    _jaxcode = _array_code


def _numeric(builder, elementary):
    """`builder(x)`, or its elementary form when `x` is a number (so that it compares)."""
    return lambda x: elementary(x) if x.is_number else builder(x)


def _clip(x, lo, hi):
    return sp.Min(sp.Max(x, lo), hi)


def _where(cond, a, b):
    if cond is sp.true:
        return a
    if cond is sp.false:
        return b
    return sp.Piecewise((a, cond), (b, True))


# name -> (allowed argument counts, builder); None = any count >= 2
FUNCTIONS = {
    "exp": ((1,), sp.exp),
    "log": ((1,), sp.log),
    "sqrt": ((1,), sp.sqrt),
    "abs": ((1,), sp.Abs),
    "sin": ((1,), sp.sin),
    "cos": ((1,), sp.cos),
    "tan": ((1,), sp.tan),
    "tanh": ((1,), sp.tanh),
    "sinh": ((1,), sp.sinh),
    "cosh": ((1,), sp.cosh),
    "log1p": ((1,), _numeric(log1p, lambda x: sp.log(1 + x))),
    "expm1": ((1,), _numeric(expm1, lambda x: sp.exp(x) - 1)),
    "exprel": ((1,), exprel),
    "heaviside": ((1,), heaviside),
    "sigmoid": ((1,), _numeric(sigmoid, lambda x: 1 / (1 + sp.exp(-x)))),
    "softplus": ((1,), _numeric(softplus, lambda x: sp.log(1 + sp.exp(x)))),
    "relu": ((1,), _numeric(relu, lambda x: sp.Max(x, 0))),
    "min": (None, sp.Min),
    "max": (None, sp.Max),
    "clip": ((3,), _clip),
    "where": ((3,), _where),
}
RANDOM_FUNCTIONS = {"normal": ((2,), normal), "uniform": ((2,), uniform)}
CONSTANTS = {"pi": sp.pi, "e": sp.E, "inf": sp.oo}

SIGNATURES = {
    "clip": "clip(x, lo, hi)",
    "where": "where(condition, value_if_true, value_if_false)",
    "min": "min(a, b, ...)",
    "max": "max(a, b, ...)",
    "normal": "normal(mean, std)",
    "uniform": "uniform(lo, hi)",
}
