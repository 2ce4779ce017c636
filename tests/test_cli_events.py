"""`eqneuron simulate` with a model that has internal events: printed, saved and plotted."""


import jax.numpy as jnp
import numpy as np

import eqneuron as eqn
from eqneuron.cli.simulate import internal_events, plot_simulation

ADAPTIVE = """
parameters:
    tmem = 10.0
    ic = 0.0 (per_neuron)
equations:
    dv/dt = (-v + ic - a) / tmem
    da/dt = -a / 20
threshold: v > 1
reset:
    v = 0
event halfway: v > 0.6
    a += 0.3
"""


def test_simulate_saves_and_prints_internal_events(tmp_path, capsys):
    from eqneuron.cli import main

    path = tmp_path / "adaptive.eq"
    path.write_text(ADAPTIVE)
    out_file = tmp_path / "run.npz"
    assert main(["simulate", str(path), "--neurons", "2", "--current", "3", "--duration", "50", "--save", str(out_file),
                 "--plot", str(tmp_path / "run.png"), "--x64"]) == 0
    printed = capsys.readouterr().out
    data = np.load(out_file)
    # the same run through the Python API
    pop = eqn.compile_model(ADAPTIVE).population(2, params={"ic": jnp.full((2,), 3.0)})
    import jax

    with jax.enable_x64(True):
        ref = internal_events(eqn.simulate(pop, None, t1=50.0, max_spikes=4096).events[0])
    times, neurons = ref["halfway"]
    assert len(times) >= 4
    np.testing.assert_allclose(data["event_halfway_times"], times, atol=1e-9)
    np.testing.assert_array_equal(data["event_halfway_neurons"], neurons)
    assert f"internal events: {len(times)} halfway" in printed
    assert (tmp_path / "run.png").stat().st_size > 0


def test_plot_marks_internal_events_on_the_raster():
    pop = eqn.compile_model(ADAPTIVE).population(2, params={"ic": jnp.array([3.0, 2.5])})
    save_at = np.linspace(0.0, 40.0, 401)
    out = eqn.simulate(pop, None, t1=40.0, max_spikes=256, save_at=jnp.asarray(save_at))
    times, neurons = np.asarray(out.spike_times), np.asarray(out.spike_neurons)
    valid = np.isfinite(times)
    states = {k: np.asarray(v) for k, v in out.states[0].items()}
    events = internal_events(out.events[0])
    figure = plot_simulation(pop, save_at, states, times[valid], neurons[valid], events)
    (line,) = [ln for ln in figure.axes[-1].lines if ln.get_gid() == "events-halfway"]
    np.testing.assert_array_equal(line.get_xdata(), events["halfway"][0])
    np.testing.assert_array_equal(line.get_ydata(), events["halfway"][1])
