"""The documentation's examples are real: every ```eq block compiles."""

import re
import warnings
from pathlib import Path

import pytest

import eqneuron as eqn

from .docs_runner import read_page

DOCS = Path(__file__).resolve().parent.parent / "docs"
# every page of the site, its snippets (zoo pages include models/*.eq) included
BLOCKS = [
    (path.relative_to(DOCS).as_posix(), k, block)
    for path in sorted(DOCS.rglob("*.md"))
    for k, block in enumerate(re.findall(r"```eq\n(.*?)```", read_page(path), re.S))
]


def test_language_reference_has_examples():
    assert sum(1 for name, _, _ in BLOCKS if name == "language.md") >= 5


@pytest.mark.parametrize("name,index,source", BLOCKS, ids=[f"{n}-{k}" for n, k, _ in BLOCKS])
def test_docs_example_compiles(name, index, source):
    with warnings.catch_warnings():
        warnings.simplefilter("error", eqn.EqWarning)
        model = eqn.compile_model(source)
    assert model.states


def test_every_function_and_builtin_is_documented():
    from eqneuron.check import BUILTINS, FUNCTIONS, RANDOM_FUNCTIONS

    text = (DOCS / "language.md").read_text()
    for name in [*FUNCTIONS, *RANDOM_FUNCTIONS, *BUILTINS]:
        assert f"`{name}" in text, name


def test_every_block_keyword_is_documented():
    from eqneuron.lang import BLOCK_KEYWORDS

    text = (DOCS / "language.md").read_text()
    for keyword in BLOCK_KEYWORDS:
        assert f"`{keyword}" in text, keyword
