"""`simulate(..., progress=...)`: a tqdm bar fed from inside the compiled loops.

The bar must reach 100 % with the run's own spike count, leave every result
unchanged, work under `jit` and `vmap` (one bar per call) and in graph
networks, and stay hidden for runs shorter than its delay.  The spike count
is checked against an analytic reference: LIF neurons under a constant
drive fire at the period `tmem * log(ic / (ic - thresh))` of the closed form.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqneuron as eqn

from .test_graph import case, lif_graph

TMEM, THRESH = 10.0, 1.0


def driven_lif(n):
    """`n` LIF neurons with constant drives `ic` between 1.5 and 3, no input."""
    ic = jnp.linspace(1.5, 3.0, n)
    return eqn.compile_model("lif").population(n, 0, params={"ic": ic}), np.asarray(ic)


def analytic_count(ic, t1):
    period = TMEM * np.log(ic / (ic - THRESH))
    return int(np.sum(np.floor(t1 / period)))


def bars(text):
    """Every state of the bars drawn, in order: (percentage, spikes)."""
    return [(int(p), int(n)) for p, n in re.findall(r"(\d+)%\|[^|\r\n]*\| \[[^\]\r\n]*?(\d+) spikes,", text)]


def test_bar_reaches_the_end_with_the_spike_count_and_leaves_results_unchanged(capsys):
    pop, ic = driven_lif(8)
    t1 = 1000.0
    quiet = eqn.simulate(pop, None, t1=t1, max_spikes=4096, max_spikes_per_neuron=512)
    capsys.readouterr()
    shown = eqn.simulate(pop, None, t1=t1, max_spikes=4096, max_spikes_per_neuron=512, progress=True)
    err = capsys.readouterr().err
    states = bars(err)
    assert states, err
    assert states[-1] == (100, analytic_count(ic, t1))
    percents = [p for p, _ in states]
    assert percents == sorted(percents) and len(states) > 2  # intermediate reports, in order
    np.testing.assert_array_equal(np.asarray(shown.spike_times), np.asarray(quiet.spike_times))
    np.testing.assert_array_equal(np.asarray(shown.spike_neurons), np.asarray(quiet.spike_neurons))


def test_one_bar_per_call_under_jit_and_vmap(capsys):
    pop, ic = driven_lif(4)
    t1 = 200.0
    scale = jnp.asarray([1.0, 1.2])

    @jax.jit
    def counts(scale):
        def one(s):
            p = eqn.compile_model("lif").population(4, 0, params={"ic": jnp.asarray(ic) * s})
            return eqn.simulate(p, None, t1=t1, max_spikes=1024, progress=True).n_spikes

        return jax.vmap(one)(scale)

    capsys.readouterr()
    first = counts(scale)
    second = counts(scale)
    err = capsys.readouterr().err
    expected = [analytic_count(ic * s, t1) for s in np.asarray(scale)]
    assert list(np.asarray(first)) == expected and list(np.asarray(second)) == expected
    finals = [b for b in bars(err) if b[0] == 100]
    assert len(finals) == 2 and all(s == max(expected) for _, s in finals)  # the batch's largest count


def test_graph_network_in_windows_draws_a_bar(capsys):
    w_rec, delays, w_in, inputs = case(0)
    net = lif_graph(w_rec, delays, w_in)
    spikes = eqn.Spikes(times=[t for t, _ in inputs], channels=[c for _, c in inputs])
    quiet = eqn.simulate(net, spikes, t1=40.0, max_spikes=256)
    capsys.readouterr()
    shown = eqn.simulate(net, spikes, t1=40.0, max_spikes=256, progress=True)
    states = bars(capsys.readouterr().err)
    assert states and states[-1] == (100, int(quiet.n_spikes))
    np.testing.assert_array_equal(np.asarray(shown.spike_times), np.asarray(quiet.spike_times))


def test_a_bar_under_reverse_mode_leaves_the_gradient_alone(capsys):
    """The reports read the time reached, which reverse mode differentiates: a bar under
    `jax.value_and_grad` used to stop with "Differentiation rule for 'unvmap_max' not implemented"."""
    import equinox as eqx
    import jax

    lif = eqn.compile_model("lif")
    net = eqn.Network([lif.population(4, 2, key=jax.random.key(0)), lif.population(2, 4, key=jax.random.key(1))])
    spikes = eqn.Spikes(times=[1.0, 2.0, 4.0], channels=[0, 1, 0])

    def loss(net, progress):
        first = eqn.simulate(net, spikes, t1=30.0, max_spikes=64, progress=progress).first_spikes[0]
        return jnp.sum(jnp.where(jnp.isfinite(first), first, 30.0))

    quiet, quiet_grads = eqx.filter_value_and_grad(lambda n: loss(n, False))(net)
    shown, shown_grads = eqx.filter_value_and_grad(lambda n: loss(n, True))(net)
    assert bars(capsys.readouterr().err)
    assert float(shown) == float(quiet) and float(quiet) < 4 * 30.0
    for a, b in zip(jax.tree_util.tree_leaves(quiet_grads), jax.tree_util.tree_leaves(shown_grads)):
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
    assert np.any(np.asarray(shown_grads.populations[0].weights["w"]) != 0)


def test_a_delay_hides_the_bar_of_a_short_run(capsys):
    pop, ic = driven_lif(2)
    out = eqn.simulate(pop, None, t1=50.0, max_spikes=64, progress=60.0)
    assert int(out.n_spikes) == analytic_count(ic, 50.0)
    assert "spikes" not in capsys.readouterr().err


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "yes"])
def test_bad_progress_is_an_error(bad):
    pop, _ = driven_lif(2)
    with pytest.raises(eqn.EqError, match="progress"):
        eqn.simulate(pop, None, t1=10.0, progress=bad)
