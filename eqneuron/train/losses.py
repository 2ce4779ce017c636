"""Losses for training spiking networks on first-spike times, spike counts or states.

All are pure JAX functions of one sample's simulation outputs (vmap them over
a batch).  Silent output neurons (first spike time = inf) are mapped to a
finite late time, so no loss or gradient is ever NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int


def finite_times(times: Float[Array, "*shape"], t_silent: float | Float[Array, ""]) -> Float[Array, "*shape"]:
    """Replace `inf` (no spike) by `t_silent`, with a zero gradient for those entries."""
    silent = ~jnp.isfinite(times)
    return jnp.where(silent, t_silent, jnp.where(silent, 0.0, times))


def ttfs_cross_entropy(
    first_times: Float[Array, " outputs"],
    label: Int[ArrayLike, ""],
    tau: float = 1.0,
    t_silent: float = 100.0,
    alpha: float = 0.0,
    beta: float = 1.0,
    deficit: Float[Array, " outputs"] | None = None,
    deficit_scale: float = 10.0,
) -> Float[Array, ""]:
    """Time-to-first-spike cross-entropy (Göltz et al. 2021): softmax over -t / tau.

    With `alpha > 0` adds the regulariser `alpha * (exp(t_label / beta) - 1)` that
    pushes the correct neuron to fire early.  A silent neuron counts as firing at
    `t_silent`; given its `deficit` (how far its spike condition stayed below
    zero, e.g. `-max_t g(t)`), a silent *correct* neuron counts as
    `t_silent + deficit_scale * deficit`: it gets a gradient towards firing and
    is never rewarded for staying silent (silent wrong neurons stay at `t_silent`).
    """
    t = finite_times(first_times, t_silent)
    if deficit is not None:
        silent_label = ~jnp.isfinite(first_times) & (jnp.arange(t.shape[-1]) == label)
        t = jnp.where(silent_label, t_silent + deficit_scale * jax.nn.relu(deficit), t)
    logits = -t / tau
    loss = -jax.nn.log_softmax(logits)[label]
    if alpha:
        loss = loss + alpha * (jnp.exp(t[label] / beta) - 1.0)
    return loss


def ttfs_prediction(first_times: Float[Array, " outputs"]) -> Int[Array, ""]:
    """The class of the earliest output spike (ties and silence: the lowest index)."""
    return jnp.argmin(jnp.where(jnp.isfinite(first_times), first_times, jnp.inf))


def spike_count_cross_entropy(
    counts: Int[Array, " outputs"], label: Int[ArrayLike, ""], scale: float = 1.0
) -> Float[Array, ""]:
    """Cross-entropy over spike counts of the output neurons (rate coding)."""
    return -jax.nn.log_softmax(scale * counts.astype(jnp.result_type(float)))[label]


def state_cross_entropy(values: Float[Array, " outputs"], label: Int[ArrayLike, ""]) -> Float[Array, ""]:
    """Cross-entropy over an output state (e.g. max or final membrane value)."""
    return -jax.nn.log_softmax(values)[label]


def max_over_time(states: Float[Array, "saves neurons"]) -> Float[Array, " neurons"]:
    """Maximum over saved times of a (times, neurons) state trace."""
    return jnp.max(states, axis=0)


def final_value(states: Float[Array, "saves neurons"]) -> Float[Array, " neurons"]:
    """The last saved value of a (times, neurons) state trace."""
    return states[-1]


def firing_rate_regulariser(
    counts: Int[Array, " neurons"], target: float = 1.0, strength: float = 1e-3
) -> Float[Array, ""]:
    """Penalise deviation of the mean spike count per neuron from `target`."""
    return strength * (jnp.mean(counts.astype(jnp.result_type(float))) - target) ** 2
