"""Run the code examples of Markdown pages as a reader would, and report what they did.

A page's fenced blocks run in document order in a fresh interpreter with JAX's
defaults (float32; conftest.py switches the test process to float64), in a
scratch directory of its own:

- ```eq blocks introduced by "Save this as `NAME`" are written to NAME first;
- ```python blocks run in one namespace, in order;
- ```console blocks: each `$ ` line is a command, the lines under it its
  expected output. `eqneuron ...` runs in the same interpreter (its `main`,
  output captured), anything else in bash.

Afterwards a page's `summary` code runs in the examples' namespace and
builds a JSON-able dict `facts` for the test to check. Snippet lines
(`--8<-- "path"`, pymdownx.snippets) are replaced by the file they name, as
the site does.
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import eqneuron

ROOT = Path(__file__).resolve().parent.parent
# the subprocess imports the same eqneuron as this one (the checkout, or an installed copy)
IMPORT_ROOT = Path(eqneuron.__file__).resolve().parent.parent
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```", re.S | re.M)
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', re.M)
SAVE_AS = re.compile(r"Save this as `([\w.-]+)`")


def read_page(path: Path) -> str:
    """A page's Markdown with its snippets included."""
    return SNIPPET.sub(lambda m: (ROOT / m.group(1)).read_text().rstrip("\n"), path.read_text())


@dataclass(frozen=True)
class Block:
    language: str
    source: str  # padded with blank lines to its line in the page (tracebacks point there)
    label: str  # file:line
    save_as: str | None = None


def blocks(path: Path, text: str | None = None) -> list[Block]:
    """Every fenced block of a page, in order."""
    text = read_page(path) if text is None else text
    found, previous_end = [], 0
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start(2)) + 1
        before = SAVE_AS.findall(text[previous_end : match.start()])
        found.append(
            Block(
                language=match.group(1),
                source="\n" * (line - 1) + match.group(2),
                label=f"{path}:{line}",
                save_as=before[-1] if before and match.group(1) == "eq" else None,
            )
        )
        previous_end = match.end()
    return found


@dataclass(frozen=True)
class Command:
    command: str
    expected: tuple[str, ...]


def console_commands(source: str) -> list[Command]:
    """The `$ ` commands of a ```console block with the output lines shown under each."""
    commands = []
    for line in source.strip("\n").splitlines():
        if line.startswith("$ "):
            commands.append(Command(line[2:].strip(), ()))
        elif commands:
            last = commands[-1]
            commands[-1] = Command(last.command, (*last.expected, line.rstrip()))
        else:
            raise ValueError(f"a console block starts with output, not a `$ ` command: {line!r}")
    return commands


def output_matches(expected: tuple[str, ...], actual: list[str]) -> str | None:
    """None when `actual` shows the `expected` lines in order; else what is missing.

    A line `...` stands for any number of lines; `...` inside a line for any
    text. Without `...` the lines must follow each other, and end the output.
    """
    position, skipping = 0, False
    for want in expected:
        if want.strip() == "...":
            skipping = True
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in want.split("...")) + r"\Z")
        while position < len(actual) and not pattern.match(actual[position].rstrip()):
            if not skipping:
                return f"expected {want!r}, got {actual[position]!r}"
            position += 1
        if position == len(actual):
            return f"expected {want!r}, not in the output"
        position, skipping = position + 1, False
    if not skipping and position < len(actual) and expected:
        return f"unexpected output after the last shown line: {actual[position]!r}"
    return None


