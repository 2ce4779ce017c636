"""Parse + check + codegen time per zoo model (before any JAX tracing).

Run: python -m benchmarks.compile_time
"""

from __future__ import annotations

import time

from eqneuron._resources import models_dir
from eqneuron.check import check
from eqneuron.codegen import generate
from eqneuron.lang import parse


def measure(repeats: int = 5) -> dict[str, tuple[float, float, float]]:
    results = {}
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
        results[path.stem] = tuple(best)
    return results


def main():
    print(f"{'model':<12} {'parse':>8} {'check':>8} {'codegen':>8} {'total':>8}   (seconds, best of 5; target < 0.5)")
    for name, (p, c, g) in measure().items():
        total = p + c + g
        print(f"{name:<12} {p:>8.4f} {c:>8.4f} {g:>8.4f} {total:>8.4f}   {'ok' if total < 0.5 else 'SLOW'}")


if __name__ == "__main__":
    main()
