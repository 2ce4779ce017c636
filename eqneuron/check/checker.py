"""Check a parsed model and lower it to the SymPy IR (`ir.ModelIR`).

Every name is resolved and classified (state, parameter, subexpression,
weight, builtin); every mistake of SPEC §3 becomes an `EqError` pointing at
the offending token.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import sympy as sp

from ..errors import EqError, Span, did_you_mean, printable_line, warn_at
from ..ir import (
    FAN_IN,
    INTERPOLATIONS,
    VALUE,
    Input,
    InternalEvent,
    Jump,
    ModelIR,
    Parameter,
    T,
    input_function,
    normal,
    pre_input_function,
    pre_symbol,
    symbol,
    uniform,
)
from ..lang import syntax as S
from .functions import CONSTANTS, FUNCTIONS, RANDOM_FUNCTIONS, SIGNATURES
from .numeric import NotReal, Overflow, Unknown, float_value
from .units import resolve_units

BUILTINS = {"t", "fan_in", "value", *CONSTANTS}
KNOWN_FLAGS = {
    "parameters": {"per_neuron", "trainable"},
    "equations": {"unless refractory"},
    "subexpressions": set(),
}
_COMPARE = {">": sp.Gt, ">=": sp.Ge, "<": sp.Lt, "<=": sp.Le, "==": sp.Eq, "!=": sp.Ne}
_FLOAT_MAX_LOG = math.log(1.7976931348623157e308)
# Exact integer powers of symbols are kept up to this exponent; above it the
# exponent becomes a float, so that no analysis expands a huge polynomial.
_MAX_EXACT_EXPONENT = 64
_NOT_SIMULATED_YET: dict[str, str] = {}


class _Scope:
    """What names mean in one context, and why the others are not allowed there."""

    def __init__(
        self,
        symbols: dict[str, sp.Expr],
        forbidden: Mapping[str, tuple[str, str | None]] | None = None,  # name -> (message, hint)
        random: bool = False,
    ):
        self.symbols = symbols
        self.forbidden = dict(forbidden or {})
        self.random = random


class Checker:
    def __init__(self, model: S.ModelSyntax):
        self.model = model
        self.source = model.source
        self.defined: dict[str, tuple[str, Span]] = {}  # name -> (kind, span)
        self.model_inputs = {d.name for d in model.statements("inputs")}

    # ---- errors
    def error(self, message: str, span: Span | None, hint: str | None = None) -> EqError:
        return EqError(message, span, self.source, hint=hint)

    def _line_of(self, span: Span) -> str:
        """`line 3`, or `line 3 of lif.eq` for a line inherited from another file."""
        source = span.source
        if source is None or source.filename == self.source.filename:
            return f"line {span.line}"
        return f"line {span.line} of {source.filename}"

    def _define(self, name: str, kind: str, span: Span):
        if name in BUILTINS or name in FUNCTIONS or name in RANDOM_FUNCTIONS:
            what = "builtin" if name in BUILTINS else "function"
            raise self.error(
                f"`{name}` shadows the {what} `{name}`",
                span,
                hint=f"rename the {kind} (e.g. `{name}_`)",
            )
        if name.endswith("_pre"):
            raise self.error(
                f"`{name}` ends in `_pre`, which is reserved",
                span,
                hint="`X_pre` means the firing neuron's `X` inside `on_spike`; pick another name",
            )
        if name in self.defined:
            first_kind, first_span = self.defined[name]
            raise self.error(
                f"`{name}` is defined twice",
                span,
                hint=f"it is already a {first_kind} at {self._line_of(first_span)}; rename one of them",
            )
        self.defined[name] = (kind, span)

    # ---- expressions
    def lower(self, expr: S.Expr, scope: _Scope, boolean: bool = False) -> sp.Expr:
        """Lower a syntax expression to SymPy in `scope`.

        Every constant part is checked to be a finite real float64 where it
        is made, so the error points at `log(0)`, not at the line.
        """
        if isinstance(expr, S.Num):
            value = expr.value
            if not math.isfinite(value):
                raise self.error(
                    "number too large for float64", expr.span, hint="the largest float64 is about 1.8e308"
                )
            return sp.Integer(int(value)) if value.is_integer() and abs(value) < 2**53 else sp.Float(value)
        if isinstance(expr, S.Name):
            return self._resolve(expr, scope)
        if isinstance(expr, S.UnaryOp):
            operand = self.lower(expr.operand, scope)
            return -operand if expr.op == "-" else operand
        if isinstance(expr, S.BinOp):
            return self._binary_chain(expr, scope)
        if isinstance(expr, S.Compare):
            if not boolean:
                raise self.error(
                    f"comparison `{expr.op}` outside a condition",
                    expr.span,
                    hint="comparisons belong in `threshold:`, `event` conditions or `where(cond, a, b)`",
                )
            left, right = self.lower(expr.left, scope), self.lower(expr.right, scope)
            # constant comparisons are decided now: SymPy cannot canonicalise `0 > 1` inside `where`
            evaluate = not (left.free_symbols or right.free_symbols)
            return self._sympy(expr, _COMPARE[expr.op], left, right, evaluate=evaluate)
        if isinstance(expr, S.BoolOp):
            if not boolean:
                raise self.error(
                    f"`{expr.op}` outside a condition",
                    expr.span,
                    hint="logical operators belong in the first argument of `where(cond, a, b)`",
                )
            operands = [self.lower(o, scope, boolean=True) for o in expr.operands]
            return self._sympy(expr, _LOGIC[expr.op], *operands)
        if isinstance(expr, S.Call):
            return self._call(expr, scope)
        raise TypeError(expr)  # pragma: no cover - the parser makes no other nodes

    def lower_finite(self, expr: S.Expr, scope: _Scope) -> sp.Expr:
        """`lower`, for a value the engine computes with: `inf` may appear in its conditions only."""
        result = self.lower(expr, scope)
        if result.has(sp.zoo, sp.nan):  # e.g. `u / where(u > 0, 0, 1)`: SymPy divides branch by branch
            raise self.error(
                f"`{self._text_of(expr)}` is infinite or undefined where it divides by zero",
                expr.span,
                hint="make sure no branch of a `where` or `min`/`max` makes a denominator 0",
            )
        if _infinite_outside_conditions(result):
            raise self.error(
                f"`{self._text_of(expr)}` is infinite",
                expr.span,
                hint="`inf` belongs in conditions (`threshold: v > inf` never fires) or in bounds it "
                "disappears from (`clip(x, 0, inf)`)",
            )
        return result

    def _binary_chain(self, expr: S.BinOp, scope: _Scope) -> sp.Expr:
        # `a + b + c + ...` is a left-leaning chain as long as the line: walk it
        # without recursion
        chain: list[S.BinOp] = []
        leftmost: S.Expr = expr
        while isinstance(leftmost, S.BinOp) and leftmost.op != "**":
            chain.append(leftmost)
            leftmost = leftmost.left
        result = self._power(leftmost, scope) if isinstance(leftmost, S.BinOp) else self.lower(leftmost, scope)
        for node in reversed(chain):
            right = self.lower(node.right, scope)
            if node.op == "/" and right == 0:
                raise self.error("division by zero", node.right.span)
            result = self._sympy(node, _ARITHMETIC[node.op], result, right)
        return result

    def _power(self, expr: S.BinOp, scope: _Scope) -> sp.Expr:
        base, exponent = self.lower(expr.left, scope), self.lower(expr.right, scope)
        if base.is_number and exponent.is_number:
            # decide overflow from logarithms before SymPy computes 9**9**9 exactly
            log_size = _log_magnitude(base, exponent)
            if log_size > _FLOAT_MAX_LOG:
                raise self.error(
                    f"`{self._text_of(expr)}` overflows float64",
                    expr.span,
                    hint="the largest float64 is about 1.8e308",
                )
            if log_size < -800 and abs(exponent) > 2048:
                return sp.Integer(0)  # below the smallest float64, and costly to compute exactly
        elif exponent.is_Integer and abs(exponent) > _MAX_EXACT_EXPONENT:
            exponent = sp.Float(exponent)
        return self._sympy(expr, sp.Pow, base, exponent)

    def _sympy(self, node, build, *args, **kwargs):
        """`build(*args, **kwargs)`, with SymPy's exceptions and non-finite constants as errors at `node`."""
        try:
            result = build(*args, **kwargs)
        except RecursionError:  # SymPy's canonicalisation of some nested conditions never settles
            raise self.error(
                f"`{self._text_of(node)}` is too complex for SymPy to simplify",
                node.span,
                hint="simplify the expression or split it into subexpressions",
            ) from None
        except (TypeError, ValueError, ArithmeticError, NotImplementedError) as error:
            raise self.error(
                f"cannot evaluate `{self._text_of(node)}`: {error}",
                node.span,
                hint="simplify the expression or split it into subexpressions",
            ) from None
        self._check_constant(result, node)
        return result

    def _check_constant(self, result, node):
        """A constant must be a finite real float64 (or the builtin `inf`)."""
        if (
            isinstance(result, sp.logic.boolalg.Boolean)
            or result.free_symbols
            or result in (sp.oo, -sp.oo)
            or result.has(normal, uniform)  # random draws: known when the weights are sampled
        ):
            return
        if result.has(sp.zoo, sp.nan):
            problem = "is infinite or undefined"
        else:
            try:
                value = float_value(result)
            except NotReal:
                problem = "is not a real number"
            except Overflow:
                problem = "overflows float64"
            except Unknown:
                problem = "is not a finite real number"
            else:
                if math.isfinite(value):
                    return
                problem = "is infinite or undefined"
        hint = "check the arguments: e.g. `log` and `sqrt` need positive ones, `tan` is infinite at pi/2"
        if problem == "overflows float64":
            hint = "the largest float64 is about 1.8e308"
        raise self.error(f"`{self._text_of(node)}` {problem}", node.span, hint=hint)

    def _text_of(self, node) -> str:
        span = node.span
        if span.end_line == span.line and span.end_column is not None:
            return (span.source or self.source).line(span.line)[span.column - 1 : span.end_column - 1]
        return self._text(node)

    def _call(self, call: S.Call, scope: _Scope) -> sp.Expr:
        table = dict(FUNCTIONS)
        if scope.random:
            table.update(RANDOM_FUNCTIONS)
        if call.func not in table:
            if call.func in RANDOM_FUNCTIONS:
                raise self.error(
                    f"`{call.func}(...)` is only allowed in weight initialisers",
                    call.func_span,
                    hint="random draws initialise weights: `w = normal(0, 1) / sqrt(fan_in)`",
                )
            if call.func in self.defined or call.func in BUILTINS:
                raise self.error(
                    f"`{call.func}` is not a function",
                    call.func_span,
                    hint="multiplication needs an explicit `*`, e.g. `a * (b + c)`",
                )
            hint = did_you_mean(call.func, table) or "functions are: " + ", ".join(sorted(table))
            raise self.error(f"unknown function `{call.func}`", call.func_span, hint=hint)
        arities, builder = table[call.func]
        n = len(call.args)
        if (arities is None and n < 2) or (arities is not None and n not in arities):
            wanted = "at least 2" if arities is None else " or ".join(map(str, arities))
            raise self.error(
                f"`{call.func}` takes {wanted} argument{'s' if wanted != '1' else ''}, got {n}",
                call.span,
                hint=SIGNATURES.get(call.func),
            )
        args = [
            self.lower(arg, scope, boolean=(call.func == "where" and i == 0))
            for i, arg in enumerate(call.args)
        ]
        if call.func == "where" and not isinstance(args[0], sp.logic.boolalg.Boolean):
            raise self.error(
                "the first argument of `where` must be a condition",
                call.args[0].span,
                hint="e.g. `where(v > 0, v, 0)`",
            )
        return self._sympy(call, builder, *args)

    def _resolve(self, name: S.Name, scope: _Scope) -> sp.Expr:
        if name.id in scope.symbols:
            return scope.symbols[name.id]
        if name.id in scope.forbidden:
            message, hint = scope.forbidden[name.id]
            raise self.error(message, name.span, hint=hint)
        if name.id.endswith("_pre"):
            base = name.id[: -len("_pre")]
            if base in self.defined:
                raise self.error(
                    f"`{name.id}` is only allowed in `on_spike`",
                    name.span,
                    hint=f"`{base}_pre` is the firing neuron's `{base}`, known only when a spike is sent",
                )
        if name.id in FUNCTIONS or name.id in RANDOM_FUNCTIONS:
            raise self.error(
                f"function `{name.id}` used as a value", name.span, hint=f"call it: `{name.id}(x)`"
            )
        if name.id == "t":
            raise self.error(
                "the time `t` is not defined here",
                name.span,
                hint="parameter defaults, initial values and weight initialisers are constants",
            )
        candidates = list(scope.symbols) + list(self.defined)
        raise self.error(
            f"unknown name `{name.id}`",
            name.span,
            hint=did_you_mean(name.id, candidates) or "define it under `parameters:` or `state:`",
        )

    # ---- the whole model
    def run(self) -> ModelIR:
        m = self.model
        self._reject_not_simulated()
        for keyword in ("equations", "threshold"):
            if keyword not in m.blocks:
                raise self.error(
                    f"the model has no `{keyword}:` block",
                    Span(1, 1),
                    hint=f"every model needs `{keyword}:`; see docs/language.md",
                )

        parameters = self._parameters()
        param_symbols = {name: symbol(name) for name in parameters}
        inputs = self._inputs()
        input_symbols = {name: input_function(name)(T) for name in inputs}
        odes, subexpr_decls = self._equation_declarations(parameters)
        states = self._states(odes)
        state_symbols = {name: symbol(name) for name in states}
        weight_decls = self._weight_declarations()

        weight_forbidden = {
            name: (
                f"weight `{name}` used outside a jump or initialiser",
                "weights appear only in `on_spike:`/`on_input:` (the entry W[source, target])",
            )
            for name in weight_decls
        }
        builtin_forbidden = {
            "value": ("`value` is only defined in `on_input`", "it is the input event's value"),
            "fan_in": ("`fan_in` is only defined in weight initialisers", None),
        }
        dynamic = {**param_symbols, **state_symbols, **input_symbols, "t": T, **CONSTANTS}
        forbidden = {**weight_forbidden, **builtin_forbidden}

        subexpressions = self._subexpressions(subexpr_decls, dynamic, forbidden)
        full = {**dynamic, **subexpressions}
        scope = _Scope(full, forbidden)

        derivatives, equation_text = {}, []
        for name in states:
            decl = odes.get(name)
            derivatives[name] = sp.Integer(0) if decl is None else self.lower_finite(decl.expr, scope)
        for decl in m.statements("equations"):
            label = f"d{decl.variable}/dt" if isinstance(decl, S.Differential) else decl.name
            equation_text.append(f"{label} = {decl.text or self._text(decl.expr)}")

        threshold, threshold_text = self._condition(m.statements("threshold"), scope, "threshold")
        reset = self._jump(m.statements("reset"), scope, states, parameters, subexpressions, "reset")

        pre_scope_symbols = dict(full)
        pre_names = []
        for name in [*states, *subexpressions]:
            pre_names.append(name)
            value = pre_symbol(name) if name in states else subexpressions[name]
            if name not in states:
                value = value.subs({state_symbols[s]: pre_symbol(s) for s in states})
                value = value.xreplace({input_function(i)(T): pre_input_function(i)(T) for i in inputs})
            pre_scope_symbols[f"{name}_pre"] = value
        for name in inputs:
            pre_scope_symbols[f"{name}_pre"] = pre_input_function(name)(T)
        weight_symbols = {name: symbol(name) for name in weight_decls}
        spike_scope = _Scope({**pre_scope_symbols, **weight_symbols}, builtin_forbidden)
        on_spike = self._jump(
            m.statements("on_spike"), spike_scope, states, parameters, subexpressions, "on_spike"
        )
        if "on_input" in m.blocks:
            on_input_statements = m.statements("on_input")
        else:
            on_input_statements = m.statements("on_spike")
        input_scope = _Scope(
            {**full, **weight_symbols, "value": VALUE},
            {"fan_in": builtin_forbidden["fan_in"]},
        )
        on_input = self._jump(
            on_input_statements, input_scope, states, parameters, subexpressions, "on_input"
        )
        ports = self._ports(input_scope, states, parameters, subexpressions)
        if ports:
            on_input = Jump({}, ())
        refractory, frozen = self._refractory(param_symbols, odes)
        delay = self._period("delay", "the delay", param_symbols)
        events = self._events(scope, states, parameters, subexpressions)
        used_pre = sorted(
            {
                s.name[: -len("_pre")]
                for e in on_spike.updates.values()
                for s in e.free_symbols
                if s.name.endswith("_pre")
            }
        )

        weights = self._weight_initialisers(weight_decls, param_symbols)
        initial = self._initial_values(states, param_symbols, state_symbols)

        model_ir = ModelIR(
            name=m.name or _stem(self.source.filename),
            description=m.description,
            source=self.source,
            parameters=parameters,
            states=tuple(states),
            initial=initial,
            derivatives=derivatives,
            subexpressions={k: v for k, v in subexpressions.items()},
            equation_text=tuple(equation_text),
            threshold=threshold,
            threshold_text=threshold_text,
            reset=reset,
            on_spike=on_spike,
            on_input=on_input,
            weights=weights,
            events=events,
            refractory=refractory,
            frozen_when_refractory=frozen,
            delay=delay,
            pre_symbols=tuple(used_pre),
            ports=ports,
            inputs=inputs,
            statement_spans=self._statement_spans(),
        )
        self._check_reset_clears_threshold(model_ir)
        return model_ir

    # ---- pieces
    def _statement_spans(self) -> dict[tuple[str, str], Span]:
        """`ModelIR.statement_spans`: each statement's span by (block, name)."""
        m = self.model
        spans: dict[tuple[str, str], Span] = {}
        for block in ("equations", "state", "weights"):
            for decl in m.statements(block):
                spans[(block, decl.variable if isinstance(decl, S.Differential) else decl.name)] = decl.span
        for block in ("threshold", "refractory", "delay"):
            if m.statements(block):
                spans[(block, "")] = m.statements(block)[0].span
        bodies = [(block, m.statements(block)) for block in ("reset", "on_spike", "on_input")]
        if "on_input" not in m.blocks and not m.ports:  # the input jump is on_spike's
            bodies.append(("on_input", m.statements("on_spike")))
        bodies += [(f"on_input {port.name}", port.body) for port in m.ports]
        for event in m.events:
            spans[(f"event {event.name}", "")] = event.span
            bodies.append((f"event {event.name}", event.body))
        for block, statements in bodies:
            for st in statements:
                spans[(block, st.target)] = st.span
        return spans

    def _reject_not_simulated(self):
        """Blocks the grammar knows but the engine does not simulate: an error, never dropped."""
        for keyword, message in _NOT_SIMULATED_YET.items():
            if keyword in self.model.blocks:
                raise self.error(
                    message,
                    self.model.blocks[keyword].span,
                    hint="remove it: a model using it cannot be simulated yet (see docs/language.md)",
                )

    def _check_flags(self, decl, kind: str, what: str, hint: str):
        for flag in decl.flags:
            if flag not in KNOWN_FLAGS[kind]:
                raise self.error(f"flag `{flag}` does not apply to {what}", decl.flags_span, hint=hint)

    def _parameters(self) -> dict[str, Parameter]:
        parameters: dict[str, Parameter] = {}
        for decl in self.model.statements("parameters"):
            self._require_plain_assignment(decl, "parameters")
            self._define(decl.name, "parameter", decl.name_span)
            self._check_flags(decl, "parameters", "a parameter", "parameter flags are `per_neuron` and `trainable`")
            later = {
                d.name: (
                    f"parameter `{d.name}` is used before it is defined",
                    "move its definition above this line",
                )
                for d in self.model.statements("parameters")
                if d.name not in parameters and d.name != decl.name
            }
            later.update(self._states_forbidden_in_constants())
            scope = _Scope({**{n: symbol(n) for n in parameters}, **CONSTANTS}, later)
            default = self.lower_finite(decl.expr, scope)
            parameters[decl.name] = Parameter(
                decl.name,
                default,
                per_neuron="per_neuron" in decl.flags or "trainable" in decl.flags,
                trainable="trainable" in decl.flags,
                span=decl.name_span,
            )
        return parameters

    def _inputs(self) -> dict[str, Input]:
        """The input waveforms (`inputs:`): names defined for the equations, each with its interpolation."""
        inputs: dict[str, Input] = {}
        for decl in self.model.statements("inputs"):
            self._define(decl.name, "waveform input", decl.name_span)
            interpolation = decl.interpolation or "linear"
            if interpolation not in INTERPOLATIONS:
                raise self.error(
                    f"unknown interpolation `{interpolation}` for input `{decl.name}`",
                    decl.interpolation_span,
                    hint=did_you_mean(interpolation, INTERPOLATIONS)
                    or "an input is interpolated `(linear)` or `(cubic)`; whether it is per neuron "
                    "follows from its samples, (T,) or (T, N)",
                )
            inputs[decl.name] = Input(decl.name, interpolation, decl.name_span)
        return inputs

    def _inputs_forbidden_in_constants(self):
        return {
            d.name: (
                f"input `{d.name}` used in a constant expression",
                "an input is a waveform of time, usable in `equations:`, conditions and jumps; "
                "parameter defaults, initial values, weight initialisers and periods are constants",
            )
            for d in self.model.statements("inputs")
        }

    def _states_forbidden_in_constants(self):
        names = self._inputs_forbidden_in_constants()
        for d in self.model.statements("state"):
            names[d.name] = (
                f"state variable `{d.name}` used in a constant expression",
                "only parameters may appear here",
            )
        for d in self.model.statements("equations"):
            name = d.variable if isinstance(d, S.Differential) else d.name
            names[name] = (f"`{name}` used in a constant expression", "only parameters may appear here")
        return names

    def _require_plain_assignment(self, decl, block):
        if decl.op != "=":
            raise self.error(
                f"`{decl.op}` is not allowed in `{block}:`",
                decl.name_span,
                hint=f"write `{getattr(decl, 'name', getattr(decl, 'variable', 'x'))} = expr`",
            )

    def _equation_declarations(self, parameters):
        odes: dict[str, S.Differential] = {}
        subexprs: dict[str, S.Subexpression] = {}
        sub_names = {d.name for d in self.model.statements("equations") if isinstance(d, S.Subexpression)}
        for decl in self.model.statements("equations"):
            self._require_plain_assignment(decl, "equations")
            if isinstance(decl, S.Differential):
                name = decl.variable
                if name in parameters:
                    raise self.error(
                        f"`d{name}/dt` given for parameter `{name}`",
                        decl.name_span,
                        hint=f"a parameter is constant; move `{name}` to `state:` to make it a state variable",
                    )
                if name in self.model_inputs:
                    raise self.error(
                        f"`d{name}/dt` given for input `{name}`",
                        decl.name_span,
                        hint=f"`{name}` is a waveform given as samples; remove it from `inputs:` "
                        "to make it a state variable",
                    )
                if name in sub_names:
                    raise self.error(
                        f"`d{name}/dt` given for subexpression `{name}`",
                        decl.name_span,
                        hint=f"`{name}` is defined by `{name} = ...`; remove one of the two",
                    )
                if name in odes:
                    raise self.error(
                        f"`d{name}/dt` is defined twice",
                        decl.name_span,
                        hint=f"the first definition is at line {odes[name].span.line}",
                    )
                self._check_flags(
                    decl, "equations", "a differential equation",
                    "the one flag of a differential equation is `(unless refractory)`",
                )
                if "unless refractory" in decl.flags and "refractory" not in self.model.blocks:
                    raise self.error(
                        "`(unless refractory)` in a model without a refractory period",
                        decl.flags_span,
                        hint="add a `refractory:` block (e.g. `refractory: 2` for 2 ms), or drop the flag",
                    )
                odes[name] = decl
            else:
                self._define(decl.name, "subexpression", decl.name_span)
                self._check_flags(
                    decl, "subexpressions", "a subexpression",
                    "subexpressions take no flags (a subexpression of parameters only is constant anyway)",
                )
                subexprs[decl.name] = decl
        return odes, subexprs

    def _states(self, odes) -> list[str]:
        states: list[str] = []
        declared: dict[str, Span] = {}
        for decl in self.model.statements("state"):
            self._require_plain_assignment(decl, "state")
            if decl.name in declared:
                raise self.error(
                    f"`{decl.name}` is defined twice",
                    decl.name_span,
                    hint=f"the first definition is at line {declared[decl.name].line}",
                )
            declared[decl.name] = decl.name_span
        for name, decl in odes.items():
            self._define(name, "state variable", decl.name_span)
            states.append(name)
        for decl in self.model.statements("state"):
            if decl.name not in odes:
                self._define(decl.name, "state variable", decl.name_span)
                states.append(decl.name)
        return states

    def _initial_values(self, states, param_symbols, state_symbols):
        forbidden = {
            n: (f"initial value uses state variable `{n}`", "initial values are expressions of parameters")
            for n in state_symbols
        }
        forbidden.update(self._inputs_forbidden_in_constants())
        scope = _Scope({**param_symbols, **CONSTANTS}, forbidden)
        decls = {d.name: d for d in self.model.statements("state")}
        return {
            name: self.lower_finite(decls[name].expr, scope) if name in decls else sp.Integer(0)
            for name in states
        }

    def _subexpressions(self, decls, dynamic, forbidden):
        """Lower each subexpression after the ones it uses (so none is substituted into afterwards)."""
        resolved: dict[str, sp.Expr] = {}

        def visit(name, path):
            if name in resolved:
                return
            if name in path:
                cycle = path[path.index(name) :] + [name]
                raise self.error(
                    "circular subexpressions: " + " -> ".join(f"`{n}`" for n in cycle),
                    decls[cycle[0]].name_span,
                    hint="a subexpression may not depend on itself; make one of them a state variable",
                )
            for used in S.names_in(decls[name].expr):
                if used in decls:
                    visit(used, path + [name])
            scope = _Scope({**dynamic, **resolved}, forbidden)
            resolved[name] = self.lower_finite(decls[name].expr, scope)

        for name in decls:
            visit(name, [])
        return {name: resolved[name] for name in decls}

    def _condition(self, lines, scope, what):
        (line,) = lines if len(lines) == 1 else (self._too_many(lines, what),)
        return self._condition_expr(line.expr, scope, what)

    def _condition_expr(self, expr, scope, what):
        """A condition as a function `g` that crosses zero upwards when it becomes true:
        `a > b` is `a - b`; `c and d` is `min(g_c, g_d)`, `c or d` is `max(g_c, g_d)`,
        `not c` is `-g_c`."""
        g = self._crossing_function(expr, scope, what)
        if g.has(sp.zoo, sp.nan):
            raise self.error(
                f"the {what} is infinite or undefined where it divides by zero",
                expr.span,
                hint="make sure no branch of a `where` or `min`/`max` makes a denominator 0",
            )
        return g, self._text(expr)

    def _crossing_function(self, expr, scope, what):
        if isinstance(expr, S.BoolOp):
            parts = [self._crossing_function(o, scope, what) for o in expr.operands]
            if expr.op == "not":
                return -parts[0]
            return self._sympy(expr, sp.Min if expr.op == "and" else sp.Max, *parts)
        if not isinstance(expr, S.Compare):
            raise self.error(
                f"the {what} is not a comparison",
                expr.span,
                hint="write a comparison such as `v > v_th` (comparisons may be combined with `and`/`or`)",
            )
        if expr.op in ("==", "!="):
            raise self.error(
                f"`{expr.op}` cannot define a {what}",
                expr.span,
                hint="use `>`, `>=`, `<` or `<=`: an event is a crossing",
            )
        left, right = self.lower(expr.left, scope), self.lower(expr.right, scope)
        return left - right if expr.op in (">", ">=") else right - left

    def _too_many(self, lines, what):
        raise self.error(f"`{what}:` takes exactly one condition", lines[1].span if len(lines) > 1 else None)

    def _jump(self, statements, scope, states, parameters, subexpressions, block) -> Jump:
        updates: dict[str, sp.Expr] = {}
        texts: list[str] = []
        seen: dict[str, Span] = {}
        additive_only = block in ("on_spike", "on_input")
        for st in statements:
            target = st.target
            if target in parameters:
                raise self.error(
                    f"cannot assign to parameter `{target}` in `{block}:`",
                    st.target_span,
                    hint="parameters are constant; make it a state variable to change it at events",
                )
            if target in self.model_inputs:
                raise self.error(
                    f"cannot assign to input `{target}` in `{block}:`",
                    st.target_span,
                    hint="an input is a waveform given as samples (`population(waveforms=...)`); "
                    "make a state variable that follows it to change something at events",
                )
            if target in subexpressions:
                raise self.error(
                    f"cannot assign to subexpression `{target}` in `{block}:`",
                    st.target_span,
                    hint="assign to the state variables it is computed from",
                )
            if target not in states:
                hint = did_you_mean(target, states) or "only state variables can be assigned"
                raise self.error(
                    f"assignment to undefined variable `{target}` in `{block}:`", st.target_span, hint=hint
                )
            if target in seen:
                raise self.error(
                    f"`{target}` is assigned twice in `{block}:`",
                    st.target_span,
                    hint=f"combine it with line {seen[target].line}: all right-hand sides use the values before the event",
                )
            seen[target] = st.target_span
            if additive_only and st.op not in ("+=", "-="):
                raise self.error(
                    f"non-additive jump `{st.op}` in `{block}:`",
                    st.op_span,
                    hint="only `+=` and `-=` are allowed so that simultaneous spikes add up",
                )
            if st.op == "/=":
                raise self.error(
                    f"`/=` is not supported in `{block}:`",
                    st.op_span,
                    hint=f"write `{target} = {target} / (...)`",
                )
            rhs = self.lower_finite(st.expr, scope)
            x = symbol(target)
            if additive_only:
                updates[target] = rhs if st.op == "+=" else -rhs
            else:
                updates[target] = {"=": rhs, "+=": x + rhs, "-=": x - rhs, "*=": x * rhs}[st.op]
            texts.append(f"{target} {st.op} {self._text(st.expr)}")
        return Jump(updates, tuple(texts))

    def _refractory(self, param_symbols, odes):
        """The refractory period (an expression of parameters) and the states it freezes."""
        period = self._period("refractory", "the refractory period", param_symbols)
        if period is None:
            return None, ()
        frozen = tuple(name for name, decl in odes.items() if "unless refractory" in decl.flags)
        return period, frozen

    def _period(self, keyword, what, param_symbols):
        """A duration block (`refractory:`, `delay:`): one expression of parameters, >= 0 ms."""
        if keyword not in self.model.blocks:
            return None
        lines = self.model.statements(keyword)
        if len(lines) != 1:
            raise self.error(
                f"`{keyword}:` takes exactly one expression ({what} in ms)",
                lines[1].span if len(lines) > 1 else self.model.blocks[keyword].span,
            )
        others = {
            name: (f"{what} cannot depend on `{name}`", "it is an expression of parameters and constants")
            for name in self.defined
            if name not in param_symbols
        }
        period = self.lower_finite(lines[0].expr, _Scope({**param_symbols, **CONSTANTS}, others))
        if period.is_number and float(period) < 0:
            raise self.error(f"{what} is negative", lines[0].expr.span, hint="a duration is ≥ 0 (ms)")
        return period

    def _events(self, scope, states, parameters, subexpressions):
        events: list[InternalEvent] = []
        seen: dict[str, Span] = {}
        for decl in self.model.events:
            if decl.name in seen:
                raise self.error(
                    f"event `{decl.name}` is defined twice",
                    decl.name_span,
                    hint=f"the first definition is at line {seen[decl.name].line}; give each event its own name",
                )
            seen[decl.name] = decl.name_span
            what = f"condition of event `{decl.name}`"
            condition, text = self._condition_expr(decl.condition, scope, what)
            body = self._jump(decl.body, scope, states, parameters, subexpressions, f"event {decl.name}")
            events.append(InternalEvent(decl.name, condition, text, body, decl.span))
        return tuple(events)

    def _ports(self, scope, states, parameters, subexpressions) -> dict[str, Jump]:
        """Named input ports (`on_input NAME:`): each group of input channels with its own jump."""
        ports: dict[str, Jump] = {}
        seen: dict[str, Span] = {}
        if self.model.ports and "on_input" in self.model.blocks:
            raise self.error(
                "a model has either one plain `on_input:` or named ports (`on_input NAME:`), not both",
                self.model.blocks["on_input"].span,
                hint="give the plain block a name too, e.g. `on_input exc:`",
            )
        for port in self.model.ports:
            if port.name in seen:
                raise self.error(
                    f"input port `{port.name}` is defined twice",
                    port.name_span,
                    hint=f"the first definition is at line {seen[port.name].line}; merge the two bodies",
                )
            seen[port.name] = port.name_span
            ports[port.name] = self._jump(port.body, scope, states, parameters, subexpressions, "on_input")
        return ports

    def _weight_declarations(self):
        decls = {}
        for decl in self.model.statements("weights"):
            self._define(decl.name, "weight", decl.name_span)
            decls[decl.name] = decl
        return decls

    def _weight_initialisers(self, decls, param_symbols):
        scope = _Scope({**param_symbols, "fan_in": FAN_IN, **CONSTANTS}, random=True)
        for name in self.defined:
            if name not in param_symbols:
                scope.forbidden[name] = (
                    f"`{name}` cannot be used in a weight initialiser",
                    "initialisers use `normal(mean, std)`, `uniform(lo, hi)`, parameters, constants and `fan_in`",
                )
        return {
            name: (self.lower_finite(d.init, scope) if d.init is not None else normal(0, 1) / sp.sqrt(FAN_IN))
            for name, d in decls.items()
        }

    def _check_reset_clears_threshold(self, model: ModelIR):
        """Warn when, right after firing, the reset leaves the threshold condition satisfied."""
        g = model.threshold
        if not model.reset.updates:
            return  # a spike detector: it fires once per upward crossing (docs/engine.md)
        after = g.xreplace({symbol(n): v for n, v in model.reset.updates.items()})
        crossing = _linear_crossing(g, [symbol(n) for n in model.states])
        if crossing is None:
            return  # no cheap closed form for the crossing: checked at run time
        margin = after.xreplace(crossing)
        defaults = {s: float(v) for s, v in evaluate_defaults(model.parameters).items() if v.is_Number}
        try:
            value = float_value(margin, defaults)
        except (ArithmeticError, ValueError):
            return  # depends on other states, or not a float64 number: checked at run time
        if not math.isfinite(value):
            return
        if value > 0:
            reset_block = self.model.blocks["reset"]
            warn_at(
                f"the reset leaves the threshold satisfied (threshold − rhs = {value:g} > 0 after reset)",
                reset_block.span,
                self.source,
                hint="reset below the threshold, e.g. `v = v_reset` with v_reset < v_th",
            )

    def _text(self, expr) -> str:
        """The source text of an expression, from its first column to the end of its line."""
        full = (expr.span.source or self.source).line(expr.span.line)
        start = expr.span.column - 1
        while start > 0 and full[start - 1] in "( \t" and "=" not in full[start - 1 : start]:
            if full[start - 1] != "(" and not full[: start - 1].rstrip().endswith("("):
                break
            start -= 1
        return printable_line(full[start:].split("#")[0]).strip()


