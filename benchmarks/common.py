"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import resource
import statistics
import time

import jax


def block(x):
    return jax.tree_util.tree_map(lambda a: a.block_until_ready() if hasattr(a, "block_until_ready") else a, x)


def timed(fn, *args, repeats: int = 5):
    """(first-call seconds incl. compilation, median of `repeats` later calls)."""
    t0 = time.perf_counter()
    block(fn(*args))
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        block(fn(*args))
        runs.append(time.perf_counter() - t0)
    return first, statistics.median(runs)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
