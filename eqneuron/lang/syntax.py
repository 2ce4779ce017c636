"""The abstract syntax tree of a `.eq` file: plain dataclasses with source spans."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Source, Span

# ---- expressions -------------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: float
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # + - * / **
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class UnaryOp:
    op: str  # + -
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    span: Span
    func_span: Span


@dataclass(frozen=True)
class Compare:
    op: str  # > >= < <= == !=
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class BoolOp:
    op: str  # and / or / not
    operands: tuple[Expr, ...]
    span: Span


Expr = Num | Name | BinOp | UnaryOp | Call | Compare | BoolOp


def names_in(expr: Expr) -> list[str]:
    """The names an expression uses, in source order (walked without recursion)."""
    names, stack = [], [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Name):
            names.append(node.id)
        elif isinstance(node, BinOp | Compare):
            stack += [node.right, node.left]
        elif isinstance(node, UnaryOp):
            stack.append(node.operand)
        elif isinstance(node, Call):
            stack += reversed(node.args)
        elif isinstance(node, BoolOp):
            stack += reversed(node.operands)
    return names


# ---- statements --------------------------------------------------------------


@dataclass(frozen=True)
class ParameterDecl:
    name: str
    op: str
    expr: Expr
    flags: tuple[str, ...]
    unit: Expr | None
    span: Span
    name_span: Span
    flags_span: Span | None = None


@dataclass(frozen=True)
class StateDecl:
    name: str
    op: str
    expr: Expr
    unit: Expr | None
    span: Span
    name_span: Span


@dataclass(frozen=True)
class Differential:
    """`dX/dt = expr`."""

    variable: str
    op: str
    expr: Expr
    flags: tuple[str, ...]
    unit: Expr | None
    span: Span
    name_span: Span
    flags_span: Span | None = None
    text: str | None = None  # the right-hand side as written, when it is not one span (`+=`)


@dataclass(frozen=True)
class Subexpression:
    """`name = expr` inside `equations:`."""

    name: str
    op: str
    expr: Expr
    flags: tuple[str, ...]
    unit: Expr | None
    span: Span
    name_span: Span
    flags_span: Span | None = None
    text: str | None = None  # the right-hand side as written, when it is not one span (`+=`)


@dataclass(frozen=True)
class Assignment:
    """`X = e`, `X += e`, `X -= e`, `X *= e` in reset / on_spike / on_input / event bodies."""

    target: str
    op: str
    expr: Expr
    span: Span
    target_span: Span
    op_span: Span


@dataclass(frozen=True)
class WeightDecl:
    name: str
    init: Expr | None
    unit: Expr | None
    span: Span
    name_span: Span


@dataclass(frozen=True)
class ExprLine:
    expr: Expr
    unit: Expr | None
    span: Span


@dataclass(frozen=True)
class EventDecl:
    name: str
    condition: Expr
    body: tuple[Assignment, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class InputPort:
    """`on_input NAME:`: the jump of one named group of input channels."""

    name: str
    body: tuple[Assignment, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True)
class InputDecl:
    """`NAME [(interpolation)] [: unit]` in `inputs:`: a waveform of time the user gives as samples."""

    name: str
    interpolation: str | None  # the word in parentheses, checked by the checker; None: not given
    unit: Expr | None
    span: Span
    name_span: Span
    interpolation_span: Span | None = None


@dataclass(frozen=True)
class Extends:
    """`extends BASE`: the model inherits every block of BASE (a zoo name or a `.eq` file)."""

    base: str
    span: Span


@dataclass(frozen=True)
class Block:
    """One top-level block: its keyword, where it starts, and its statements."""

    keyword: str
    span: Span
    statements: tuple = ()


@dataclass
class ModelSyntax:
    """A whole parsed file, blocks grouped by keyword (each at most once, except events)."""

    source: Source
    name: str | None = None
    name_span: Span | None = None
    description: str = ""
    blocks: dict[str, Block] = field(default_factory=dict)
    events: list[EventDecl] = field(default_factory=list)
    ports: list[InputPort] = field(default_factory=list)  # named `on_input NAME:` blocks, in order
    extends: Extends | None = None  # resolved by `lang.compose`, which leaves None

    def statements(self, keyword: str) -> tuple:
        block = self.blocks.get(keyword)
        return block.statements if block is not None else ()
