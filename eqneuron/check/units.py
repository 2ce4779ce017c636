"""Physical units (Brian2 style, all-or-nothing per file): dimensions checked, scale factors inserted.

A file that writes `: unit` after any declaration declares a unit for every
quantity (parameters, state variables, subexpressions, weights). Each
quantity is then computed in the unit declared for it, times in ms, so
the rest of the pipeline sees plain numbers: this stage checks the
dimensions of every equation, condition, jump and initialiser and rewrites
the syntax tree, replacing unit names in expressions (`-70*mV`) by 1 and
multiplying by the exact factor between two units of one dimension where
they meet (`R*I` with R in Mohm and I in pA is 1e-3 mV). Units, their
dimensions and their scales come from SymPy's `physics.units`.

A literal `0` or `inf` fits every unit; any other number is dimensionless,
except as the whole value of a constant declaration, which is read in the
declared unit (`tau = 20 : ms`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from dataclasses import dataclass, replace

import sympy as sp
from sympy.physics import units as u
from sympy.physics.units.prefixes import PREFIXES
from sympy.physics.units.systems.si import SI, dimsys_SI

from ..errors import EqError, Source, Span, did_you_mean, printable_line
from ..lang import syntax as S
from .functions import FUNCTIONS, RANDOM_FUNCTIONS

# ---- units and their names -----------------------------------------------------

Dimension = tuple[tuple[str, sp.Rational], ...]  # base dimension -> power, sorted; () is dimensionless


@dataclass(frozen=True)
class Unit:
    """A physical unit: its dimension and its size in SymPy's SI base units."""

    dimension: Dimension
    scale: sp.Rational
    text: str

    @staticmethod
    def of(quantity: u.Quantity) -> Unit:
        dependencies = dimsys_SI.get_dimensional_dependencies(SI.get_quantity_dimension(quantity))
        dimension = tuple(sorted((str(d.name), sp.Rational(p)) for d, p in dependencies.items()))
        return Unit(dimension, sp.Rational(SI.get_quantity_scale_factor(quantity)), str(quantity.abbrev))

    @property
    def dimensionless(self) -> bool:
        return not self.dimension

    def named(self, text: str) -> Unit:
        return replace(self, text=text)

    def __mul__(self, other: Unit) -> Unit:
        return Unit(
            _combine(self.dimension, other.dimension, 1),
            self.scale * other.scale,
            _product(self.text, other.text),
        )

    def __truediv__(self, other: Unit) -> Unit:
        text = self.text if other.text == "1" else f"{self.text}/{_wrap(other.text)}"
        return Unit(_combine(self.dimension, other.dimension, -1), self.scale / other.scale, text)

    def __pow__(self, power: sp.Rational) -> Unit:
        return Unit(_combine((), self.dimension, power), self.scale**power, f"{_wrap(self.text)}**{power}")


def _combine(a: Dimension, b: Dimension, power) -> Dimension:
    powers = dict(a)
    for name, p in b:
        powers[name] = powers.get(name, 0) + power * p
    return tuple(sorted((name, p) for name, p in powers.items() if p != 0))


def _wrap(text: str) -> str:
    return f"({text})" if any(c in text for c in "*/") else text


def _product(a: str, b: str) -> str:
    return "*".join(t for t in (a, b) if t != "1") or "1"


DIMENSIONLESS = Unit((), sp.Integer(1), "1")

# long name, short symbol (one letter: not a name of its own), quantity, prefixes (Brian2's `u` is micro)
_BASE_UNITS = (
    ("volt", "V", u.volt, "num"),
    ("amp", "A", u.ampere, "fpnum"),
    ("ampere", "A", u.ampere, ""),
    ("siemens", "S", u.siemens, "pnum"),
    ("farad", "F", u.farad, "fpnum"),
    ("ohm", "ohm", u.ohm, "kMG"),
    ("second", "s", u.second, "num"),
    ("hertz", "Hz", u.hertz, "kM"),
    ("metre", "m", u.meter, "cmun"),
    ("meter", "m", u.meter, "cmun"),
    ("mole", "mol", u.mole, "mun"),
    ("molar", "M", (u.mole, u.liter), "mun"),
    ("coulomb", "C", u.coulomb, "pnum"),
)
_PREFIX_KEYS = {"u": "mu"}


