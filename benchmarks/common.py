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


def timed_together(calls, repeats: int = 5):
    """`timed` for several (fn, args) at once, their calls interleaved: each round calls
    every function once, so that a slower stretch of a shared machine costs them alike.
    Returns [(first-call seconds, median seconds)] in the order given."""
    firsts = []
    for fn, args in calls:
        t0 = time.perf_counter()
        block(fn(*args))
        firsts.append(time.perf_counter() - t0)
    runs = [[] for _ in calls]
    for _ in range(repeats):
        for k, (fn, args) in enumerate(calls):
            t0 = time.perf_counter()
            block(fn(*args))
            runs[k].append(time.perf_counter() - t0)
    return [(first, statistics.median(r)) for first, r in zip(firsts, runs)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
