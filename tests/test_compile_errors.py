"""Edge cases of compilation that once crashed or hung: each is a model or a located EqError.

Found by fuzzing (tests/test_fuzz.py, benchmarks/fuzz.py); each test is one
minimal example.
"""

import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import sympy as sp

import eqneuron as eqn


def compiles(source: str) -> eqn.CompiledModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", eqn.EqWarning)
        return eqn.compile_model(source)


def error_at(source, line, column, *words) -> eqn.EqError:
    with pytest.raises(eqn.EqError) as info:
        compiles(source)
    error = info.value
    text = str(error)
    assert (error.line, error.column) == (line, column), text
    for word in words:
        assert word in text, f"{word!r} not in:\n{text}"
    return error


def model(rhs: str, extra: str = "") -> str:
    return f"equations:\n    dv/dt = {rhs}\nthreshold: v > 1\nreset:\n    v = 0\n{extra}"


# ---- blocks the engine does not simulate yet --------------------------------------


def test_delay_of_a_state_is_an_error():
    error_at(model("(2 - v) / 10", "delay: v\n"), 6, 8, "the delay cannot depend on `v`")


def test_unless_refractory_without_a_period_is_an_error_at_the_flag():
    error_at(model("(2 - v) / 10 (unless refractory)"), 2, 26, "without a refractory period")


def test_refractory_period_of_a_state_is_an_error():
    error_at(model("(2 - v) / 10", "refractory: v\n"), 6, 13, "cannot depend on `v`")


def test_negative_refractory_period_is_an_error():
    error_at(model("(2 - v) / 10", "refractory: -1\n"), 6, 13, "negative")


def test_event_defined_twice_is_an_error():
    error_at(
        model("(2 - v) / 10", "event burst: v > 0.5\n    v = 0\nevent burst: v > 0.7\n    v = 0\n"),
        8, 7, "defined twice",
    )


def test_event_assigning_a_parameter_is_an_error():
    src = "parameters:\n    a = 1\n" + model("(2 - v) / 10", "event burst: v > 0.5\n    a = 0\n")
    error_at(src, 9, 5, "cannot assign to parameter `a`")


# ---- models that crashed the compiler -----------------------------------------------


def test_state_with_a_constant_derivative_is_linear():
    m = compiles("equations:\n    dw/dt = 2\n    dv/dt = w\nthreshold: v > 1\nreset:\n    v = 0\n")
    assert m.states == ("w", "v")


def test_where_with_a_constant_condition_takes_the_branch():
    m = compiles(model("where(0 > 1, 0, 3)"))
    assert str(m.ir.derivatives["v"]) == "3"


def test_clip_with_a_constant_function_bound():
    compiles(model("clip(v, 0, relu(5)) + sigmoid(2) - softplus(1)"))


def test_long_sums_and_redundant_parentheses_compile():
    compiles(model(" + ".join(["v"] * 2000)))
    compiles(model("(" * 200 + "2 - v" + ")" * 200))


def test_deep_nesting_is_an_error_not_a_recursion_error():
    with pytest.raises(eqn.EqError, match="nested more than 64 levels deep") as info:
        compiles(model("exp(" * 80 + "v" + ")" * 80))
    assert info.value.line == 2


def test_inconsistent_dedent_points_at_the_line():
    error_at("parameters:\n    a = 1\n  b = 2\n" + model("a - v"), 3, 3, "indentation does not match")


def test_empty_text_is_a_model_without_equations():
    error_at("", 1, 1, "no `equations:` block")


# ---- constants that are not finite real float64 numbers ---------------------------------------


@pytest.mark.parametrize(
    "rhs,column,words",
    [
        ("log(0)", 13, "`log(0)` is infinite or undefined"),
        ("tan(pi/2)", 13, "`tan(pi/2)` is infinite or undefined"),
        ("(2 - v)/10 + log(-1)", 26, "`log(-1)` is not a real number"),
        ("sqrt(-2) * v", 13, "`sqrt(-2)` is not a real number"),
        ("9**9**9", 13, "`9**9**9` overflows float64"),
        ("exp(exp(exp(20)))", 17, "`exp(exp(20))` overflows float64"),
        ("1e999 * v", 13, "number too large for float64"),
        ("inf - v", 13, "`inf - v` is infinite"),
    ],
)
def test_constant_that_is_not_a_finite_real_number(rhs, column, words):
    error_at(model(rhs), 2, column, words)


