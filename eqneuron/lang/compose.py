"""`extends`: a model made of another model and the lines that change it, merged into one syntax tree.

A file that starts with `extends BASE` inherits every block of BASE (a zoo
name, or a `.eq` file relative to the extending file) and overrides it:

- in `parameters:`, `state:`, `equations:`, `weights:` (and `inputs:`), a line
  that defines a name the base defines replaces the base's line, in place; a
  new name is added;
- `dX/dt += expr` (or `-=`) adds a term to the base's equation for `X` (and
  `name += expr` to a subexpression): the way to add a synaptic or adaptation
  current to a neuron without copying it;
- any other block given again (`threshold:`, `reset:`, `on_spike:`,
  `on_input:`, `refractory:`, `delay:`) replaces the base's block; `event NAME`
  and `on_input NAME` replace the base's event or port of that name.

Every inherited span keeps the file it was written in (`Span.source`), so an
error in an inherited line quotes the base file.  The result has no
`extends` left: the checker sees one model.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ..errors import EqError, Source, Span, did_you_mean, printable_line
from . import syntax as S
from .parse import parse
from .source import read_file, zoo_file, zoo_names

# blocks merged line by line, a line replacing the base's line of the same name
LINE_BLOCKS = ("parameters", "state", "equations", "weights", "inputs")
ADDITIVE = ("+=", "-=")


def compose(model: S.ModelSyntax, path: Path | None = None) -> S.ModelSyntax:
    """`model` with its `extends` resolved into one syntax tree.

    `path` is the file the model was read from: a base named by a path is
    relative to it (to the working directory for model text).  The merged
    model's `source` is the extending file, with every base in `source.bases`.
    """
    model = dataclasses.replace(model, source=dataclasses.replace(model.source, path=path))
    identity = _identity(model.source)
    return _compose(model, ((identity, model.source.filename),) if identity else ())


def _compose(model: S.ModelSyntax, chain: tuple[tuple[Path | None, str], ...]) -> S.ModelSyntax:
    if model.extends is None:
        _reject_additions(model)
        return model
    base_source = _resolve(model.extends, model.source)
    identity = _identity(base_source)
    seen = [known for known, _ in chain]
    if identity in seen:
        names = [filename for _, filename in chain[seen.index(identity) :]] + [base_source.filename]
        raise EqError(
            "circular `extends`: " + " -> ".join(f"`{name}`" for name in names),
            model.extends.span,
            model.source,
            hint="a model cannot extend itself, directly or through its bases; remove one `extends` of the cycle",
        )
    parsed = dataclasses.replace(parse(base_source.text, base_source.filename), source=base_source)
    base = _compose(parsed, (*chain, (identity, base_source.filename)))
    merged = _merge(_stamped(base, base_source), model)
    bases = (base_source, *base.source.bases)
    return dataclasses.replace(merged, source=dataclasses.replace(model.source, bases=bases))


def _identity(source: Source) -> Path | None:
    return source.path.resolve() if source.path is not None else None


# ---- finding the base -----------------------------------------------------------


def _resolve(ref: S.Extends, source: Source) -> Source:
    """The base a model extends: a `.eq` file beside it (or a path), else a zoo model."""
    directory = source.path.parent if source.path is not None else Path.cwd()
    name = ref.base
    if name.endswith(".eq") or "/" in name or os.sep in name:
        path = Path(os.path.normpath(directory / name))
        if not path.is_file():
            stem = Path(name).stem
            zoo_hint = f"; the zoo model `{stem}` is `extends {stem}`" if zoo_file(stem) else ""
            raise EqError(
                f"no such file: `{name}`",
                ref.span,
                source,
                hint=f"a path is relative to the extending file (here {path}){zoo_hint}",
            )
        return read_file(path)
    base = zoo_file(name)
    if base is not None:
        return read_file(base, f"{name}.eq")
    zoo = zoo_names()
    if (directory / f"{name}.eq").is_file():
        hint = f"for the file `{name}.eq` beside this one write `extends {name}.eq`"
    else:
        hint = did_you_mean(name, zoo) or f"zoo models: {', '.join(zoo)}; a file is `extends NAME.eq`"
    raise EqError(f"`{name}` is not a zoo model", ref.span, source, hint=hint)


# ---- merging ---------------------------------------------------------------------


def _merge(base: S.ModelSyntax, derived: S.ModelSyntax) -> S.ModelSyntax:
    blocks = dict(base.blocks)
    for keyword, block in derived.blocks.items():
        if keyword in LINE_BLOCKS:
            inherited = base.statements(keyword)
            lines = _merged_lines(keyword, inherited, block.statements, derived.source)
            if keyword == "parameters":
                lines = _by_dependency(lines)
            blocks[keyword] = dataclasses.replace(block, statements=tuple(lines))
        else:
            blocks[keyword] = block
    return S.ModelSyntax(
        source=derived.source,
        name=derived.name,
        name_span=derived.name_span,
        description=derived.description or base.description,
        blocks=blocks,
        events=_merged_by_name(base.events, derived.events),
        ports=_merged_by_name(base.ports, derived.ports),
        extends=None,
    )


def _name(statement) -> str:
    return statement.variable if isinstance(statement, S.Differential) else statement.name


def _merged_lines(keyword: str, inherited, own, source: Source) -> list:
    """The base's lines with this file's lines replacing them by name, new ones appended, `+=` added."""
    lines = list(inherited)
    position: dict[str, int] = {}
    for k, statement in enumerate(lines):
        position.setdefault(_name(statement), k)
    replaced: set[str] = set()
    for statement in own:
        name = _name(statement)
        if keyword == "equations" and statement.op in ADDITIVE:
            if name not in position:
                _added(None, statement, source)  # raises: nothing to add to
            lines[position[name]] = _added(lines[position[name]], statement, source)
            replaced.add(name)
        elif name in position and name not in replaced:
            lines[position[name]] = statement
            replaced.add(name)
        else:
            lines.append(statement)  # new, or defined twice in this file: the checker says so
    return lines


def _added(target, addition, source: Source):
    """The base's `dX/dt = e` (or `name = e`) and this file's `dX/dt += f` as one line `dX/dt = e + f`."""
    differential = isinstance(addition, S.Differential)
    label = f"d{addition.variable}/dt" if differential else addition.name
    if target is None:
        raise EqError(
            f"`{label} {addition.op}` adds a term to the base's `{label}`, but the base has none",
            addition.name_span,
            source,
            hint=f"define it here with `{label} = ...`",
        )
    if isinstance(target, S.Differential) != differential:
        raise EqError(
            f"`{label} {addition.op}` adds to a {_kind(addition)}, but `{_name(target)}` is a "
            f"{_kind(target)} in the base",
            addition.name_span,
            source,
            hint=f"add to `{_name(target)}` as it is defined there, or override its whole line",
        )
    if addition.flags:
        raise EqError(
            f"flags on `{label} {addition.op}`",
            addition.flags_span,
            source,
            hint=f"an added term takes the flags of the base's `{label}`; override the whole line "
            f"(`{label} = ...`) to change them",
        )
    if addition.unit is not None:
        raise EqError(
            f"a unit on `{label} {addition.op}`",
            addition.unit.span,
            source,
            hint=f"the unit of `{label}` is given on its line in the base; remove `: ...` here",
        )
    op = addition.op[0]
    added = _expression_text(addition.expr, source)
    text = f"{_line_text(target, source)} {op} " + (f"({added})" if op == "-" else added)
    combined = S.BinOp(op, target.expr, addition.expr, addition.expr.span)
    return dataclasses.replace(target, expr=combined, text=text)


def _kind(statement) -> str:
    return "differential equation" if isinstance(statement, S.Differential) else "subexpression"


def _line_text(statement, source: Source) -> str:
    """The source text of a line's right-hand side, without its flags and unit."""
    if statement.text is not None:
        return statement.text
    span = statement.expr.span
    unit_span = statement.unit.span if statement.unit is not None else None
    cuts = [s.column - 1 for s in (statement.flags_span, unit_span) if s is not None and s.line == span.line]
    return _expression_text(statement.expr, source, min(cuts, default=None)).removesuffix(":").rstrip()


