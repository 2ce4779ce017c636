"""Physical units: dimensions checked, exact scale factors inserted, same spike times as plain numbers.

The factors are checked against SI prefixes written out by hand (`Fraction`),
not against SymPy's unit tables that the compiler uses.
"""

import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import eqneuron as eqn
from eqneuron.cli import main
from eqneuron.ir import symbol

DOCS = Path(__file__).resolve().parent.parent / "docs"

# SI prefixes, independent of the compiler's tables
PICO, NANO, MICRO, MILLI, MEGA = (
    Fraction(1, 10**12),
    Fraction(1, 10**9),
    Fraction(1, 10**6),
    Fraction(1, 10**3),
    Fraction(10**6),
)

LIF = """neuron LIF
parameters:
    tau = 20 : ms
    E_L = -70*mV : mV
    R = 10 : Mohm
    I0 = 2500 : pA
    v_th = -50 : mV
state:
    v = E_L : mV
equations:
    dv/dt = (E_L - v + R*I0)/tau : mV
threshold: v > v_th
reset:
    v = E_L
"""


def error_of(source):
    with pytest.raises(eqn.EqError) as info:
        eqn.compile_model(source)
    return info.value


def lif(old, new):
    assert old in LIF
    return LIF.replace(old, new)


def spike_times(source, t1=300.0, params=None, in_size=0, weights=None, inputs=None):
    model = eqn.compile_model(source, params=params)
    pop = model.population(1, in_size, weights=weights)
    out = eqn.simulate(pop, inputs, t1=t1, max_spikes=64, rtol=1e-10, atol=1e-10)
    assert not bool(out.overflow)
    times = np.asarray(out.spike_times)
    return times[np.isfinite(times)]


# ---- dimension mismatches: both dimensions, the right line and column ----------------


def test_adding_a_current_to_a_voltage_names_both_dimensions_and_the_line():
    error = error_of(lif("(E_L - v + R*I0)/tau", "(E_L - v + I0)/tau"))
    assert (error.line, error.column) == (11, 14)
    assert "voltage (mV)" in error.message and "current (pA)" in error.message


def test_derivative_without_a_time_constant_is_a_mismatch():
    error = error_of(lif("(E_L - v + R*I0)/tau", "E_L - v + R*I0"))
    assert (error.line, error.column) == (11, 13)
    assert "voltage/time (mV/ms)" in error.message and "is voltage (mV)" in error.message
    assert "per ms" in error.hint


def test_a_number_added_to_a_quantity_needs_a_unit():
    error = error_of(lif("(E_L - v + R*I0)/tau", "(E_L - v + 1)/tau"))
    assert (error.line, error.column) == (11, 14)
    assert "dimensionless" in error.message and "voltage" in error.message
    assert "`1*mV`" in error.hint


def test_threshold_sides_must_have_one_dimension():
    error = error_of(lif("v > v_th", "v > I0"))
    assert (error.line, error.column) == (12, 12)
    assert "voltage (mV)" in error.message and "current (pA)" in error.message
    error = error_of(lif("v > v_th", "v > -50"))
    assert "`-50*mV`" in error.hint


def test_reset_value_has_the_unit_of_its_variable():
    error = error_of(lif("    v = E_L\n", "    v = I0\n"))
    assert (error.line, error.column) == (14, 9)
    assert "voltage (mV)" in error.message and "current (pA)" in error.message


def test_parameter_value_has_its_declared_dimension():
    error = error_of(lif("v_th = -50 : mV", "v_th = tau : mV"))
    assert (error.line, error.column) == (7, 12)
    assert "voltage (mV)" in error.message and "time (ms)" in error.message


def test_initial_value_has_the_unit_of_its_state():
    error = error_of(lif("    v = E_L : mV", "    v = tau : mV"))
    assert (error.line, error.column) == (9, 9)
    assert "voltage (mV)" in error.message and "time (ms)" in error.message


def test_on_spike_jump_and_event_condition_are_checked():
    src = lif("reset:\n", "weights:\n    w = 1 : nS\non_spike:\n    v += w\nreset:\n")
    error = error_of(src)
    assert (error.line, error.column) == (16, 10)
    assert "voltage (mV)" in error.message and "conductance (nS)" in error.message
    error = error_of(LIF + "event low: v < tau\n    v = E_L\n")
    assert (error.line, error.column) == (15, 12)
    assert "voltage (mV)" in error.message and "time (ms)" in error.message


