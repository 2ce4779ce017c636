"""Same weights, same inputs: eqneuron's zoo models against eventax's hand-written classes.

eventax (0.1.0) is a test-only dependency; both run at tight tolerances in float64.
"""

import diffrax as dfx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
import pytest

import eqneuron as eqn

eventax = pytest.importorskip("eventax")
from eventax.evnn import FFEvNN  # noqa: E402
from eventax.neuron_models import EGRU, EIF, LIF, QIF, Izhikevich  # noqa: E402

H, O, K = 12, 3, 5
T1 = 60.0

CASES = {
    # zoo name: (eventax class, eventax kwargs, per-neuron parameters (ours <- theirs), weight names)
    "lif": (LIF, dict(thresh=1.0, tmem=10.0, tsyn=5.0, wmean=1.0, wlim=1.0, init_bias=0.0), {"ic": "ic"}, {"w": "weights"}),
    "qif": (QIF, dict(tmem=10.0, tsyn=5.0, wmean=3.0, wlim=2.0, init_bias=0.0), {"ic": "ic"}, {"w": "weights"}),
    "eif": (EIF, dict(tmem=10.0, tsyn=5.0, wmean=1.5, wlim=1.0, init_bias=0.0, fan_in_mode=None), {"ic": "ic"}, {"w": "weights"}),
    "izhikevich": (Izhikevich, dict(wmean=25.0, wlim=15.0, init_bias=0.0), {"ic": "ic"}, {"w": "weights"}),
    "egru": (
        EGRU,
        dict(bias_u_mean=0.0, bias_z_mean=2.0, weight_scale=1.0),
        {"b_u": "b_u", "b_r": "b_r", "b_z": "b_z"},
        {"w_u": "W_u", "w_r": "W_r", "w_z": "W_z"},
    ),
}


def build_pair(name, key):
    cls, kwargs, param_map, weight_map = CASES[name]
    theirs = FFEvNN(
        layers=[H, O],
        in_size=K,
        neuron_model=cls,
        max_solver_time=T1,
        key=key,
        solver=dfx.Tsit5(),
        stepsize_controller=dfx.PIDController(rtol=1e-11, atol=1e-11),
        root_finder=optx.Newton(1e-13, 1e-13),
        dtype=jnp.float64,
        max_event_steps=2000,
        output_no_spike_value=jnp.inf,
        **kwargs,
    )
    m = theirs.neuron_model
    model = eqn.compile_model(name)
    hidden_w, out_w = {}, {}
    for ours, attr in weight_map.items():
        W = jnp.asarray(getattr(m, attr))  # (H+O+K, H+O)
        hidden_w[ours] = jnp.zeros((H + K, H)).at[H:].set(W[H + O :, :H])
        out_w[ours] = jnp.zeros((O + H, O)).at[O:].set(W[:H, H : H + O])
    hidden_p = {ours: jnp.asarray(getattr(m, attr))[:H] for ours, attr in param_map.items()}
    out_p = {ours: jnp.asarray(getattr(m, attr))[H:] for ours, attr in param_map.items()}
    net = eqn.Network(
        [
            model.population(H, K, weights=hidden_w, params=hidden_p),
            model.population(O, H, weights=out_w, params=out_p),
        ]
    )
    return theirs, net


@pytest.mark.parametrize("name", list(CASES))
def test_output_first_spike_times_match_eventax(name):
    key = jax.random.key(11)
    theirs, net = build_pair(name, key)
    times = jnp.array([0.5, 2.0, 3.5, 1.0, 4.0])
    expected = np.asarray(theirs.ttfs(times[:, None]))
    out = eqn.simulate(net, eqn.Spikes(times, jnp.arange(K)), t1=T1, max_spikes=2048, max_spikes_per_neuron=256, rtol=1e-11, atol=1e-11)
    ours = np.asarray(out.first_spikes[-1])
    assert np.isfinite(expected).sum() >= 1, f"eventax {name} outputs must spike for a meaningful check"
    assert int(out.counts[0].sum()) > 0
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(ours[finite], expected[finite], atol=1e-4)