@functools.cache
def unit_names() -> dict[str, Unit]:
    """Every unit name a model may write: `mV`, `mvolt`, `nS`, `pF`, `Mohm`, `ms`, `Hz`, ..."""
    table: dict[str, Unit] = {}
    for long, short, quantity, prefixes in _BASE_UNITS:
        base = (
            Unit.of(quantity[0]) / Unit.of(quantity[1]) if isinstance(quantity, tuple) else Unit.of(quantity)
        )
        table[long] = base.named(long)
        if len(short) > 1:
            table[short] = base.named(short)
        for letter in prefixes:
            prefix = PREFIXES[_PREFIX_KEYS.get(letter, letter)]
            scaled = replace(base, scale=base.scale * prefix.scale_factor)
            for name in {letter + long, letter + short}:
                table[name] = scaled.named(name)
    return table


MS = unit_names()["ms"]  # the unit of time: `t`, `d/dt`, refractory periods and delays

# ---- dimensions in words -----------------------------------------------------------

_NAMED_DIMENSIONS = (
    ("voltage", u.volt),
    ("current", u.ampere),
    ("time", u.second),
    ("capacitance", u.farad),
    ("conductance", u.siemens),
    ("resistance", u.ohm),
    ("charge", u.coulomb),
    ("length", u.meter),
    ("amount of substance", u.mole),
    ("mass", u.gram),
    ("temperature", u.kelvin),
)


@functools.cache
def _dimension_words() -> dict[Dimension, str]:
    named = {Unit.of(quantity).dimension: word for word, quantity in _NAMED_DIMENSIONS}
    units = {word: Unit(dimension, sp.Integer(1), "") for dimension, word in named.items()}
    words = dict(named)
    for word, a in units.items():
        words.setdefault((DIMENSIONLESS / a).dimension, f"1/{word}")
        words.setdefault((a ** sp.Integer(2)).dimension, f"{word}**2")
    for (word_a, a), (word_b, b) in itertools.permutations(units.items(), 2):
        words.setdefault((a / b).dimension, f"{word_a}/{word_b}")
        words.setdefault((a * b).dimension, f"{word_a}*{word_b}")
    return words


def dimension_name(dimension: Dimension) -> str:
    """`voltage`, `voltage/time`, `dimensionless`, or the SI base dimensions."""
    if not dimension:
        return "dimensionless"
    word = _dimension_words().get(dimension)
    if word is not None:
        return word
    return "*".join(name if p == 1 else f"{name}**{p}" for name, p in dimension)


def describe(unit: Unit) -> str:
    """`voltage (mV)`, `voltage/time (mV/ms)`, `dimensionless`."""
    name = dimension_name(unit.dimension)
    return name if unit.text in ("1", "") else f"{name} ({unit.text})"


# ---- the rewrite -------------------------------------------------------------------


@dataclass(frozen=True)
class UnitResolution:
    """The syntax tree with units resolved, the unit of each quantity, and names left to the checker."""

    model: S.ModelSyntax
    units: dict[str, str]  # quantity -> its unit as written
    unresolved: tuple[tuple[str, Span], ...] = ()

    def require_resolved(self) -> None:
        """Every name got a unit: one that did not (and that the checker accepted) is an error, never skipped."""
        if self.unresolved:
            what, span = self.unresolved[0]
            raise EqError(
                f"cannot tell the unit of `{what}`",
                span,
                self.model.source,
                hint="units are checked for quantities, `t`, the constants and the functions of docs/language.md",
            )


@dataclass(frozen=True)
class _Typed:
    """A rewritten expression and its unit."""

    expr: S.Expr
    unit: Unit | None  # None: an unknown name or function, reported by the checker
    loose: bool = False  # a literal 0 or inf: the same value in every unit
    named: bool = False  # mentions a quantity, `t` or a unit, not only numbers