def test_function_of_a_quantity_needs_a_dimensionless_argument():
    error = error_of(lif("(E_L - v + R*I0)/tau", "(E_L - v + R*I0*exp(v))/tau"))
    assert (error.line, error.column) == (11, 33)  # the argument
    assert "`exp` takes a dimensionless argument" in error.message and "voltage (mV)" in error.message


def test_a_quantity_is_raised_to_a_number_only():
    error = error_of(lif("(E_L - v + R*I0)/tau", "(E_L - v + R*I0)/tau * v**(tau/ms) / E_L**(tau/ms)"))
    assert (error.line, error.column) == (11, 40)  # the exponent
    assert "voltage (mV)" in error.message and "raised to a number" in error.message
    for power in ["(v/E_L)**(tau/ms)", "v**2/E_L**2", "(v/E_L)**0.5"]:
        eqn.compile_model(lif("(E_L - v + R*I0)/tau", f"(E_L - v + R*I0)/tau * {power}"))


def test_unknown_unit_suggests_a_known_one():
    error = error_of(lif("R = 10 : Mohm", "R = 10 : Mohms"))
    assert (error.line, error.column) == (5, 14)
    assert error.hint == "did you mean `Mohm`?"


# ---- all or nothing ----------------------------------------------------------------


def test_a_file_with_units_gives_every_quantity_a_unit():
    error = error_of(lif("tau = 20 : ms", "tau = 20"))
    assert (error.line, error.column) == (3, 5)
    assert "`tau` has no unit" in error.message and "all-or-nothing" in error.hint


def test_a_unit_name_in_a_file_without_units_is_an_error():
    error = error_of("neuron X\nequations:\n    dv/dt = (1*mV - v)/10\nthreshold: v > 1\nreset:\n    v = 0\n")
    assert (error.line, error.column) == (3, 16)
    assert "`mV` is a unit" in error.message


def test_a_unit_name_is_not_a_quantity_name_in_a_file_with_units():
    error = error_of(lif("    tau = 20 : ms", "    ms = 20 : ms"))
    assert (error.line, error.column) == (3, 5)
    assert "is the name of a unit" in error.message


def test_a_state_has_one_unit():
    error = error_of(lif("    v = E_L : mV", "    v = E_L : volt"))
    assert error.line == 11 and "volt" in error.message and "mV" in error.message


# ---- scale factors -------------------------------------------------------------------

CONDUCTANCE = """neuron G
parameters:
    g = 5 : {g}
    E = 0 : mV
    C = 200 : pF
state:
    v = -70 : mV
equations:
    dv/dt = g*(E - v)/C : mV
threshold: v > -50*mV
reset:
    v = -70*mV
"""


@pytest.mark.parametrize("g_unit, g_scale", [("nS", NANO), ("uS", MICRO)])
def test_conductance_times_voltage_over_capacitance_gets_the_exact_factor(g_unit, g_scale):
    # (g_scale S)(1e-3 V)/(1e-12 F) in V/s, then in mV/ms (1 V/s = 1 mV/ms)
    factor = g_scale * MILLI / PICO
    model = eqn.compile_model(CONDUCTANCE.format(g=g_unit))
    g, E, v, C = map(symbol, "gEvC")
    expected = sp.Rational(factor.numerator, factor.denominator) * g * (E - v) / C
    assert sp.simplify(model.ir.derivatives["v"] - expected) == 0
    assert factor == {"nS": 1, "uS": 1000}[g_unit]


def test_terms_of_one_dimension_are_converted_to_the_first():
    # R*I0 is Mohm*pA = 1e-6 V = 1e-3 mV, added to mV
    factor = MEGA * PICO / MILLI
    model = eqn.compile_model(LIF)
    tau, E_L, R, I0, v = map(symbol, ["tau", "E_L", "R", "I0", "v"])
    assert factor == Fraction(1, 1000)
    assert sp.simplify(model.ir.derivatives["v"] - (E_L - v + R * I0 / 1000) / tau) == 0


