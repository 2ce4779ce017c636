"""Named input ports (`on_input NAME:`): each group of input channels with its own jump."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqneuron as eqn

TWO_PORTS = """
parameters:
    tmem = 10.0
equations:
    dv/dt = (-v + ge - gi) / tmem
    dge/dt = -ge / 5
    dgi/dt = -gi / 10
threshold: v > 1
reset:
    v = 0
weights:
    w = 1.0
on_input exc:
    ge += w
on_input inh:
    gi += 2 * w * value
"""


@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("ports", [{"exc": 1, "inh": 1}, {"inh": [1], "exc": [0]}])
def test_each_port_applies_its_own_jump(recurrent, ports):
    model = eqn.compile_model(TWO_PORTS)
    w = jnp.array([[0.0], [1.5], [0.7]])
    pop = model.population(1, 2, ports=ports, weights={"w": w}, recurrent=recurrent)
    inputs = eqn.Spikes(jnp.array([0.0, 1.0]), jnp.array([0, 1]), jnp.array([1.0, 3.0]))
    out = eqn.simulate(pop, inputs, t1=3.0, save_at=jnp.array([2.0]))
    states = {k: float(v[0, 0]) for k, v in out.states[0].items()}
    # ge: 1.5 at t = 0, decaying with 5 ms; gi: 2 * 0.7 * 3 at t = 1, decaying with 10 ms
    np.testing.assert_allclose(states["ge"], 1.5 * np.exp(-2 / 5), rtol=1e-6)
    np.testing.assert_allclose(states["gi"], 4.2 * np.exp(-1 / 10), rtol=1e-6)


def test_ports_of_a_feedforward_network_split_the_previous_population():
    """Population 0 (two neurons, driven to fire) feeds population 1: neuron 0 excites, neuron 1 inhibits."""
    drive = eqn.compile_model("lif").population(2, 2, weights={"w": jnp.array([[0, 0], [0, 0], [5.0, 0], [0, 5.0]])})
    target = eqn.compile_model(TWO_PORTS).population(1, 2, ports={"exc": [0], "inh": [1]},
                                                     weights={"w": jnp.array([[0.0], [1.0], [1.0]])})
    inputs = eqn.Spikes(jnp.array([0.0, 0.0]), jnp.array([0, 1]))
    out = eqn.simulate(eqn.Network([drive, target]), inputs, t1=20.0, save_at=jnp.array([19.0]), max_spikes=16)
    first = np.asarray(out.first_spikes[0])
    assert np.all(np.isfinite(first))
    ge = np.exp(-(19.0 - first[0]) / 5)
    gi = 2 * np.exp(-(19.0 - first[1]) / 10)
    np.testing.assert_allclose(float(out.states[1]["ge"][0, 0]), ge, rtol=1e-6)
    np.testing.assert_allclose(float(out.states[1]["gi"][0, 0]), gi, rtol=1e-6)


@pytest.mark.parametrize(
    "ports, words",
    [
        (None, "say which channels go to which"),
        ({"exc": 1}, "not assigned to a port"),
        ({"exc": [0], "inh": [0, 1]}, "assigned to two ports"),
        ({"ex": 2}, "did you mean `exc`"),
        ({"exc": [0], "inh": [5]}, "not one of the 2 input channels"),
    ],
)
def test_bad_port_assignments_are_errors(ports, words):
    with pytest.raises(eqn.EqError, match=words):
        eqn.compile_model(TWO_PORTS).population(1, 2, ports=ports, key=jax.random.key(0))


def test_ports_for_a_model_without_named_ports_is_an_error():
    with pytest.raises(eqn.EqError, match="no named input ports"):
        eqn.compile_model("lif").population(1, 2, ports={"exc": 2}, key=jax.random.key(0))


def test_plain_and_named_on_input_together_is_an_error():
    src = TWO_PORTS + "on_input:\n    ge += w\n"
    with pytest.raises(eqn.EqError) as info:
        eqn.compile_model(src)
    assert info.value.line == 17 and "not both" in str(info.value)


def test_port_defined_twice_is_an_error_at_its_name():
    src = TWO_PORTS + "on_input exc:\n    ge += 2 * w\n"
    with pytest.raises(eqn.EqError) as info:
        eqn.compile_model(src)
    assert (info.value.line, info.value.column) == (17, 10) and "defined twice" in str(info.value)


def test_cli_assigns_channels_to_ports(tmp_path, capsys):
    from eqneuron.cli import main

    path = tmp_path / "ports.eq"
    path.write_text(TWO_PORTS)
    # the command's own entry point, in this process: an error is its message and exit status 1
    # (an exception escaping `main` would be a traceback, and fail the test)
    assert main(["simulate", str(path), "--neurons", "2", "--duration", "20", "--poisson", "200", "--channels", "4",
                 "--port", "exc=3", "--port", "inh=1"]) == 0
    capsys.readouterr()
    assert main(["simulate", str(path), "--poisson", "200", "--channels", "4", "--port", "exc=3"]) == 1
    assert "add up to 3" in capsys.readouterr().err
    assert main(["simulate", str(path), "--port", "exc=3"]) == 1
    assert "no input" in capsys.readouterr().err
