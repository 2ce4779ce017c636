"""The API boundary: bad arguments of simulate, populations, spikes and parameters are errors
that name the argument; documented behaviours (padding, late inputs, save_at order) hold."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqneuron as eqn
from eqneuron.engine.validate import METHODS, check_simulate_arguments

INF = float("inf")


@pytest.fixture(scope="module")
def lif():
    return eqn.compile_model("lif")


@pytest.fixture(scope="module")
def pop(lif):
    return lif.population(3, 2, key=jax.random.key(0))


def check(pop, **changes):
    """check_simulate_arguments with good defaults, some replaced."""
    arguments = dict(
        net=pop, inputs=eqn.Spikes([1.0, 2.0], [0, 1]), t1=10.0, max_spikes=8, save_at=None, method="auto",
        rtol=None, atol=None, dt=None, root_tol=None, max_solver_steps=100, max_spikes_per_neuron=None,
    )
    return check_simulate_arguments(**{**arguments, **changes})


# ---- simulate: options known in Python


@pytest.mark.parametrize("t1", [0.0, -5.0, INF, float("nan")])
def test_t1_must_be_finite_and_positive(pop, t1):
    with pytest.raises(eqn.EqError, match="`t1` must be finite and > 0"):
        check(pop, t1=t1)


@pytest.mark.parametrize("max_spikes", [0, -1, 5.0, True])
def test_max_spikes_must_be_an_int_of_at_least_one(pop, max_spikes):
    with pytest.raises(eqn.EqError, match="`max_spikes` must be an int >= 1"):
        check(pop, max_spikes=max_spikes)


@pytest.mark.parametrize("name", ["rtol", "atol", "root_tol", "dt"])
def test_zero_tolerance_is_an_error_not_the_default(pop, name):
    with pytest.raises(eqn.EqError, match=f"`{name}` must be finite and > 0, got 0"):
        check(pop, **{name: 0.0})


@pytest.mark.parametrize("name", ["rtol", "atol", "root_tol", "dt"])
def test_negative_tolerance_is_an_error(pop, name):
    with pytest.raises(eqn.EqError, match=f"`{name}` must be finite and > 0"):
        check(pop, **{name: -1e-6})


def test_unknown_method_lists_the_choices(pop):
    with pytest.raises(eqn.EqError, match="unknown `method` 'rk4'") as error:
        check(pop, method="rk4")
    assert error.value.hint == "choose one of auto, exact, tsit5, dopri5, dopri8, heun, euler"
    for method in METHODS:
        check(pop, method=method)


@pytest.mark.parametrize("name", ["max_solver_steps", "max_spikes_per_neuron"])
def test_step_and_spike_budgets_must_be_ints_of_at_least_one(pop, name):
    with pytest.raises(eqn.EqError, match=f"`{name}` must be an int >= 1"):
        check(pop, **{name: 0})


def test_net_must_be_a_network_or_population(pop):
    with pytest.raises(eqn.EqError, match="`net` must be a Network or a Population"):
        check(pop, net="lif")


# ---- simulate: save_at


def test_save_at_outside_zero_to_t1_is_an_error(pop):
    with pytest.raises(eqn.EqError, match=r"`save_at` must be within \[0, t1\] = \[0, 10\], got 11"):
        check(pop, save_at=[1.0, 11.0])


def test_negative_save_at_is_an_error(pop):
    with pytest.raises(eqn.EqError, match=r"`save_at` must be within \[0, t1\]"):
        check(pop, save_at=[-1.0, 1.0])


def test_non_finite_save_at_is_an_error(pop):
    with pytest.raises(eqn.EqError, match="`save_at` must be finite"):
        check(pop, save_at=[1.0, float("nan")])


@pytest.mark.parametrize("save_at", [[], 5.0, [[1.0, 2.0]]])
def test_save_at_must_be_a_non_empty_vector(pop, save_at):
    with pytest.raises(eqn.EqError, match="`save_at` must be a non-empty 1-D array"):
        check(pop, save_at=save_at)


def test_unsorted_save_at_is_sorted_with_the_order_to_restore(pop):
    user = np.array([7.0, 1.0, 3.0, 1.0])
    prepared = check(pop, save_at=user)
    assert np.all(np.diff(np.asarray(prepared.save_at)) >= 0)
    np.testing.assert_array_equal(np.asarray(prepared.save_at)[np.asarray(prepared.restore_order)], user)


def test_sorted_save_at_needs_no_reordering(pop):
    prepared = check(pop, save_at=[0.0, 5.0, 10.0])
    assert prepared.restore_order is None
    np.testing.assert_array_equal(np.asarray(prepared.save_at), [0.0, 5.0, 10.0])


def test_traced_save_at_is_sorted_with_the_order_to_restore(pop):
    user = jnp.array([9.0, 2.0, 4.0])
    prepared = jax.jit(lambda s: check(pop, save_at=s))(user)
    np.testing.assert_array_equal(np.asarray(prepared.save_at), [2.0, 4.0, 9.0])
    np.testing.assert_array_equal(np.asarray(prepared.save_at)[np.asarray(prepared.restore_order)], user)


# ---- simulate: input spikes


def test_nan_input_time_is_an_error(pop):
    with pytest.raises(eqn.EqError, match="`inputs.times` contains NaN: entry 1"):
        check(pop, inputs=eqn.Spikes([1.0, float("nan")], [0, 1]))


def test_negative_input_time_is_an_error(pop):
    with pytest.raises(eqn.EqError, match="`inputs.times` contains negative times: entry 0 has time -1"):
        check(pop, inputs=eqn.Spikes([-1.0, 2.0], [0, 1]))


@pytest.mark.parametrize("channel", [2, -1])
def test_input_channel_outside_the_first_populations_channels_is_an_error(pop, channel):
    with pytest.raises(eqn.EqError, match=r"`inputs.channels` must be in 0..1 \(the first population's in_size=2\)"):
        check(pop, inputs=eqn.Spikes([1.0, 2.0], [0, channel]))


def test_padding_entries_may_have_any_channel(pop):
    prepared = check(pop, inputs=eqn.Spikes([1.0, INF, INF], [0, 99, -7]))
    assert prepared.inputs is not None


def test_input_times_after_t1_are_allowed(pop):
    check(pop, inputs=eqn.Spikes([1.0, 50.0], [0, 1]), t1=10.0)


def test_input_times_after_t1_are_ignored(pop):
    w = jnp.zeros((5, 3)).at[3:].set(3.0)
    strong = pop.replace(weights={"w": w})
    alone = eqn.simulate(strong, eqn.Spikes([1.0, INF], [0, 1]), t1=10.0, max_spikes=16)
    late = eqn.simulate(strong, eqn.Spikes([1.0, 12.0], [0, 1]), t1=10.0, max_spikes=16)
    np.testing.assert_array_equal(np.asarray(alone.spike_times), np.asarray(late.spike_times))


def test_non_finite_input_value_is_an_error(pop):
    with pytest.raises(eqn.EqError, match="`inputs.values` must be finite"):
        check(pop, inputs=eqn.Spikes([1.0, 2.0], [0, 1], values=[1.0, float("nan")]))


def test_inputs_to_a_population_without_input_channels_are_an_error(lif):
    closed = lif.population(3, 0)
    with pytest.raises(eqn.EqError, match="`inputs` were given, but the first population has in_size=0"):
        check(closed, inputs=eqn.Spikes([1.0], [0]))
    check(closed, inputs=None)


def test_a_batch_of_inputs_must_be_vmapped(pop):
    with pytest.raises(eqn.EqError, match=r"`inputs.times` must be 1-D .* got shape \(2, 1\)"):
        check(pop, inputs=eqn.Spikes([[1.0], [2.0]], [[0], [1]]))


def _traced_code(pop, spikes, t1=10.0, throw=False):
    run = eqx.filter_jit(lambda s, t1: eqn.simulate(pop, s, t1=t1, max_spikes=8, throw=throw).results[0])
    return run(spikes, jnp.asarray(t1))


def test_traced_bad_channel_sets_the_invalid_arguments_code(pop):
    assert _traced_code(pop, eqn.Spikes([1.0, 2.0], [0, 1])) == eqn.RESULTS.ok
    assert _traced_code(pop, eqn.Spikes([1.0, 2.0], [0, 5])) == eqn.RESULTS.invalid_arguments


def test_traced_t1_sets_the_invalid_arguments_code(pop):
    assert _traced_code(pop, eqn.Spikes([1.0, 2.0], [0, 1]), t1=-1.0) == eqn.RESULTS.invalid_arguments


def test_traced_invalid_arguments_raise_with_throw(pop):
    with pytest.raises(Exception, match="failed its check under `jit`"):
        jax.block_until_ready(_traced_code(pop, eqn.Spikes([1.0, jnp.nan], [0, 1]), throw=True))


def test_nan_in_one_sample_of_a_vmapped_batch_flags_that_sample(pop):
    batch = eqn.Spikes(jnp.array([[1.0], [jnp.nan]]), jnp.array([[0], [0]]))
    run = eqx.filter_jit(jax.vmap(lambda s: eqn.simulate(pop, s, t1=10.0, max_spikes=8).invalid_arguments))
    np.testing.assert_array_equal(np.asarray(run(batch)), [False, True])


# ---- Spikes


def test_spikes_values_of_the_wrong_length_are_an_error():
    with pytest.raises(eqn.EqError, match=r"`values` has shape \(1,\) but `times` has shape \(2,\)"):
        eqn.Spikes([1.0, 2.0], [0, 1], values=[1.0])


def test_spikes_times_and_channels_must_match():
    with pytest.raises(eqn.EqError, match=r"`times` has shape \(2,\) but `channels` has shape \(3,\)"):
        eqn.Spikes([1.0, 2.0], [0, 1, 2])


def test_spikes_channels_must_be_integers():
    with pytest.raises(eqn.EqError, match="`channels` must be integers"):
        eqn.Spikes([1.0, 2.0], [0, 1.5])


def test_spikes_has_no_empty_constructor():
    assert not hasattr(eqn.Spikes, "empty")


# ---- Population: weights


def test_unknown_weight_name_suggests_the_right_one(pop):
    with pytest.raises(eqn.EqError, match="`ww` is not a weight of LIF") as error:
        pop.replace(weights={"ww": jnp.zeros((5, 3))})
    assert error.value.hint == "did you mean `w`?"


def test_unknown_weight_name_at_creation_is_an_error(lif):
    with pytest.raises(eqn.EqError, match="`v` is not a weight of LIF"):
        lif.population(3, 2, key=jax.random.key(0), weights={"v": jnp.zeros((5, 3))})


def test_transposed_weights_are_an_error(pop):
    with pytest.raises(eqn.EqError, match=r"weight `w` must have shape \(5, 3\) \(N\+K, N\), got \(3, 5\)") as error:
        pop.replace(weights={"w": jnp.zeros((3, 5))})
    assert "transposed" in error.value.hint


def test_weights_without_the_own_neuron_rows_are_an_error(lif):
    with pytest.raises(eqn.EqError, match=r"weight `w` must have shape \(5, 3\) \(N\+K, N\), got \(2, 3\)"):
        lif.population(3, 2, key=jax.random.key(0), weights={"w": jnp.ones((2, 3))})


def test_a_single_weight_row_is_not_broadcast(pop):
    with pytest.raises(eqn.EqError, match=r"weight `w` must have shape \(5, 3\) \(N\+K, N\), got \(1, 3\)"):
        pop.replace(weights={"w": jnp.ones((1, 3))})


def test_non_finite_weights_are_an_error(pop):
    with pytest.raises(eqn.EqError, match="weight `w` has 1 non-finite entries"):
        pop.replace(weights={"w": jnp.zeros((5, 3)).at[4, 0].set(jnp.nan)})


def test_weights_of_the_right_shape_replace(pop):
    w = jnp.arange(15.0).reshape(5, 3)
    np.testing.assert_array_equal(np.asarray(pop.replace(weights={"w": w}).weights["w"]), np.asarray(w))


def test_wmask_of_the_wrong_shape_is_an_error(lif):
    with pytest.raises(eqn.EqError, match=r"`wmask` must have shape \(5, 3\)"):
        lif.population(3, 2, key=jax.random.key(0), wmask=np.ones((3, 5), bool))


@pytest.mark.parametrize("n_neurons", [0, -2, 2.5])
def test_population_size_must_be_a_positive_int(lif, n_neurons):
    with pytest.raises(eqn.EqError, match="`n_neurons` must be an integer >= 1"):
        lif.population(n_neurons, 2, key=jax.random.key(0))


def test_in_size_must_not_be_negative(lif):
    with pytest.raises(eqn.EqError, match="`in_size` must be an integer >= 0"):
        lif.population(3, -1, key=jax.random.key(0))


# ---- Population: parameters


def test_unknown_parameter_name_suggests_the_right_one(pop):
    with pytest.raises(eqn.EqError, match="`tmen` is not a parameter of LIF") as error:
        pop.replace(params={"tmen": 5.0})
    assert error.value.hint == "did you mean `tmem`?"


def test_unknown_parameter_at_creation_is_an_error(lif):
    with pytest.raises(eqn.EqError, match="`icc` is not a parameter of LIF"):
        lif.population(3, 2, key=jax.random.key(0), params={"icc": 1.0})


def test_parameter_of_the_wrong_length_is_an_error(pop):
    with pytest.raises(eqn.EqError, match=r"parameter `ic` has shape \(2,\); expected a scalar or \(3,\)"):
        pop.replace(params={"ic": jnp.zeros(2)})


def test_parameter_matrix_is_an_error(lif):
    with pytest.raises(eqn.EqError, match=r"parameter `ic` has shape \(3, 1\); expected a scalar or \(3,\)"):
        lif.population(3, 2, key=jax.random.key(0), params={"ic": np.zeros((3, 1))})


def test_non_finite_parameter_is_an_error(lif):
    with pytest.raises(eqn.EqError, match=r"parameter `ic` = inf \(neuron 1\) is not finite"):
        lif.population(3, 2, key=jax.random.key(0), params={"ic": np.array([0.0, np.inf, 0.0])})


def test_scalar_for_a_per_neuron_parameter_is_given_to_every_neuron(pop):
    np.testing.assert_array_equal(np.asarray(pop.replace(params={"ic": 0.5}).params["ic"]), [0.5, 0.5, 0.5])


# ---- parameters that make the model meaningless


def test_zero_time_constant_at_compile_time_names_the_parameter():
    with pytest.raises(eqn.EqError, match=r"parameter `tmem` = 0 makes `1/tmem` in dv/dt infinite") as error:
        eqn.compile_model("lif", params={"tmem": 0.0})
    assert error.value.line == 7  # points at the declaration of tmem


def test_nan_parameter_at_compile_time_is_an_error():
    with pytest.raises(eqn.EqError, match="parameter `tsyn` = nan is not finite"):
        eqn.compile_model("lif", params={"tsyn": float("nan")})


def test_zero_time_constant_of_one_neuron_is_an_error(lif):
    with pytest.raises(eqn.EqError, match=r"parameter `tmem` = 0 \(neuron 1\) makes `1/tmem`"):
        lif.population(3, 2, key=jax.random.key(0), params={"tmem": np.array([5.0, 0.0, 5.0])})


def test_zero_time_constant_by_replace_is_an_error(pop):
    with pytest.raises(eqn.EqError, match="parameter `tsyn` = 0 makes `1/tsyn` in di/dt"):
        pop.replace(params={"tsyn": 0.0})


def test_dependent_default_that_divides_by_zero_names_the_parameter():
    source = (
        "neuron Ratio\nparameters:\n    tau = 10.0\n    rate = 1 / tau\nstate:\n    v = 0.0\n"
        "equations:\n    dv/dt = -v * rate\nthreshold: v > 1\nreset:\n    v = 0\n"
    )
    eqn.compile_model(source)
    with pytest.raises(eqn.EqError, match="the default of `rate` is not finite"):
        eqn.compile_model(source, params={"tau": 0.0})


# ---- Network


def test_network_of_mismatched_sizes_is_an_error(lif, pop):
    with pytest.raises(eqn.EqError, match="population 1 has in_size=4 but population 0 has 3 neurons"):
        eqn.Network([pop, lif.population(2, 4, key=jax.random.key(1))])


def test_empty_network_is_an_error():
    with pytest.raises(eqn.EqError, match="Network needs at least one population"):
        eqn.Network([])


def test_network_entries_must_be_populations(pop):
    with pytest.raises(eqn.EqError, match="entry .1. is a str, not a Population"):
        eqn.Network([pop, "readout"])


def test_rounds_without_stop_after_first_spike_is_an_error(pop):
    with pytest.raises(eqn.EqError, match="`rounds=True`.*stop_after_first_spike=True"):
        eqn.simulate(pop, None, t1=10.0, rounds=True)
    with pytest.raises(eqn.EqError, match="no save_at"):
        eqn.simulate(pop, None, t1=10.0, rounds=True, stop_after_first_spike=True, save_at=[1.0])


def test_rounds_where_no_earlier_population_takes_steps_is_an_error(lif, pop):
    """Rounds advance earlier populations a few solver steps at a time: with none to run that way
    (one population; a closed-form hidden layer) `rounds=True` would change nothing, and says so.
    With the hidden layer stepping (`method="tsit5"`) the same call runs."""
    stack = eqn.Network([pop, lif.population(2, 3, key=jax.random.key(1))])
    inputs = eqn.Spikes(jnp.array([1.0, 2.0]), jnp.array([0, 1]))
    for net in (pop, stack):
        with pytest.raises(eqn.EqError, match="no population before the last takes solver steps"):
            eqn.simulate(net, inputs, t1=10.0, rounds=True, stop_after_first_spike=True)
    # weights that make both layers fire: the outputs' first spikes those of the run without rounds
    driven = eqn.Network([p.replace(weights={"w": jnp.full(p.weights["w"].shape, 3.0 - k)}) for k, p in enumerate(stack.populations)])
    out, full = (eqn.simulate(driven, inputs, t1=10.0, rounds=r, stop_after_first_spike=True, method="tsit5") for r in (True, False))
    assert out.first_spikes[-1].shape == (2,) and np.all(np.isfinite(np.asarray(full.first_spikes[-1])))
    np.testing.assert_allclose(np.asarray(out.first_spikes[-1]), np.asarray(full.first_spikes[-1]), rtol=0, atol=1e-8)


@pytest.mark.parametrize("value", ["auto", 1, 0.5])
def test_rounds_other_than_none_true_or_false_is_an_error(pop, value):
    """`rounds` is None (the engine chooses), True or False: nothing else is read as one of them."""
    with pytest.raises(eqn.EqError, match="`rounds` must be None, True or False"):
        eqn.simulate(pop, None, t1=10.0, rounds=value, stop_after_first_spike=True)
