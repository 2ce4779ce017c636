"""Zoo models with refractory periods and internal events against independent references.

`iaf_psc_exp` (NEST) against scipy's `solve_ivp` with resets, input jumps and the clamped
refractory period applied by hand (`tests/scipy_reference.py`), and against the closed-form
interval of a constant current.  The dCaAP neuron (Gidon et al. 2020) against its equations
written again in NumPy and integrated by `solve_ivp` from event to event, the somatic spike,
the dCaAP and its inactivation located by root finding on the dense output.  Spike and event
times within 1e-4 ms, same counts.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import brentq

import eqneuron as eqn

from .scipy_reference import scipy_spike_trains
from .test_zoo_v2 import assert_same_trains, eqneuron_spike_trains, jumps_of

TIME_TOL = 1e-5  # ms; the contract is 1e-4 ms
ENGINE_TOL = dict(rtol=1e-10, atol=1e-10)


# ---- NEST's iaf_psc_exp --------------------------------------------------------------

# NEST's defaults (pF, ms, mV, pA)
C_M, TAU_M, TAU_SYN, T_REF, E_L, V_TH, V_RESET = 250.0, 10.0, 2.0, 2.0, -70.0, -55.0, -70.0


def test_iaf_psc_exp_is_integrated_exactly():
    model = eqn.compile_model("iaf_psc_exp")
    assert model.integrator.startswith("exact")
    assert "exact" in repr(model) and model.ir.frozen_when_refractory == ("V_m",)


def test_iaf_psc_exp_matches_scipy_with_a_clamped_refractory_period():
    I_e = np.array([0.0, 376.0, 450.0, 600.0])  # pA; the rheobase is 375 pA
    W = np.zeros((6, 4))
    W[4] = [900.0, 700.0, 600.0, -1500.0]
    W[5] = [1200.0, 800.0, -2000.0, 500.0]
    events = [(3.0, 0), (9.5, 1), (10.0, 0, 2.0), (10.1, 1), (31.0, 0), (31.5, 1, 3.0), (47.0, 0)]

    def rhs(t, y):
        V, I = y
        return np.stack([-(V - E_L) / TAU_M + (I + I_e) / C_M, -I / TAU_SYN])

    def on_spike(y, k):
        y[0, k] = V_RESET
        return y

    def synapse(y, row, value):
        y[1] += row * value
        return y

    reference = scipy_spike_trains(
        rhs,
        [[E_L] * 4, [0.0] * 4],
        80.0,
        lambda y: y[0] - V_TH,
        on_spike,
        jumps_of(events, 4, W, synapse),
        refractory=T_REF,
        frozen=[0],
    )
    model = eqn.compile_model("iaf_psc_exp")
    ours = eqneuron_spike_trains(model, 4, 2, 80.0, {"I_e": jnp.asarray(I_e)}, {"w": W}, events)
    assert_same_trains(ours, reference)
    assert [len(train) for train in ours] == [len(train) for train in reference]
    assert min(len(train) for train in ours) >= 2 and len(ours[3]) >= 4


def test_iaf_psc_exp_interval_under_a_constant_current_is_the_closed_form():
    """From V_reset, V reaches V_th after tau_m log((V_inf - V_reset) / (V_inf - V_th)); then t_ref clamped."""
    I_e = 500.0
    V_inf = E_L + I_e * TAU_M / C_M
    to_threshold = TAU_M * np.log((V_inf - V_RESET) / (V_inf - V_TH))
    expected = to_threshold + np.arange(6) * (T_REF + to_threshold)
    pop = eqn.compile_model("iaf_psc_exp").population(1, params={"I_e": jnp.array([I_e])})
    out = eqn.simulate(pop, None, t1=float(expected[-1]) + 1.0, max_spikes=16)
    np.testing.assert_allclose(np.asarray(out.spike_times[: int(out.n_spikes)]), expected, rtol=0, atol=1e-9)


# ---- the dCaAP neuron (Gidon et al. 2020) -----------------------------------------------

# the parameters of models/dcaap.eq: mV, ms, nF, uS, nA
DCAAP = dict(
    E_L=-75.0, C_s=0.05, g_s=0.01, C_d=0.05, g_d=0.003, g_c=0.0025, V_th=-55.0, V_reset=-75.0,
    tau_syn=5.0, V_th_d=-36.0, D=0.3, tau_A=3.0, tau_B=0.4, sigma_diff=21.0, t_ref_d=200.0, w_ca=3.0,
)  # fmt: skip


def scipy_dcaap(ic, t1, inputs=(), p=DCAAP):
    """Somatic spikes, dCaAP times and amplitudes K of one neuron, by solve_ivp from event to event.

    State (v_s, v_d, i_syn, A, B, K, t_since); `inputs` is a list of (time, synaptic jump).
    A condition fires where it crosses zero upwards and re-arms once it is below zero.
    """
    I_th = p["g_d"] * (p["V_th_d"] - p["E_L"])

    def drive(y):  # the current into the dendrite other than the dCaAP
        return y[2] + ic + p["g_c"] * (y[0] - y[1])

    def rhs(t, y):
        v_s, v_d, i_syn, A, B, K, _ = y
        I_ca = p["w_ca"] * K * (A - B)
        return [
            (p["g_s"] * (p["E_L"] - v_s) + p["g_c"] * (v_d - v_s)) / p["C_s"],
            (p["g_d"] * (p["E_L"] - v_d) + drive(y) + I_ca) / p["C_d"],
            -i_syn / p["tau_syn"],
            A * (1 - A) / p["tau_A"],
            B * (1 - B) / p["tau_B"],
            0.0,
            1.0,
        ]

    conditions = [
        lambda y: y[0] - p["V_th"],  # the somatic spike
        lambda y: np.minimum(y[1] - p["V_th_d"], y[6] - p["t_ref_d"]),  # the dCaAP
        lambda y: y[6] - p["sigma_diff"],  # its inactivation starts
    ]

    def apply(k, y):
        y = y.copy()
        if k == 0:
            y[0] = p["V_reset"]
        elif k == 1:
            y[3], y[4] = 0.001, 0.0
            y[5] = min(1.0, np.exp(-(drive(y) / I_th - 1) / p["D"]))
            y[6] = 0.0
        else:
            y[4] = 0.001
        return y

    y = np.array([p["E_L"], p["E_L"], 0.0, 0.0, 0.0, 0.0, p["t_ref_d"]])
    armed = [c(y) < 0 for c in conditions]
    pending = sorted(inputs)
    fired = ([], [], [])
    amplitudes = []
    t = 0.0
    while t < t1:
        t_end = min([t1] + [s for s, _ in pending if s > t])
        sol = solve_ivp(rhs, (t, t_end), y, method="DOP853", rtol=1e-12, atol=1e-12, dense_output=True)
        grid = np.concatenate(
            [np.linspace(a, b, 16, endpoint=False) for a, b in zip(sol.t[:-1], sol.t[1:])] + [[t_end]]
        )
        states = sol.sol(grid)
        first = None
        for k, c in enumerate(conditions):
            g = c(states)
            start = 0 if armed[k] else (1 + np.argmax(g[1:] < 0) if np.any(g[1:] < 0) else len(g))
            above = np.flatnonzero(g[start + 1 :] >= 0)
            if len(above):
                j = start + above[0]
                tc = brentq(lambda s: c(sol.sol(s)), grid[j], grid[j + 1], xtol=1e-14, rtol=1e-15)
                first = min(first or (np.inf, k), (tc, k))
        if first is not None:
            t, k = first
            y = apply(k, sol.sol(t))
            for m, c in enumerate(conditions):  # the others re-arm if below zero on the way or after the body
                g = c(states[:, (grid > grid[0]) & (grid < t)])
                armed[m] = m != k and (armed[m] or bool(np.any(g < 0)) or c(y) < 0)
            armed[k] = conditions[k](y) < -1e-9  # the one that fired, only if its body took it below zero
            fired[k].append(t)
            if k == 1:
                amplitudes.append(y[5])
            continue
        for m, c in enumerate(conditions):
            armed[m] = armed[m] or bool(np.any(c(states[:, 1:]) < 0))
        y, t = sol.y[:, -1], t_end
        for s, jump in pending:
            if s == t:
                y = y.copy()
                y[2] += jump
    return [np.array(times) for times in fired], np.array(amplitudes)


def dcaap_run(ic, t1, weights=None, inputs=None, **options):
    model = eqn.compile_model("dcaap")
    n = len(ic)
    pop = model.population(
        n,
        0 if weights is None else 1,
        params={"ic": jnp.asarray(ic)},
        weights=None if weights is None else {"w": jnp.asarray(weights)},
    )
    out = eqn.simulate(pop, inputs, t1=t1, max_spikes=64, save_at=jnp.array([t1]), **ENGINE_TOL, **options)
    assert out.results[0] == eqn.RESULTS.ok
    return out


def by_neuron(times, ids, n):
    times, ids = np.asarray(times), np.asarray(ids)
    return [np.sort(times[ids == k]) for k in range(n)]


def test_dcaap_neuron_matches_scipy():
    """Below threshold, threshold-level (the soma fires), stronger (weaker dCaAPs), with synaptic input,
    and past the 200 ms refractory period (a second dCaAP under a sustained current)."""
    ic = np.array([0.15, 0.2, 0.23, 0.45, 0.1, 0.21])
    W = np.zeros((7, 6))
    W[6] = [0.0, 0.0, 0.0, 0.0, 0.6, 0.05]
    times = [5.0, 7.0, 60.0]
    inputs = eqn.Spikes(jnp.array(times), jnp.zeros(3, jnp.int32))
    out = dcaap_run(ic, 260.0, W, inputs)
    spikes = by_neuron(out.spike_times, out.spike_neurons, 6)
    dcaaps = by_neuron(*out.events[0].of("dcaap"), 6)
    inactivations = by_neuron(*out.events[0].of("dcaap_inactivation"), 6)
    for k in range(6):
        (ref_spikes, ref_dcaaps, ref_inactivations), amplitudes = scipy_dcaap(
            ic[k], 260.0, [(t, W[6, k]) for t in times]
        )
        for ours, reference in [
            (spikes[k], ref_spikes),
            (dcaaps[k], ref_dcaaps),
            (inactivations[k], ref_inactivations),
        ]:
            assert len(ours) == len(reference), (k, ours, reference)
            np.testing.assert_allclose(ours, reference, rtol=0, atol=TIME_TOL)
        if len(amplitudes):
            np.testing.assert_allclose(float(out.states[0]["K"][0, k]), amplitudes[-1], rtol=1e-8)
    assert [len(d) for d in dcaaps] == [0, 2, 2, 2, 1, 2]
    assert len(spikes[1]) >= 2 and len(spikes[3]) == 0, (
        "a threshold-level dCaAP fires the soma, a strong one does not"
    )


def test_dcaap_amplitude_is_largest_for_threshold_level_stimuli():
    """Gidon et al. (2020), Fig. 2: no dCaAP below threshold, the largest at threshold, smaller above;
    for a current step the amplitude K falls as exp(-(I / I_th - 1) / D) (I_th in the limit of the
    dCaAP threshold: the step that just reaches it)."""
    ic = np.linspace(0.1, 0.6, 26)
    out = dcaap_run(ic, 120.0)
    K = np.asarray(out.states[0]["K"][0])
    fired = np.asarray(out.events[0].count("dcaap")) > 0
    assert not fired[0] and fired[-1]
    first = int(np.argmax(fired))
    assert np.all(K[:first] == 0) and K[first] == K.max() > 0.5
    assert np.all(np.diff(K[first:]) < 0), "stronger stimuli, smaller dCaAPs"
    charge = K * 3.0  # the dCaAP current's peak is proportional to w_ca K
    assert charge[first] > 10 * charge[-1]


def test_gradient_through_the_dcaap_matches_finite_differences():
    """The first somatic spike of a threshold-level stimulus depends on w_ca and ic through the dCaAP's
    time and amplitude."""
    model = eqn.compile_model("dcaap")
    pop = model.population(1, params={"ic": jnp.array([0.205]), "w_ca": jnp.array([3.0])})

    def first_spike(ic, w_ca):
        p = eqx.tree_at(lambda p: (p.params["ic"], p.params["w_ca"]), pop, (ic, w_ca))
        return eqn.simulate(p, None, t1=100.0, max_spikes=8, rtol=1e-12, atol=1e-12).spike_times[0]

    ic, w_ca = pop.params["ic"], pop.params["w_ca"]
    value_and_grad = jax.jit(jax.value_and_grad(first_spike, argnums=(0, 1)))  # one program: values and gradient
    _, (g_ic, g_w) = value_and_grad(ic, w_ca)
    value = lambda ic, w_ca: value_and_grad(ic, w_ca)[0]  # noqa: E731
    eps = 1e-7
    fd_ic = (value(ic + eps, w_ca) - value(ic - eps, w_ca)) / (2 * eps)
    fd_w = (value(ic, w_ca + eps) - value(ic, w_ca - eps)) / (2 * eps)
    assert abs(float(g_w[0])) > 1.0
    np.testing.assert_allclose(float(g_ic[0]), float(fd_ic), rtol=1e-4)
    np.testing.assert_allclose(float(g_w[0]), float(fd_w), rtol=1e-4)
