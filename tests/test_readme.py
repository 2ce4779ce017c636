"""The README's and the tutorial's Python examples run as written.

Every ```python block of a file runs in order, in one namespace, in a fresh
interpreter: with JAX's defaults (float32, as a reader gets them; conftest.py
switches this process to float64) and in a scratch directory (the tutorial
reads `adaptive.eq` from there). The example's variables are then summarised as
JSON and checked here.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import eqneuron

ROOT = Path(__file__).resolve().parent.parent
# the subprocess imports the same eqneuron as this one (the checkout, or an installed copy)
IMPORT_ROOT = Path(eqneuron.__file__).resolve().parent.parent

RUNNER = """
import json, sys

import jax
import numpy as np


def gradient_facts(tree):
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
    return {
        "dtypes": sorted({str(x.dtype) for x in leaves}),
        "finite": all(bool(np.isfinite(x).all()) for x in leaves),
        "nonzero": sum(int(np.count_nonzero(x)) for x in leaves),
    }


with open(sys.argv[1]) as file:
    blocks, summary = json.load(file)
namespace = {}
for filename, source in blocks:
    exec(compile(source, filename, "exec"), namespace)
# the summary sees the examples' names, and its own helpers beside them
scope = {**namespace, "gradient_facts": gradient_facts, "np": np, "jax": jax}
exec(summary, scope)
print(json.dumps(scope["facts"]))
"""


def blocks(path: Path, language: str) -> list[tuple[str, str]]:
    """The ```language blocks of a Markdown file, each with a `file:line` label and padded to its line."""
    text = path.read_text()
    found = []
    for match in re.finditer(rf"^```{language}\n(.*?)^```", text, re.S | re.M):
        line = text.count("\n", 0, match.start(1)) + 1
        # Padding with blank lines makes tracebacks point at the Markdown file's own line numbers.
        found.append((str(path), "\n" * (line - 1) + match.group(1)))
    return found


class Examples:
    """The ```python blocks of `path` and then `summary`, running in their own interpreter in `cwd`."""

    def __init__(self, path: Path, summary: str, cwd: Path):
        code = blocks(path, "python")
        assert code, f"no ```python blocks in {path}"
        (cwd / "examples.json").write_text(json.dumps([code, summary]))
        env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_ROOT), env.get("PYTHONPATH")]))
        self.stdout, self.stderr = cwd / "stdout.txt", cwd / "stderr.txt"
        with self.stdout.open("w") as stdout, self.stderr.open("w") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-c", RUNNER, "examples.json"],
                cwd=cwd,
                env=env,
                stdout=stdout,
                stderr=stderr,
            )

    def facts(self) -> dict:
        try:
            self.process.wait(timeout=900)
        finally:
            self.process.kill()
        assert self.process.returncode == 0, self.stderr.read_text()
        return json.loads(self.stdout.read_text().strip().splitlines()[-1])


# Summaries of the examples' results, computed in their own process.
README_SUMMARY = """
first = np.asarray(out.first_spike_times())
facts = {
    "first_shape": list(first.shape),
    "output_spikes": int(np.isfinite(first[-3:]).sum()),
    "output_first_spikes": np.asarray(out.first_spikes[-1]).tolist(),
    "grads": gradient_facts(grads),
    "grad_shapes": [list(np.shape(x)) for x in jax.tree_util.tree_leaves(grads)],
}
"""


TUTORIAL_SUMMARY = """
first_pop = np.asarray(out.first_spike_times())
facts = {
    "n_spikes": int(np.sum(out.n_spikes)),
    "overflow": bool(np.any(out.overflow)),
    "first_pop_shape": list(first_pop.shape),
    "v_shape": list(np.shape(v)),
    "v_finite": bool(np.isfinite(np.asarray(v)).all()),
    "w_shape": list(np.shape(grads.weights["w"])),
    "ic_shape": list(np.shape(grads.params["ic"])),
    "ic_nonzero": int(np.count_nonzero(np.asarray(grads.params["ic"]))),
    "grads": gradient_facts(grads),
    "batch_shape": list(np.shape(first)),
    "readout_spikes": int(np.isfinite(np.asarray(first)[:, -3:]).sum()),
}
"""


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """Both files' examples, started together: compiling is mostly single-threaded."""
    tutorial = ROOT / "docs" / "tutorial.md"
    assert "Save this as `adaptive.eq`" in tutorial.read_text()
    scratch = tmp_path_factory.mktemp("tutorial")
    (scratch / "adaptive.eq").write_text(blocks(tutorial, "eq")[0][1].lstrip("\n"))
    started = {
        "README.md": Examples(ROOT / "README.md", README_SUMMARY, tmp_path_factory.mktemp("readme")),
        "tutorial.md": Examples(tutorial, TUTORIAL_SUMMARY, scratch),
    }
    yield started
    for running in started.values():
        running.process.kill()


def test_readme_python_example_runs_and_its_gradients_are_finite(examples):
    facts = examples["README.md"].facts()
    assert facts["first_shape"] == [33]  # "(33,), inf where silent"
    assert facts["output_spikes"] >= 1, facts["output_first_spikes"]
    assert facts["grads"]["dtypes"] == ["float32"]
    assert facts["grads"]["finite"]
    assert facts["grads"]["nonzero"] > 0, "the loss does not depend on the network"
    assert [5 + 30, 30] in facts["grad_shapes"] and [30 + 3, 3] in facts["grad_shapes"]


def test_tutorial_python_examples_run_in_order(examples):
    facts = examples["tutorial.md"].facts()
    assert facts["n_spikes"] > 0 and not facts["overflow"]
    assert facts["first_pop_shape"] == [10]
    assert facts["v_shape"] == [201, 10] and facts["v_finite"]
    assert facts["w_shape"] == [30, 10] and facts["ic_shape"] == [10]
    assert facts["grads"]["dtypes"] == ["float32"]
    assert facts["grads"]["finite"]
    assert facts["ic_nonzero"] > 0
    assert facts["batch_shape"] == [8, 33]
    assert facts["readout_spikes"] > 0


def test_ci_runs_exactly_the_readme_commands():
    commands = [source.strip() for _, source in blocks(ROOT / "README.md", "bash")]
    assert len(commands) == 2
    script = (ROOT / ".ci" / "run").read_text()
    for command in commands:
        assert command in script, command
