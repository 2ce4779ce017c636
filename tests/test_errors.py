"""Every compile-time error of SPEC §3: class, line, column, and the key words of the message."""

import warnings

import pytest

import eqneuron as eqn

BASE = """\
neuron Test
parameters:
    tau = 10.0
    tau_syn = 5.0
    v_th = 1.0
state:
    v = 0.0
    i = 0.0
equations:
    dv/dt = (-v + i) / tau
    di/dt = -i / tau_syn
threshold: v > v_th
reset:
    v = 0.0
weights:
    w = normal(0, 1)
on_spike:
    i += w
"""


def error_of(source: str) -> eqn.EqError:
    with pytest.raises(eqn.EqError) as info:
        eqn.compile_model(source)
    assert isinstance(info.value, ValueError)
    return info.value


def assert_error(source, line, column, *words):
    error = error_of(source)
    text = str(error)
    assert (error.line, error.column) == (line, column), text
    for word in words:
        assert word in text, f"{word!r} not in:\n{text}"
    assert "^" in text  # caret under the token
    return error


def test_base_model_compiles():
    model = eqn.compile_model(BASE)
    assert model.states == ("v", "i")


def test_syntax_error_names_the_token():
    src = BASE.replace("dv/dt = (-v + i) / tau", "dv/dt = (-v + i) / / tau")
    assert_error(src, 10, 24, "unexpected `/`")


def test_missing_colon_after_block():
    src = BASE.replace("reset:\n", "reset\n")
    assert_error(src, 13, 6, "missing `:`", "reset")


def test_unknown_block_suggests_a_keyword():
    src = BASE.replace("reset:\n", "rest:\n")
    assert_error(src, 13, 1, "unknown block `rest`", "did you mean `reset`")


def test_unexpected_character():
    src = BASE.replace("v_th = 1.0", "v_th = 1.0 $")
    assert_error(src, 5, 16, "unexpected character `$`")


def test_unknown_name_with_suggestion():
    src = BASE.replace("-i / tau_syn", "-i / tau_sin")
    assert_error(src, 11, 18, "unknown name `tau_sin`", "did you mean `tau_syn`")


def test_name_defined_twice():
    src = BASE.replace("v_th = 1.0", "v_th = 1.0\n    tau = 3.0")
    assert_error(src, 6, 5, "`tau` is defined twice", "line 3")


def test_parameter_and_state_with_the_same_name():
    src = BASE.replace("    i = 0.0\n", "    i = 0.0\n    tau_syn = 1.0\n")
    assert_error(src, 9, 5, "`tau_syn` is defined twice")


def test_assignment_to_parameter_in_reset():
    src = BASE.replace("    v = 0.0\nweights", "    tau = 0.0\nweights")
    assert_error(src, 14, 5, "cannot assign to parameter `tau`")


def test_assignment_to_undefined_variable_in_jump():
    src = BASE.replace("    i += w\n", "    ii += w\n")
    assert_error(src, 18, 5, "undefined variable `ii`", "did you mean `i`")


def test_derivative_of_parameter():
    src = BASE.replace("di/dt = -i / tau_syn", "di/dt = -i / tau_syn\n    dtau/dt = 1.0")
    assert_error(src, 12, 5, "`dtau/dt` given for parameter `tau`")


def test_derivative_of_subexpression():
    src = BASE.replace("di/dt = -i / tau_syn", "di/dt = -i / tau_syn\n    s = 2 * v\n    ds/dt = 1.0")
    assert_error(src, 13, 5, "`ds/dt` given for subexpression `s`")


def test_circular_subexpressions():
    src = BASE.replace("di/dt = -i / tau_syn", "di/dt = -i / tau_syn\n    a = b + v\n    b = 2 * a")
    assert_error(src, 12, 5, "circular subexpressions", "`a` -> `b` -> `a`")


def test_threshold_not_a_comparison():
    src = BASE.replace("threshold: v > v_th", "threshold: v - v_th")
    assert_error(src, 12, 12, "threshold is not a comparison", "v > v_th")


def test_pre_name_outside_on_spike():
    src = BASE.replace("    v = 0.0\nweights", "    v = v_pre\nweights")
    assert_error(src, 14, 9, "`v_pre` is only allowed in `on_spike`")


def test_pre_name_in_on_input_is_an_error():
    src = BASE + "on_input:\n    i += w * v_pre\n"
    assert_error(src, 20, 14, "`v_pre` is only allowed in `on_spike`")


def test_non_additive_jump_in_on_spike():
    src = BASE.replace("    i += w\n", "    i = w\n")
    assert_error(src, 18, 7, "non-additive jump", "+=")


def test_weight_used_outside_jumps():
    src = BASE.replace("di/dt = -i / tau_syn", "di/dt = -i / tau_syn + w")
    assert_error(src, 11, 28, "weight `w` used outside a jump or initialiser")


def test_unknown_function_with_suggestion():
    src = BASE.replace("di/dt = -i / tau_syn", "di/dt = -i / tau_syn + expp(v)")
    assert_error(src, 11, 28, "unknown function `expp`", "did you mean `exp`")


def test_wrong_number_of_function_arguments():
    src = BASE.replace("di/dt = -i / tau_syn", "di/dt = -i / tau_syn + clip(v, 0)")
    assert_error(src, 11, 28, "`clip` takes 3 arguments, got 2", "clip(x, lo, hi)")


def test_name_shadowing_a_builtin():
    src = BASE.replace("v_th = 1.0", "v_th = 1.0\n    exp = 2.0")
    assert_error(src, 6, 5, "shadows the function `exp`")


def test_variable_assigned_twice_in_one_body():
    src = BASE.replace("    v = 0.0\nweights", "    v = 0.0\n    v += 1\nweights")
    assert_error(src, 15, 5, "`v` is assigned twice")


def test_missing_equations_block():
    error = error_of("neuron X\nthreshold: v > 1\n")
    assert "no `equations:` block" in str(error)


def test_reset_leaving_threshold_satisfied_warns():
    src = BASE.replace("    v = 0.0\nweights", "    v = v + 0.5\nweights")
    with pytest.warns(eqn.EqWarning, match="leaves the threshold satisfied"):
        eqn.compile_model(src)


def test_reset_below_threshold_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error", eqn.EqWarning)
        eqn.compile_model(BASE)


def test_error_from_a_file_names_the_file(tmp_path):
    path = tmp_path / "broken.eq"
    path.write_text(BASE.replace("tau_syn\n", "tau_sin\n").replace("-i / tau_syn", "-i / tau_sin"))
    with pytest.raises(eqn.EqError) as info:
        eqn.compile_model(str(path))
    assert str(path) in str(info.value)
    assert info.value.filename == str(path)


def test_unknown_zoo_name_suggests_a_model():
    with pytest.raises(eqn.EqError, match="did you mean `izhikevich`"):
        eqn.compile_model("izhikevic")
