"""Check a parsed model and lower it to the SymPy IR (`ir.ModelIR`).

Every name is resolved and classified (state, parameter, subexpression,
weight, builtin); every mistake of SPEC §3 becomes an `EqError` pointing at
the offending token.
"""

from __future__ import annotations

import sympy as sp

from ..lang import syntax as S
from ..errors import EqError, Span, did_you_mean, warn_at
from ..ir import (
    FAN_IN,
    VALUE,
    InternalEvent,
    Jump,
    ModelIR,
    Parameter,
    T,
    normal,
    pre_symbol,
    relu,
    sigmoid,
    softplus,
    symbol,
    uniform,
)

BUILTINS = {"t", "pi", "fan_in", "value"}


def _clip(x, lo, hi):
    return sp.Min(sp.Max(x, lo), hi)


def _where(cond, a, b):
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
    "sigmoid": ((1,), sigmoid),
    "softplus": ((1,), softplus),
    "relu": ((1,), relu),
    "min": (None, sp.Min),
    "max": (None, sp.Max),
    "clip": ((3,), _clip),
    "where": ((3,), _where),
}
RANDOM_FUNCTIONS = {"normal": ((2,), normal), "uniform": ((2,), uniform)}
KNOWN_FLAGS = {
    "parameters": {"per_neuron", "trainable"},
    "equations": {"unless refractory"},
    "subexpressions": {"constant"},
}
_COMPARE = {">": sp.Gt, ">=": sp.Ge, "<": sp.Lt, "<=": sp.Le, "==": sp.Eq, "!=": sp.Ne}


class _Scope:
    """What names mean in one context, and why the others are not allowed there."""

    def __init__(self, symbols: dict, forbidden: dict[str, str] | None = None, random=False):
        self.symbols = symbols
        self.forbidden = forbidden or {}
        self.random = random


