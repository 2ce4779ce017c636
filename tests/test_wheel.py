"""`pip install .` (not editable) ships every subpackage, the grammar and the zoo.

The wheel is built from a copy of the source tree and installed, without its
dependencies, into a fresh virtualenv that sees this environment's
site-packages through a `.pth` file. That works the same whether the tests run
in a virtualenv or not (`venv --system-site-packages` would only inherit the
*base* interpreter's packages), and the fresh environment's own site-packages
comes first, so `eqneuron` is imported from the wheel, never from the source
tree or an editable install.
"""

import json
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ["lang", "check", "analysis", "codegen", "engine", "train", "cli"]


def _build_wheel(tmp_path: Path) -> Path:
    """Build from a copy, so that no `build/` or `dist/` lands in the checkout."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ["pyproject.toml", "README.md"]:
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ["eqneuron", "grammar", "models"]:
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(src),
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(dist),
            "-q",
        ],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("eqneuron-*.whl")
    return wheel


def _venv_on_this_environment(path: Path) -> Path:
    """A virtualenv without pip whose sys.path ends with this environment's site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    python = path / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = dict.fromkeys(
        [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    )
    # Plain directory lines: the `.pth` files inside them (an editable eqneuron) are not processed.
    (Path(own) / "_this_environment.pth").write_text("".join(f"{p}\n" for p in ours if Path(p).is_dir()))
    return python


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_compiles_a_zoo_model(tmp_path):
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    source_packages = {
        "eqneuron/" + p.relative_to(ROOT / "eqneuron").as_posix()
        for p in (ROOT / "eqneuron").rglob("__init__.py")
    }
    for package in SUBPACKAGES:
        assert f"eqneuron/{package}/__init__.py" in source_packages, package
    missing = sorted(source_packages - names)
    assert not missing, (
        f"subpackages left out of the wheel (pyproject.toml [tool.setuptools] packages): {missing}"
    )
    assert "eqneuron/grammar/eqneuron.lark" in names
    zoo = sorted(p.name for p in (ROOT / "models").glob("*.eq"))
    assert "izhikevich.eq" in zoo
    assert not [m for m in zoo if f"eqneuron/models/{m}" not in names]
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "eqneuron = eqneuron.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    venv = tmp_path / "venv"
    python = _venv_on_this_environment(venv)
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--ignore-installed", "-q", str(wheel)],
        check=True,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    code = (
        "import json, eqneuron, eqneuron._resources as r\n"
        "m = eqneuron.compile_model('izhikevich')\n"
        "print(json.dumps({'package': eqneuron.__file__, 'grammar': str(r.grammar_path()),"
        " 'models': str(r.models_dir()), 'name': m.name, 'states': list(m.states)}))\n"
    )
    result = subprocess.run([str(python), "-c", code], cwd=outside, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    installed = Path(found["package"]).parent
    assert installed.is_relative_to(venv), found
    assert Path(found["grammar"]) == installed / "grammar" / "eqneuron.lark", found
    assert Path(found["models"]) == installed / "models", found
    assert (found["name"], found["states"]) == ("Izhikevich", ["v", "u", "i"])

    cli = subprocess.run([str(venv / "bin" / "eqneuron"), "zoo"], cwd=outside, capture_output=True, text=True)
    assert cli.returncode == 0, cli.stderr
    assert "izhikevich" in cli.stdout
