"""Shared builders for engine tests."""

import jax
import jax.numpy as jnp

import eqneuron as eqn


def latency_inputs(times):
    """One input spike per channel at the given times."""
    times = jnp.asarray(times)
    return eqn.Spikes(times, jnp.arange(times.shape[0]))


def feedforward(model_name, sizes, key, params=None, scale=None):
    """A feed-forward eqneuron Network with `sizes = [in, hidden..., out]`."""
    model = eqn.compile_model(model_name)
    keys = jax.random.split(key, len(sizes) - 1)
    pops = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        pops.append(model.population(n_out, n_in, key=keys[k], params=params))
    return eqn.Network(pops)
