"""Working on the few neurons that need it: compaction of a lane mask, the root finders' loop, and
loop bodies traced once.

Locating a spike (root finding on an interpolant or a closed form, and the
implicit-function step) is needed only by the neurons that cross threshold
in the current step: usually a handful out of hundreds.  Computing it on
every lane wastes most of the work, so the crossing lanes are gathered into
a small fixed-size block, processed there, and scattered back.  Lanes beyond
the block's size are *deferred*: they do not advance in this iteration and
retry in the next, so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, overload

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, Shaped

Carry = TypeVar("Carry", bound=tuple)


def block_size(n: int) -> int:
    """Lanes processed per iteration out of `n`."""
    return min(n, max(8, n // 8))


def prefix_count(mask: Bool[Array, "*batch lanes"]) -> Int[Array, "*batch lanes"]:
    """Inclusive running count of True along the last axis.

    `jnp.cumsum` lowers to a reduce-window that XLA's CPU backend runs slowly
    on short rows; up to 256 lanes a product with an upper-triangular matrix
    of ones (one small matmul, exact in float32) is faster: the Izhikevich
    Yin-Yang forward pass takes 15 % less time.
    """
    n = mask.shape[-1]
    if n > 256:
        return jnp.cumsum(mask, axis=-1, dtype=jnp.int32)
    upper = np.triu(np.ones((n, n), np.float32))  # a constant of the program, not ops in the loop
    return (mask.astype(jnp.float32) @ upper).astype(jnp.int32)


class Block:
    """The first `size` lanes of `mask`, in lane order."""

    def __init__(self, mask: Bool[Array, " lanes"], size: int) -> None:
        n = mask.shape[0]
        rank = prefix_count(mask) - 1
        self.selected = mask & (rank < size)  # (n,) lanes processed in the block
        self.deferred = mask & ~self.selected
        # slot `rank` holds lane `i` (what `jnp.nonzero(size=...)` gives, without its cumsum); empty slots: lane 0
        slot = jnp.where(self.selected, rank, size)
        self.index = jnp.zeros((size,), jnp.int32).at[slot].set(jnp.arange(n, dtype=jnp.int32), mode="drop")
        self.valid = jnp.arange(size) < jnp.sum(self.selected)  # (size,) slots holding a lane
        self._scatter = jnp.where(self.valid, self.index, n)  # out of range: dropped

    @overload
    def take(self, x: float) -> float: ...
    @overload
    def take(self, x: Shaped[Array, "*rest lanes"]) -> Shaped[Array, "*rest size"]: ...
    def take(self, x: float | Shaped[Array, "*rest lanes"]) -> float | Shaped[Array, "*rest size"]:
        """The block's lanes of an array whose last axis is the lane axis (scalars pass through)."""
        if isinstance(x, float) or not jnp.ndim(x):
            return x
        return x[..., self.index]

    def put(self, full: Shaped[Array, "*rest lanes"], part: Shaped[Array, "*rest size"]) -> Shaped[Array, "*rest lanes"]:
        """`full` with the block's lanes replaced by `part`."""
        return full.at[..., self._scatter].set(part, mode="drop")


F = TypeVar("F", bound=Callable)


def traced_once(body: F) -> F:
    """`body`, traced once however often it is called or transformed (a `jax.jit` of it).

    A loop body's Python runs on every trace of it: when the loop is built,
    and again whenever a transformation re-traces it (reverse mode through a
    checkpointed loop re-runs the body for its recomputation and for its VJP;
    a Runge–Kutta step calls the vector field once per stage).  Under `jax.jit`
    the body becomes one call of a cached jaxpr, and JAX caches each
    transformation of that jaxpr (batching, JVP, partial evaluation,
    transposition) as well.  XLA inlines the call: the compiled program is
    the same (measurements: docs/design.md, "Loop bodies traced once").
    """
    return jax.jit(body)  # type: ignore[return-value]


def converge(body: Callable[[Carry], Carry], state: Carry, max_iterations: int) -> Carry:
    """Iterate `body` on `(i, ..., todo)` until no lane is left to do (the root finders' loop).

    Not unrolled: written-out first iterations made the loop body of the
    event loop larger (slower to trace, compile and differentiate) without
    a faster forward pass (docs/design.md).
    """
    return jax.lax.while_loop(lambda s: (s[0] < max_iterations) & jnp.any(s[-1]), traced_once(body), state)


def computed_once(mask: Bool[Array, "*shape"]) -> Bool[Array, "*shape"]:
    """`mask`, evaluated once and stored.

    XLA's CPU fusion copies cheap elementwise producers into every consumer
    fusion.  A mask derived from a step's dense output (the crossing test)
    decides a dozen outputs of a step (time, state, condition, controller
    state...), and each of their kernels would evaluate the interpolant
    again.  A square root makes the producer "expensive" for XLA's fusion
    heuristics: it is computed in one kernel and read by the others.
    """
    return jnp.sqrt(jnp.where(mask, 1.0, 0.0)) > 0.5