_ARITHMETIC = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}
_LOGIC = {"and": sp.And, "or": sp.Or, "not": sp.Not}


def _log_magnitude(base: sp.Expr, exponent: sp.Expr) -> float:
    """log |base ** exponent| from floats (nan when it cannot tell)."""
    try:
        b, x = float_value(base), float_value(exponent)
    except (ArithmeticError, ValueError):
        return math.nan
    if b == 0:
        return math.inf if x < 0 else -math.inf if x > 0 else 0.0
    return x * math.log(abs(b)) if math.isfinite(b) and math.isfinite(x) else math.nan


def _infinite_outside_conditions(expr: sp.Basic) -> bool:
    stack = [expr]
    while stack:
        node = stack.pop()
        if node is sp.oo or node is sp.S.NegativeInfinity:
            return True
        if not isinstance(node, sp.core.relational.Relational):
            stack.extend(node.args)
    return False


def _linear_crossing(g: sp.Expr, states: list[sp.Symbol]) -> dict | None:
    """`{s: value}` solving g = 0 for the first state s in g, if g is linear in s."""
    state = next((s for s in states if s in g.free_symbols), None)
    if state is None:
        return None
    slope = g.diff(state)
    if state in slope.free_symbols or slope == 0:
        return None
    return {state: -g.subs(state, 0) / slope}


