"""Fuzz the compiler with the strategies of tests/test_fuzz.py and count the outcomes.

Every case is `compile_model(text)` in this process, stopped after
`--timeout` seconds by an alarm signal.  Outcomes: compiled; an `EqError`
that names a line and column inside the text and quotes that line; an
`EqError` that does not; any other exception (by type); over the time limit.

Run: python -m benchmarks.fuzz [--cases 10000] [--seed 0] [--timeout 10] [--save DIR]
"""

from __future__ import annotations

import argparse
import collections
import heapq
import os
import platform
import signal
import statistics
import time
import traceback
import warnings
from pathlib import Path

os.environ.setdefault("EQNEURON_CACHE_DIR", "off")  # thousands of throw-away models: keep no disk cache

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402

import eqneuron as eqn  # noqa: E402
import eqneuron.model  # noqa: E402
from tests.test_fuzz import assert_located, mutated_models, random_models  # noqa: E402

STRATEGIES = {"random": random_models, "mutated": mutated_models}
GOOD = ("compiled", "EqError")


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in the library swallows it."""


def _alarm(signum, frame):
    raise _Timeout


def classify(text: str, timeout: float) -> tuple[str, float, str]:
    """(outcome, seconds, detail) of compiling `text`."""
    eqneuron.model._CACHE.clear()  # every case compiles from scratch, and memory stays flat
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eqn.compile_model(text)
        outcome, detail = "compiled", ""
    except _Timeout:
        outcome, detail = f"over {timeout:g} s", ""
    except eqn.EqError as error:
        try:
            assert_located(error, text)
            outcome, detail = "EqError", ""
        except AssertionError as problem:
            outcome, detail = "EqError, not located in the text", str(problem)
    except Exception as error:  # noqa: BLE001 - counting them is the point
        outcome, detail = f"other: {type(error).__name__}", traceback.format_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return outcome, time.perf_counter() - start, detail


def run(strategy: str, cases: int, seed_value: int, timeout: float, save: Path | None):
    counts: collections.Counter = collections.Counter()
    times: list[float] = []
    saved: collections.Counter = collections.Counter()
    slowest: list[tuple[float, int, str]] = []

    @seed(seed_value)
    @settings(
        max_examples=cases,
        phases=[Phase.generate],
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(STRATEGIES[strategy]())
    def fuzz(text):
        outcome, seconds, detail = classify(text, timeout)
        counts[outcome] += 1
        times.append(seconds)
        heapq.heappush(slowest, (seconds, len(times), text))
        if len(slowest) > 5:
            heapq.heappop(slowest)
        if save is not None and outcome not in GOOD and saved[outcome] < 20:
            saved[outcome] += 1
            name = "".join(c if c.isalnum() else "_" for c in outcome)
            (save / f"{name}-{strategy}-{saved[outcome]}.eq").write_text(text, "utf-8", "surrogatepass")
            (save / f"{name}-{strategy}-{saved[outcome]}.txt").write_text(detail, "utf-8", "surrogatepass")

    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        fuzz()
    finally:
        signal.signal(signal.SIGALRM, previous)
    if save is not None:
        for rank, (seconds, _, text) in enumerate(sorted(slowest, reverse=True), 1):
            (save / f"slowest-{strategy}-{rank}-{seconds:.1f}s.eq").write_text(text, "utf-8", "surrogatepass")
    return counts, times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="total cases, half per strategy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per compile")
    parser.add_argument("--save", type=Path, help="write the texts of bad outcomes (20 per class) here")
    args = parser.parse_args(argv)
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    results = {}
    for k, strategy in enumerate(STRATEGIES):
        cases = args.cases // len(STRATEGIES) + (k < args.cases % len(STRATEGIES))
        results[strategy] = run(strategy, cases, args.seed, args.timeout, args.save)
    total = time.perf_counter() - start

    outcomes = sorted({o for counts, _ in results.values() for o in counts}, key=lambda o: (o not in GOOD, o))
    n = {s: sum(counts.values()) for s, (counts, _) in results.items()}
    print(f"python -m benchmarks.fuzz --cases {args.cases} --seed {args.seed} --timeout {args.timeout:g}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print()
    print(f"| outcome | {' | '.join(f'{s} ({n[s]})' for s in results)} | total |")
    print(f"|---|{'---:|' * len(results)}---:|")
    for outcome in outcomes:
        row = [results[s][0][outcome] for s in results]
        print(f"| {outcome} | {' | '.join(map(str, row))} | {sum(row)} |")
    all_times = [t for _, times in results.values() for t in times]
    print()
    print(
        f"{len(all_times)} cases in {total:.0f} s; per compile: median {statistics.median(all_times) * 1e3:.0f} ms, "
        f"mean {statistics.mean(all_times) * 1e3:.0f} ms, slowest {max(all_times):.1f} s"
    )


if __name__ == "__main__":
    main()