def _expression_text(expr: S.Expr, source: Source, end: int | None = None) -> str:
    """An expression's source text: from its first character (with opening parentheses) to
    the end of its line (or to column `end`), without a comment."""
    span = expr.span
    line = (span.source or source).line(span.line)
    start = span.column - 1
    while line[:start].rstrip().endswith("("):
        start = len(line[:start].rstrip()) - 1
    return printable_line(line[start:end].split("#")[0]).rstrip()


def _by_dependency(parameters: list) -> list:
    """Parameters ordered so that each default comes after the parameters it uses (stable otherwise)."""
    first: dict[str, int] = {}
    for k, decl in enumerate(parameters):
        first.setdefault(decl.name, k)
    order, visited = [], set()
    for start in range(len(parameters)):
        stack = [(start, False)]
        while stack:
            k, ready = stack.pop()
            if ready:
                order.append(k)
                continue
            if k in visited:
                continue
            visited.add(k)
            stack.append((k, True))
            used = [first[n] for n in S.names_in(parameters[k].expr) if n in first]
            stack.extend((j, False) for j in reversed(used) if j not in visited)
    return [parameters[k] for k in order]


def _merged_by_name(inherited: list, own: list) -> list:
    """Events or named input ports: this file's replace the base's of the same name."""
    merged = list(inherited)
    position = {item.name: k for k, item in reversed(list(enumerate(merged)))}
    replaced: set[str] = set()
    for item in own:
        if item.name in position and item.name not in replaced:
            merged[position[item.name]] = item
            replaced.add(item.name)
        else:
            merged.append(item)
    return merged


