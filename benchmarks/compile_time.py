"""Time of each compile stage per zoo model (before any JAX tracing).

Parse, check and codegen: best of 5.  Analysis (linearity and the closed
form, SymPy): once without the disk cache (a model seen for the first time)
and once from it (every later process).

Run: python -m benchmarks.compile_time
"""

from __future__ import annotations

import os
import tempfile
import time

from eqneuron._resources import models_dir
from eqneuron.analysis import analyse
from eqneuron.check import check
from eqneuron.codegen import generate
from eqneuron.lang import parse


def measure(repeats: int = 5) -> dict[str, tuple[float, ...]]:
    results = {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["EQNEURON_CACHE_DIR"] = cache  # an empty disk cache
        for path in sorted(models_dir().glob("*.eq")):
            text = path.read_text()
            best = [float("inf")] * 3
            for _ in range(repeats):
                t0 = time.perf_counter()
                tree = parse(text, path.name)
                t1 = time.perf_counter()
                ir = check(tree)
                t2 = time.perf_counter()
                generate(ir)
                t3 = time.perf_counter()
                best = [min(b, x) for b, x in zip(best, (t1 - t0, t2 - t1, t3 - t2))]
            t0 = time.perf_counter()
            analyse(ir)
            cold = time.perf_counter() - t0
            t0 = time.perf_counter()
            analyse(ir)
            warm = time.perf_counter() - t0
            results[path.stem] = (*best, cold, warm)
    return results


def main():
    print(f"{'model':<12} {'parse':>8} {'check':>8} {'codegen':>8} {'analysis':>9} {'cached':>8}   (seconds)")
    for name, (p, c, g, cold, warm) in measure().items():
        print(f"{name:<12} {p:>8.4f} {c:>8.4f} {g:>8.4f} {cold:>9.3f} {warm:>8.4f}")


if __name__ == "__main__":
    main()
