"""Zoo v2 models against independent scipy references: spike times within 1e-4 ms, same counts.

Each reference is the published equations written again in NumPy and integrated by
`solve_ivp` from event to event, with resets, recurrent jumps and input jumps applied by
hand and crossings located on the dense output (`tests/scipy_reference.py`).  Each test
also checks what its model is for (adaptation, resonance, bursting, ...).
"""

import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import expit, exprel

import eqneuron as eqn

from .scipy_reference import scipy_spike_trains

SPIKE_TIME_TOL = 1e-5  # ms; the contract is 1e-4 ms, the measured agreement 2e-7 ms or better
ENGINE_TOL = dict(rtol=1e-10, atol=1e-10)


def input_spikes(events):
    """[(time, channel[, value])] -> eqn.Spikes."""
    times, channels = [e[0] for e in events], [e[1] for e in events]
    values = [e[2] if len(e) > 2 else 1.0 for e in events]
    return eqn.Spikes(jnp.array(times), jnp.array(channels), jnp.array(values))


def eqneuron_spike_trains(
    model, n, in_size, t1, params=None, weights=None, events=(), recurrent=False, **options
):
    """One float64 simulation at tolerances 1e-10; one array of spike times per neuron."""
    pop = model.population(
        n,
        in_size,
        recurrent=recurrent,
        params=params,
        weights={k: jnp.asarray(v) for k, v in (weights or {}).items()} or None,
    )
    out = eqn.simulate(
        pop, input_spikes(events) if events else None, t1=t1, max_spikes=512, **ENGINE_TOL, **options
    )
    assert out.results[0] == eqn.RESULTS.ok, eqn.RESULTS[out.results[0]]
    times, ids = np.asarray(out.spike_times), np.asarray(out.spike_neurons)
    return [np.sort(times[ids == k]) for k in range(n)]


def assert_same_trains(ours, reference):
    for k, (a, b) in enumerate(zip(ours, reference)):
        assert len(a) == len(b), f"neuron {k}: {len(a)} spikes, reference {len(b)}: {a} vs {b}"
        np.testing.assert_allclose(a, b, rtol=0, atol=SPIKE_TIME_TOL, err_msg=f"neuron {k}")


def jumps_of(events, n_neurons, W, apply):
    """Input jumps for the reference: apply(y, row, value) with the row W[N + channel]."""
    return [(e[0], lambda y, e=e: apply(y, W[n_neurons + e[1]], e[2] if len(e) > 2 else 1.0)) for e in events]


def test_adex_matches_scipy_and_adapts():
    """Brette & Gerstner (2005), regular-spiking cell, with an exponential synaptic current."""
    C, gL, EL, VT, DT, tau_w, a, b, tau_syn = 281.0, 30.0, -70.6, -50.4, 2.0, 144.0, 4.0, 80.5, 5.0
    V_peak = VT + 5 * DT
    ic = np.array([500.0, 800.0, 1000.0])  # pA; 500 is below rheobase
    W = np.zeros((4, 3))
    W[3] = [800.0, 300.0, -400.0]
    events = [(10.0, 0), (30.0, 0, 1.5), (55.0, 0)]

    def rhs(t, y):
        V, w, i = y
        dV = (gL * (EL - V) + gL * DT * np.exp((V - VT) / DT) - w + i + ic) / C
        return np.stack([dV, (a * (V - EL) - w) / tau_w, -i / tau_syn])

    def on_spike(y, k):
        y[0, k], y[1, k] = EL, y[1, k] + b
        return y

    def synapse(y, row, value):
        y[2] += row * value
        return y

    reference = scipy_spike_trains(
        rhs,
        [[EL] * 3, [0.0] * 3, [0.0] * 3],
        100.0,
        lambda y: y[0] - V_peak,
        on_spike,
        jumps_of(events, 3, W, synapse),
    )
    ours = eqneuron_spike_trains(
        eqn.compile_model("adex"), 3, 1, 100.0, {"ic": jnp.asarray(ic)}, {"w_syn": W}, events
    )
    assert_same_trains(ours, reference)
    assert len(ours[0]) >= 1 and len(ours[2]) >= 4
    isi = np.diff(ours[1])
    assert isi[-1] > 1.3 * isi[0], "spike-triggered adaptation lengthens the intervals"


