"""Populations, networks and input spike trains (Equinox modules)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .codegen import parameter_values, sample_weights
from .errors import EqError

if TYPE_CHECKING:
    from .model import CompiledModel


def default_dtype():
    return jnp.asarray(0.0).dtype


class Spikes(eqx.Module):
    """A padded list of input spikes: unused entries have `time = inf`.

    `channels` index the K input channels; `values` (default 1) scale `on_input`.
    """

    times: jax.Array
    channels: jax.Array
    values: jax.Array | None = None

    def __init__(self, times, channels, values=None):
        self.times = jnp.asarray(times, dtype=default_dtype())
        self.channels = jnp.asarray(channels, dtype=jnp.int32)
        self.values = None if values is None else jnp.asarray(values, dtype=default_dtype())
        if self.times.shape != self.channels.shape:
            raise ValueError(
                f"Spikes: times {self.times.shape} and channels {self.channels.shape} differ in shape"
            )

    @staticmethod
    def empty(dtype=None):
        return Spikes(jnp.full((1,), jnp.inf), jnp.zeros((1,), jnp.int32))


class Population(eqx.Module):
    """`n_neurons` neurons of one model, their weights `(N+K, N)` and parameter values."""

    model: CompiledModel
    weights: dict
    params: dict
    wmask: jax.Array | None
    n_neurons: int = eqx.field(static=True)
    in_size: int = eqx.field(static=True)
    recurrent: bool = eqx.field(static=True)

    @classmethod
    def create(cls, model, n_neurons, in_size, key, recurrent, wmask, params, weights, dtype):
        dtype = dtype or default_dtype()
        n_rows = n_neurons + in_size
        if wmask is not None:
            wmask = jnp.asarray(wmask, bool)
            if wmask.shape != (n_rows, n_neurons):
                raise ValueError(f"wmask must have shape {(n_rows, n_neurons)}, got {wmask.shape}")
        values = dict(model.params)
        if params:
            values.update(parameter_values(model.ir, {**_scalars(model.params), **params}))
            for name, v in params.items():
                if np.ndim(v) > 0:
                    values[name] = jnp.asarray(v, dtype)
        for name, p in model.ir.parameters.items():
            if p.per_neuron and np.ndim(values[name]) == 0:
                values[name] = jnp.full((n_neurons,), values[name], dtype)
        for name, v in values.items():
            if np.ndim(v) > 0 and np.shape(v) != (n_neurons,):
                raise EqError(
                    f"parameter `{name}` has shape {np.shape(v)}; expected a scalar or ({n_neurons},)"
                )
        fan_in = n_rows if recurrent else in_size
        if wmask is not None:
            fan_in = max(1, int(np.max(np.sum(np.asarray(wmask), axis=0))))
        drawn = {}
        if model.weight_names and (weights is None or set(weights) != set(model.weight_names)):
            if key is None and (recurrent or in_size):
                raise ValueError("population(...) needs `key=` to draw the initial weights")
            key = jax.random.key(0) if key is None else key  # no connections: the draw is unused
            drawn = sample_weights(
                model.ir, key, (n_rows, n_neurons), max(fan_in, 1), values, dtype
            )
        drawn.update({k: jnp.asarray(v, dtype) for k, v in (weights or {}).items()})
        unknown = set(drawn) - set(model.weight_names)
        if unknown:
            raise EqError(f"`{sorted(unknown)[0]}` is not a weight of {model.name}")
        if not recurrent:
            own = jnp.arange(n_rows)[:, None] < n_neurons
            drawn = {k: jnp.where(own, 0.0, w).astype(dtype) for k, w in drawn.items()}
        for k, w in drawn.items():
            if w.shape != (n_rows, n_neurons):
                raise ValueError(f"weight `{k}` must have shape {(n_rows, n_neurons)}, got {w.shape}")
        return cls(model, drawn, values, wmask, n_neurons, in_size, recurrent)

    def replace(self, weights: dict | None = None, params: dict | None = None) -> Population:
        """A new population with some weights or parameter values replaced."""
        new_weights = {**self.weights, **(weights or {})}
        new_params = dict(self.params)
        for name, value in (params or {}).items():
            if name not in self.params:
                raise EqError(f"`{name}` is not a parameter of {self.model.name}")
            new_params[name] = value if np.ndim(value) == 0 and not isinstance(value, jax.Array) else jnp.asarray(value)
        return eqx.tree_at(lambda p: (p.weights, p.params), self, (new_weights, new_params))

    def effective_weights(self) -> dict:
        """Weights with the mask (and, without recurrence, the own-neuron rows) zeroed."""
        out = {}
        for name, w in self.weights.items():
            if self.wmask is not None:
                w = jnp.where(self.wmask, w, 0.0)
            if not self.recurrent:
                own = jnp.arange(w.shape[0])[:, None] < self.n_neurons
                w = jnp.where(own, 0.0, w)
            out[name] = w
        return out

    def parameter_values(self) -> dict:
        """Parameter values as used in simulation: only trainable ones carry gradients."""
        out = {}
        for name, value in self.params.items():
            if self.model.ir.parameters[name].trainable:
                out[name] = value
            else:
                out[name] = jax.lax.stop_gradient(value)
        return out


class Network(eqx.Module):
    """A feed-forward stack of populations; population k's neurons are k+1's input channels."""

    populations: list

    def __init__(self, populations):
        if isinstance(populations, Population):
            populations = [populations]
        self.populations = list(populations)
        for k in range(1, len(self.populations)):
            before, after = self.populations[k - 1], self.populations[k]
            if after.in_size != before.n_neurons:
                raise ValueError(
                    f"population {k} has in_size={after.in_size} but population {k - 1} "
                    f"has {before.n_neurons} neurons"
                )

    @property
    def n_neurons(self) -> int:
        return sum(p.n_neurons for p in self.populations)

    @property
    def offsets(self) -> list[int]:
        out, total = [], 0
        for p in self.populations:
            out.append(total)
            total += p.n_neurons
        return out


def _scalars(values: dict) -> dict:
    return {k: v for k, v in values.items() if np.ndim(v) == 0}
