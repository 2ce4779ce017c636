"""Where a model's text comes from: a `.eq` file, a zoo name, or the text itself.

A file is UTF-8 text, or an `EqError` that points at the first byte that is not.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from .._resources import models_dir
from ..errors import EqError, Source, Span, did_you_mean
from .parse import BLOCK_KEYWORDS

_OPENING_WORD = re.compile(r"\s*([A-Za-z_]\w*)(?=[\s:]|$)")


def read_source(source: str | Path) -> Source:
    """The text of a model given as a path, a zoo name or `.eq` text.

    A `Path` is a file. A string is, in this order: model text if it has a
    line break or is blank; a file if it names an existing file; a zoo model
    if it is a zoo name; model text if it opens with a comment (`#`) or a
    language keyword (`extends lif`, `neuron X`, `equations: ...`). Anything
    else is an `EqError` (a missing `.eq` path: no such file).
    """
    if isinstance(source, Path):
        return read_file(source)
    text = str(source)
    if "\n" in text or not text.strip():
        return Source(text, "<string>")
    path = Path(text)
    if _is_file(path):
        return read_file(path)
    zoo = zoo_file(text)
    if zoo is not None:
        return read_file(zoo, f"{text}.eq")
    if is_model_text(text):
        return Source(text, "<string>")
    if path.suffix == ".eq":
        return read_file(path)  # the "no such file" error
    names = zoo_names()
    message = f"`{text}` is neither a file nor a zoo model"
    if any(c in text for c in ":=#"):
        # it reads like a line of a model: the error points at it, as at any other model text
        hint = "model text has a line break or opens with a keyword (`neuron`, `extends`, `equations:`, ...)"
        raise EqError(message, Span(1, 1), Source(text, "<string>"), hint=hint)
    raise EqError(message, hint=did_you_mean(text, names) or f"zoo models: {', '.join(names)}")


def zoo_file(name: str) -> Path | None:
    """The file of the zoo model `name` (None: no such zoo model)."""
    if not name.isidentifier():
        return None
    path = models_dir() / f"{name}.eq"
    return path if _is_file(path) else None


def zoo_names() -> list[str]:
    """The zoo's model names, sorted."""
    return sorted(p.stem for p in models_dir().glob("*.eq"))


def is_model_text(line: str) -> bool:
    """Whether one line opens a model: a comment, or a keyword followed by a space, a colon or nothing."""
    if line.lstrip().startswith("#"):
        return True
    opening = _OPENING_WORD.match(line)
    return opening is not None and opening.group(1) in BLOCK_KEYWORDS


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL character
        return False


def read_file(path: Path, filename: str | None = None) -> Source:
    """The text of the `.eq` file at `path` (a UTF-8 byte-order mark is dropped)."""
    filename = filename or str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EqError(f"no such file: {path}", hint="give a path to a .eq file or a zoo name") from None
    except IsADirectoryError:
        raise EqError(f"{path} is a directory", hint="give a path to a .eq file or a zoo name") from None
    except OSError as error:
        raise EqError(f"cannot read {path}: {error.strerror or error}") from None
    skipped = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    data = data[skipped:]
    try:
        return Source(data.decode("utf-8"), filename, path)
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        span = Span(
            data.count(b"\n", 0, error.start) + 1, len(data[line_start : error.start].decode("utf-8")) + 1
        )
        raise EqError(
            f"the file is not UTF-8: byte 0x{data[error.start]:02x} at offset {error.start + skipped} "
            "cannot be decoded",
            span,
            Source(data.decode("utf-8", errors="replace"), filename),
            hint="save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 old.eq > new.eq`)",
        ) from None