def test_division_by_zero_in_a_branch_of_where():
    error_at(model("v / where(v > 0, 0, 1)"), 2, 13, "infinite or undefined where it divides by zero")


def test_parameter_defaults_through_functions_of_parameters():
    m = compiles("parameters:\n    a = 2\n    b = min(a, softplus(a))\n" + model("(b - v) / 10"))
    assert m.params["b"] == 2.0


def test_subexpression_of_a_constant_subexpression():
    compiles(
        model("(d - v) / 10", "").replace(
            "equations:\n", "equations:\n    s = 2\n    d = min(v, softplus(s))\n"
        )
    )


def test_inf_in_a_threshold_never_fires():
    m = compiles("equations:\n    dv/dt = (2 - v) / 10\nthreshold: v > inf\nreset:\n    v = 0\n")
    assert "inf" in m.ir.threshold_text


def test_huge_integer_exponent_compiles_quickly():
    start = time.perf_counter()
    compiles(model("(v**2**3**4) * 0 + (2 - v) / 10"))
    assert time.perf_counter() - start < 5


def test_nonlinear_threshold_with_reset_compiles_quickly():
    start = time.perf_counter()
    compiles("equations:\n    dv/dt = 1\nthreshold: (v*v + v) * (5 + abs(v)) > 25\nreset:\n    v = 0\n")
    assert time.perf_counter() - start < 5


# ---- lines: one notion for the lexer, the errors and the summary ---------------------------------


@pytest.mark.parametrize("separator", ["\u2029", "\u2028", "\x0c", "\x0b", "\x85", "\r"])
def test_odd_line_separators_in_comments_do_not_shift_lines(separator):
    source = f"# a comment{separator}with a separator\n" + model("(2 - q) / 10")
    error = error_at(source, 3, 18, "unknown name `q`")
    assert "\n        dv/dt = (2 - q) / 10\n" in str(error)


def test_crlf_file_quotes_the_named_line():
    source = model("(2 - q) / 10").replace("\n", "\r\n")
    error = error_at(source, 2, 18, "unknown name `q`")
    assert "\n        dv/dt = (2 - q) / 10\n" in str(error)


def test_caret_under_a_token_after_tabs():
    error = error_at("equations:\n\tdv/dt = q\nthreshold: v > 1\n", 2, 10, "unknown name `q`")
    assert "\n    \tdv/dt = q\n    \t        ^\n" in str(error)


def test_description_has_no_line_separators():
    m = compiles("# first\u2029still the first line\n" + model("(2 - v) / 10"))
    assert m.ir.description == "first still the first line"


def test_latin1_file_points_at_the_byte(tmp_path):
    path = tmp_path / "latin1.eq"
    path.write_bytes(model("(2 - v) / 10").encode() + "# caf\u00e9\n".encode("latin-1"))
    error = error_at(path, 6, 6, "not UTF-8", "0xe9", f"offset {len(model('(2 - v) / 10')) + 5}")
    assert error.filename == str(path)


def test_a_directory_is_not_a_model(tmp_path):
    with pytest.raises(eqn.EqError, match="is a directory"):
        eqn.compile_model(tmp_path)


# ---- the functions and constants of SPEC §2 ------------------------------------------------


def test_new_functions_and_constants_compile_to_jax():
    m = compiles(
        model("sinh(v) - cosh(v) + log1p(v) - expm1(v) + exprel(v) + heaviside(v - 1) + e - pi + 0 * t")
    )
    y = jnp.array([[0.0, 0.5]])
    (dv,) = m.fn.vector_field(0.0, y, m.params)
    v = np.array([0.0, 0.5])
    exprel = np.where(v == 0, 1.0, np.expm1(v) / np.where(v == 0, 1, v))
    expected = np.sinh(v) - np.cosh(v) + np.log1p(v) - np.expm1(v) + exprel + 0 + np.e - np.pi
    np.testing.assert_allclose(dv, expected, rtol=1e-12)