def test_weights_in_another_unit_are_converted_in_jumps():
    src = lif("reset:\n", "weights:\n    w = 1 : uS\non_spike:\n    g_s += w\nreset:\n")
    src = src.replace("    v = E_L : mV\n", "    v = E_L : mV\n    g_s = 0 : nS\n")
    model = eqn.compile_model(src)
    assert sp.simplify(model.ir.on_spike.updates["g_s"] - int(MICRO / NANO) * symbol("w")) == 0


def test_square_root_of_mixed_units():
    src = LIF.replace(
        "    v_th = -50 : mV\n", "    v_th = -50 : mV\n    g1 = 4 : nS\n    g2 = 9 : uS\n"
    ).replace("equations:\n", "equations:\n    G = sqrt(g1*g2) : nS\n")
    model = eqn.compile_model(src)
    value = model.ir.subexpressions["G"].subs({symbol("g1"): 4, symbol("g2"): 9})
    assert float(value) == pytest.approx(np.sqrt(4e-9 * 9e-6) / 1e-9, rel=1e-14)


def test_a_constant_declaration_reads_a_plain_number_in_its_unit():
    src = lif("tau = 20 : ms", "tau = 0.02 : second")
    model = eqn.compile_model(src)
    assert float(model.params["tau"]) == 0.02
    tau, E_L, R, I0, v = map(symbol, ["tau", "E_L", "R", "I0", "v"])
    assert sp.simplify(model.ir.derivatives["v"] - (E_L - v + R * I0 / 1000) / (1000 * tau)) == 0


def test_brian2_style_unit_names_in_expressions():
    src = lif("E_L = -70*mV : mV", "E_L = -0.07*volt : mV").replace(
        "v_th = -50 : mV", "v_th = E_L + 20*mV : mV"
    )
    model = eqn.compile_model(src)
    assert float(model.params["E_L"]) == pytest.approx(-70.0, rel=1e-15)
    assert float(model.params["v_th"]) == pytest.approx(-50.0, rel=1e-15)
    reset = eqn.compile_model(lif("    v = E_L\n", "    v = -65*mV\n")).ir.reset.updates["v"]
    assert reset == -65


def test_zero_fits_every_unit():
    src = lif("v > v_th", "v - v_th > 0").replace("    v = E_L\n", "    v = where(v > 0, 0, E_L)\n")
    model = eqn.compile_model(src.replace("R*I0)/tau", "R*I0 + 0)/tau"))
    assert model.ir.reset.updates["v"] == sp.Piecewise((0, symbol("v") > 0), (symbol("E_L"), True))


def test_check_summary_lists_the_units(tmp_path, capsys):
    path = tmp_path / "lif_units.eq"
    path.write_text(LIF)
    assert main(["check", str(path)]) == 0
    assert "units       tau: ms, E_L: mV, R: Mohm, I0: pA, v_th: mV, v: mV" in capsys.readouterr().out