RUNNER = r"""
import contextlib, io, json, os, shlex, subprocess, sys

import jax
import numpy as np


def gradient_facts(tree):
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
    return {
        "dtypes": sorted({str(x.dtype) for x in leaves}),
        "finite": all(bool(np.isfinite(x).all()) for x in leaves),
        "nonzero": sum(int(np.count_nonzero(x)) for x in leaves),
    }


def run_command(command):
    if command.startswith("eqneuron "):
        from eqneuron.cli import main

        # one buffer for both streams: the output in the order a terminal shows it
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            code = main(shlex.split(command)[1:])
        return code, output.getvalue()
    done = subprocess.run(["bash", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return done.returncode, done.stdout


with open(sys.argv[1]) as file:
    pages = json.load(file)
results = {}
for page in pages:
    os.chdir(page["cwd"])
    namespace, commands = {}, []
    for block in page["blocks"]:
        if block["language"] == "eq" and block["save_as"]:
            with open(block["save_as"], "w") as file:
                file.write(block["source"].lstrip("\n"))
    for block in page["blocks"]:
        if block["language"] == "python":
            exec(compile(block["source"], block["label"], "exec"), namespace)
        elif block["language"] == "console":
            for command in block["commands"]:
                code, output = run_command(command)
                commands.append({"command": command, "code": code, "output": output})
    scope = {**namespace, "gradient_facts": gradient_facts, "np": np, "jax": jax}
    exec(page["summary"], scope)
    results[page["name"]] = {"commands": commands, "facts": scope.get("facts", {})}
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Page:
    """A Markdown file whose examples run, and code that summarises their results as `facts`."""

    path: Path
    summary: str = "facts = {}"

    @property
    def name(self) -> str:
        return self.path.relative_to(ROOT).as_posix()


def _spec(page: Page, cwd: Path) -> dict:
    spec = []
    for block in blocks(page.path):
        entry = {
            "language": block.language,
            "source": block.source,
            "label": block.label,
            "save_as": block.save_as,
        }
        if block.language == "console":
            entry["commands"] = [c.command for c in console_commands(block.source)]
        spec.append(entry)
    return {"name": page.name, "cwd": str(cwd), "blocks": spec, "summary": page.summary}


def run_pages(pages: list[Page], scratch: Path) -> dict:
    """Run pages one after the other in one fresh interpreter; results by page name."""
    specs = []
    for page in pages:
        cwd = scratch / page.name.replace("/", "_")
        cwd.mkdir(parents=True)
        specs.append(_spec(page, cwd))
    (scratch / "pages.json").write_text(json.dumps(specs))
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(IMPORT_ROOT), env.get("PYTHONPATH")]))
    env["MPLBACKEND"] = "Agg"
    done = subprocess.run(
        # the page interpreters collect garbage as this one does (tests/conftest.py sets it)
        [sys.executable, "-c", f"import gc; gc.set_threshold{gc.get_threshold()}\n{RUNNER}", str(scratch / "pages.json")],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0:
        raise AssertionError(f"the examples of {[p.name for p in pages]} failed:\n{done.stderr[-8000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class PageRuns:
    """Groups of pages run in the background, two interpreters at a time (the tests wait for theirs)."""

    def __init__(self, groups: list[list[Page]], scratch: Path):
        self._pool = ThreadPoolExecutor(max_workers=2)
        self._futures: dict[str, Future] = {}
        for k, group in enumerate(groups):
            future = self._pool.submit(run_pages, group, scratch / f"group{k}")
            for page in group:
                self._futures[page.name] = future

    def result(self, name: str) -> dict:
        return self._futures[name].result()[name]

    def close(self):
        self._pool.shutdown(wait=True, cancel_futures=True)


def check_commands(result: dict, page: Path) -> None:
    """Every console command of a page ran, exited as its output implies, and printed what the page shows."""
    shown = [c for b in blocks(page) if b.language == "console" for c in console_commands(b.source)]
    assert [c["command"] for c in result["commands"]] == [c.command for c in shown]
    for command, ran in zip(shown, result["commands"]):
        lines = ran["output"].splitlines()
        failing = any(line.startswith("error:") for line in command.expected)
        assert ran["code"] == (1 if failing else 0), (command.command, ran["output"][-3000:])
        problem = output_matches(command.expected, lines)
        assert problem is None, f"{page.name}: `{command.command}`: {problem}\n" + "\n".join(lines[-40:])