def test_exprel_is_smooth_at_zero():
    m = compiles(model("exprel(v)"))

    def rate(v):
        return m.fn.vector_field(0.0, jnp.reshape(v, (1, 1)), m.params)[0, 0]

    for v in (0.0, 1e-9, -1e-6, 1e-3):
        value, slope = jax.value_and_grad(rate)(v)
        np.testing.assert_allclose(value, np.expm1(v) / v if v else 1.0, rtol=1e-12)
        np.testing.assert_allclose(slope, 0.5 + v / 3, rtol=1e-5)


def test_heaviside_has_derivative_zero():
    m = compiles(model("heaviside(v - 0.5)"))

    def rate(v):
        return m.fn.vector_field(0.0, jnp.reshape(v, (1, 1)), m.params)[0, 0]

    assert [float(rate(v)) for v in (0.0, 0.5, 1.0)] == [0.0, 0.0, 1.0]
    assert float(jax.grad(rate)(1.0)) == 0.0


def test_where_of_parameters_only_compiles():
    m = compiles("parameters:\n    a = 2\nstate:\n    v = where(a > 1, a, 0)\n" + model("(2 - v) / 10"))
    assert m.ir.initial["v"].has(sp.Piecewise)


def test_two_modes_with_rates_in_an_integer_ratio_keep_the_closed_form():
    """dv/dt = 7 v, dx/dt = -x with a linear threshold: the extremum of c1 e^(7h) + c2 e^(-h) is
    written directly (SymPy's solve found 8 complex branches and took ~30 s on it)."""
    start = time.process_time()
    m = compiles("state:\n    v = -0.5\n    x = 1.7\nequations:\n    dv/dt = 7 * v\n    dx/dt = -x\n"
                 "threshold: x + x + v + v + v > 1\nreset:\n    v = 0\n")
    assert time.process_time() - start < 5.0
    assert "exact" in m.integrator
    # literal time constants 10 and 5 (rates in the ratio 2) are one closed form too
    lif = eqn.compile_model("lif").ir.source.text
    literal = compiles(lif.replace("tmem = 10.0", "tmem = 10").replace("tsyn = 5.0", "tsyn = 5"))
    assert "exact" in literal.integrator
    out = eqn.simulate(literal.population(1, params={"ic": jnp.array([3.0])}), None, t1=10.0, max_spikes=4)
    np.testing.assert_allclose(float(out.spike_times[0]), -10.0 * np.log(2.0 / 3.0), rtol=1e-5)


def test_an_exponential_of_a_huge_multiple_of_a_parameter_keeps_the_analysis_fast():
    """exp(-1e172 tau) puts exp(2e171) in a denominator of the closed form; SymPy's factorisation
    wrote it as a polynomial of that degree in exp(tau) and never returned."""
    start = time.process_time()
    m = compiles("parameters:\n    tau = 0.2\nstate:\n    v = 1\nequations:\n    dv/dt = -v\n"
                 "    dy/dt = -v * exp(-1e172 * tau)\nthreshold: y > 1\n")
    assert time.process_time() - start < 5.0
    assert "exact" in m.integrator
    ts = np.array([0.5, 2.0])
    out = eqn.simulate(m.population(1), None, t1=3.0, max_spikes=4, save_at=jnp.asarray(ts))
    np.testing.assert_allclose(np.asarray(out.states[0]["v"][:, 0]), np.exp(-ts), rtol=1e-12)
    assert np.all(np.asarray(out.states[0]["y"]) == 0.0)  # exp(-2e171) underflows to 0


def test_a_polynomial_times_exponential_slope_falls_back_without_solving():
    """x'' = const drives v' = y - v: the slope of v along the solution is a quadratic plus an
    exponential, whose zeros SymPy's `solve` sought through Lambert W for minutes."""
    start = time.process_time()
    m = compiles("equations:\n    dx/dt = 15253064\n    dy/dt = x\n    dv/dt = y - v\nthreshold: v > -e\n")
    assert time.process_time() - start < 5.0
    assert "Runge–Kutta" in m.integrator


def test_a_parameter_expression_that_overflows_points_at_the_statement_not_the_base_file():
    """Both parameters are inherited from lif.eq; the expression that overflows is in this text."""
    source = "extends lif\nreset:\n    v = exp(exp(exp(exp(exp(thresh - vreset)))))\n"
    error_at(source, 3, 5, "`thresh` = 1, `vreset` = 0", "in reset of `v` infinite")
