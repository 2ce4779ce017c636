"""`extends`: a model built on another one behaves as the same model written out in full,
and its errors point into the file that holds the mistake.

References: the equivalent hand-written files, and scipy's `solve_ivp` with resets applied
by hand (`tests/scipy_reference.py`).
"""

import jax.numpy as jnp
import numpy as np
import pytest

import eqneuron as eqn

from .scipy_reference import scipy_spike_trains

LIF_WITH_REFRACTORY = """
extends lif
parameters:
    tref = 2.0
equations:
    dv/dt = (-v + i + ic) / tmem (unless refractory)
refractory: tref
"""

# `models/lif.eq` written out with the same changes
LIF_WITH_REFRACTORY_IN_FULL = """
parameters:
    tmem = 10.0
    tsyn = 5.0
    thresh = 1.0
    vreset = 0.0
    ic = 0.0 (per_neuron, trainable)
    tref = 2.0
equations:
    dv/dt = (-v + i + ic) / tmem (unless refractory)
    di/dt = -i / tsyn
threshold: v > thresh
reset:
    v -= thresh - vreset
refractory: tref
weights:
    w = normal(1.0, 1.0) * 2 / sqrt(fan_in)
on_spike:
    i += w
on_input:
    i += w * value
"""

ADAPTIVE_LIF = """
# LIF with a spike-triggered adaptation current.
extends lif
parameters:
    tau_a = 80.0
    b = 0.4
equations:
    dv/dt -= a / tmem
    da/dt = -a / tau_a
reset:
    v -= thresh - vreset
    a += b
"""

ADAPTIVE_LIF_IN_FULL = """
parameters:
    tmem = 10.0
    tsyn = 5.0
    thresh = 1.0
    vreset = 0.0
    ic = 0.0 (per_neuron, trainable)
    tau_a = 80.0
    b = 0.4
equations:
    dv/dt = (-v + i + ic) / tmem - a / tmem
    di/dt = -i / tsyn
    da/dt = -a / tau_a
threshold: v > thresh
reset:
    v -= thresh - vreset
    a += b
weights:
    w
on_input:
    i += w * value
"""

INPUTS = eqn.Spikes(jnp.array([3.0, 11.0, 12.5, 30.0]), jnp.array([0, 0, 0, 0]))
W_IN = 0.9
IC = jnp.array([1.3, 2.5])
IC_ADAPTIVE = jnp.array([2.0, 3.5])


def trains(model, t1=60.0, ic=IC, **options):
    pop = model.population(2, 1, params={"ic": ic}, weights={"w": jnp.zeros((3, 2)).at[2].set(W_IN)})
    out = eqn.simulate(pop, INPUTS, t1=t1, max_spikes=64, **options)
    assert out.results[0] == eqn.RESULTS.ok
    times, ids = np.asarray(out.spike_times), np.asarray(out.spike_neurons)
    return [np.sort(times[ids == k]) for k in range(2)]


def error_of(source):
    with pytest.raises(eqn.EqError) as info:
        eqn.compile_model(source)
    return info.value


def write(directory, name, text):
    path = directory / name
    path.write_text(text)
    return path


# ---- inheriting and overriding -----------------------------------------------------


def test_lif_extended_with_a_refractory_period_fires_as_the_full_file():
    extended = eqn.compile_model(LIF_WITH_REFRACTORY)
    full = eqn.compile_model(LIF_WITH_REFRACTORY_IN_FULL)
    assert extended.states == full.states and list(extended.params) == list(full.params)
    assert "exact" in extended.integrator and "exact" in full.integrator
    ours, reference = trains(extended), trains(full)
    assert all(len(a) >= 3 for a in ours)
    for a, b in zip(ours, reference):
        np.testing.assert_array_equal(a, b)


def test_an_added_adaptation_current_fires_as_the_full_file_and_as_scipy():
    extended = eqn.compile_model(ADAPTIVE_LIF)
    assert extended.ir.derivatives == eqn.compile_model(ADAPTIVE_LIF_IN_FULL).ir.derivatives
    options = dict(ic=IC_ADAPTIVE, method="tsit5", rtol=1e-10, atol=1e-10)
    ours = trains(extended, **options)
    full = trains(eqn.compile_model(ADAPTIVE_LIF_IN_FULL), **options)

    def rhs(t, y):
        v, i, a = y
        return np.stack([(-v + i + np.asarray(IC_ADAPTIVE)) / 10.0 - a / 10.0, -i / 5.0, -a / 80.0])

    def on_spike(y, k):
        y[0, k] -= 1.0
        y[2, k] += 0.4
        return y

    def synapse(y):
        y[1] += W_IN
        return y

    reference = scipy_spike_trains(
        rhs,
        np.zeros((3, 2)),
        60.0,
        lambda y: y[0] - 1.0,
        on_spike,
        [(float(t), synapse) for t in INPUTS.times],
    )
    for a, b, c in zip(ours, full, reference):
        assert len(a) == len(b) == len(c) >= 3
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-6)
    isi = np.diff(ours[1])
    assert isi[-1] > isi[0], "the adaptation current lengthens the intervals"


