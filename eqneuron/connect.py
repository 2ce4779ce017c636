"""Connectivity of projections: which source neurons reach which targets.

Each function returns a boolean `(n_source, n_target)` mask for
`Projection(..., mask=...)`.  Random ones take a `jax.random` key and are
reproducible from it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Int, PRNGKeyArray

from .errors import EqError


def _sizes(n_source: int, n_target: int) -> None:
    for name, n in (("n_source", n_source), ("n_target", n_target)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise EqError(f"connect: `{name}` must be an integer >= 1, got {n!r}")


def _no_self(mask: Bool[Array, "source target"], allow_self: bool) -> Bool[Array, "source target"]:
    if allow_self or mask.shape[0] != mask.shape[1]:
        return mask
    return mask & ~jnp.eye(mask.shape[0], dtype=bool)


def all_to_all(n_source: int, n_target: int, allow_self: bool = True) -> Bool[Array, "source target"]:
    """Every source reaches every target (without self-connections when `allow_self=False`)."""
    _sizes(n_source, n_target)
    return _no_self(jnp.ones((n_source, n_target), bool), allow_self)


def fixed_probability(
    key: PRNGKeyArray, n_source: int, n_target: int, p: float, allow_self: bool = True
) -> Bool[Array, "source target"]:
    """Each connection exists independently with probability `p` (Brian2's `connect(p=...)`)."""
    _sizes(n_source, n_target)
    if not 0.0 <= float(p) <= 1.0:
        raise EqError(f"connect.fixed_probability: `p` must be in [0, 1], got {p!r}")
    return _no_self(jax.random.bernoulli(key, p, (n_source, n_target)), allow_self)


def fixed_fan_in(
    key: PRNGKeyArray, n_source: int, n_target: int, k: int, allow_self: bool = True
) -> Bool[Array, "source target"]:
    """Every target receives from exactly `k` distinct sources, drawn uniformly."""
    _sizes(n_source, n_target)
    available = n_source - (0 if allow_self or n_source != n_target else 1)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= available:
        raise EqError(f"connect.fixed_fan_in: `k` must be an integer in 0..{available}, got {k!r}")
    scores = jax.random.uniform(key, (n_source, n_target))
    if not allow_self and n_source == n_target:
        scores = jnp.where(jnp.eye(n_source, dtype=bool), -1.0, scores)
    # the k highest scores of each column
    kth = -jnp.sort(-scores, axis=0)[k - 1] if k else jnp.full((n_target,), jnp.inf)
    return scores >= kth[None, :]


def fixed_fan_out(
    key: PRNGKeyArray, n_source: int, n_target: int, k: int, allow_self: bool = True
) -> Bool[Array, "source target"]:
    """Every source reaches exactly `k` distinct targets, drawn uniformly."""
    return fixed_fan_in(key, n_target, n_source, k, allow_self).T


def from_indices(
    sources: Int[ArrayLike, " connections"], targets: Int[ArrayLike, " connections"], n_source: int, n_target: int
) -> Bool[Array, "source target"]:
    """The connections `sources[i] -> targets[i]` (Brian2's `connect(i=..., j=...)`)."""
    _sizes(n_source, n_target)
    i, j = np.asarray(sources), np.asarray(targets)
    if i.shape != j.shape or i.ndim != 1:
        raise EqError(f"connect.from_indices: `sources` and `targets` must be 1-D of one length, got {i.shape} and {j.shape}")
    if i.size and (i.min() < 0 or i.max() >= n_source or j.min() < 0 or j.max() >= n_target):
        raise EqError(f"connect.from_indices: indices out of range (sources 0..{n_source - 1}, targets 0..{n_target - 1})")
    return jnp.zeros((n_source, n_target), bool).at[i, j].set(True)
