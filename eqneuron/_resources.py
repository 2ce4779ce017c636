"""Where the grammar and the model zoo live, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _find(folder: str) -> Path:
    # Installed wheels carry `eqneuron/grammar` and `eqneuron/models`;
    # a source checkout keeps them beside the package.
    for candidate in (_HERE / folder, _HERE.parent / folder):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"eqneuron installation is missing its `{folder}/` folder")


def grammar_path() -> Path:
    return _find("grammar") / "eqneuron.lark"


def models_dir() -> Path:
    return _find("models")