def _stem(filename: str) -> str:
    from pathlib import Path

    return Path(filename).stem if filename and not filename.startswith("<") else "model"


def evaluate_defaults(parameters: dict[str, Parameter], overrides: dict[str, sp.Expr] | None = None) -> dict:
    """`{symbol: value}` of every parameter: its override, else its default evaluated in float64.

    A default that depends on a parameter without a number (a per-neuron
    array) stays symbolic.  Numbers are computed by `float_value`, not by
    substituting into SymPy, which re-evaluates `min(x, softplus(2))` and
    cannot compare the unevaluated function.
    """
    values: dict = {}
    numbers: dict = {}
    for name, p in parameters.items():
        if overrides and name in overrides:
            value = sp.sympify(overrides[name])
        else:
            try:
                value = sp.Float(float_value(p.default, numbers))
            except NotReal:
                value = sp.nan
            except Overflow:
                value = sp.oo
            except Unknown:
                value = p.default
        values[symbol(name)] = value
        if value.is_Number:
            numbers[symbol(name)] = float(value)
    return values


def check(model: S.ModelSyntax) -> ModelIR:
    """Check units (if the file has them), resolve and classify every name; lower the model to SymPy."""
    units = resolve_units(model)
    model_ir = Checker(units.model).run()
    units.require_resolved()
    model_ir.units = units.units
    return model_ir
