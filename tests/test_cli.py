"""The command line: check, zoo, simulate, gradcheck."""

import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import eqneuron as eqn
from eqneuron.cli import main
from eqneuron.cli.simulate import plot_simulation


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


def _regular_spiking(n_neurons=2, current=10.0):
    model = eqn.compile_model("izhikevich", params={"c": -65.0, "d": 8.0})
    return model.population(n_neurons, params={"ic": current})


def test_simulate_save_holds_the_spikes_and_states_of_the_python_api(tmp_path):
    data = tmp_path / "rs.npz"
    argv = ["simulate", "izhikevich", "--neurons", "2", "--current", "10", "--duration", "100",
            "--param", "c=-65", "--param", "d=8", "--save", str(data)]
    assert main(argv) == 0
    saved = np.load(data)
    assert sorted(saved.files) == ["i", "save_at", "spike_neurons", "spike_times", "u", "v"]
    np.testing.assert_array_equal(saved["save_at"], np.linspace(0.0, 100.0, 1001))
    # the same simulation through the Python API
    pop = _regular_spiking()
    out = eqn.simulate(pop, t1=100.0, max_spikes=4096, save_at=jnp.linspace(0.0, 100.0, 1001))
    times, neurons = np.asarray(out.spike_times), np.asarray(out.spike_neurons)
    np.testing.assert_allclose(saved["spike_times"], times[np.isfinite(times)], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(saved["spike_neurons"], neurons[np.isfinite(times)])
    for state in ("v", "u", "i"):
        np.testing.assert_allclose(saved[state], np.asarray(out.states[0][state]), rtol=1e-9, atol=1e-9)
    # without save points the integrator takes other steps: the same spikes within its tolerance
    free = eqn.simulate(pop, t1=100.0, max_spikes=4096)
    free_times = np.asarray(free.spike_times)
    np.testing.assert_allclose(saved["spike_times"], free_times[np.isfinite(free_times)], rtol=0, atol=1e-5)


def test_simulate_save_refuses_a_state_named_like_another_array(tmp_path, capsys):
    model = tmp_path / "clash.eq"
    model.write_text("neuron Clash\nequations:\n    dsave_at/dt = 1.0\nthreshold: save_at > 1\nreset:\n    save_at = 0\n")
    assert main(["simulate", str(model), "--duration", "5", "--save", str(tmp_path / "x.npz")]) == 1
    assert "`save_at`" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def _marks(figure, k):
    (marks,) = [line for line in figure.axes[0].lines if line.get_gid() == f"spikes-{k}"]
    return np.asarray(marks.get_xdata()), np.asarray(marks.get_ydata())


def test_plot_draws_every_izhikevich_spike_at_the_threshold():
    pop = _regular_spiking(current=np.array([10.0, 14.0]))
    save_at = np.linspace(0.0, 100.0, 1001)
    out = eqn.simulate(pop, t1=100.0, max_spikes=4096, save_at=jnp.asarray(save_at))
    times, neurons = np.asarray(out.spike_times), np.asarray(out.spike_neurons)
    valid = np.isfinite(times)
    states = {name: np.asarray(value) for name, value in out.states[0].items()}
    figure = plot_simulation(pop, save_at, states, times[valid], neurons[valid])
    for k in range(2):
        spikes = times[valid][neurons[valid] == k]
        assert len(spikes) >= 3
        x, y = _marks(figure, k)
        np.testing.assert_array_equal(x, spikes)  # a mark at every spike time of this neuron
        np.testing.assert_allclose(y, 30.0)  # v_th = 30 in models/izhikevich.eq
        # the trace itself passes through each mark: it reaches the threshold at every spike
        trace = figure.axes[0].lines[2 * k]
        points = set(zip(trace.get_xdata().tolist(), trace.get_ydata().tolist()))
        assert all((t, 30.0) in points for t in spikes.tolist())
        # the saved samples never reach 30 mV: without the marks no spike would be drawn at threshold
        assert np.max(states["v"][:, k]) < 30.0
    assert figure.axes[0].get_ylabel() == "v (mV)"
    assert figure.axes[-1].get_xlabel() == "time (ms)"


def test_plot_marks_follow_the_threshold_parameter_and_unitless_models_have_no_unit():
    model = eqn.compile_model("lif", params={"thresh": 0.8})
    pop = model.population(2, params={"ic": np.array([1.5, 2.0])})
    save_at = np.linspace(0.0, 50.0, 501)
    out = eqn.simulate(pop, t1=50.0, max_spikes=256, save_at=jnp.asarray(save_at))
    times, neurons = np.asarray(out.spike_times), np.asarray(out.spike_neurons)
    valid = np.isfinite(times)
    states = {name: np.asarray(value) for name, value in out.states[0].items()}
    figure = plot_simulation(pop, save_at, states, times[valid], neurons[valid])
    for k in range(2):
        x, y = _marks(figure, k)
        # LIF with constant drive: v(t) = ic (1 - exp(-t / tmem)) reaches 0.8 first at -tmem log(1 - 0.8 / ic)
        assert x[0] == pytest.approx(-10.0 * np.log(1 - 0.8 / [1.5, 2.0][k]), abs=1e-6)
        np.testing.assert_allclose(y, 0.8)
    assert figure.axes[0].get_ylabel() == "v"


def test_gradcheck_passes_for_lif(capsys):
    assert main(["gradcheck", "lif", "--neurons", "3", "--channels", "2"]) == 0
    assert "OK" in capsys.readouterr().out
