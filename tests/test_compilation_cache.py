"""`persistent_jit`: a traced program kept on disk and called by a later process without tracing.

A new `persistent_jit` instance has an empty memory, as a new process has:
it must read the program from disk (no tracing), and give what a plain
`eqx.filter_jit` of the same function gives.  Another key, other shapes or a
damaged file trace again; a result of another structure than declared is an
error, not a silently misread result.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import eqneuron as eqn
from eqneuron.compilation_cache import persistent_jit


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EQNEURON_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("EQNEURON_JAX_CACHE", raising=False)
    return tmp_path / "exported"


def small_net():
    lif = eqn.compile_model("lif")
    return eqn.Network([lif.population(3, 3, key=jax.random.key(0))])


TIMES = jnp.array([[0.5, 1.0, 2.0], [1.5, 0.2, 3.0]])
CHANNELS = jnp.array([[0, 1, 2], [2, 0, 1]])


def loss(net, times):
    first = jax.vmap(lambda t, c: eqn.simulate(net, eqn.Spikes(t, c), t1=30.0, max_spikes=32).first_spikes[-1])(
        times, CHANNELS[: times.shape[0]]
    )
    return jnp.sum(jnp.where(jnp.isfinite(first), first, 30.0))


step = eqx.filter_value_and_grad(loss)


def structure(net, times):
    return 0.0, eqx.filter(net, eqx.is_inexact_array)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_a_new_instance_reads_the_program_and_matches_plain_jit(cache):
    net = small_net()
    reference_value, reference_grads = eqx.filter_jit(step)(net, TIMES)

    first = persistent_jit(step, name="step", key="k", out_structure=structure)
    value, grads = first(net, TIMES)
    assert (first.traced, first.loaded) == (1, 0)
    assert len(list(cache.glob("step-*.bin"))) == 1

    later = persistent_jit(step, name="step", key="k", out_structure=structure)  # as in a new process
    value2, grads2 = later(net, TIMES)
    assert (later.traced, later.loaded) == (0, 1)
    for v in (value, value2):
        np.testing.assert_allclose(float(v), float(reference_value), rtol=1e-12)
    for g in (grads, grads2):
        assert jax.tree_util.tree_structure(g) == jax.tree_util.tree_structure(reference_grads)
        for a, b in zip(leaves(g), leaves(reference_grads)):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)

    # new weights are arguments of the program, not part of it
    scaled = eqx.tree_at(lambda n: n.populations[0].weights["w"], net, net.populations[0].weights["w"] * 1.5)
    np.testing.assert_allclose(float(later(scaled, TIMES)[0]), float(eqx.filter_jit(step)(scaled, TIMES)[0]), rtol=1e-12)
    assert later.traced == 0


def test_another_key_other_shapes_or_a_damaged_file_trace_again(cache):
    net = small_net()
    persistent_jit(loss, name="loss", key="k", out_structure=lambda net, times: 0.0)(net, TIMES)

    other_key = persistent_jit(loss, name="loss", key="k2", out_structure=lambda net, times: 0.0)
    other_key(net, TIMES)
    assert other_key.traced == 1

    shapes = persistent_jit(loss, name="loss", key="k", out_structure=lambda net, times: 0.0)
    shapes(net, TIMES[:1])
    assert shapes.traced == 1

    for path in cache.glob("loss-*.bin"):
        path.write_bytes(b"not a program")
    damaged = persistent_jit(loss, name="loss", key="k", out_structure=lambda net, times: 0.0)
    value = damaged(net, TIMES)
    assert (damaged.traced, damaged.loaded) == (1, 0)
    np.testing.assert_allclose(float(value), float(jax.jit(loss)(net, TIMES)), rtol=1e-12)


def test_a_result_of_another_structure_is_an_error(cache):
    wrong = persistent_jit(loss, name="loss", key="k", out_structure=lambda net, times: (0.0, 0.0))
    with pytest.raises(TypeError, match="structure"):
        wrong(small_net(), TIMES)


def test_a_leaf_that_cannot_be_keyed_is_refused(cache):
    """A number is part of the key by value; an object has no stable value to key by, and
    keying it by its type would reuse a program traced with another object."""
    fn = persistent_jit(lambda x, scale: x * scale, name="scale", key="k", out_structure=lambda x, scale: 0.0)
    assert float(fn(jnp.asarray(2.0), 3.0)) == 6.0
    assert float(fn(jnp.asarray(2.0), 4.0)) == 8.0  # another number: another program
    assert fn.traced == 2
    with pytest.raises(TypeError, match="cannot be part of the key"):
        fn(jnp.asarray(2.0), object())


def test_the_cache_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("EQNEURON_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("EQNEURON_JAX_CACHE", "off")
    fn = persistent_jit(loss, name="loss", key="k", out_structure=lambda net, times: 0.0)
    fn(small_net(), TIMES)
    assert fn.traced == 1 and not (tmp_path / "exported").exists()


def test_arguments_placed_or_not_on_a_device_share_one_compiled_program(cache):
    """A training step's first call gets arrays made from NumPy values (uncommitted), the next
    one the first one's results (committed to the device): `jax.jit` would compile twice."""
    from jax._src import dispatch, monitoring

    net = small_net()
    run = persistent_jit(step, name="step", key="placement", out_structure=structure)
    value, grads = run(net, TIMES)
    placed = jax.device_put(TIMES + 0.1, jax.devices()[0])
    assert placed.committed and not TIMES.committed
    compiled = []

    def listener(event, duration, **kwargs):
        if event == dispatch.BACKEND_COMPILE_EVENT:
            compiled.append(duration)

    monitoring.register_event_duration_secs_listener(listener)
    try:
        again, _ = run(net, placed)
    finally:
        monitoring.unregister_event_duration_listener(listener)
    assert compiled == []
    assert float(again) == pytest.approx(float(eqx.filter_jit(loss)(net, TIMES + 0.1)), rel=1e-12)
