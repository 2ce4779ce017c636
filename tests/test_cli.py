"""The command line: check, zoo, simulate, gradcheck."""

import subprocess
import sys

import numpy as np

from eqneuron.cli import main


def test_check_prints_the_summary(capsys):
    assert main(["check", "izhikevich"]) == 0
    out = capsys.readouterr().out
    for words in ("neuron Izhikevich", "states", "v = c", "threshold   v > v_th", "u += d", "integrator"):
        assert words in out


def test_check_bad_file_prints_the_error_and_exits_1(tmp_path):
    bad = tmp_path / "bad.eq"
    bad.write_text("neuron X\nequations:\n    dv/dt = -v / tau\nthreshold: v > 1\nreset:\n    v = 0\n")
    result = subprocess.run(
        [sys.executable, "-m", "eqneuron", "check", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert f"{bad}:3:18" in result.stderr
    assert "unknown name `tau`" in result.stderr
    assert "Traceback" not in result.stderr


def test_zoo_lists_every_model_with_a_description(capsys):
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    for name in ("lif", "qif", "eif", "izhikevich", "egru"):
        line = next(line for line in out.splitlines() if line.startswith(name + " "))
        assert len(line.split(None, 1)[1]) > 20


def test_simulate_writes_plot_and_data(tmp_path, capsys):
    plot, data = tmp_path / "out.png", tmp_path / "out.npz"
    code = main(
        ["simulate", "izhikevich", "--neurons", "2", "--current", "10", "--duration", "100",
         "--param", "c=-65", "--param", "d=8", "--plot", str(plot), "--save", str(data)]
    )
    assert code == 0
    assert plot.stat().st_size > 10_000
    saved = np.load(data)
    # regular spiking at 10: the first spike comes within ~5 ms, then adapts
    assert 4 <= len(saved["spike_times"]) <= 20
    assert saved["v"].shape == (1001, 2)


def test_gradcheck_passes_for_lif(capsys):
    assert main(["gradcheck", "lif", "--neurons", "3", "--channels", "2"]) == 0
    assert "OK" in capsys.readouterr().out
