"""Errors and warnings that point at the user's source."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Span:
    """A region of a source file (1-based line and column, end exclusive).

    `source` names the file when it is not the one being checked: the lines a
    model inherits with `extends` keep the file they were written in.
    """

    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None
    source: Source | None = field(default=None, compare=False, repr=False)


def source_lines(text: str) -> list[str]:
    """The lines of a model as the lexer counts them: split at `\\n` only.

    `str.splitlines` also splits at form feeds, `\\r`, U+2028/U+2029 and
    other separators that the grammar treats as ordinary characters; using it
    here would make messages quote a different line than the one they name.
    """
    return [line.removesuffix("\r") for line in text.split("\n")]


def printable_line(line: str) -> str:
    """A source line as a message quotes it: one character per character, so a
    caret stays aligned, with separators and control characters made visible."""
    return "".join(c if c.isprintable() or c == "\t" else " " if c.isspace() else "\ufffd" for c in line)


@dataclass(frozen=True)
class Source:
    """The text of a model file and the name used for it in messages.

    `path` is the file it was read from (None for text); `bases` are the
    files it extends, nearest first (`extends`), which a compiled model
    depends on as much as on `text`.
    """

    text: str
    filename: str = "<string>"
    path: Path | None = field(default=None, compare=False)
    bases: tuple[Source, ...] = ()

    @property
    def text_with_bases(self) -> str:
        """This file's text and every base's name and text: what a compiled model depends on."""
        return "\0".join([self.text, *(f"{base.filename}\0{base.text}" for base in self.bases)])

    def lines(self) -> list[str]:
        return source_lines(self.text)

    def line(self, number: int) -> str:
        lines = self.lines()
        return lines[number - 1] if 0 < number <= len(lines) else ""


def format_location(source: Source | None, span: Span | None) -> str:
    """`file:line:col`, the source line and a caret under the offending token."""
    source = span.source if span is not None and span.source is not None else source
    if source is None or span is None:
        return source.filename if source is not None else "<string>"
    text_line = source.line(span.line)
    width = 1
    if span.end_column is not None and (span.end_line in (None, span.line)):
        width = max(1, span.end_column - span.column)
    width = max(1, min(width, len(text_line) - span.column + 1))
    # tabs before the token are kept so that the caret lines up in a terminal
    indent = "".join("\t" if c == "\t" else " " for c in text_line[: span.column - 1])
    caret = indent + "^" * width
    return f"{source.filename}:{span.line}:{span.column}\n    {printable_line(text_line)}\n    {caret}"


class EqError(ValueError):
    """A mistake in a model: says where (file, line, column), what, and how to fix it."""

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        source: Source | None = None,
        hint: str | None = None,
    ) -> None:
        if span is not None and span.source is not None:
            source = span.source  # a line inherited from another file (`extends`)
        self.message = message
        self.span = span
        self.source = source
        self.hint = hint
        self.filename = source.filename if source is not None else None
        self.line = span.line if span is not None else None
        self.column = span.column if span is not None else None
        super().__init__(self._render())

    def _render(self) -> str:
        text = f"{format_location(self.source, self.span)}\nerror: {self.message}"
        if self.hint:
            text += f"\nhint: {self.hint}"
        return text


class EqWarning(UserWarning):
    """A suspicious but legal model (e.g. a reset that leaves the threshold satisfied)."""


def warn_at(message: str, span: Span | None, source: Source | None, hint: str | None = None) -> None:
    text = f"{format_location(source, span)}\nwarning: {message}"
    if hint:
        text += f"\nhint: {hint}"
    warnings.warn(text, EqWarning, stacklevel=3)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
