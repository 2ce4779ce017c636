"""`simulate` called outside any transformation compiles itself once per structure, shapes and settings."""

import contextlib
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import dispatch, monitoring

import eqneuron as eqn


@contextlib.contextmanager
def traces():
    """JAX's traces to a jaxpr and compilations while the block runs."""
    seen = []

    def listener(event, duration, **kwargs):
        if event in (dispatch.JAXPR_TRACE_EVENT, dispatch.BACKEND_COMPILE_EVENT):
            seen.append(event)

    monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        monitoring.unregister_event_duration_listener(listener)


def test_a_sweep_in_a_python_loop_is_traced_once_and_matches_the_analytic_spike_times():
    """LIF without synaptic input, v(0) = 0: v = ic (1 - exp(-t/tmem)) crosses 1 at
    t = -tmem log(1 - 1/ic).  After the first call, new values of `ic` (and new weights)
    run without any tracing or compiling, whether their arrays are committed to a device (results
    of a compiled call) or not (made from NumPy values)."""
    pop = eqn.compile_model("lif").population(3, in_size=2, key=jax.random.key(0))
    inputs = eqn.Spikes(times=[jnp.inf], channels=[0])  # padding: no input
    first = eqn.simulate(pop, inputs, t1=40.0, max_spikes=128)
    assert not np.any(np.isfinite(np.asarray(first.first_spike_times())))  # ic = 0: silent
    ics = [np.array([s, s * 1.1, s * 1.3]) for s in (1.2, 1.5, 2.0, 3.0)]
    placed = [jnp.asarray, lambda x: jax.device_put(x, jax.devices()[0])]
    swept = [pop.replace(params={"ic": placed[k % 2](ic)}, weights={"w": pop.weights["w"] * ic[0]}) for k, ic in enumerate(ics)]
    with traces() as seen:
        outs = [eqn.simulate(p, inputs, t1=40.0, max_spikes=128) for p in swept]
    assert seen == [], f"traced or compiled again for new values: {seen}"
    for ic, out in zip(ics, outs):
        np.testing.assert_allclose(np.asarray(out.first_spike_times()), -10.0 * np.log(1.0 - 1.0 / ic), rtol=1e-9)
    with traces() as seen:  # another t1 (a Python number) is another program
        eqn.simulate(pop, inputs, t1=41.0, max_spikes=128)
    assert seen


def test_inside_a_transformation_the_run_belongs_to_the_callers_program():
    pop = eqn.compile_model("lif").population(2, in_size=1, key=jax.random.key(0), params={"ic": jnp.asarray([1.5, 2.0])})
    inputs = eqn.Spikes(times=[jnp.inf], channels=[0])
    eager = eqn.simulate(pop, inputs, t1=30.0, max_spikes=8)
    jitted = jax.jit(lambda p: eqn.simulate(p, inputs, t1=30.0, max_spikes=8).first_spike_times())(pop)
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(eager.first_spike_times()))
    expected = -10.0 * np.log(1.0 - 1.0 / np.array([1.5, 2.0]))
    grad = jax.grad(lambda ic: eqn.simulate(pop.replace(params={"ic": ic}), inputs, t1=30.0, max_spikes=8).first_spikes[0].sum())(
        jnp.asarray([1.5, 2.0])
    )
    # d/d(ic) of -tmem log(1 - 1/ic) = -tmem / (ic^2 (1 - 1/ic))
    ic = np.array([1.5, 2.0])
    np.testing.assert_allclose(np.asarray(grad), -10.0 / (ic**2 * (1.0 - 1.0 / ic)), rtol=1e-8)
    assert np.all(np.isfinite(expected))


def test_a_compiled_eager_run_still_warns_and_raises():
    pop = eqn.compile_model("lif").population(2, in_size=1, key=jax.random.key(0), params={"ic": jnp.asarray([5.0, 5.0])})
    inputs = eqn.Spikes(times=[jnp.inf], channels=[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = eqn.simulate(pop, inputs, t1=200.0, max_spikes=4)
    assert bool(out.overflow)
    assert any("spike budget" in str(w.message) for w in caught)
    with pytest.raises(Exception, match="spike"):
        jax.block_until_ready(eqn.simulate(pop, inputs, t1=200.0, max_spikes=4, throw=True).spike_times)