def test_alif_matches_scipy_and_its_threshold_adapts():
    """Bellec et al. (2018): threshold b0 + beta*a, a += 1/tau_a at a spike, reset v -= threshold."""
    tmem, tsyn, tau_a, b0, beta = 20.0, 5.0, 200.0, 0.01, 1.6
    ic = np.array([0.04, 0.012])
    W = np.zeros((3, 2))
    W[2] = [0.01, 0.02]
    events = [(40.0, 0), (75.0, 0)]

    def rhs(t, y):
        v, i, a = y
        return np.stack([(-v + i + ic) / tmem, -i / tsyn, -a / tau_a])

    def on_spike(y, k):
        y[0, k] -= b0 + beta * y[2, k]
        y[2, k] += 1 / tau_a
        return y

    def synapse(y, row, value):
        y[1] += row * value
        return y

    reference = scipy_spike_trains(
        rhs,
        np.zeros((3, 2)),
        150.0,
        lambda y: y[0] - (b0 + beta * y[2]),
        on_spike,
        jumps_of(events, 2, W, synapse),
    )
    ours = eqneuron_spike_trains(
        eqn.compile_model("alif"), 2, 1, 150.0, {"ic": jnp.asarray(ic)}, {"w": W}, events
    )
    assert_same_trains(ours, reference)
    assert len(ours[0]) >= 4 and len(ours[1]) >= 1
    isi = np.diff(ours[0])
    assert np.all(np.diff(isi[:3]) > 0), "the rising threshold lengthens the intervals"


def hh_rates(v, VT=-63.0):
    """Traub-Miles rate functions of Brian2's IF_curve_Hodgkin_Huxley.py (1/ms);
    x / (exp(x) - 1) = 1 / exprel(x) is finite at x = 0."""
    alpha_m = 0.32 * 4 / exprel((13 - v + VT) / 4)
    beta_m = 0.28 * 5 / exprel((v - VT - 40) / 5)
    alpha_n = 0.032 * 5 / exprel((15 - v + VT) / 5)
    beta_n = 0.5 * np.exp((10 - v + VT) / 40)
    alpha_h = 0.128 * np.exp((17 - v + VT) / 18)
    beta_h = 4 / (1 + np.exp((40 - v + VT) / 5))
    return alpha_m, beta_m, alpha_n, beta_n, alpha_h, beta_h


def test_hodgkin_huxley_detector_matches_scipy_and_fires_faster_with_more_current():
    """Brian2's IF_curve_Hodgkin_Huxley.py: a 20000 um^2 patch, spikes counted at v > -40 mV."""
    Cm, gl, g_na, g_kd, El, EK, ENa, tau_syn = 200.0, 10.0, 20000.0, 6000.0, -65.0, -90.0, 50.0, 5.0
    ic = np.array([150.0, 300.0, 700.0])  # pA
    W = np.zeros((4, 3))
    W[3] = [1500.0, 0.0, 0.0]
    events = [(35.0, 0)]

    def rhs(t, y):
        v, m, n, h, i = y
        am, bm, an, bn, ah, bh = hh_rates(v)
        dv = (gl * (El - v) - g_na * m**3 * h * (v - ENa) - g_kd * n**4 * (v - EK) + i + ic) / Cm
        return np.stack(
            [dv, am * (1 - m) - bm * m, an * (1 - n) - bn * n, ah * (1 - h) - bh * h, -i / tau_syn]
        )

    def synapse(y, row, value):
        y[4] += row * value
        return y

    y0 = np.zeros((5, 3))
    y0[0] = El
    # tolerance 1e-10 (DOP853): 1.8e-9 ms from the spike times at 1e-12, in half the time
    reference = scipy_spike_trains(
        rhs, y0, 60.0, lambda y: y[0] + 40.0, None, jumps_of(events, 3, W, synapse), tol=1e-10
    )
    ours = eqneuron_spike_trains(
        eqn.compile_model("hh"), 3, 1, 60.0, {"ic": jnp.asarray(ic)}, {"w": W}, events
    )
    assert_same_trains(ours, reference)
    counts = [len(train) for train in ours]
    assert counts[1] >= 2 and counts[2] > counts[1], counts
    assert np.any(np.abs(ours[0] - 35.0) < 5.0), "the synaptic input makes neuron 0 fire"