def test_a_parameter_line_replaces_the_base_line_in_place_and_new_ones_may_come_first():
    model = eqn.compile_model("extends lif\nparameters:\n    tmem = 2 * tau_base\n    tau_base = 6.0\n")
    assert list(model.params)[:2] == ["tau_base", "tmem"]
    assert float(model.params["tmem"]) == 12.0
    assert model.ir.threshold_text == "v > thresh"  # inherited, quoted from lif.eq


def test_a_block_given_again_replaces_the_base_block():
    model = eqn.compile_model("extends lif\nreset:\n    v = vreset\nthreshold: v > 2 * thresh\n")
    assert model.ir.reset.text == ("v = vreset",)
    assert model.ir.threshold_text == "v > 2 * thresh"
    assert model.ir.on_spike.text == ("i += w",)


def test_events_and_input_ports_are_replaced_by_name(tmp_path):
    write(
        tmp_path,
        "base.eq",
        "equations:\n    dv/dt = -v\nthreshold: v > 1\nreset:\n    v = 0\nstate:\n    b = 1\n"
        "event up: v > 0.5\n    b += 1\nevent down: v < 0.1\n    b -= 1\n"
        "weights:\n    w\non_input exc:\n    v += w\non_input inh:\n    v -= w\n",
    )
    derived = write(
        tmp_path,
        "derived.eq",
        "extends base.eq\nevent up: v > 0.7\n    b += 2\non_input inh:\n    v -= 2 * w\n",
    )
    model = eqn.compile_model(derived)
    assert [(e.name, e.condition_text) for e in model.ir.events] == [("up", "v > 0.7"), ("down", "v < 0.1")]
    assert model.ir.events[0].reset.text == ("b += 2",)
    assert {name: jump.text for name, jump in model.ir.ports.items()} == {
        "exc": ("v += w",),
        "inh": ("v -= 2 * w",),
    }


def test_a_chain_of_bases_and_the_repr_that_names_them(tmp_path):
    write(tmp_path, "middle.eq", "# LIF with a slower membrane.\nextends lif\nparameters:\n    tmem = 30.0\n")
    top = write(tmp_path, "top.eq", "extends middle.eq\nneuron Top\nparameters:\n    tsyn = 1.0\n")
    model = eqn.compile_model(top)
    assert (model.name, float(model.params["tmem"]), float(model.params["tsyn"])) == ("Top", 30.0, 1.0)
    assert model.ir.description == "LIF with a slower membrane."
    assert "extends     " in repr(model) and "middle.eq → lif.eq" in repr(model)


def test_an_added_term_to_a_subexpression(tmp_path):
    write(
        tmp_path,
        "base.eq",
        "equations:\n    I = -v\n    dv/dt = I + 2\nthreshold: v > 1\nreset:\n    v = 0\n",
    )
    model = eqn.compile_model(write(tmp_path, "d.eq", "extends base.eq\nequations:\n    I -= 0.5 * v\n"))
    assert model.ir.equation_text[0] == "I = -v - (0.5 * v)"
    v = model.ir.derivatives["v"].free_symbols.pop()
    assert model.ir.derivatives["v"].equals(2 - 1.5 * v)


def test_a_changed_base_is_compiled_again(tmp_path):
    base = write(
        tmp_path, "base.eq", "parameters:\n    k = 1.0\nequations:\n    dv/dt = k\nthreshold: v > 1\n"
    )
    derived = write(tmp_path, "derived.eq", "extends base.eq\n")
    assert float(eqn.compile_model(derived).params["k"]) == 1.0
    base.write_text(base.read_text().replace("k = 1.0", "k = 3.0"))
    assert float(eqn.compile_model(derived).params["k"]) == 3.0


