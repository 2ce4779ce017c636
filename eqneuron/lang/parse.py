"""Parse `.eq` text into the syntax tree of `syntax.py` (Lark, LALR, indentation-aware)."""

from __future__ import annotations

import functools
import unicodedata

import lark
from lark.indenter import Indenter

from .._resources import grammar_path
from ..errors import EqError, Source, Span, did_you_mean, printable_line, source_lines
from . import syntax as S

BLOCK_KEYWORDS = (
    "extends",
    "neuron",
    "parameters",
    "state",
    "equations",
    "threshold",
    "reset",
    "weights",
    "on_spike",
    "on_input",
    "event",
    "refractory",
    "delay",
    "inputs",
)


# Deeper expressions are refused: the tree walks of the transformer, the
# checker, SymPy and Python's compiler (for the generated code) recurse.
MAX_DEPTH = 64


class _EqIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR"]
    CLOSE_PAREN_types = ["RPAR"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 4

    def handle_NL(self, token):
        # lark's own version raises a position-less DedentError for a dedent
        # to a column that no enclosing block uses
        if self.paren_level > 0:
            return
        yield token
        indent_str = token.rsplit("\n", 1)[1]
        indent = indent_str.count(" ") + indent_str.count("\t") * self.tab_len
        if indent > self.indent_level[-1]:
            self.indent_level.append(indent)
            yield lark.Token.new_borrow_pos(self.INDENT_type, indent_str, token)
            return
        while indent < self.indent_level[-1]:
            self.indent_level.pop()
            yield lark.Token.new_borrow_pos(self.DEDENT_type, indent_str, token)
        if indent != self.indent_level[-1]:
            raise _BadDedent(token.end_line, len(indent_str) + 1)


@functools.cache
def _parser() -> lark.Lark:
    return lark.Lark(
        grammar_path().read_text(),
        parser="lalr",
        lexer="contextual",
        postlex=_EqIndenter(),
        propagate_positions=True,
        maybe_placeholders=True,
    )


def _token_span(token: lark.Token) -> Span:
    assert token.line is not None and token.column is not None  # the lexer sets positions
    return Span(token.line, token.column, token.end_line, token.end_column)


def _meta_span(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _span_of(node) -> Span:
    if isinstance(node, lark.Token):
        return _token_span(node)
    return node.span


def _join(first: Span, last: Span) -> Span:
    return Span(first.line, first.column, last.end_line, last.end_column)


def _flags(token) -> tuple[str, ...]:
    if token is None:
        return ()
    inner = str(token).strip()[1:-1]
    return tuple(" ".join(part.split()) for part in inner.split(","))


def _flags_span(token) -> Span | None:
    return _token_span(token) if token is not None else None


def _declaration(cls, name: str, meta, children):
    """A `name op expr [flags] [: unit]` line (parameter, differential equation, subexpression)."""
    token, op, expr, flags, unit = children
    return cls(name, str(op), expr, _flags(flags), unit, _meta_span(meta), _token_span(token), _flags_span(flags))


class _ToSyntax(lark.Transformer):
    """Lark parse tree -> eqneuron syntax dataclasses."""

    # ---- expressions
    def number(self, children):
        (token,) = children
        return S.Num(float(token), _token_span(token))

    def name(self, children):
        (token,) = children
        return S.Name(str(token), _token_span(token))

    @lark.v_args(meta=True)
    def call(self, meta, children):
        func, *args = children
        args = tuple(arg for arg in args if arg is not None)
        return S.Call(str(func), args, _meta_span(meta), _token_span(func))

    def binary(self, children):
        node = children[0]
        for op, right in zip(children[1::2], children[2::2]):
            node = S.BinOp(str(op), node, right, _join(_span_of(node), _span_of(right)))
        return node

    def power(self, children):
        base, _, exponent = children
        return S.BinOp("**", base, exponent, _join(base.span, exponent.span))

    @lark.v_args(meta=True)
    def unary(self, meta, children):
        op, operand = children
        return S.UnaryOp(str(op), operand, _meta_span(meta))

    @lark.v_args(meta=True)
    def compare(self, meta, children):
        if len(children) > 3:
            raise _ChainedComparison(children[3])
        left, op, right = children
        return S.Compare(str(op), left, right, _meta_span(meta))

    @lark.v_args(meta=True)
    def or_(self, meta, children):
        return S.BoolOp("or", tuple(children), _meta_span(meta))

    @lark.v_args(meta=True)
    def and_(self, meta, children):
        return S.BoolOp("and", tuple(children), _meta_span(meta))

    @lark.v_args(meta=True)
    def not_(self, meta, children):
        return S.BoolOp("not", tuple(children), _meta_span(meta))

    # ---- statements
    @lark.v_args(meta=True)
    def param_line(self, meta, children):
        return _declaration(S.ParameterDecl, str(children[0]), meta, children)

    @lark.v_args(meta=True)
    def state_line(self, meta, children):
        name, op, expr, unit = children
        return S.StateDecl(str(name), str(op), expr, unit, _meta_span(meta), _token_span(name))

    @lark.v_args(meta=True)
    def ode(self, meta, children):
        variable = str(children[0]).split("/")[0].strip()[1:]  # `dX/dt` -> X
        return _declaration(S.Differential, variable, meta, children)

    @lark.v_args(meta=True)
    def subexpression(self, meta, children):
        return _declaration(S.Subexpression, str(children[0]), meta, children)

    @lark.v_args(meta=True)
    def assignment(self, meta, children):
        target, op, expr = children
        return S.Assignment(
            str(target), str(op), expr, _meta_span(meta), _token_span(target), _token_span(op)
        )

    @lark.v_args(meta=True)
    def weight_line(self, meta, children):
        name, op, init, unit = children
        if op is not None and str(op) != "=":
            raise _BadOperator(op, "a weight initialiser is written `name = expr`")
        return S.WeightDecl(str(name), init, unit, _meta_span(meta), _token_span(name))

    @lark.v_args(meta=True)
    def input_line(self, meta, children):
        name, interpolation, unit = children
        word = None if interpolation is None else str(interpolation).strip()[1:-1].strip()
        return S.InputDecl(
            str(name), word, unit, _meta_span(meta), _token_span(name), _flags_span(interpolation)
        )

    @lark.v_args(meta=True)
    def expr_line(self, meta, children):
        expr, unit = children
        return S.ExprLine(expr, unit, _meta_span(meta))

    def unit(self, children):
        return children[0]

    # ---- blocks
    def neuron_decl(self, children):
        (name,) = children
        return ("neuron", str(name), _token_span(name))

    def extends_decl(self, children):
        _, base = children
        return S.Extends(str(base).strip('"'), _token_span(base))

    def _block(self, children):
        keyword, *statements = children
        return S.Block(str(keyword), _token_span(keyword), tuple(statements))

    parameters_block = _block
    state_block = _block
    equations_block = _block
    threshold_block = _block
    reset_block = _block
    weights_block = _block
    on_spike_block = _block

    def on_input_block(self, children):
        keyword, name, *statements = children
        if name is None:
            return S.Block(str(keyword), _token_span(keyword), tuple(statements))
        return S.InputPort(str(name), tuple(statements), _token_span(keyword), _token_span(name))
    refractory_block = _block
    delay_block = _block
    inputs_block = _block

    @lark.v_args(meta=True)
    def event_block(self, meta, children):
        _, name, condition, *body = children
        return S.EventDecl(str(name), condition, tuple(body), _meta_span(meta), _token_span(name))

    def start(self, children):
        return children


class _ChainedComparison(Exception):
    def __init__(self, token):
        self.token = token


class _BadDedent(Exception):
    def __init__(self, line, column):
        self.line = line
        self.column = column


class _BadOperator(Exception):
    def __init__(self, token, hint):
        self.token = token
        self.hint = hint


def description_of(text: str) -> str:
    """The leading comment lines of a file, without the `#`."""
    lines = []
    for line in source_lines(text):
        stripped = line.strip()
        if stripped.startswith("#"):
            lines.append(printable_line(stripped.lstrip("#")).strip())
        elif stripped:
            break
        elif lines:
            break
    return "\n".join(lines).strip()


def parse(text: str, filename: str = "<string>") -> S.ModelSyntax:
    """Parse model text; raise `EqError` with a friendly message on bad syntax."""
    source = Source(text, filename)
    body = text if text.endswith("\n") else text + "\n"
    try:
        tree = _parser().parse(body)
    except _BadDedent as error:
        raise EqError(
            "the indentation does not match any enclosing block",
            Span(error.line, error.column),
            source,
            hint="indent every statement of a block by the same amount; block keywords start at column 1",
        ) from None
    except lark.exceptions.UnexpectedInput as error:
        raise _syntax_error(error, source) from None
    _check_depth(tree, source)
    try:
        items = _ToSyntax().transform(tree)
    except lark.exceptions.VisitError as error:
        original = error.orig_exc
        if isinstance(original, _ChainedComparison):
            raise EqError(
                "chained comparisons are not supported",
                _token_span(original.token),
                source,
                hint="write one comparison, e.g. `v > v_th`",
            ) from None
        if isinstance(original, _BadOperator):
            raise EqError(
                f"unexpected operator `{original.token}`",
                _token_span(original.token),
                source,
                hint=original.hint,
            ) from None
        raise

    model = S.ModelSyntax(source=source, description=description_of(text))
    for item in items:
        if isinstance(item, tuple):
            _, name, span = item
            if model.name_span is not None:  # a `neuron` line came before
                raise EqError(
                    "the model is named twice",
                    span,
                    source,
                    hint=f"keep one `neuron` line (first at line {model.name_span.line})",
                )
            model.name, model.name_span = name, span
        elif isinstance(item, S.Extends):
            if model.extends is not None:
                raise EqError(
                    "the model extends two bases",
                    item.span,
                    source,
                    hint=f"a model extends one base (line {model.extends.span.line}); "
                    "chain them instead: a base may itself extend another",
                )
            model.extends = item
        elif isinstance(item, S.EventDecl):
            model.events.append(item)
        elif isinstance(item, S.InputPort):
            model.ports.append(item)
        else:
            if item.keyword in model.blocks:
                first = model.blocks[item.keyword].span.line
                raise EqError(
                    f"block `{item.keyword}:` is defined twice",
                    item.span,
                    source,
                    hint=f"merge it into the `{item.keyword}:` block at line {first}",
                )
            model.blocks[item.keyword] = item
    return model


def _check_depth(tree: lark.Tree, source: Source) -> None:
    """Refuse expressions nested more than `MAX_DEPTH` deep (walked without recursion)."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise EqError(
                f"expression nested more than {MAX_DEPTH} levels deep",
                Span(node.meta.line, node.meta.column),
                source,
                hint="split it into subexpressions (`name = expr` under `equations:`)",
            )
        for child in node.children:
            if isinstance(child, lark.Tree):
                stack.append((child, depth + 1))


# ---- friendly syntax errors ----------------------------------------------------

_TOKEN_WORDS = {
    "_NL": "end of line",
    "_INDENT": "an indented block",
    "_DEDENT": "end of block",
    "NAME": "a name",
    "NUMBER": "a number",
    "ASSIGN_OP": "`=`",
    "COMP_OP": "a comparison",
    "COLON": "`:`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "COMMA": "`,`",
    "DERIV": "`dX/dt`",
    "FLAGS": "flags such as `(per_neuron, trainable)`",
    "INTERPOLATION": "an interpolation, `(linear)` or `(cubic)`",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*` or `/`",
    "POW": "`**`",
    "$END": "end of file",
}


def _describe_expected(expected) -> str:
    words = []
    for name in sorted(expected):
        word = _TOKEN_WORDS.get(name)
        if word is None:
            keyword = name.lower()
            word = f"`{keyword}`" if keyword in BLOCK_KEYWORDS else None
        if word and word not in words:
            words.append(word)
    return ", ".join(words[:8])


def _end_of_text(source: Source) -> Span:
    """Just after the last non-blank line (where an unexpected end of file is felt)."""
    lines = source.lines()
    number = max((k for k, line in enumerate(lines, 1) if line.strip()), default=1)
    return Span(number, len(lines[number - 1]) + 1)


def _describe_char(char: str) -> str:
    if char.isprintable() and not char.isspace():
        return f"`{char}`"
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def _syntax_error(error: lark.exceptions.UnexpectedInput, source: Source) -> EqError:
    line = getattr(error, "line", None) or 1
    column = getattr(error, "column", None) or 1
    if isinstance(error, lark.exceptions.UnexpectedCharacters):
        char = source.line(line)[column - 1 : column] or "?"
        hint = "expressions use Python syntax: names, numbers, + - * / ** and function calls"
        if char in "!&|^~" or char == "'" or char == '"':
            hint = "strings and bitwise operators are not part of the language; " + hint
        if source.line(line).split()[:1] == ["extends"]:
            hint = 'write `extends lif` (a zoo model) or `extends base.eq`; quote other paths: `extends "my base.eq"`'
        return EqError(f"unexpected character {_describe_char(char)}", Span(line, column), source, hint=hint)

    token = getattr(error, "token", None)
    # tokens made up by the indenter or the parser at the end of the input have no position
    if (
        isinstance(error, lark.exceptions.UnexpectedEOF)
        or token is None
        or token.type == "$END"
        or not token.line
    ):
        return EqError(
            "unexpected end of file",
            _end_of_text(source),
            source,
            hint="a block header (e.g. `reset:`) needs a body after it",
        )

    expected = set(getattr(error, "expected", ()) or ())
    span = _token_span(token)
    text = str(token)

    if token.type == "_INDENT":
        indented = token.end_line or line
        return EqError(
            "unexpected indentation",
            Span(indented, len(source.line(indented)) - len(source.line(indented).lstrip(" \t")) + 1),
            source,
            hint="block keywords start at column 1 and their statements share one indentation",
        )
    if token.type == "_DEDENT" or (token.type == "_NL" and "COLON" not in expected):
        if "NAME" in expected or "NUMBER" in expected:
            return EqError(
                "incomplete statement",
                Span(line, column),
                source,
                hint="an expression is missing at the end of this line",
            )
    if "COLON" in expected and token.type != "COLON":
        keyword = source.line(line).strip().split()[0] if source.line(line).strip() else "block"
        return EqError(
            f"missing `:` after `{keyword}`",
            span,
            source,
            hint=f"write `{keyword}:` followed by the statements of the block",
        )
    at_top = any(name.lower() in BLOCK_KEYWORDS for name in expected) and "ASSIGN_OP" not in expected
    if at_top and token.type in ("NAME", "DERIV"):
        return EqError(
            f"unknown block `{text}`",
            span,
            source,
            hint=did_you_mean(text, BLOCK_KEYWORDS)
            or "top-level lines are block headers: " + ", ".join(f"`{k}:`" for k in BLOCK_KEYWORDS),
        )
    if "BASE" in expected:
        return EqError(
            "`extends` needs the model it extends",
            span,
            source,
            hint="write `extends lif` (a zoo model) or `extends base.eq` (a file beside this one)",
        )
    if token.type == "ASSIGN_OP" and "COMP_OP" in expected:
        return EqError(
            f"unexpected `{text}` in an expression",
            span,
            source,
            hint="comparisons use `>`, `>=`, `<`, `<=`, `==`; assignments belong on their own line",
        )
    if token.type == "COMP_OP" and "ASSIGN_OP" in expected:
        return EqError(
            f"unexpected `{text}`",
            span,
            source,
            hint="a statement here is an assignment such as `v = v_reset` or `i += w`",
        )
    if token.type == "LPAR" and "FLAGS" in expected:
        return EqError(
            "unknown flags",
            span,
            source,
            hint="known flags are `(per_neuron)`, `(trainable)`, `(per_neuron, trainable)` "
            "for parameters and `(constant)` for subexpressions",
        )
    if token.type == "NAME" and "ASSIGN_OP" in expected and len(expected) <= 2:
        return EqError(
            f"expected `=` after `{source.line(line).strip().split()[0]}`",
            span,
            source,
            hint="statements are assignments such as `tau = 10.0`",
        )
    if token.type == "DERIV":
        return EqError(
            f"`{text}` is only allowed in the `equations:` block",
            span,
            source,
            hint="write differential equations under `equations:`",
        )
    what = _TOKEN_WORDS[token.type] if token.type in ("_NL", "_INDENT", "_DEDENT") else f"`{text}`"
    expected_words = _describe_expected(expected)
    return EqError(
        f"unexpected {what}",
        span,
        source,
        hint=f"expected {expected_words}" if expected_words else None,
    )