def test_a_mismatch_from_the_command_line_is_located_without_a_traceback(tmp_path):
    path = tmp_path / "bad_units.eq"
    path.write_text(lif("(E_L - v + R*I0)/tau", "(E_L - v + I0)/tau"))
    result = subprocess.run(
        [sys.executable, "-m", "eqneuron", "check", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{path}:11:14" in result.stderr and "current (pA)" in result.stderr


def test_refractory_period_and_event_bodies_are_checked():
    error = error_of(LIF + "refractory: E_L\n")
    assert (error.line, error.column) == (15, 13)
    assert "voltage (mV)" in error.message and "not a time" in error.message
    error = error_of(LIF + "refractory: 2\n")
    assert "dimensionless" in error.message and "`2*ms`" in error.hint
    error = error_of(LIF + "refractory: 2 : mV\n")
    assert (error.line, error.column) == (15, 17)
    error = error_of(LIF + "event low: v < E_L - 5*mV\n    v = I0\n")
    assert (error.line, error.column) == (16, 9)
    assert "voltage (mV)" in error.message and "current (pA)" in error.message


# ---- the same spike times as plain numbers -------------------------------------------

ADEX_PLAIN = """neuron AdEx
parameters:
    C = 281.0
    gL = 30.0
    EL = -70.6
    VT = -50.4
    DeltaT = 2.0
    tau_w = 144.0
    a = 4.0
    b = 80.5
    V_peak = VT + 5 * DeltaT
    I = 800.0
state:
    V = EL
equations:
    dV/dt = (gL * (EL - V) + gL * DeltaT * exp((V - VT) / DeltaT) - w + I) / C
    dw/dt = (a * (V - EL) - w) / tau_w
threshold: V > V_peak
reset:
    V = EL
    w += b
"""
# pF, nS, mV, ms, pA: a coherent set, no factor is inserted
ADEX_UNITS = """neuron AdEx
parameters:
    C = 281.0 : pF
    gL = 30.0 : nS
    EL = -70.6 : mV
    VT = -50.4 : mV
    DeltaT = 2.0 : mV
    tau_w = 144.0 : ms
    a = 4.0 : nS
    b = 80.5 : pA
    V_peak = VT + 5 * DeltaT : mV
    I = 800.0 : pA
state:
    V = EL : mV
    w = 0*pA : pA
equations:
    dV/dt = (gL * (EL - V) + gL * DeltaT * exp((V - VT) / DeltaT) - w + I) / C : mV
    dw/dt = (a * (V - EL) - w) / tau_w : pA
threshold: V > V_peak
reset:
    V = EL
    w += b
"""
# the same cell in nF, uS, volt, second, nA: factors everywhere
ADEX_MIXED = (
    ADEX_UNITS.replace("281.0 : pF", "0.281 : nF")
    .replace("gL = 30.0 : nS", "gL = 0.030 : uS")
    .replace("EL = -70.6 : mV", "EL = -0.0706 : volt")
    .replace("144.0 : ms", "0.144 : second")
    .replace("b = 80.5 : pA", "b = 0.0805 : nA")
    .replace("I = 800.0 : pA", "I = 0.8 : nA")
)


def test_adex_with_units_spikes_exactly_as_adex_in_plain_numbers():
    plain = spike_times(ADEX_PLAIN)
    assert len(plain) >= 5  # adapting tonic spiking
    np.testing.assert_array_equal(spike_times(ADEX_UNITS), plain)


def test_adex_in_other_units_spikes_as_adex_in_plain_numbers():
    mixed = spike_times(ADEX_MIXED)
    plain = spike_times(ADEX_PLAIN)
    assert len(mixed) == len(plain)
    np.testing.assert_allclose(mixed, plain, rtol=1e-11, atol=0)


def test_parameters_from_python_are_in_their_declared_unit():
    seconds = lif("tau = 20 : ms", "tau = 1 : second")
    np.testing.assert_allclose(
        spike_times(seconds, params={"tau": 0.01}), spike_times(LIF, params={"tau": 10.0}), rtol=1e-12
    )


def test_the_documented_units_example_spikes_as_its_plain_twin():
    section = (DOCS / "language.md").read_text().split("## Units", 1)[1]
    documented = re.search(r"```eq\n(.*?)```", section, re.S).group(1)
    plain = """neuron CobaLIF
parameters:
    C = 200.0
    g_L = 10.0
    E_L = -70.0
    E_e = 0.0
    V_th = -50.0
    V_r = -60.0
    tau_e = 5.0
    I_b = 250.0
state:
    v = E_L
equations:
    I_syn = g_e * (E_e - v)
    dv/dt = (g_L*(E_L - v) + I_syn + I_b) / C
    dg_e/dt = -g_e / tau_e
threshold: v > V_th
reset:
    v = V_r
weights:
    w = uniform(0, 2)
on_spike:
    g_e += w
"""
    weights = {"w": np.array([[0.0], [3.0], [1.5]])}
    inputs = eqn.Spikes(times=np.array([10.0, 12.5, 40.0, 41.0]), channels=np.array([0, 1, 0, 1]))
    kwargs = dict(t1=120.0, in_size=2, weights=weights, inputs=inputs)
    documented_times = spike_times(documented, **kwargs)
    assert len(documented_times) >= 3
    np.testing.assert_allclose(documented_times, spike_times(plain, **kwargs), rtol=1e-12)