def _reject_additions(model: S.ModelSyntax) -> None:
    """`dX/dt += ...` belongs in a file that extends a model."""
    for statement in model.statements("equations"):
        if statement.op in ADDITIVE:
            label = f"d{statement.variable}/dt" if isinstance(statement, S.Differential) else statement.name
            raise EqError(
                f"`{label} {statement.op}` adds a term to an inherited equation, but this model extends none",
                statement.name_span,
                model.source,
                hint=f"write `{label} = ...`, or start the file with `extends BASE` to add to BASE's `{label}`",
            )


# ---- spans that name their file ----------------------------------------------------


def _stamped(model: S.ModelSyntax, source: Source) -> S.ModelSyntax:
    """`model` with every span that names no file naming `source` (the base it was read from)."""
    return dataclasses.replace(
        model,
        name_span=_with_source(model.name_span, source),
        blocks={keyword: _with_source(block, source) for keyword, block in model.blocks.items()},
        events=[_with_source(event, source) for event in model.events],
        ports=[_with_source(port, source) for port in model.ports],
    )


def _with_source(root, source: Source):
    """A copy of a syntax node whose spans without a file name `source` (walked without recursion:
    a sum of many terms is a deep tree)."""
    if root is None:
        return None
    done: dict[int, object] = {}
    stack = [(root, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in done:
            continue
        if isinstance(node, Span):
            done[id(node)] = node if node.source is not None else dataclasses.replace(node, source=source)
            continue
        children = _children(node)
        if not ready:
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in done)
            continue
        if isinstance(node, tuple):
            done[id(node)] = tuple(done.get(id(child), child) for child in node)
        else:
            changes = {
                f.name: done[id(value)]
                for f in dataclasses.fields(node)
                if id(value := getattr(node, f.name)) in done and done[id(value)] is not value
            }
            done[id(node)] = dataclasses.replace(node, **changes) if changes else node
    return done[id(root)]


def _children(node) -> list:
    values = (
        list(node) if isinstance(node, tuple) else [getattr(node, f.name) for f in dataclasses.fields(node)]
    )
    return [
        v
        for v in values
        if isinstance(v, Span | tuple) or (dataclasses.is_dataclass(v) and not isinstance(v, Source))
    ]
