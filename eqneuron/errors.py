"""Errors and warnings that point at the user's source."""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A region of a source file (1-based line and column, end exclusive)."""

    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None


@dataclass(frozen=True)
class Source:
    """The text of a model file and the name used for it in messages."""

    text: str
    filename: str = "<string>"

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else ""


def format_location(source: Source | None, span: Span | None) -> str:
    """`file:line:col`, the source line and a caret under the offending token."""
    if source is None or span is None:
        return source.filename if source is not None else "<string>"
    text_line = source.line(span.line).rstrip("\n")
    width = 1
    if span.end_column is not None and (span.end_line in (None, span.line)):
        width = max(1, span.end_column - span.column)
    width = max(1, min(width, len(text_line) - span.column + 1))
    caret = " " * (span.column - 1) + "^" * width
    return f"{source.filename}:{span.line}:{span.column}\n    {text_line}\n    {caret}"


class EqError(ValueError):
    """A mistake in a model: says where (file, line, column), what, and how to fix it."""

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        source: Source | None = None,
        hint: str | None = None,
    ):
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


def warn_at(message: str, span: Span | None, source: Source | None, hint: str | None = None):
    text = f"{format_location(source, span)}\nwarning: {message}"
    if hint:
        text += f"\nhint: {hint}"
    warnings.warn(text, EqWarning, stacklevel=3)


def did_you_mean(name: str, candidates) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
