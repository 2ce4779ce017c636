"""Connectivity of projections: which source neurons reach which targets.

Dense: each function returns a boolean `(n_source, n_target)` mask for
`Projection(..., mask=...)`.  Sparse (`sparse_*`, and `sparse(mask)`): a
`(n_source, K)` array of target ids per source neuron, -1 in unused slots,
for `Projection(..., targets=...)`; the weights are then one per slot.  A
sparse projection never builds an `n_source x n_target` array, so networks
of 100,000 neurons fit.  Random ones take a `jax.random` key and are
reproducible from it (the sparse ones draw on the host, with NumPy seeded
from the key).
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
    i, j = _pairs("from_indices", sources, targets, n_source, n_target)
    return jnp.zeros((n_source, n_target), bool).at[i, j].set(True)


def sparse(mask: Bool[ArrayLike, "source target"]) -> Int[Array, "source k"]:
    """A mask's connections as target ids per source neuron (row order), padded with -1."""
    m = np.asarray(mask, bool)
    if m.ndim != 2:
        raise EqError(f"connect.sparse: `mask` must be 2-D (source, target), got shape {m.shape}")
    return jnp.asarray(_pad([np.nonzero(row)[0] for row in m]))


def sparse_fixed_probability(
    key: PRNGKeyArray, n_source: int, n_target: int, p: float, allow_self: bool = True
) -> Int[Array, "source k"]:
    """Each connection exists independently with probability `p`, as target ids per source."""
    _sizes(n_source, n_target)
    if not 0.0 <= float(p) <= 1.0:
        raise EqError(f"connect.sparse_fixed_probability: `p` must be in [0, 1], got {p!r}")
    rng = _host_rng(key)
    rows = []
    for i in range(n_source):
        pool = n_target - (0 if allow_self or n_source != n_target else 1)
        chosen = rng.choice(pool, size=rng.binomial(pool, p), replace=False)
        rows.append(_skip_self(np.sort(chosen), i, allow_self, n_source == n_target))
    return jnp.asarray(_pad(rows))


def sparse_fixed_fan_out(
    key: PRNGKeyArray, n_source: int, n_target: int, k: int, allow_self: bool = True
) -> Int[Array, "source k"]:
    """Every source reaches exactly `k` distinct targets, drawn uniformly, as target ids per source."""
    _sizes(n_source, n_target)
    pool = n_target - (0 if allow_self or n_source != n_target else 1)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= pool:
        raise EqError(f"connect.sparse_fixed_fan_out: `k` must be an integer in 0..{pool}, got {k!r}")
    rng = _host_rng(key)
    rows = [_skip_self(np.sort(rng.choice(pool, size=k, replace=False)), i, allow_self, n_source == n_target)
            for i in range(n_source)]
    return jnp.asarray(_pad(rows, width=k))


def sparse_fixed_fan_in(
    key: PRNGKeyArray, n_source: int, n_target: int, k: int, allow_self: bool = True
) -> Int[Array, "source k"]:
    """Every target receives from exactly `k` distinct sources, drawn uniformly, as target ids per source
    (the rows are as long as the largest number of targets one source reaches)."""
    _sizes(n_source, n_target)
    pool = n_source - (0 if allow_self or n_source != n_target else 1)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= pool:
        raise EqError(f"connect.sparse_fixed_fan_in: `k` must be an integer in 0..{pool}, got {k!r}")
    rng = _host_rng(key)
    sources = np.concatenate([_skip_self(rng.choice(pool, size=k, replace=False), j, allow_self, n_source == n_target)
                              for j in range(n_target)] + [np.zeros(0, np.int64)])
    return sparse_from_indices(sources, np.repeat(np.arange(n_target), k), n_source, n_target)


def sparse_from_indices(
    sources: Int[ArrayLike, " connections"], targets: Int[ArrayLike, " connections"], n_source: int, n_target: int
) -> Int[Array, "source k"]:
    """The connections `sources[i] -> targets[i]` as target ids per source (a pair given twice counts twice)."""
    i, j = _pairs("sparse_from_indices", sources, targets, n_source, n_target)
    order = np.lexsort((j, i))
    i, j = i[order], j[order]
    bounds = np.searchsorted(i, np.arange(n_source + 1))
    return jnp.asarray(_pad([j[bounds[s]:bounds[s + 1]] for s in range(n_source)]))


def _pairs(name: str, sources, targets, n_source: int, n_target: int) -> tuple[np.ndarray, np.ndarray]:
    """Connection lists `sources[i] -> targets[i]`, checked: 1-D, one length, in range."""
    _sizes(n_source, n_target)
    i, j = np.asarray(sources), np.asarray(targets)
    if i.shape != j.shape or i.ndim != 1:
        raise EqError(f"connect.{name}: `sources` and `targets` must be 1-D of one length, got {i.shape} and {j.shape}")
    if i.size and (i.min() < 0 or i.max() >= n_source or j.min() < 0 or j.max() >= n_target):
        raise EqError(f"connect.{name}: indices out of range (sources 0..{n_source - 1}, targets 0..{n_target - 1})")
    return i, j


def _host_rng(key: PRNGKeyArray) -> np.random.Generator:
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().astype(np.uint64))


def _skip_self(chosen: np.ndarray, i: int, allow_self: bool, square: bool) -> np.ndarray:
    """Ids drawn from 0..n-2 for source i without self-connections: those >= i move up by one."""
    if allow_self or not square:
        return chosen
    return np.where(chosen >= i, chosen + 1, chosen)


def _pad(rows: list, width: int | None = None) -> np.ndarray:
    width = max([len(r) for r in rows] + [1]) if width is None else max(width, 1)
    out = np.full((len(rows), width), -1, np.int32)
    for s, r in enumerate(rows):
        out[s, : len(r)] = r
    return out