def test_a_term_added_with_units_is_checked_against_the_base_line(tmp_path):
    write(
        tmp_path,
        "base.eq",
        "parameters:\n    tau = 20 : ms\n    E_L = -70 : mV\nstate:\n    v = E_L : mV\n"
        "equations:\n    dv/dt = (E_L - v)/tau : mV\nthreshold: v > -50*mV\n",
    )
    good = "extends base.eq\nparameters:\n    C = 200 : pF\nequations:\n    dv/dt += I_a / C\n    dI_a/dt = -I_a / tau : nA\n"
    model = eqn.compile_model(write(tmp_path, "good.eq", good))
    assert model.ir.units["I_a"] == "nA"
    bad = write(tmp_path, "bad.eq", good.replace("I_a / C\n", "I_a / tau\n"))
    error = error_of(bad)
    assert (error.filename, error.line) == (str(bad), 5)
    assert "current/time" in error.message and "voltage/time" in error.message


# ---- errors point into the right file ------------------------------------------------


def test_an_error_in_an_inherited_line_names_the_base_file_and_line(tmp_path):
    base = write(tmp_path, "base.eq", "# base\nequations:\n    dv/dt = (1.5 - v) / tau_x\nthreshold: v > 1\n")
    derived = write(tmp_path, "derived.eq", "extends base.eq\nparameters:\n    tau = 3.0\n")
    error = error_of(derived)
    assert (error.filename, error.line, error.column) == (str(base), 3, 25)
    assert "unknown name `tau_x`" in str(error) and "dv/dt = (1.5 - v) / tau_x" in str(error)


def test_an_error_in_the_extending_file_names_that_file(tmp_path):
    derived = write(tmp_path, "derived.eq", "extends lif\nequations:\n    dv/dt += -q / tmem\n")
    error = error_of(derived)
    assert (error.filename, error.line, error.column) == (str(derived), 3, 15)
    assert "unknown name `q`" in error.message


def test_a_name_defined_in_two_files_points_at_both(tmp_path):
    error = error_of(write(tmp_path, "d.eq", "extends lif\nstate:\n    tmem = 3\n"))
    assert (error.line, error.message) == (3, "`tmem` is defined twice")
    assert "line 7 of lif.eq" in error.hint


def test_errors_in_a_middle_base_point_into_it(tmp_path):
    middle = write(tmp_path, "middle.eq", "extends lif\nreset:\n    v = vrest\n")
    error = error_of(write(tmp_path, "top.eq", "extends middle.eq\n"))
    assert (error.filename, error.line, error.column) == (str(middle), 3, 9)


@pytest.mark.parametrize(
    "files", [{"a.eq": "extends b.eq\n", "b.eq": "extends a.eq\n"}, {"a.eq": "extends a.eq\n"}]
)
def test_circular_extends_is_an_error_at_the_line_that_closes_the_cycle(tmp_path, files):
    for name, text in files.items():
        write(tmp_path, name, text)
    error = error_of(tmp_path / "a.eq")
    closing = "b.eq" if "b.eq" in files else "a.eq"
    assert (error.filename, error.line) == (str(tmp_path / closing), 1)
    assert error.message.startswith("circular `extends`")


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [
        ("extends lifx\n", "`lifx` is not a zoo model", "did you mean `lif`?"),
        ("extends nothere.eq\n", "no such file: `nothere.eq`", "relative to the extending file"),
        ("extends lif\nextends qif\n", "the model extends two bases", "chain them"),
        ("extends\n", "`extends` needs the model it extends", "extends lif"),
        ("extends lif\nequations:\n    du/dt += 1\n", "the base has none", "du/dt = ..."),
        ("extends lif\nequations:\n    dv/dt += 1 (unless refractory)\n", "flags on `dv/dt +=`", "override"),
        ("equations:\n    dv/dt += 1\nthreshold: v > 1\n", "this model extends none", "extends BASE"),
    ],
)
def test_mistakes_with_extends_are_located_errors(text, message, hint):
    error = error_of(text)
    assert message in error.message and hint in error.hint
    assert error.line is not None and error.column is not None


def test_adding_to_a_subexpression_as_if_it_were_an_equation_is_an_error(tmp_path):
    write(tmp_path, "base.eq", "equations:\n    I = 1\n    dv/dt = I\nthreshold: v > 1\n")
    error = error_of(write(tmp_path, "d.eq", "extends base.eq\nequations:\n    dI/dt += 1\n"))
    assert "`I` is a subexpression in the base" in error.message and error.line == 3
