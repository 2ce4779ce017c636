"""`pip install .` (not editable) ships the grammar and the zoo inside the package."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_compiles_a_zoo_model(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-w", str(dist), "-q"],
        check=True,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("eqneuron-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "eqneuron/grammar/eqneuron.lark" in names
    assert "eqneuron/models/izhikevich.eq" in names

    venv = tmp_path / "venv"
    # dependencies come from this interpreter's site-packages; eqneuron itself only from the wheel
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--no-deps", "--force-reinstall", "-q", str(wheel)], check=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    code = (
        "import eqneuron, sys;"
        "m = eqneuron.compile_model('izhikevich');"
        "print(eqneuron.__file__);"
        "print(m.name, ','.join(m.states))"
    )
    result = subprocess.run([str(python), "-c", code], cwd=outside, capture_output=True, text=True, check=True)
    location, summary = result.stdout.strip().splitlines()
    assert location.startswith(str(venv)), location
    assert summary == "Izhikevich v,u,i"
    cli = subprocess.run([str(venv / "bin" / "eqneuron"), "zoo"], cwd=outside, capture_output=True, text=True, check=True)
    assert "izhikevich" in cli.stdout
