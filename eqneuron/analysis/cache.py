"""The analysis of a model, cached on disk by the model's content.

Deriving a closed form takes SymPy seconds; the result depends only on the
model text and on the versions of eqneuron and SymPy, so it is pickled
under the user's cache directory (`$EQNEURON_CACHE_DIR`, else
`$XDG_CACHE_HOME/eqneuron`, else `~/.cache/eqneuron`).  Setting
`EQNEURON_CACHE_DIR=off` disables the disk cache.  An unreadable entry is
recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import sympy as sp

_VERSION = "9"  # bump when the pickled analysis (or what it holds) changes


def cache_dir() -> Path | None:
    configured = os.environ.get("EQNEURON_CACHE_DIR")
    if configured is not None:
        return None if configured.lower() in ("", "0", "off", "none") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "eqneuron"


def content_key(text: str) -> str:
    from .. import __version__

    material = f"{_VERSION}\0{__version__}\0{sp.__version__}\0{text}"
    return hashlib.sha256(material.encode("utf-8", "surrogatepass")).hexdigest()


def load(key: str) -> Any:
    """The value stored under `key`, or None."""
    directory = cache_dir()
    if directory is None:
        return None
    try:
        with open(directory / f"{key}.pickle", "rb") as f:
            return pickle.load(f)
    except Exception:  # missing, truncated or from an incompatible version: recompute
        return None


def store(key: str, value: Any) -> None:
    """Pickle `value` under `key` (nothing happens when the cache cannot be written)."""
    directory = cache_dir()
    if directory is None:
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, delete=False, suffix=".tmp") as f:
            pickle.dump(value, f)
        os.replace(f.name, directory / f"{key}.pickle")  # atomic: readers never see half a file
    except Exception:  # a read-only or full disk only costs the next process the derivation
        pass