def test_conductance_based_lif_matches_scipy_with_refractory_period_and_shunting_inhibition():
    """Brette et al. (2007) benchmark 1 neuron (Brian's COBA); a weight's sign picks the conductance."""
    taum, taue, taui, El, Vt, Vr, Ee, Ei, tau_ref = 20.0, 5.0, 10.0, -60.0, -50.0, -60.0, 0.0, -80.0, 5.0
    ic = np.array([20.0, 9.0, 20.0])  # mV: neurons 0 and 2 fire on their own, neuron 1 needs input
    W = np.zeros((5, 3))
    W[3] = [0.0, 0.6, 0.0]  # channel 0: excitatory (the benchmark's 0.6)
    W[4] = [0.0, 0.0, -6.7]  # channel 1: inhibitory (the benchmark's 6.7)
    events = [
        (15.0, 0),
        (17.0, 0),
        (19.0, 0),
        (21.0, 0),
        (40.0, 1),
        (60.0, 0),
        (62.0, 0),
        (64.0, 0),
        (70.0, 1),
    ]

    def rhs(t, y):
        v, ge, gi = y
        return np.stack([(El - v + ge * (Ee - v) + gi * (Ei - v) + ic) / taum, -ge / taue, -gi / taui])

    def on_spike(y, k):
        y[0, k] = Vr
        return y

    def conductances(y, row, value):
        y[1] += np.maximum(row, 0) * value
        y[2] += np.maximum(-row, 0) * value
        return y

    y0 = np.zeros((3, 3))
    y0[0] = El
    reference = scipy_spike_trains(
        rhs,
        y0,
        100.0,
        lambda y: y[0] - Vt,
        on_spike,
        jumps_of(events, 3, W, conductances),
        refractory=tau_ref,
        frozen=[0],
    )
    ours = eqneuron_spike_trains(
        eqn.compile_model("lif_coba"), 3, 2, 100.0, {"ic": jnp.asarray(ic)}, {"w": W}, events
    )
    assert_same_trains(ours, reference)
    # neuron 0 alone: from Vr, v = El + ic - ic exp(-t/taum) reaches Vt after taum log 2; then 5 ms at Vr
    to_threshold = taum * np.log(ic[0] / (ic[0] - (Vt - El)))
    np.testing.assert_allclose(
        ours[0], to_threshold + np.arange(len(ours[0])) * (to_threshold + tau_ref), atol=1e-6
    )
    assert len(ours[1]) >= 2 and ours[1][0] > 15.0, "neuron 1 fires only with excitatory input"
    assert np.min(np.diff(ours[1])) >= tau_ref, "no spike within the refractory period"
    assert len(ours[2]) < len(ours[0]), "inhibition delays neuron 2"


def test_resonate_and_fire_matches_scipy_and_resonates():
    """Izhikevich (2001): pulses one period apart add up and fire; half a period apart they cancel."""
    b, omega, a_thresh, y_reset = -0.025, 0.25, 1.0, 0.9
    period = 2 * np.pi / omega
    ic = np.array([0.0, 0.0, 0.0, 0.3])  # neuron 3: a constant current above the threshold's
    W = np.zeros((7, 4))
    W[4, :3] = 0.8  # channel 0 (t = 10): neurons 0, 1, 2
    W[5, 0] = 0.8  # channel 1: a second pulse one period later to neuron 0
    W[6, 1] = 0.8  # channel 2: half a period later to neuron 1
    events = [(10.0, 0), (10.0 + period / 2, 2), (10.0 + period, 1)]

    def rhs(t, y):
        x, yv = y
        return np.stack([b * x - omega * yv + ic, omega * x + b * yv])

    def on_spike(y, k):
        y[:, k] = 0.0, y_reset
        return y

    def kick(y, row, value):
        y[0] += row * value
        return y

    reference = scipy_spike_trains(
        rhs, np.zeros((2, 4)), 60.0, lambda y: y[1] - a_thresh, on_spike, jumps_of(events, 4, W, kick)
    )
    ours = eqneuron_spike_trains(
        eqn.compile_model("resonate_fire"), 4, 3, 60.0, {"ic": jnp.asarray(ic)}, {"w": W}, events
    )
    assert_same_trains(ours, reference)
    assert [len(train) for train in ours[:3]] == [1, 0, 0]
    assert ours[0][0] > 10.0 + period, "the resonant pair fires after its second pulse"
    assert len(ours[3]) >= 5