def some_true(mask: Bool[Array, " n"], k: int, group: int = 32) -> Int[Array, " k"]:
    """Indices of up to `k` True lanes of `mask`, in increasing order (n: an empty slot); at least
    one when any lane is True.

    `lax.top_k` over the whole mask costs ~7 µs at 4000 lanes and ~100 µs at 40,000 on the CPU
    (docs/design.md). In two levels: whether each group of 32 lanes holds a True one, the first
    groups that do (max(16, k // 4) of them), then a `top_k` over their lanes alone: ~1.3 µs and
    ~10 µs. When more groups hold one, fewer than `k` lanes are returned; the caller comes back
    for the rest. (With 8 groups for k = 16, a CUBA window of 9 to 16 candidates in more than 8
    groups took a second block of candidates, a fifth of the windows at 4000 neurons: 1 s ran in
    0.257 s, with 16 groups in 0.249 s.)
    """
    n = mask.shape[0]
    kept = max(16, k // 4)
    if n <= 2 * group * kept:
        got, ids = jax.lax.top_k(mask.astype(jnp.float32), min(k, n))  # equal values: lower index first
        ids = jnp.where(got > 0, ids, n)
        return ids if k <= n else jnp.concatenate([ids, jnp.full((k - n,), n, ids.dtype)])
    full = n // group * group
    rows = jnp.any(mask[:full].reshape(-1, group), axis=1)
    if full < n:
        rows = jnp.concatenate([rows, jnp.any(mask[full:])[None]])
    _, first_rows = jax.lax.top_k(rows.astype(jnp.float32), kept)
    lanes = (first_rows[:, None] * group + jnp.arange(group)).reshape(-1)
    inside = lanes < n
    values = inside & mask[jnp.where(inside, lanes, 0)]
    got, j = jax.lax.top_k(values.astype(jnp.float32), k)
    return jnp.where(got > 0, lanes[j], n)


# up to this many times, `earliest` takes `lax.top_k`
_SHORT_LIST = 64


def earliest(times: Float[Array, " n"], k: int) -> Int[Array, " k"]:
    """Indices of the `k` smallest times, in increasing order (equal times: in list order; NaN
    last).

    XLA's CPU sort of several arrays, or of floats, calls a comparison function per pair; of one
    integer array it sorts the numbers themselves, several times faster.  So the times' bits, as
    integers in the same order, are sorted alone; each time's count of smaller ones is found in
    them (a binary search, unrolled: as a while loop it added 1.4 s to the compilation of a
    network's `value_and_grad`), and those counts are put in stable order (`stable_order`).
    Lists of 272 spike times of 32 samples under `vmap`: 0.34 ms against 0.89 ms for `lax.top_k`
    (a full sort of times and indices); a single list of 8: 1.2 against 0.6 µs, of
    64: 3.7 against 5.0 µs in ~15 operations instead of one (a window of an event-driven run
    sorts up to 64 of its spikes), so lists of up to 64 keep `top_k`.
    """
    n = times.shape[-1]
    k = min(k, n)
    # -0.0 is 0.0 (XLA drops a `+ 0.0`) and every NaN the positive one (after inf): both orders
    # then agree with NumPy's stable sort
    times = jnp.where(times == 0, 0.0, jnp.where(jnp.isnan(times), jnp.nan, times)).astype(times.dtype)
    ints = {jnp.dtype(jnp.float32): jnp.int32, jnp.dtype(jnp.float64): jnp.int64}.get(jnp.dtype(times.dtype))
    if n <= _SHORT_LIST or times.ndim != 1 or ints is None:
        return jax.lax.top_k(-times, k)[1]
    bits = jax.lax.bitcast_convert_type(times, ints)
    # negative numbers' magnitude bits reversed: the integers are in the times' order
    key = jnp.where(bits < 0, bits ^ jnp.iinfo(ints).max, bits)
    smaller = jnp.searchsorted(jnp.sort(key), key, side="left", method="scan_unrolled")
    return stable_order(smaller, n - 1)[:k]


def stable_order(keys: Int[Array, " n"], most: int) -> Int[Array, " n"]:
    """`jnp.argsort(keys, stable=True)` for integer keys in [0, `most`]: one sort of the unique
    integers `key · n + index` (a single integer array, several times faster on the CPU than a
    sort of keys and indices: `earliest`), where they fit in int32."""
    n = keys.shape[-1]
    if keys.ndim != 1 or (most + 1) * n > jnp.iinfo(jnp.int32).max:
        return jnp.argsort(keys, stable=True).astype(jnp.int32)
    return jnp.sort(keys.astype(jnp.int32) * n + jnp.arange(n, dtype=jnp.int32)) % n


def sort_recent(rec_t: Float[Array, " size"], rec_i: Int[Array, " size"], start, made, size: int, short: tuple[int, ...]):
    """Records `rec_t`, `rec_i` with the `made` (of at most `size`) entries from `start` in time order.

    A sort of the slots they may fill, the fewest that hold them: none for one, the first slice of
    `short` slots that holds them, else all `size` (XLA's CPU sort takes ~0.1 µs per element: a
    sort of 1024 slots every window was a fifth of a quiet window of CUBA at 40,000 neurons).  The
    branches take and return the segment alone (small): a conditional that passed the whole
    record through would copy it.
    """
    seg_t = jax.lax.dynamic_slice(rec_t, (start,), (size,))
    seg_i = jax.lax.dynamic_slice(rec_i, (start,), (size,))

    def sorted_first(n_slots):
        def sort(seg):
            t, i = seg
            order = earliest(t[:n_slots], n_slots)
            return t.at[:n_slots].set(t[:n_slots][order]), i.at[:n_slots].set(i[:n_slots][order])
        return sort

    shorter = [n_slots for n_slots in short if n_slots < size]
    branches = [lambda seg: seg] + [sorted_first(n_slots) for n_slots in [*shorter, size]]
    which = (made > 1).astype(jnp.int32) + sum((made > n_slots).astype(jnp.int32) for n_slots in shorter)
    seg_t, seg_i = jax.lax.switch(which, branches, (seg_t, seg_i))
    return jax.lax.dynamic_update_slice(rec_t, seg_t, (start,)), jax.lax.dynamic_update_slice(rec_i, seg_i, (start,))

