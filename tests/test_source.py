"""Where `compile_model` reads a model from: a file, a zoo name, or the text itself.

A string with a line break, or one opening with a comment or a language keyword, is
model text unless it names an existing file. References: the zoo's `lif.eq`, and the
analytic firing times of a LIF neuron under a constant current.
"""

import jax.numpy as jnp
import numpy as np
import pytest

import eqneuron as eqn


def test_one_line_extends_text_is_the_zoo_model():
    one_line, zoo = eqn.compile_model("extends lif"), eqn.compile_model("lif")
    assert one_line.states == zoo.states
    assert {k: float(np.mean(v)) for k, v in one_line.params.items()} == {
        k: float(np.mean(v)) for k, v in zoo.params.items()
    }
    # v' = (ic - v) / tmem from v = 0, reset to 0 at 1: one spike every tmem * log(ic / (ic - 1))
    ic, tmem = 1.5, 10.0
    pop = one_line.population(1, params={"ic": jnp.array([ic])})
    out = eqn.simulate(pop, None, t1=50.0, max_spikes=8)
    period = tmem * np.log(ic / (ic - 1.0))
    times = np.asarray(out.spike_times)[: int(out.n_spikes)]
    np.testing.assert_allclose(times, period * np.arange(1, len(times) + 1), rtol=0, atol=1e-9)
    assert len(times) == int(50.0 // period)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("neuron Solo", "no `equations:` block"),
        ("  neuron Solo", "no `equations:` block"),
        ("# only a description", "no `equations:` block"),
        ("equations: dv/dt = 1", "no `threshold:` block"),
        ("threshold:v > 1", "no `equations:` block"),
    ],
)
def test_a_line_opening_with_a_keyword_or_a_comment_is_model_text(text, message):
    with pytest.raises(eqn.EqError) as info:
        eqn.compile_model(text)
    assert message in info.value.message and info.value.filename == "<string>"


def test_an_existing_file_is_read_even_if_its_name_opens_with_a_keyword(tmp_path, monkeypatch):
    (tmp_path / "neuron x").write_text("equations:\n    dv/dt = 1\nthreshold: v > 1\nreset:\n    v = 0\n")
    monkeypatch.chdir(tmp_path)
    assert eqn.compile_model("neuron x").states == ("v",)


@pytest.mark.parametrize(
    ("name", "message", "hint"),
    [
        ("lifx", "`lifx` is neither a file nor a zoo model", "did you mean `lif`?"),
        ("no_such_model", "`no_such_model` is neither a file nor a zoo model", "zoo models: "),
        ("missing.eq", "no such file: missing.eq", "a .eq file or a zoo name"),
        ("dv/dt = -v", "is neither a file nor a zoo model", "opens with a keyword"),
    ],
)
def test_a_name_that_is_neither_a_file_nor_a_zoo_model_is_an_error(
    name, message, hint, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(eqn.EqError) as info:
        eqn.compile_model(name)
    assert message in info.value.message and hint in info.value.hint


@pytest.mark.parametrize("text", ["dv/dt = -v", "0# A", "    tau_fast = tau / 4            # u", ">= Izhikevich (200"])
def test_a_line_that_reads_as_model_text_but_opens_no_model_is_an_error_at_that_line(text, tmp_path, monkeypatch):
    """One line with `:`, `=` or `#` (a fragment of a damaged model) that is no file, no zoo name
    and opens with no keyword: the error points at line 1 of the text and quotes it."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(eqn.EqError) as info:
        eqn.compile_model(text)
    error = info.value
    assert (error.line, error.column) == (1, 1)
    assert f"\n    {text}\n    ^\n" in str(error)
    assert "is neither a file nor a zoo model" in error.message and "opens with a keyword" in error.hint
