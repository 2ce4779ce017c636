"""JAX's persistent compilation cache, on by default for the command line and training.

A second process that compiles the same programs (the same model, network
shapes and options) reads them from disk instead of compiling them again.
The cache lives in `$EQNEURON_JAX_CACHE` (default: the `jax` folder of
eqneuron's cache directory, see `eqneuron.analysis.cache`); set
`EQNEURON_JAX_CACHE=off` to disable it.  A cache that JAX has already been
configured with (`jax_compilation_cache_dir`) is left as it is.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import equinox as eqx
import jax
import numpy as np

from .analysis.cache import cache_dir


def enable_compilation_cache() -> str | None:
    """Point JAX's persistent compilation cache at eqneuron's cache directory; returns the path."""
    configured = os.environ.get("EQNEURON_JAX_CACHE")
    if configured is not None and configured.lower() in ("", "0", "off", "none"):
        return None
    # config options are attributes JAX adds at run time
    current = jax.config.jax_compilation_cache_dir  # type: ignore[attr-defined]
    if current:
        return current
    path = configured
    if path is None:
        base = cache_dir()
        if base is None:
            return None
        path = str(base / "jax")
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


# -- traced programs ---------------------------------------------------------
#
# JAX's cache above keys compiled programs by the program, so a second process
# still traces every function to find its key — for a network's gradient that
# is most of a first call.  `persistent_jit` keeps the traced program itself
# (serialised StableHLO, `jax.export`) on disk, keyed by what determines it,
# and a later process calls it without tracing.


def _code_fingerprint() -> str:
    """A hash of eqneuron's own code: a program traced by other code is not reused."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        from ._resources import grammar_path

        root = Path(__file__).resolve().parent
        digest = hashlib.sha256()
        files = sorted(root.rglob("*.py")) + [Path(grammar_path())]
        for path in files:
            digest.update(str(path.relative_to(root) if path.is_relative_to(root) else path.name).encode())
            digest.update(path.read_bytes())
        _FINGERPRINT = digest.hexdigest()
    return _FINGERPRINT


_FINGERPRINT: str | None = None


def _export_dir() -> Path | None:
    configured = os.environ.get("EQNEURON_JAX_CACHE")
    if configured is not None and configured.lower() in ("", "0", "off", "none"):
        return None
    base = cache_dir()
    return None if base is None else base / "exported"


class persistent_jit:
    """`jax.jit` of `fun` whose traced program is kept on disk across processes.

    `fun` takes and returns pytrees; its array leaves are the arguments of the
    program, everything else (Python numbers, static fields of Equinox modules)
    is part of the program.  A call looks the program up by `key` (what the
    caller knows determines the program: the model sources, the options),
    the shapes and dtypes of the array leaves, JAX's version, eqneuron's code
    and the non-array leaves; a miss traces `fun` once and stores the program
    (`jax.export`), a hit skips tracing.  XLA's compilation of the program is
    then what JAX's persistent cache (`enable_compilation_cache`) keeps.

    `out_structure(*args)` returns a pytree with the structure of `fun`'s
    result (its leaves' values do not matter): a later process rebuilds the
    result from it without tracing `fun`.  The traced result is checked
    against it.
    """

    def __init__(self, fun: Callable, *, name: str, key: str, out_structure: Callable):
        self.fun, self.name, self.key, self.out_structure = fun, name, key, out_structure
        self._programs: dict[str, Callable] = {}
        self.traced = 0  # how many times `fun` was traced (a cache miss)
        self.loaded = 0  # how many programs were read from disk

    def __call__(self, *args):
        dynamic, static = eqx.partition(args, eqx.is_array)
        leaves, treedef = jax.tree_util.tree_flatten(dynamic)
        leaves = [committed(x) for x in leaves]
        static_leaves = jax.tree_util.tree_leaves(static)
        signature = hashlib.sha256(
            "\0".join(
                [
                    self.name,
                    self.key,
                    jax.__version__,
                    _code_fingerprint(),
                    str(bool(jax.config.jax_enable_x64)),  # type: ignore[attr-defined]
                    jax.default_backend(),
                    repr([(tuple(x.shape), str(x.dtype)) for x in leaves]),
                    repr([_static_repr(x) for x in static_leaves]),
                    str(len(leaves)),
                ]
            ).encode()
        ).hexdigest()
        program = self._programs.get(signature)
        if program is None:
            program = self._program(signature, leaves, treedef, static, args)
            self._programs[signature] = program
        out_tree = jax.tree_util.tree_structure(self.out_structure(*args))
        return jax.tree_util.tree_unflatten(out_tree, program(*leaves))

    def _program(self, signature, leaves, treedef, static, args):
        directory = _export_dir()
        path = None if directory is None else directory / f"{self.name}-{signature}.bin"
        if path is not None and path.exists():
            try:
                exported = jax.export.deserialize(bytearray(path.read_bytes()))
                self.loaded += 1
                return jax.jit(exported.call)
            except Exception:  # truncated, or written by another version: trace again
                pass
        expected = jax.tree_util.tree_structure(self.out_structure(*args))

        def flat(*dynamic_leaves):
            self.traced += 1
            out = self.fun(*eqx.combine(jax.tree_util.tree_unflatten(treedef, dynamic_leaves), static))
            out_leaves, out_tree = jax.tree_util.tree_flatten(out)
            if not _same_structure(out_tree, expected):
                raise TypeError(f"persistent_jit({self.name}): the result's structure {out_tree} is not {expected}")
            return out_leaves

        specs = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves]
        exported = jax.export.export(jax.jit(flat))(*specs)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                scratch = path.with_suffix(f".{os.getpid()}.tmp")
                scratch.write_bytes(exported.serialize())
                scratch.replace(path)  # atomic: a concurrent reader sees all or nothing
            except OSError:  # a read-only cache: the program still runs
                pass
        return jax.jit(exported.call)


def committed(x):
    """An array `x` placed on its device explicitly (anything else: `x`).

    `jax.jit` keys a compiled program by its arguments' placement too: arrays
    made from NumPy values or by eager operations are uncommitted, the results
    of a compiled call are committed to their device, so a training step's
    first call and its second (fed the first one's results) would each compile
    the same program — measured: the Yin-Yang step compiled twice, 9 s each,
    and so did the prediction."""
    if not eqx.is_array(x) or isinstance(x, jax.core.Tracer) or (isinstance(x, jax.Array) and x.committed):
        return x
    device = jax.config.jax_default_device  # type: ignore[attr-defined]
    return jax.device_put(x, device if isinstance(device, jax.Device) else jax.devices()[0])


def _same_structure(a: object, b: object) -> bool:
    return a == b


def _static_repr(x) -> str:
    """A stable description of a non-array leaf's value: it is part of the program.

    Other leaves (functions, arbitrary objects) have no stable description, and a
    key without their value would reuse a program traced with another: refused."""
    if isinstance(x, (bool, int, float, complex, str, type(None))):
        return repr(x)
    if isinstance(x, np.generic):
        return f"{type(x).__name__}({x!r})"
    raise TypeError(
        f"persistent_jit: a non-array argument leaf of type {type(x).__qualname__} cannot be part of the key; "
        "pass it as an array, a Python number or a string, or make it a static field"
    )