class Checker:
    def __init__(self, model: S.ModelSyntax):
        self.model = model
        self.source = model.source
        self.defined: dict[str, tuple[str, Span]] = {}  # name -> (kind, span)

    # ---- errors
    def error(self, message, span, hint=None):
        return EqError(message, span, self.source, hint=hint)

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
                hint=f"it is already a {first_kind} at line {first_span.line}; rename one of them",
            )
        self.defined[name] = (kind, span)

    # ---- expressions
    def lower(self, expr: S.Expr, scope: _Scope, boolean=False) -> sp.Expr:
        """Lower a syntax expression to SymPy in `scope`."""
        if isinstance(expr, S.Num):
            value = expr.value
            return sp.Integer(int(value)) if value.is_integer() and abs(value) < 2**53 else sp.Float(value)
        if isinstance(expr, S.Name):
            return self._resolve(expr, scope)
        if isinstance(expr, S.UnaryOp):
            operand = self.lower(expr.operand, scope)
            return -operand if expr.op == "-" else operand
        if isinstance(expr, S.BinOp):
            left, right = self.lower(expr.left, scope), self.lower(expr.right, scope)
            match expr.op:
                case "+":
                    return left + right
                case "-":
                    return left - right
                case "*":
                    return left * right
                case "/":
                    if right == 0:
                        raise self.error("division by zero", expr.right.span)
                    return left / right
                case "**":
                    return left**right
        if isinstance(expr, S.Compare):
            if not boolean:
                raise self.error(
                    f"comparison `{expr.op}` outside a condition",
                    expr.span,
                    hint="comparisons belong in `threshold:`, `event` conditions or `where(cond, a, b)`",
                )
            left, right = self.lower(expr.left, scope), self.lower(expr.right, scope)
            return _COMPARE[expr.op](left, right, evaluate=False)
        if isinstance(expr, S.BoolOp):
            if not boolean:
                raise self.error(
                    f"`{expr.op}` outside a condition",
                    expr.span,
                    hint="logical operators belong in the first argument of `where(cond, a, b)`",
                )
            operands = [self.lower(o, scope, boolean=True) for o in expr.operands]
            return {"and": sp.And, "or": sp.Or, "not": sp.Not}[expr.op](*operands)
        if isinstance(expr, S.Call):
            return self._call(expr, scope)
        raise TypeError(expr)  # pragma: no cover - the parser makes no other nodes

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
                hint=_SIGNATURES.get(call.func),
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
        return builder(*args)

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
        candidates = list(scope.symbols) + list(self.defined)
        raise self.error(
            f"unknown name `{name.id}`",
            name.span,
            hint=did_you_mean(name.id, candidates) or "define it under `parameters:` or `state:`",
        )

    # ---- the whole model
    def run(self) -> ModelIR:
        m = self.model
        self._reject_units()
        for keyword in ("equations", "threshold"):
            if keyword not in m.blocks:
                raise self.error(
                    f"the model has no `{keyword}:` block",
                    Span(1, 1),
                    hint=f"every model needs `{keyword}:`; see docs/language.md",
                )

        parameters = self._parameters()
        param_symbols = {name: symbol(name) for name in parameters}
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
        dynamic = {**param_symbols, **state_symbols, "t": T, "pi": sp.pi}
        forbidden = {**weight_forbidden, **builtin_forbidden}

        subexpressions = self._subexpressions(subexpr_decls, dynamic, forbidden)
        full = {**dynamic, **subexpressions}
        scope = _Scope(full, forbidden)

        derivatives, equation_text = {}, []
        for name in states:
            decl = odes.get(name)
            derivatives[name] = sp.Integer(0) if decl is None else self.lower(decl.expr, scope)
        for decl in m.statements("equations"):
            label = f"d{decl.variable}/dt" if isinstance(decl, S.Differential) else decl.name
            equation_text.append(f"{label} = {self._text(decl.expr)}")

        threshold, threshold_text = self._condition(m.statements("threshold"), scope, "threshold")
        reset = self._jump(m.statements("reset"), scope, states, parameters, subexpressions, "reset")

        pre_scope_symbols = dict(full)
        pre_names = []
        for name in [*states, *subexpressions]:
            pre_names.append(name)
            value = pre_symbol(name) if name in states else subexpressions[name]
            if name not in states:
                value = value.subs({state_symbols[s]: pre_symbol(s) for s in states})
            pre_scope_symbols[f"{name}_pre"] = value
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
        used_pre = sorted(
            {s.name[: -len("_pre")] for e in on_spike.updates.values() for s in e.free_symbols if s.name.endswith("_pre")}
        )

        weights = self._weight_initialisers(weight_decls, param_symbols)
        events = tuple(self._event(e, scope, states, parameters, subexpressions) for e in m.events)
        constant_scope = _Scope(
            {**param_symbols, "pi": sp.pi},
            {n: (f"`{n}` must be a constant expression of parameters", None) for n in full if n not in param_symbols},
        )
        refractory = self._constant_line("refractory", constant_scope)
        delay = self._constant_line("delay", constant_scope)
        frozen = tuple(
            d.variable for d in odes.values() if "unless refractory" in d.flags
        )
        if frozen and refractory is None:
            first = next(d for d in odes.values() if "unless refractory" in d.flags)
            raise self.error(
                "`(unless refractory)` needs a `refractory:` block",
                first.span,
                hint="add `refractory: 2.0` (ms) or remove the flag",
            )
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
            delay=delay,
            frozen_when_refractory=frozen,
            pre_symbols=tuple(used_pre),
        )
        self._check_reset_clears_threshold(model_ir)
        return model_ir

    # ---- pieces
    def _reject_units(self):
        for block in self.model.blocks.values():
            for statement in block.statements:
                unit = getattr(statement, "unit", None)
                if unit is not None:
                    raise self.error(
                        "physical units are not supported yet",
                        unit.span,
                        hint="remove the `: unit` annotation; all times are in ms",
                    )

    def _parameters(self) -> dict[str, Parameter]:
        parameters: dict[str, Parameter] = {}
        for decl in self.model.statements("parameters"):
            self._require_plain_assignment(decl, "parameters")
            self._define(decl.name, "parameter", decl.name_span)
            for flag in decl.flags:
                if flag not in KNOWN_FLAGS["parameters"]:
                    raise self.error(
                        f"flag `{flag}` does not apply to a parameter",
                        decl.name_span,
                        hint="parameter flags are `per_neuron` and `trainable`",
                    )
            later = {
                d.name: (
                    f"parameter `{d.name}` is used before it is defined",
                    "move its definition above this line",
                )
                for d in self.model.statements("parameters")
                if d.name not in parameters and d.name != decl.name
            }
            later.update(self._states_forbidden_in_constants())
            scope = _Scope({**{n: symbol(n) for n in parameters}, "pi": sp.pi}, later)
            default = self.lower(decl.expr, scope)
            parameters[decl.name] = Parameter(
                decl.name,
                default,
                per_neuron="per_neuron" in decl.flags or "trainable" in decl.flags,
                trainable="trainable" in decl.flags,
                span=decl.name_span,
            )
        return parameters

    def _states_forbidden_in_constants(self):
        names = {}
        for d in self.model.statements("state"):
            names[d.name] = (f"state variable `{d.name}` used in a constant expression", "only parameters may appear here")
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
                for flag in decl.flags:
                    if flag not in KNOWN_FLAGS["equations"]:
                        raise self.error(f"flag `{flag}` does not apply to a differential equation", decl.name_span, hint="use `(unless refractory)`")
                odes[name] = decl
            else:
                self._define(decl.name, "subexpression", decl.name_span)
                for flag in decl.flags:
                    if flag not in KNOWN_FLAGS["subexpressions"]:
                        raise self.error(f"flag `{flag}` does not apply to a subexpression", decl.name_span, hint="only `(constant)` applies")
                subexprs[decl.name] = decl
        return odes, subexprs

    def _states(self, odes) -> list[str]:
        states = []
        declared = {}
        for decl in self.model.statements("state"):
            self._require_plain_assignment(decl, "state")
            if decl.name in declared:
                raise self.error(f"`{decl.name}` is defined twice", decl.name_span, hint=f"the first definition is at line {declared[decl.name].line}")
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
        scope = _Scope({**param_symbols, "pi": sp.pi}, forbidden)
        decls = {d.name: d for d in self.model.statements("state")}
        return {
            name: self.lower(decls[name].expr, scope) if name in decls else sp.Integer(0)
            for name in states
        }

    def _subexpressions(self, decls, dynamic, forbidden):
        placeholders = {name: sp.Symbol(f"__sub_{name}") for name in decls}
        scope = _Scope({**dynamic, **placeholders}, forbidden)
        raw = {name: self.lower(decl.expr, scope) for name, decl in decls.items()}
        by_placeholder = {v: k for k, v in placeholders.items()}
        resolved: dict[str, sp.Expr] = {}

        def visit(name, path):
            if name in resolved:
                return resolved[name]
            if name in path:
                cycle = path[path.index(name) :] + [name]
                raise self.error(
                    "circular subexpressions: " + " -> ".join(f"`{n}`" for n in cycle),
                    decls[cycle[0]].name_span,
                    hint="a subexpression may not depend on itself; make one of them a state variable",
                )
            expr = raw[name]
            deps = [by_placeholder[s] for s in expr.free_symbols if s in by_placeholder]
            values = {placeholders[d]: visit(d, path + [name]) for d in deps}
            resolved[name] = expr.xreplace(values) if values else expr
            return resolved[name]

        for name in decls:
            visit(name, [])
        return {name: resolved[name] for name in decls}

    def _condition(self, lines, scope, what):
        (line,) = lines if len(lines) == 1 else (self._too_many(lines, what),)
        expr = line.expr
        if not isinstance(expr, S.Compare):
            raise self.error(
                f"the {what} is not a comparison",
                expr.span,
                hint="write a comparison such as `v > v_th`",
            )
        if expr.op in ("==", "!="):
            raise self.error(
                f"`{expr.op}` cannot define a {what}",
                expr.span,
                hint="use `>`, `>=`, `<` or `<=`: an event is a crossing",
            )
        left, right = self.lower(expr.left, scope), self.lower(expr.right, scope)
        g = left - right if expr.op in (">", ">=") else right - left
        return g, self._text(expr)

    def _too_many(self, lines, what):
        raise self.error(f"`{what}:` takes exactly one condition", lines[1].span if len(lines) > 1 else None)

    def _jump(self, statements, scope, states, parameters, subexpressions, block) -> Jump:
        updates, texts, seen = {}, [], {}
        additive_only = block in ("on_spike", "on_input")
        for st in statements:
            target = st.target
            if target in parameters:
                raise self.error(
                    f"cannot assign to parameter `{target}` in `{block}:`",
                    st.target_span,
                    hint="parameters are constant; make it a state variable to change it at events",
                )
            if target in subexpressions:
                raise self.error(
                    f"cannot assign to subexpression `{target}` in `{block}:`",
                    st.target_span,
                    hint="assign to the state variables it is computed from",
                )
            if target not in states:
                hint = did_you_mean(target, states) or "only state variables can be assigned"
                raise self.error(f"assignment to undefined variable `{target}` in `{block}:`", st.target_span, hint=hint)
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
                raise self.error(f"`/=` is not supported in `{block}:`", st.op_span, hint=f"write `{target} = {target} / (...)`")
            rhs = self.lower(st.expr, scope)
            x = symbol(target)
            if additive_only:
                updates[target] = rhs if st.op == "+=" else -rhs
            else:
                updates[target] = {"=": rhs, "+=": x + rhs, "-=": x - rhs, "*=": x * rhs}[st.op]
            texts.append(f"{target} {st.op} {self._text(st.expr)}")
        return Jump(updates, tuple(texts))

    def _weight_declarations(self):
        decls = {}
        for decl in self.model.statements("weights"):
            self._define(decl.name, "weight", decl.name_span)
            decls[decl.name] = decl
        return decls

    def _weight_initialisers(self, decls, param_symbols):
        scope = _Scope({**param_symbols, "fan_in": FAN_IN, "pi": sp.pi}, random=True)
        for name in self.defined:
            if name not in param_symbols:
                scope.forbidden[name] = (
                    f"`{name}` cannot be used in a weight initialiser",
                    "initialisers use `normal(mean, std)`, `uniform(lo, hi)`, parameters, constants and `fan_in`",
                )
        return {
            name: (self.lower(d.init, scope) if d.init is not None else normal(0, 1) / sp.sqrt(FAN_IN))
            for name, d in decls.items()
        }

    def _event(self, decl: S.EventDecl, scope, states, parameters, subexpressions):
        if decl.name in ("spike", "threshold"):
            raise self.error(f"event name `{decl.name}` is reserved", decl.name_span)
        if not isinstance(decl.condition, S.Compare) or decl.condition.op in ("==", "!="):
            raise self.error(
                f"the condition of event `{decl.name}` is not a comparison",
                decl.condition.span,
                hint="write e.g. `event burst: v_d > theta_d`",
            )
        g, text = self._condition((S.ExprLine(decl.condition, None, decl.condition.span),), scope, "condition")
        body = self._jump(decl.body, scope, states, parameters, subexpressions, f"event {decl.name}")
        return InternalEvent(decl.name, g, text, body, decl.span)

    def _constant_line(self, keyword, scope):
        lines = self.model.statements(keyword)
        if not lines:
            return None
        if len(lines) > 1:
            raise self.error(f"`{keyword}:` takes one expression", lines[1].span)
        return self.lower(lines[0].expr, scope)

    def _check_reset_clears_threshold(self, model: ModelIR):
        """Warn when, right after firing, the reset leaves the threshold condition satisfied."""
        g = model.threshold
        if not model.reset.updates:
            block = self.model.blocks["threshold"]
            warn_at(
                "the model has no `reset:`, so the threshold stays satisfied after a spike",
                block.span,
                self.source,
                hint="add a `reset:` block, e.g. `v = v_reset`",
            )
            return
        after = g.xreplace({symbol(n): v for n, v in model.reset.updates.items()})
        state_syms = [symbol(n) for n in model.states if symbol(n) in g.free_symbols]
        if not state_syms:
            return
        try:
            crossing = sp.solve(sp.Eq(g, 0), state_syms[0], dict=True)
        except (NotImplementedError, ValueError):
            return
        if len(crossing) != 1:
            return
        margin = sp.simplify(after.xreplace(crossing[0]))
        defaults = evaluate_defaults(model.parameters)
        try:
            value = float(margin.xreplace(defaults))
        except (TypeError, ValueError):
            return  # depends on other states: checked at run time
        if value >= 0:
            reset_block = self.model.blocks["reset"]
            warn_at(
                f"the reset leaves the threshold satisfied (threshold − rhs = {value:g} ≥ 0 after reset)",
                reset_block.span,
                self.source,
                hint="reset below the threshold, e.g. `v = v_reset` with v_reset < v_th",
            )

    def _text(self, expr) -> str:
        """The source text of an expression, from its first column to the end of its line."""
        full = self.source.line(expr.span.line)
        start = expr.span.column - 1
        while start > 0 and full[start - 1] in "( \t" and "=" not in full[start - 1 : start]:
            if full[start - 1] != "(" and not full[: start - 1].rstrip().endswith("("):
                break
            start -= 1
        return full[start:].split("#")[0].strip()


_SIGNATURES = {
    "clip": "clip(x, lo, hi)",
    "where": "where(condition, value_if_true, value_if_false)",
    "min": "min(a, b, ...)",
    "max": "max(a, b, ...)",
    "normal": "normal(mean, std)",
    "uniform": "uniform(lo, hi)",
}


def _stem(filename: str) -> str:
    from pathlib import Path

    return Path(filename).stem if filename and not filename.startswith("<") else "model"


def evaluate_defaults(parameters: dict[str, Parameter], overrides=None) -> dict:
    values = {}
    for name, p in parameters.items():
        if overrides and name in overrides:
            values[symbol(name)] = overrides[name]
        else:
            values[symbol(name)] = p.default.xreplace(values)
    return values


def check(model: S.ModelSyntax) -> ModelIR:
    """Resolve and classify every name; lower the model to SymPy."""
    return Checker(model).run()
