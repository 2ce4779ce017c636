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
off.  Applied for jaxlib 0.5 and later (XLA stops a process whose
`XLA_FLAGS` names a flag it does not know; the flag exists there).
"""

from __future__ import annotations

import os

SCHEDULER_FLAG = "xla_cpu_enable_concurrency_optimized_scheduler"


def apply() -> bool:
    """Add `--xla_cpu_enable_concurrency_optimized_scheduler=false` to `XLA_FLAGS` if it will take effect.

    Returns whether XLA will run with eqneuron's value of the flag.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if SCHEDULER_FLAG in flags:
        return f"--{SCHEDULER_FLAG}=false" in flags.split()
    setting = os.environ.get("EQNEURON_XLA_DEFAULTS", "1").strip().lower()
    if setting not in ("0", "1"):
        from .errors import EqError

        raise EqError(f"EQNEURON_XLA_DEFAULTS must be 0 or 1, got {setting!r}", hint="unset it, or 0 to leave XLA_FLAGS alone")
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
