"""Each zoo model's generated functions against hand-written NumPy versions of the published equations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import eqneuron as eqn
from eqneuron.ir import sigmoid, softplus, symbol

N = 100
RNG = np.random.default_rng(1234)


def sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def lif_ref(y, p, w, value):
    v, i = y
    dv = (-v + i + p["ic"]) / p["tmem"]
    di = -i / p["tsyn"]
    g = v - p["thresh"]
    reset = [v - (p["thresh"] - p["vreset"]), i]
    spike = [0 * v, w["w"]]
    inp = [0 * v, w["w"] * value]
    return [dv, di], g, reset, spike, inp


def qif_ref(y, p, w, value):
    phi, i = y
    c, s = np.cos(np.pi * phi), np.sin(np.pi * phi)
    dphi = (c * (c + s / np.pi) + s**2 * (i + p["ic"]) / np.pi**2) / p["tmem"]
    di = -i / p["tsyn"]
    return [dphi, di], phi - 1.0, [0 * phi, i], [0 * phi, w["w"]], [0 * phi, w["w"] * value]


def eif_ref(y, p, w, value):
    V, i = y
    dV = (p["EL"] - V + p["deltaT"] * np.exp((V - p["vT"]) / p["deltaT"]) + i + p["ic"]) / p["tmem"]
    di = -i / p["tsyn"]
    v_peak = p["vT"] - p["deltaT"] * np.log(p["tol"] / p["tmem"])
    return [dV, di], V - v_peak, [0 * V + p["vreset"], i], [0 * V, w["w"]], [0 * V, w["w"] * value]


def izhikevich_ref(y, p, w, value):
    v, u, i = y
    dv = 0.04 * v**2 + 5 * v + 140 - u + i + p["ic"]
    du = p["a"] * (p["b"] * v - u)
    di = -i / p["tau_syn"]
    reset = [v - (p["v_th"] - p["c"]), u + p["d"], i]
    return [dv, du, di], v - p["v_th"], reset, [0 * v, 0 * v, w["w"]], [0 * v, 0 * v, w["w"] * value]


def egru_ref(y, p, w, value):
    c, a_u, a_r, a_z = y
    dc = sig(a_u) * (np.tanh(a_z) - c) / p["tmem"]
    das = [(p[f"b_{x}"] - a) / p["tsyn"] for x, a in (("u", a_u), ("r", a_r), ("z", a_z))]
    reset = [c - p["thresh"], a_u, a_r, a_z]
    spike = [0 * c, w["w_u"], w["w_r"], w["w_z"] * sig(a_r)]
    inp = [0 * c, w["w_u"] * value, w["w_r"] * value, w["w_z"] * sig(a_r) * value]
    return [dc, *das], c - p["thresh"], reset, spike, inp


REFERENCES = {
    "lif": (lif_ref, {"v": (-2, 2), "i": (-5, 5)}),
    "qif": (qif_ref, {"phi": (0, 1), "i": (-5, 5)}),
    "eif": (eif_ref, {"V": (-1, 2.5), "i": (-5, 5)}),
    "izhikevich": (izhikevich_ref, {"v": (-80, 30), "u": (-20, 5), "i": (-20, 20)}),
    "egru": (egru_ref, {"c": (-1, 1), "a_u": (-3, 3), "a_r": (-3, 3), "a_z": (-3, 3)}),
}


def random_case(name):
    model = eqn.compile_model(name)
    ranges = REFERENCES[name][1]
    y = np.stack([RNG.uniform(*ranges[s], N) for s in model.states])
    params = {}
    for pname, default in model.params.items():
        if pname in ("v_peak",):
            continue
        base = float(default)
        params[pname] = base * RNG.uniform(0.5, 1.5, N) if base != 0 else RNG.uniform(-1, 1, N)
    if name == "eif":
        params["v_peak"] = params["vT"] - params["deltaT"] * np.log(params["tol"] / params["tmem"])
    weights = {k: RNG.normal(size=N) for k in model.weight_names}
    value = RNG.uniform(0.5, 2.0, N)
    return model, y, params, weights, value


@pytest.mark.parametrize("name", list(REFERENCES))
def test_generated_functions_match_numpy_reference(name):
    model, y, params, weights, value = random_case(name)
    ref = REFERENCES[name][0]
    dy_ref, g_ref, reset_ref, spike_ref, input_ref = ref(y, params, weights, value)
    fn = model.fn
    p = {k: jnp.asarray(v) for k, v in params.items()}
    yj = jnp.asarray(y)
    np.testing.assert_allclose(fn.vector_field(0.0, yj, p), np.stack(dy_ref), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(fn.spike_condition(0.0, yj, p), g_ref, rtol=1e-12, atol=1e-12)
    everyone = jnp.ones((N,), bool)
    np.testing.assert_allclose(fn.apply_reset(0.0, yj, p, everyone), np.stack(reset_ref), rtol=1e-12, atol=1e-12)
    nobody = jnp.zeros((N,), bool)
    np.testing.assert_allclose(fn.apply_reset(0.0, yj, p, nobody), y, rtol=0, atol=0)
    rows = {k: jnp.asarray(v) for k, v in weights.items()}
    p_pre = {k: v[0] for k, v in p.items()}
    np.testing.assert_allclose(
        fn.spike_jump(0.0, yj, p, yj[:, 0], p_pre, rows), np.stack(spike_ref), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        fn.input_jump(0.0, yj, p, jnp.asarray(value), rows), np.stack(input_ref), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("name", list(REFERENCES))
def test_vector_field_gradient_matches_sympy_derivative(name):
    model, y, params, _, _ = random_case(name)
    trainable = model.ir.trainable
    assert trainable, f"{name} has trainable parameters"
    p = {k: jnp.asarray(v) for k, v in params.items()}
    numeric = {"sigmoid": sig, "softplus": lambda x: np.log1p(np.exp(x))}
    args = [symbol(s) for s in model.states] + [symbol(k) for k in model.params]
    for k, state in enumerate(model.states):
        for theta in trainable:
            def f_k(value, k=k, theta=theta):
                return jnp.sum(model.fn.vector_field(0.0, jnp.asarray(y), {**p, theta: value})[k])

            got = jax.grad(f_k)(p[theta])
            derivative = sp.diff(model.ir.derivatives[state], symbol(theta))
            derivative = derivative.replace(sigmoid, lambda x: 1 / (1 + sp.exp(-x))).replace(
                softplus, lambda x: sp.log(1 + sp.exp(x))
            )
            expected = sp.lambdify(args, derivative, modules=[numeric, "numpy"])(
                *y, *[params[n] for n in model.params]
            )
            np.testing.assert_allclose(got, np.broadcast_to(expected, (N,)), rtol=1e-12, atol=1e-12)


def test_egru_with_a_pre_gated_jump_reads_the_firing_neurons_reset_gate():
    """`a_z += w_z * sigmoid(a_r_pre)`: the firing neuron's reset gate, not the target's."""
    source = eqn.compile_model("egru").ir.source.text.replace(
        "    a_z += w_z * sigmoid(a_r)\n\non_input", "    a_z += w_z * sigmoid(a_r_pre)\n\non_input"
    )
    model = eqn.compile_model(source)
    assert "sigmoid(a_r_pre)" in " ".join(model.ir.on_spike.text)
    _, y, params, weights, _ = random_case("egru")
    p = {k: jnp.asarray(v) for k, v in params.items()}
    rows = {k: jnp.asarray(v) for k, v in weights.items()}
    source_neuron = 7
    p_pre = {k: v[source_neuron] for k, v in p.items()}
    jump = model.fn.spike_jump(0.0, jnp.asarray(y), p, jnp.asarray(y[:, source_neuron]), p_pre, rows)
    np.testing.assert_allclose(jump[3], weights["w_z"] * sig(y[2, source_neuron]), rtol=1e-12)
    np.testing.assert_allclose(jump[1], weights["w_u"], rtol=1e-12)


def test_izhikevich_patterns_are_the_published_values():
    rs = eqn.izhikevich_pattern("regular_spiking")
    assert rs == dict(a=0.02, b=0.2, c=-65.0, d=8.0)
    model = eqn.compile_model("izhikevich", params=eqn.izhikevich_pattern("fast_spiking"))
    assert model.params["a"] == 0.1 and model.params["d"] == 2.0


def test_dependent_parameter_default_follows_override():
    model = eqn.compile_model("eif", params={"deltaT": 0.5})
    assert model.params["v_peak"] == pytest.approx(1.0 - 0.5 * np.log(0.001 / 10.0), rel=1e-14)
