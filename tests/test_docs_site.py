"""The documentation site builds with `mkdocs build --strict` and covers what it promises.

Strict mode turns every warning into a failure: a broken link or anchor, a
page missing from the navigation, an API reference that does not resolve, a
snippet whose file is missing.
"""

import ast
import html
import importlib.util
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

import eqneuron as eqn

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="mkdocs is not installed (pip install '.[docs]')"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(target),
        ],
        cwd=ROOT,  # pymdownx.snippets includes models/ and benchmarks/ relative to the repository root
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    assert "WARNING" not in build.stderr, build.stderr
    return target


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self.images, self._skip = [], [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "img":
            self.images.append(dict(attrs).get("src"))

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def page(site: Path, name: str) -> tuple[str, str, list]:
    """(html, visible text with whitespace collapsed, image sources) of a built page."""
    source = (site / name / "index.html").read_text()
    parser = _Text()
    parser.feed(source)
    return source, " ".join("".join(parser.parts).split()), parser.images


def _exports() -> set[str]:
    """The names `eqneuron/__init__.py` re-exports (`from .x import y as y`)."""
    tree = ast.parse(Path(eqn.__file__).read_text())
    return {
        alias.asname
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name
    }


def test_public_names_are_what_the_package_exports():
    assert sorted(eqn.__all__) == sorted(_exports())


def test_api_page_documents_every_public_name(site):
    source, text, _ = page(site, "api")
    for name in eqn.__all__:
        assert f'id="eqneuron.{name}"' in source, name
        # the object's own docstring is on the page (not, say, a module of the same name)
        first_line = (getattr(eqn, name).__doc__ or "").strip().splitlines()[0]
        assert " ".join(first_line.replace("`", "").split()) in html.unescape(text), (name, first_line)


def test_every_zoo_model_has_a_page_with_its_source_and_picture(site):
    for name in eqn.zoo():
        assert (DOCS / "zoo" / f"{name}.md").exists(), f"run `python docs/zoo_pages.py {name}`"
        source, text, images = page(site, f"zoo/{name}")
        assert f"../../img/zoo-{name}.png" in images, images
        picture = site / "img" / f"zoo-{name}.png"
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert picture.stat().st_size > 10_000
        # the model's source is on the page, as the file has it
        model_source = (ROOT / "models" / f"{name}.eq").read_text()
        for line in model_source.splitlines():
            assert " ".join(line.split()) in html.unescape(text), line
        assert "arithmatex" in source  # the equations, typeset


def test_zoo_pages_and_navigation_are_what_the_script_writes():
    spec = importlib.util.spec_from_file_location("zoo_pages", DOCS / "zoo_pages.py")
    zoo_pages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo_pages)
    stale = "is stale: run `python docs/zoo_pages.py --pages` (and without --pages for a new model's picture)"
    assert (DOCS / "zoo" / "index.md").read_text() == zoo_pages.index(), f"docs/zoo/index.md {stale}"
    for name in eqn.zoo():
        page_file = DOCS / "zoo" / f"{name}.md"
        assert page_file.exists() and page_file.read_text() == zoo_pages.page(name), (
            f"docs/zoo/{name}.md {stale}"
        )
    config = (ROOT / "mkdocs.yml").read_text()
    assert zoo_pages.navigation(config) == config, f"the zoo section of mkdocs.yml {stale}"


def test_performance_page_is_benchmarks_results(site):
    _, text, _ = page(site, "performance")
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    for heading in re.findall(r"^## (.+)$", results, re.M):
        assert heading.replace("`", "") in text, heading


def test_results_give_command_commit_and_date_for_every_benchmark():
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    sections = re.split(r"^## ", results, flags=re.M)[1:]
    measured = [s for s in sections if not s.startswith("How to reproduce")]
    assert len(measured) >= 5
    for section in measured:
        title = section.splitlines()[0]
        header = re.search(
            r"^Command .+?\s·\scommit (per row|[0-9a-f]{7})\s·\s(\d{4}-\d{2}-\d{2})", section, re.M | re.S
        )
        assert header, f"{title}: no `Command ... · commit ... · date` line"
        if header.group(1) == "per row":
            tables = re.findall(r"(?:^\|.*\n)+", section, re.M)
            with_commits = [t.splitlines() for t in tables if "| commit |" in t.splitlines()[0]]
            assert with_commits, f"{title}: `commit per row`, but no table has a commit column"
            for table in with_commits:
                column = [c.strip() for c in table[0].strip("|").split("|")].index("commit")
                for row in table[2:]:
                    assert re.fullmatch(r"[0-9a-f]{7}", row.strip("|").split("|")[column].strip()), (
                        title,
                        row,
                    )


def test_no_document_tells_how_the_work_was_done():
    documents = [ROOT / "README.md", *DOCS.rglob("*.md"), *(ROOT / "benchmarks").glob("*.md")]
    for path in documents:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not re.search(r"\b(sessions?|sittings?)\b", line, re.I), (
                f"{path.relative_to(ROOT)}:{number}: {line}"
            )
