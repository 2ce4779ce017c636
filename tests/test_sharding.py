"""Scale-out on JAX's own sharding: batches over devices (data parallel), and one population's
neurons over devices.  The cases run in a fresh process with four host CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=4`), on meshes of two and of four of them, and
must give the spikes of one device."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import equinox as eqx
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import eqneuron as eqn

    assert len(jax.devices()) == 4, jax.devices()
    lif = eqn.compile_model("lif")

    def check(n_devices):
        mesh = Mesh(np.array(jax.devices()[:n_devices]), ("d",))
        rng = np.random.default_rng(0)

        # data parallel: a batch of input trains, the batch axis over the devices
        pop = lif.population(6, 3, key=jax.random.key(0))
        batch = 2 * n_devices
        times = jnp.asarray(np.sort(rng.uniform(0, 20, (batch, 6)), axis=1))
        chans = jnp.asarray(rng.integers(0, 3, (batch, 6)))

        def run(t, c):
            return eqn.simulate(pop, eqn.Spikes(t, c), t1=30.0, max_spikes=64).spike_times

        one = jax.vmap(run)(times, chans)
        rows = NamedSharding(mesh, P("d"))
        many = jax.jit(jax.vmap(run))(jax.device_put(times, rows), jax.device_put(chans, rows))
        assert len(many.sharding.device_set) == n_devices
        assert np.array_equal(np.isfinite(one), np.isfinite(many))
        assert np.allclose(np.where(np.isfinite(one), one, 0), np.where(np.isfinite(many), many, 0), atol=1e-12, rtol=0)
        assert int(np.sum(np.isfinite(one))) > 5

        # model parallel: one population's neurons (weight columns, per-neuron parameters) over the devices
        n = 16 * n_devices
        big = lif.population(n, 3, key=jax.random.key(1), params={"ic": jnp.linspace(0.5, 2.0, n)})
        inputs = eqn.Spikes(times[0], chans[0])

        def simulate(p):
            out = eqn.simulate(p, inputs, t1=30.0, max_spikes=1024)
            return out.spike_times, out.spike_neurons

        t_one, id_one = simulate(big)
        sharded = eqx.tree_at(
            lambda p: (p.weights["w"], p.params["ic"]),
            big,
            (jax.device_put(big.weights["w"], NamedSharding(mesh, P(None, "d"))),
             jax.device_put(big.params["ic"], NamedSharding(mesh, P("d")))),
        )
        t_many, id_many = jax.jit(simulate)(sharded)
        assert np.array_equal(np.asarray(id_one), np.asarray(id_many))
        assert np.allclose(np.where(np.isfinite(t_one), t_one, 0), np.where(np.isfinite(t_many), t_many, 0), atol=1e-12, rtol=0)
        assert int(np.sum(np.asarray(id_one) >= 0)) > 20

    for n_devices in (2, 4):
        check(n_devices)
    print("ok")
    """
)


def test_sharded_runs_give_the_spikes_of_one_device():
    # the suite's compilation settings (tests/conftest.py) and four host devices
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4".strip()
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