def morris_lecar_rhs(
    ic,
    C=20.0,
    g_L=2.0,
    g_Ca=4.0,
    g_K=8.0,
    V_L=-50.0,
    V_Ca=100.0,
    V_K=-70.0,
    lambda_n_max=1 / 15,
    V_1=10.0,
    V_2=15.0,
    V_3=-1.0,
    V_4=14.5,
    tau_syn=5.0,
):
    """Morris & Lecar (1981) eq. 9 with Brian2's Morris_Lecar_1981.py parameters, plus a synaptic current."""

    def rhs(t, y):
        V, n, i = y
        m_inf = 0.5 * (1 + np.tanh((V - V_1) / V_2))
        n_inf = 0.5 * (1 + np.tanh((V - V_3) / V_4))
        rate = lambda_n_max * np.cosh((V - V_3) / (2 * V_4))
        dV = (-g_L * (V - V_L) - g_Ca * m_inf * (V - V_Ca) - g_K * n * (V - V_K) + i + ic) / C
        return np.stack([dV, rate * (n_inf - n), -i / tau_syn])

    return rhs, np.array([V_L, 0.5 * (1 + np.tanh((V_L - V_3) / V_4)), 0.0])


def test_morris_lecar_detector_matches_scipy_with_a_band_of_oscillations():
    """Fig. 9 of Morris & Lecar: rest at low current, oscillation in a band, depolarisation block above."""
    ic = np.array([100.0, 300.0, 500.0])  # uA
    W = np.zeros((4, 3))
    W[3, 0] = 2000.0
    events = [(50.0, 0)]
    rhs, rest = morris_lecar_rhs(ic)

    def synapse(y, row, value):
        y[2] += row * value
        return y

    reference = scipy_spike_trains(
        rhs, np.repeat(rest[:, None], 3, axis=1), 150.0, lambda y: y[0], None, jumps_of(events, 3, W, synapse)
    )
    ours = eqneuron_spike_trains(
        eqn.compile_model("morris_lecar"), 3, 1, 150.0, {"ic": jnp.asarray(ic)}, {"w": W}, events
    )
    assert_same_trains(ours, reference)
    assert len(ours[0]) == 1 and ours[0][0] > 50.0, "at 100 uA only the synaptic input makes a spike"
    assert len(ours[1]) >= 4, "300 uA: periodic firing"
    assert len(ours[2]) == 1, "500 uA: one spike, then depolarisation block"


def test_fitzhugh_nagumo_detector_matches_scipy_excitable_and_oscillating():
    """FitzHugh (1961), a = 0.7, b = 0.8, tau = 12.5: excitable at I = 0, a limit cycle at I = 0.5."""
    a, b, tau = 0.7, 0.8, 12.5
    ic = np.array([0.0, 0.0, 0.5])
    W = np.zeros((4, 3))
    W[3] = [1.0, 0.2, 0.0]  # a supra- and a subthreshold kick
    events = [(20.0, 0), (120.0, 0)]

    def rhs(t, y):
        v, w = y
        return np.stack([v - v**3 / 3 - w + ic, (v + a - b * w) / tau])

    def kick(y, row, value):
        y[0] += row * value
        return y

    y0 = np.array([[-1.2] * 3, [-0.625] * 3])
    reference = scipy_spike_trains(rhs, y0, 200.0, lambda y: y[0] - 1.0, None, jumps_of(events, 3, W, kick))
    ours = eqneuron_spike_trains(
        eqn.compile_model("fitzhugh_nagumo"), 3, 1, 200.0, {"ic": jnp.asarray(ic)}, {"syn": W}, events
    )
    assert_same_trains(ours, reference)
    assert len(ours[0]) == 2 and len(ours[1]) == 0, "one spike per suprathreshold kick"
    assert len(ours[2]) >= 4 and np.ptp(np.diff(ours[2])[1:]) < 1e-3, "a limit cycle: constant intervals"


def egru_reference(bias, W, events, t1, pre_gated, tsyn=5.0, tmem=20.0, thresh=0.5):
    """A recurrent EGRU by scipy; the a_z jump gated by the firing unit's r or the target's."""
    b_u, b_r, b_z = bias
    W_u, W_r, W_z = W
    n = len(b_u)

    def rhs(t, y):
        c, a_u, a_r, a_z = y
        return np.stack(
            [
                expit(a_u) * (np.tanh(a_z) - c) / tmem,
                (b_u - a_u) / tsyn,
                (b_r - a_r) / tsyn,
                (b_z - a_z) / tsyn,
            ]
        )

    def on_spike(y, k):
        c_pre, gate = y[0, k], expit(y[2, k]) if pre_gated else expit(y[2])
        jump_u, jump_r, jump_z = W_u[k] * c_pre, W_r[k] * c_pre, W_z[k] * gate * c_pre
        y[0, k] -= thresh
        y[1] += jump_u
        y[2] += jump_r
        y[3] += jump_z
        return y

    def ungated(y, rows, value):
        y[1:] += np.stack(rows) * value
        return y

    inputs = [(e[0], lambda y, e=e: ungated(y, [M[n + e[1]] for M in W], 1.0)) for e in events]
    return scipy_spike_trains(rhs, np.zeros((4, n)), t1, lambda y: y[0] - thresh, on_spike, inputs)