MAX_UNIT_POWER = 8  # mV**8 is 1e-24 V**8: beyond, exact scales grow without use
_DIMENSIONLESS_FUNCTIONS = {
    "exp",
    "log",
    "sin",
    "cos",
    "tan",
    "tanh",
    "sinh",
    "cosh",
    "log1p",
    "expm1",
    "exprel",
    "sigmoid",
    "softplus",
}
_SAME_UNIT_FUNCTIONS = {"abs", "relu", "min", "max", "clip", "normal", "uniform"}
_DIMENSIONLESS_BUILTINS = {"pi", "e", "fan_in", "value"}
_KNOWN_SYNTAX_FIELDS = {"source", "name", "name_span", "description", "blocks", "events", "ports", "extends"}
_TIME_BLOCKS = {"refractory": "the refractory period", "delay": "the delay"}
_CONDITION_BLOCKS = {"threshold"}


def resolve_units(model: S.ModelSyntax) -> UnitResolution:
    """Check the dimensions of a model that uses units and rewrite it in plain numbers."""
    return _UnitPass(model).run()


class _UnitPass:
    def __init__(self, model: S.ModelSyntax):
        self.model = model
        self.source: Source = model.source
        self.quantities: dict[str, Unit] = {}
        self.unresolved: list[tuple[str, Span]] = []

    def error(self, message: str, span: Span | None, hint: str | None = None) -> EqError:
        return EqError(message, span, self.source, hint=hint)

    # ---- which quantities have which unit
    def run(self) -> UnitResolution:
        annotated = [
            (st, st.unit)
            for block in self.model.blocks.values()
            for st in block.statements
            if getattr(st, "unit", None) is not None
        ]
        if not annotated:
            self._reject_unit_names()
            return UnitResolution(self.model, {})
        unknown = {f.name for f in dataclasses.fields(self.model)} - _KNOWN_SYNTAX_FIELDS
        if unknown:
            raise self.error(
                f"units are not checked in {', '.join(sorted(unknown))} yet",
                annotated[0][1].span,
                hint="remove the unit annotations from this file",
            )
        first = annotated[0][1]
        self._declare(f"`: {self._text(first)}` at line {first.span.line}")
        blocks = {
            keyword: replace(block, statements=tuple(self._statement(st, keyword) for st in block.statements))
            for keyword, block in self.model.blocks.items()
        }
        events = [
            replace(
                ev,
                condition=self._condition(ev.condition),
                body=tuple(self._statement(st, f"event {ev.name}") for st in ev.body),
            )
            for ev in self.model.events
        ]
        ports = [replace(port, body=tuple(self._statement(st, "on_input") for st in port.body)) for port in self.model.ports]
        rewritten = replace(self.model, blocks=blocks, events=events, ports=ports)
        units = {name: unit.text for name, unit in self.quantities.items()}
        return UnitResolution(rewritten, units, tuple(self.unresolved))

    def _declare(self, first_use: str):
        """The unit of every quantity; all-or-nothing."""
        declarations = [
            *self.model.statements("parameters"),
            *self.model.statements("state"),
            *self.model.statements("equations"),
            *self.model.statements("weights"),
            *self.model.statements("inputs"),
        ]
        seen: dict[str, Span] = {}
        for decl in declarations:
            name = _declared_name(decl)
            if name in unit_names():
                raise self.error(
                    f"`{name}` is the name of a unit",
                    decl.name_span,
                    hint=f"in a file with units, unit names are units (`-70*mV`); rename it (e.g. `{name}_`)",
                )
            if decl.unit is None:
                continue
            unit = self.parse_unit(decl.unit)
            if name in self.quantities and self.quantities[name] != unit and _is_state(decl):
                raise self.error(
                    f"`{name}` is in {self.quantities[name].text} at line {seen[name].line} and in {unit.text} here",
                    decl.unit.span,
                    hint="give a state variable one unit, on its `dX/dt` line or in `state:`",
                )
            self.quantities.setdefault(name, unit)
            seen.setdefault(name, decl.unit.span)
        for decl in declarations:
            if _declared_name(decl) not in self.quantities:
                raise self._missing(_declared_name(decl), decl.name_span, first_use)

    def _missing(self, name, span, first_use):
        return self.error(
            f"`{name}` has no unit, but this file uses units ({first_use})",
            span,
            hint="units are all-or-nothing per file: add one (e.g. `: mV`, `: 1` for a number), "
            "or remove every `: unit` annotation",
        )

    def _reject_unit_names(self):
        """A unit name in a file without units: the file mixes the two styles."""
        defined = {
            _declared_name(d)
            for block in self.model.blocks.values()
            for d in block.statements
            if hasattr(d, "name_span")
        }
        defined |= {f"{name}_pre" for name in defined}
        for expr in self._expressions():
            for name in _names(expr):
                if name.id in unit_names() and name.id not in defined:
                    raise self.error(
                        f"`{name.id}` is a unit, but this file declares no units",
                        name.span,
                        hint="units are all-or-nothing per file: declare one for every quantity (`tau = 20 : ms`), "
                        "or write plain numbers (times in ms)",
                    )

    def _expressions(self):
        for block in self.model.blocks.values():
            for st in block.statements:
                for attr in ("expr", "init"):
                    if getattr(st, attr, None) is not None:
                        yield getattr(st, attr)
        for event in self.model.events:
            yield event.condition
            yield from (st.expr for st in event.body)
        for port in self.model.ports:
            yield from (st.expr for st in port.body)

    def parse_unit(self, expr: S.Expr) -> Unit:
        """A unit annotation: unit names, `1`, `*`, `/` and integer powers (`mV`, `1/ms`, `uS/cm**2`)."""
        if isinstance(expr, S.Name):
            unit = unit_names().get(expr.id)
            if unit is None:
                raise self.error(
                    f"unknown unit `{expr.id}`",
                    expr.span,
                    hint=did_you_mean(expr.id, unit_names())
                    or "units are e.g. mV, ms, nS, pF, pA, nA, uS, Mohm, Hz, or `1`",
                )
            return unit
        if isinstance(expr, S.Num) and expr.value == 1:
            return DIMENSIONLESS
        if isinstance(expr, S.BinOp) and expr.op in "*/":
            left, right = self.parse_unit(expr.left), self.parse_unit(expr.right)
            return left * right if expr.op == "*" else left / right
        if isinstance(expr, S.BinOp) and expr.op == "**":
            power = _constant_number(expr.right)
            if power is None or not power.is_Integer or abs(power) > MAX_UNIT_POWER:
                raise self.error(
                    f"the power of a unit must be an integer between -{MAX_UNIT_POWER} and {MAX_UNIT_POWER}",
                    expr.right.span,
                    hint="e.g. `uS/cm**2`",
                )
            return self.parse_unit(expr.left) ** power
        raise self.error(
            f"`{self._text(expr)}` is not a unit",
            expr.span,
            hint="a unit is a product of unit names and powers, e.g. `mV`, `1/ms`, `uS/cm**2`, or `1` for a number",
        )

    # ---- statements
    def _statement(self, st, keyword: str):
        if isinstance(st, S.ParameterDecl | S.Subexpression):
            target = self.quantities[st.name]
            what = "parameter" if isinstance(st, S.ParameterDecl) else "subexpression"
            expr = self.convert(
                self.expr(st.expr),
                target,
                constant=isinstance(st, S.ParameterDecl),
                what=lambda t: (
                    f"{what} `{st.name}` is {describe(target)}, "
                    f"but its value `{self._text(st.expr)}` is {describe(t.unit)}"
                ),
            )
            return replace(st, expr=expr, unit=None)
        if isinstance(st, S.StateDecl):
            target = self.quantities[st.name]
            expr = self.convert(
                self.expr(st.expr),
                target,
                constant=True,
                what=lambda t: (
                    f"`{st.name}` is {describe(target)}, but its initial value `{self._text(st.expr)}` is {describe(t.unit)}"
                ),
            )
            return replace(st, expr=expr, unit=None)
        if isinstance(st, S.Differential):
            target = self.quantities[st.variable] / MS
            expr = self.convert(
                self.expr(st.expr),
                target,
                what=lambda t: (
                    f"`d{st.variable}/dt` is {describe(target)}, but `{self._text(st.expr)}` is {describe(t.unit)}"
                ),
                hint=lambda t: (
                    f"`d{st.variable}/dt` has the unit of `{st.variable}` per ms"
                    + ("; divide by a time constant" if t.unit.dimension == (target * MS).dimension else "")
                ),
            )
            return replace(st, expr=expr, unit=None)
        if isinstance(st, S.WeightDecl):
            if st.init is None:
                return replace(st, unit=None)  # the default initialiser is read in the declared unit
            target = self.quantities[st.name]
            init = self.convert(
                self.expr(st.init),
                target,
                constant=True,
                what=lambda t: (
                    f"weight `{st.name}` is {describe(target)}, but its initialiser `{self._text(st.init)}` is {describe(t.unit)}"
                ),
            )
            return replace(st, init=init, unit=None)
        if isinstance(st, S.InputDecl):
            return replace(st, unit=None)  # samples are given in the declared unit
        if isinstance(st, S.Assignment):
            return self._assignment(st, keyword)
        if isinstance(st, S.ExprLine) and keyword in _CONDITION_BLOCKS:
            if st.unit is not None:
                raise self.error(
                    f"a `{keyword}:` condition has no unit",
                    st.unit.span,
                    hint="remove the `: unit`; both sides of the comparison carry their units",
                )
            return replace(st, expr=self._condition(st.expr))
        if isinstance(st, S.ExprLine) and keyword in _TIME_BLOCKS:
            return replace(st, expr=self._time(st, _TIME_BLOCKS[keyword]), unit=None)
        raise self.error(
            f"units are not checked in `{keyword}:` yet",
            getattr(st, "span", None),
            hint="remove the unit annotations from this file",
        )

    def _time(self, line: S.ExprLine, what: str) -> S.Expr:
        typed = self.expr(line.expr)
        if line.unit is not None:
            declared = self.parse_unit(line.unit)
            if declared.dimension != MS.dimension:
                raise self.error(
                    f"{what} is a time, not {describe(declared)}", line.unit.span, hint="e.g. `: ms`"
                )
            if not typed.named and typed.unit is not None and typed.unit.dimensionless:
                typed = replace(typed, unit=declared)  # `refractory: 2 : ms`
        return self.convert(
            typed,
            MS,
            what=lambda t: f"{what} `{self._text(line.expr)}` is {describe(t.unit)}, not a time",
            hint="write it with a time unit, e.g. `2*ms`",
        )

    def _assignment(self, st: S.Assignment, keyword: str) -> S.Assignment:
        rhs = self.expr(st.expr)
        unit = self.quantities.get(st.target)
        if unit is None:
            return replace(st, expr=rhs.expr)  # not a quantity: the checker reports it
        statement, value = f"`{st.target} {st.op} ...` in `{keyword}`", self._text(st.expr)
        if st.op in ("*=", "/="):
            expr = self.convert(
                rhs,
                DIMENSIONLESS,
                what=lambda t: (
                    f"{statement}: the factor `{value}` must be dimensionless, but it is {describe(t.unit)}"
                ),
            )
        else:
            expr = self.convert(
                rhs,
                unit,
                what=lambda t: (
                    f"{statement}: `{st.target}` is {describe(unit)}, but `{value}` is {describe(t.unit)}"
                ),
            )
        return replace(st, expr=expr)

    # ---- conversions
    def convert(self, typed: _Typed, target: Unit, what, constant=False, hint=None) -> S.Expr:
        """`typed` expressed in `target`: the same dimension, multiplied by the exact factor between them.

        With `constant`, a dimensionless value of numbers only is read in the target unit (`tau = 20 : ms`).
        """
        if typed.unit is None or typed.loose:
            return typed.expr
        if constant and not typed.named and typed.unit.dimensionless:
            return typed.expr
        if typed.unit.dimension != target.dimension:
            if callable(hint):
                hint = hint(typed)
            if hint is None and not typed.named and typed.unit.dimensionless:
                hint = f"a number needs a unit here, e.g. `{self._text(typed.expr)}*{target.text}`"
            raise self.error(what(typed), typed.expr.span, hint=hint)
        return _scaled(typed.expr, typed.unit.scale / target.scale)

    def _plain(self, typed: _Typed, what: str) -> S.Expr:
        """A dimensionless value as a plain number (scale 1)."""
        return self.convert(
            typed,
            DIMENSIONLESS,
            what=lambda t: f"{what}, but `{self._text(t.expr)}` is {describe(t.unit)}",
            hint="divide it by a quantity of the same dimension, e.g. `(v - v_rest)/v_scale`",
        )

    def _same(self, a: _Typed, b: _Typed, node) -> tuple[S.Expr, S.Expr, Unit | None, bool]:
        """`a` and `b` in the unit of `a` (of `b` when `a` is a loose literal)."""
        if a.unit is None or b.unit is None:
            return a.expr, b.expr, None, False
        if b.loose:
            return a.expr, b.expr, a.unit, a.loose
        if a.loose:
            return a.expr, b.expr, b.unit, False
        if a.unit.dimension != b.unit.dimension:
            hint = "both sides must have the same dimension"
            if not (a.named and b.named):
                number, unit, other = (b.expr, b.unit, a.unit) if not b.named else (a.expr, a.unit, b.unit)
                if unit.dimensionless:
                    hint = f"a number combined with a quantity needs a unit, e.g. `{self._text(number)}*{other.text}`"
            raise self.error(
                f"dimension mismatch in `{self._text(node)}`: `{self._text(a.expr)}` is {describe(a.unit)} "
                f"but `{self._text(b.expr)}` is {describe(b.unit)}",
                node.span,
                hint=hint,
            )
        return a.expr, _scaled(b.expr, b.unit.scale / a.unit.scale), a.unit, False

    # ---- expressions
    def expr(self, e: S.Expr) -> _Typed:
        if isinstance(e, S.Num):
            return _Typed(e, DIMENSIONLESS, loose=e.value == 0)
        if isinstance(e, S.Name):
            return self._name(e)
        if isinstance(e, S.UnaryOp):
            inner = self.expr(e.operand)
            return replace(inner, expr=replace(e, operand=inner.expr))
        if isinstance(e, S.BinOp):
            return self._power(e) if e.op == "**" else self._arithmetic(e)
        if isinstance(e, S.Compare | S.BoolOp):  # a truth value used as a number: the checker decides
            return _Typed(self._condition(e), DIMENSIONLESS, named=True)
        if isinstance(e, S.Call):
            return self._call(e)
        self.unresolved.append((self._text(e), e.span))
        return _Typed(e, None)

    def _name(self, e: S.Name) -> _Typed:
        unit = self.quantities.get(e.id)
        if unit is None and e.id.endswith("_pre"):
            unit = self.quantities.get(e.id[: -len("_pre")])
        if unit is not None:
            return _Typed(e, unit, named=True)
        if e.id == "t":
            return _Typed(e, MS, named=True)
        if e.id in _DIMENSIONLESS_BUILTINS:
            return _Typed(e, DIMENSIONLESS)
        if e.id == "inf":
            return _Typed(e, DIMENSIONLESS, loose=True)
        if e.id in unit_names():
            return _Typed(S.Num(1.0, e.span), unit_names()[e.id], named=True)
        self.unresolved.append((e.id, e.span))
        return _Typed(e, None, named=True)

    def _arithmetic(self, e: S.BinOp) -> _Typed:
        # `a + b + c + ...` is a left-leaning chain as long as the line: walked without recursion
        chain: list[S.BinOp] = []
        leftmost: S.Expr = e
        while isinstance(leftmost, S.BinOp) and leftmost.op != "**":
            chain.append(leftmost)
            leftmost = leftmost.left
        acc = self.expr(leftmost)
        for node in reversed(chain):
            right = self.expr(node.right)
            named = acc.named or right.named
            if node.op in "+-":
                left_expr, right_expr, unit, loose = self._same(acc, right, node)
                acc = _Typed(replace(node, left=left_expr, right=right_expr), unit, loose, named)
            else:
                unit = None
                if acc.unit is not None and right.unit is not None:
                    unit = acc.unit * right.unit if node.op == "*" else acc.unit / right.unit
                acc = _Typed(replace(node, left=acc.expr, right=right.expr), unit, False, named)
        return acc

    def _power(self, e: S.BinOp) -> _Typed:
        base, exponent = self.expr(e.left), self.expr(e.right)
        named = base.named or exponent.named
        if base.unit is None or exponent.unit is None:
            return _Typed(replace(e, left=base.expr, right=exponent.expr), None, named=named)
        exponent_expr = self._plain(exponent, f"the exponent in `{self._text(e)}` must be dimensionless")
        if base.unit.dimensionless:
            base_expr = self._plain(base, "a dimensionless base")
            return _Typed(replace(e, left=base_expr, right=exponent_expr), DIMENSIONLESS, named=named)
        power = _constant_number(e.right)
        if power is not None and abs(power) > MAX_UNIT_POWER:
            raise self.error(
                f"`{self._text(e.left)}` is {describe(base.unit)}: raised to {power}, its unit is out of range",
                e.right.span,
                hint=f"powers of a quantity with a unit go up to {MAX_UNIT_POWER}; make the base dimensionless first",
            )
        if power is None:
            raise self.error(
                f"`{self._text(e.left)}` is {describe(base.unit)}: it can only be raised to a number",
                e.right.span,
                hint="write the exponent as a number (e.g. `v**2`), or make the base dimensionless",
            )
        unit = base.unit**power
        base_expr = base.expr
        if not unit.scale.is_Rational:  # e.g. mV**(1/2): computed in SI base units instead
            base_expr = _scaled(base.expr, base.unit.scale)
            unit = replace(unit, scale=sp.Integer(1))
        return _Typed(replace(e, left=base_expr, right=exponent_expr), unit, named=named)

    def _call(self, e: S.Call) -> _Typed:
        known = {**FUNCTIONS, **RANDOM_FUNCTIONS}
        arities = known[e.func][0] if e.func in known else ()
        if (
            e.func not in known
            or (arities is None and len(e.args) < 2)
            or (arities is not None and len(e.args) not in arities)
        ):
            rewritten = tuple(self.expr(a).expr for a in e.args)  # the checker reports the call
            if e.func not in known:
                self.unresolved.append((f"{e.func}(...)", e.func_span))
            return _Typed(replace(e, args=rewritten), None, named=True)
        if e.func == "where":
            condition = self._condition(e.args[0])
            a, b = self.expr(e.args[1]), self.expr(e.args[2])
            left, right, unit, loose = self._same(a, b, e)
            return _Typed(replace(e, args=(condition, left, right)), unit, loose, True)
        args = [self.expr(a) for a in e.args]
        named = any(a.named for a in args)
        if any(a.unit is None for a in args):
            return _Typed(replace(e, args=tuple(a.expr for a in args)), None, named=named)
        if e.func in _DIMENSIONLESS_FUNCTIONS:
            (arg,) = args
            expr = self._plain(arg, f"`{e.func}` takes a dimensionless argument")
            return _Typed(replace(e, args=(expr,)), DIMENSIONLESS, named=named)
        if e.func == "heaviside":  # only the sign of its argument matters
            return _Typed(replace(e, args=(args[0].expr,)), DIMENSIONLESS, named=named)
        if e.func == "sqrt":
            (arg,) = args
            assert arg.unit is not None  # arguments without a unit returned above
            unit = arg.unit ** sp.Rational(1, 2)
            expr = arg.expr
            if not unit.scale.is_Rational:
                expr, unit = _scaled(arg.expr, arg.unit.scale), replace(unit, scale=sp.Integer(1))
            return _Typed(replace(e, args=(expr,)), unit, arg.loose, named)
        if e.func in _SAME_UNIT_FUNCTIONS:  # every argument in the unit of the first that is not 0 or inf
            reference = next((a for a in args if not a.loose), args[0])
            exprs = tuple(self._same(reference, arg, e)[1] for arg in args)
            return _Typed(replace(e, args=exprs), reference.unit, reference.loose, named)
        self.unresolved.append((f"{e.func}(...)", e.func_span))
        return _Typed(replace(e, args=tuple(a.expr for a in args)), None, named=named)

    def _condition(self, e: S.Expr) -> S.Expr:
        if isinstance(e, S.Compare):
            left, right, _, _ = self._same(self.expr(e.left), self.expr(e.right), e)
            return replace(e, left=left, right=right)
        if isinstance(e, S.BoolOp):
            return replace(e, operands=tuple(self._condition(o) for o in e.operands))
        return self.expr(e).expr  # not a condition: the checker reports it

    def _text(self, node) -> str:
        """The source text of a node, with the parentheses its span leaves out (`(a/b)**2`)."""
        span = node.span
        line = (span.source or self.source).line(span.line)
        end = span.end_column - 1 if span.end_line == span.line and span.end_column is not None else len(line)
        start = span.column - 1
        text = line[start:end]
        while text.count(")") > text.count("(") and "(" in line[:start]:
            start = line.rindex("(", 0, start)
            text = line[start:end]
        return printable_line(text).strip()


