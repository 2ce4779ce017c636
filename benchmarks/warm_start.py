"""A second process of the same training run: how much of the first call's time it still pays.

`eqneuron train` is run twice in fresh processes with one fresh cache
directory (`EQNEURON_CACHE_DIR`): the first process traces and compiles the
training step and the classifier, the second finds both traced programs
(`persistent_jit`) and their compiled code (JAX's persistent cache) on disk.
A third process runs with the caches off.  Reported per process: the first
epoch (one batch of the training step and the test evaluation, tracing and
compiling included, from `history.json`) and the whole command (imports, data,
model compilation included).

Run: python -m benchmarks.warm_start [--model izhikevich] [--hidden 120]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(model: str, hidden: int, cache: Path, out: Path, caches_on: bool) -> tuple[float, float]:
    env = dict(os.environ, EQNEURON_CACHE_DIR=str(cache))
    if not caches_on:
        env["EQNEURON_JAX_CACHE"] = "off"
    command = [
        sys.executable, "-m", "eqneuron", "train", "yinyang", "--model", model, "--hidden", str(hidden),
        "--epochs", "1", "--batch-size", "32", "--train-size", "32", "--test-size", "32", "--out", str(out),
    ]
    t0 = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    total = time.perf_counter() - t0
    first_epoch = json.loads((out / "history.json").read_text())["seconds"][0]
    return first_epoch, total


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="izhikevich")
    parser.add_argument("--hidden", type=int, default=120)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        cold = run(args.model, args.hidden, root / "cache", root / "a", True)
        warm = run(args.model, args.hidden, root / "cache", root / "b", True)
        off = run(args.model, args.hidden, root / "nocache", root / "c", False)
    print(f"eqneuron train yinyang --model {args.model} --hidden {args.hidden} --epochs 1 (32 train, 32 test samples)")
    print(f"{'process':<28} {'first epoch':>12} {'whole command':>14}")
    for name, (epoch, total) in (("first (empty cache)", cold), ("second (warm cache)", warm), ("caches off", off)):
        print(f"{name:<28} {epoch:>10.1f} s {total:>12.1f} s")
    print(f"second / first: {warm[0] / cold[0]:.0%} of the first epoch, {warm[1] / cold[1]:.0%} of the command")


if __name__ == "__main__":
    main()