def test_pre_gated_egru_recurrent_network_matches_scipy():
    """The jumps of the eventax documentation's EGRU (docs-site/docs/neuron_models/egru.md): a spike
    of unit n adds W[n, m] * c_n (and W_z[n, m] * r_n * c_n) to its targets; input spikes ungated."""
    bias = (np.array([0.5, 0.0, 0.0]), np.array([1.0, -1.0, 2.0]), np.array([1.5, 1.5, 1.2]))
    rng = np.random.default_rng(4)
    W = [rng.normal(0.0, 1.0, (4, 3)) for _ in range(3)]
    for M in W:
        np.fill_diagonal(M[:3], 0.0)
    events = [(5.0, 0), (30.0, 0), (60.0, 0)]
    params = {name: jnp.asarray(value) for name, value in zip(("b_u", "b_r", "b_z"), bias)}
    ours = eqneuron_spike_trains(
        eqn.compile_model("egru_pregated"),
        3,
        1,
        100.0,
        params,
        dict(zip(("w_u", "w_r", "w_z"), W)),
        events,
        recurrent=True,
    )
    reference = egru_reference(bias, W, events, 100.0, pre_gated=True)
    assert_same_trains(ours, reference)
    assert all(len(train) >= 2 for train in ours)
    target_gated = egru_reference(bias, W, events, 100.0, pre_gated=False)
    differs = [len(a) != len(b) or np.max(np.abs(a - b)) > 1e-3 for a, b in zip(ours, target_gated)]
    assert any(differs), "the test tells the firing unit's gate from the target's"


def test_izhikevich_firing_patterns_match_scipy_and_differ_as_published():
    """Izhikevich (2003), Fig. 2: seven (a, b, c, d) sets, one neuron each, I = 10 from rest at v = c."""
    names = [
        "regular_spiking",
        "intrinsically_bursting",
        "chattering",
        "fast_spiking",
        "low_threshold_spiking",
        "thalamo_cortical",
        "resonator",
    ]
    sets = [eqn.izhikevich_pattern(name) for name in names]
    a, b, c, d = (np.array([s[key] for s in sets]) for key in "abcd")
    current, v_peak = 10.0, 30.0

    def rhs(t, y):
        v, u = y
        return np.stack([0.04 * v**2 + 5 * v + 140 - u + current, a * (b * v - u)])

    def on_spike(y, k):
        y[0, k], y[1, k] = c[k], y[1, k] + d[k]
        return y

    reference = scipy_spike_trains(rhs, np.stack([c, b * c]), 200.0, lambda y: y[0] - v_peak, on_spike)
    params = {key: jnp.asarray(value) for key, value in zip("abcd", (a, b, c, d))}
    ours = eqneuron_spike_trains(eqn.compile_model("izhikevich"), 7, 0, 200.0, {**params, "ic": current})
    assert_same_trains(ours, reference)

    trains = dict(zip(names, ours))
    isi = {name: np.diff(train) for name, train in trains.items()}
    assert isi["regular_spiking"][-1] > 1.5 * isi["regular_spiking"][0], "RS adapts"
    assert isi["intrinsically_bursting"][0] < 0.2 * isi["intrinsically_bursting"][-1], (
        "IB: a burst, then single spikes"
    )
    chattering = isi["chattering"]
    assert np.sum(chattering > 20.0) >= 2 and np.sum(chattering < 5.0) >= 8, "CH: repeated bursts"
    assert len(trains["fast_spiking"]) > 3 * len(trains["regular_spiking"]), "FS fires much faster than RS"
    assert len(trains["low_threshold_spiking"]) > 2 * len(trains["regular_spiking"]), (
        "LTS fires faster than RS"
    )
    assert all(len(train) >= 5 for train in ours)


def test_izhikevich_patterns_by_abbreviation():
    assert (
        eqn.izhikevich_pattern("CH")
        == eqn.izhikevich_pattern("chattering")
        == dict(a=0.02, b=0.2, c=-50.0, d=2.0)
    )
    assert eqn.izhikevich_pattern("RZ") == dict(a=0.1, b=0.26, c=-65.0, d=2.0)
    with pytest.raises(KeyError, match="chattering \\(CH\\)"):
        eqn.izhikevich_pattern("XX")
