"""Read a model file: UTF-8 text, or an `EqError` that points at the first byte that is not."""

from __future__ import annotations

import codecs
from pathlib import Path

from ..errors import EqError, Source, Span


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