def _declared_name(decl) -> str:
    return decl.variable if isinstance(decl, S.Differential) else decl.name


def _is_state(decl) -> bool:
    return isinstance(decl, S.Differential | S.StateDecl)


def _names(expr: S.Expr):
    """The `Name` nodes of an expression (walked without recursion)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, S.Name):
            yield node
        elif isinstance(node, S.BinOp | S.Compare):
            stack += [node.right, node.left]
        elif isinstance(node, S.UnaryOp):
            stack.append(node.operand)
        elif isinstance(node, S.Call):
            stack += reversed(node.args)
        elif isinstance(node, S.BoolOp):
            stack += reversed(node.operands)


def _constant_number(expr: S.Expr) -> sp.Rational | None:
    """The exact value of a number written as `2`, `-0.5` or `1/3`, else None."""
    if isinstance(expr, S.Num):
        return sp.Rational(str(expr.value)) if math.isfinite(expr.value) else None
    if isinstance(expr, S.UnaryOp):
        inner = _constant_number(expr.operand)
        return None if inner is None else -inner if expr.op == "-" else inner
    if isinstance(expr, S.BinOp) and expr.op == "/":
        a, b = _constant_number(expr.left), _constant_number(expr.right)
        return None if a is None or b is None or b == 0 else a / b
    return None


# An exact factor becomes numbers the checker lowers exactly: integers below 2**53 are SymPy integers.
_EXACT_BELOW = 2**53
_CHUNK = 10**15


def _integer(n: int, span: Span) -> S.Expr:
    """`n >= 0` as numbers below 2**53: `(d_k * 10**15 + d_(k-1)) * 10**15 + ...` (Horner, left-deep)."""
    if n < _EXACT_BELOW:
        return S.Num(float(n), span)
    digits = []
    while n:
        n, digit = divmod(n, _CHUNK)
        digits.append(digit)
    node: S.Expr = S.Num(float(digits.pop()), span)
    for digit in reversed(digits):
        node = S.BinOp("*", node, S.Num(float(_CHUNK), span), span)
        node = S.BinOp("+", node, S.Num(float(digit), span), span)
    return node


def _scaled(expr: S.Expr, factor: sp.Rational) -> S.Expr:
    """`factor * expr` (the expression itself when the factor is 1), the factor exact."""
    factor = sp.Rational(factor)
    if factor == 1:
        return expr
    span = expr.span
    number = _integer(int(factor.p), span)
    if factor.q != 1:
        number = S.BinOp("/", number, _integer(int(factor.q), span), span)
    return S.BinOp("*", number, expr, span)
