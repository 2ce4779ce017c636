"""XLA's CPU scheduler set for many small operations, when eqneuron is imported before JAX runs.

An event loop runs hundreds of small operations per event (a few lanes,
a few states each).  XLA's CPU compiler orders a program's operations with
one of two schedulers: by default the concurrency-optimised one, which
interleaves independent operations so that its runtime can spread them over
the cores, or the memory-minimising one (depth first).  For operations this
small the cross-thread bookkeeping costs more than it gains: Brian2's CUBA
network at 4000 neurons runs 1.5x faster with the depth-first order, and the
feed-forward benchmarks are unchanged (docs/design.md, benchmarks/RESULTS.md).
Results are the same: only the order of independent operations changes.

XLA reads its flags once, when JAX's first backend starts, so this takes
effect only if `import eqneuron` comes before JAX's first computation.  A
value already in `XLA_FLAGS` is kept; `EQNEURON_XLA_DEFAULTS=0` turns this
off; any other value is an `EqError` (the command line reports it as its
other errors).  Applied for jaxlib 0.5 and later (XLA stops a process whose
`XLA_FLAGS` names a flag it does not know; the flag exists there).

XLA's backend at optimisation level 0 (`XLA_FLAGS=--xla_backend_optimization_level=0`, or
JAX's `JAX_DISABLE_MOST_OPTIMIZATIONS`) miscompiles the root finder's loop: a LIF neuron under
constant drive fired at 3.897 ms instead of 4.0547 ms (jaxlib 0.10.2; the same loop in plain JAX,
without eqneuron, gives the same wrong root).  `import eqneuron` warns when either is set.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

from .errors import EqError, EqWarning

SCHEDULER_FLAG = "xla_cpu_enable_concurrency_optimized_scheduler"


def apply() -> bool:
    """Add `--xla_cpu_enable_concurrency_optimized_scheduler=false` to `XLA_FLAGS` if it will take effect.

    Returns whether XLA will run with eqneuron's value of the flag.
    """
    setting = os.environ.get("EQNEURON_XLA_DEFAULTS", "1").strip()
    if setting not in ("0", "1"):  # checked first: a bad value is an error whatever XLA_FLAGS holds
        raise EqError(f"EQNEURON_XLA_DEFAULTS must be 0 or 1, got {setting!r}", hint="unset it, or 0 to leave XLA_FLAGS alone")
    flags = os.environ.get("XLA_FLAGS", "")
    if SCHEDULER_FLAG in flags:
        return f"--{SCHEDULER_FLAG}=false" in flags.split()
    if setting == "0":
        return False
    try:
        import jaxlib
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - jax is a dependency
        return False
    version = tuple(int(p) for p in jaxlib.__version__.split(".")[:2] if p.isdigit())
    if version < (0, 5) or xla_bridge.backends_are_initialized():
        return False
    os.environ["XLA_FLAGS"] = f"{flags} --{SCHEDULER_FLAG}=false".strip()
    return True


# the error of a bad setting in a process that runs the command line: reported by it
deferred: EqError | None = None


def apply_or_defer() -> None:
    """`apply()` on import.  A bad setting is raised at once, except in the command line
    (`eqneuron ...`, `python -m eqneuron ...`), which reports it as its other errors rather
    than with a traceback from the import."""
    global deferred
    try:
        apply()
    except EqError as error:
        if not _command_line():
            raise
        deferred = error
    setting = unoptimised()
    if setting is not None:
        warnings.warn(
            f"{setting} compiles XLA's backend at optimisation level 0, which gives wrong spike times "
            "(the root finder's loop is miscompiled: docs/design.md); unset it",
            EqWarning,
            stacklevel=2,
        )


def unoptimised() -> str | None:
    """The setting, if any, that has XLA compile its backend at optimisation level 0.

    The environment is read as JAX reads it (its true spellings): JAX's own parsed value is an
    option of `jax._src.compiler`, defined only once that private module is imported."""
    if "--xla_backend_optimization_level=0" in os.environ.get("XLA_FLAGS", "").split():
        return "XLA_FLAGS=--xla_backend_optimization_level=0"
    if os.environ.get("JAX_DISABLE_MOST_OPTIMIZATIONS", "").strip().lower() in ("1", "y", "yes", "t", "true", "on"):
        return "JAX_DISABLE_MOST_OPTIMIZATIONS"
    return None


def _command_line() -> bool:
    argv = getattr(sys, "orig_argv", [])
    if any(a == "-m" and b == "eqneuron" for a, b in zip(argv, argv[1:])):
        return True
    return bool(sys.argv) and Path(sys.argv[0]).name == "eqneuron"
