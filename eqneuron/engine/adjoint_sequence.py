"""The event-based adjoint's building blocks: each neuron's sequence of events, and the time
of a spike as the implicit function of its condition.

A replay (`adjoint.py`, and `adjoint_shared.py` on a shared clock) walks the
events of the forward run in the order the loop handled them: the lists of
the forward run, per neuron (`by_neuron`), merged by kind at equal times
(`event_kinds`, `sequence_positions`) into one table of codes
`index * 8 + kind`.  At a spike or internal event, `crossing_time` gives its
time the derivative of `g(t, y(t)) = 0`, and `with_derivative` gives the
forward run's saved states the replay's derivative.  Shared by both replays,
which differ in how a step moves the neurons.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from .lanes import stable_order, traced_once

# event kinds of the replay, in the order they take at equal times: an input spike (which may
# lift the neuron over a threshold), the end of a refractory period, an internal event (whose
# condition, lower than the spike's when both hold, fires first in the loop), the spike, a save
# point; a neuron's sequence is a table of codes `index * 8 + kind`
INPUT, REFRACTORY_END, EVENT, SPIKE, SAVE = 0, 1, 2, 3, 4
KIND_BITS = 3
# a step past the end of a sequence padded to whole chunks (`replay_scan`): never real
PAD = 2**KIND_BITS - 1
# the replay's steps in chunks of this many, and chunks past every neuron's last real event skipped
CHUNK = 32

sg = jax.lax.stop_gradient


def by_neuron(times, ids, n: int, per_neuron: int, buffer: int):
    """Each neuron's times from a list of the forward run (spikes or internal events, in the
    order written), in order, `(n, per_neuron)` (inf: none), and their slots in the list
    (`buffer`: none)."""
    owner = jnp.where(ids >= 0, ids, n)
    if per_neuron == 1:  # each neuron's first: the least slot it wrote (a scatter, not a sort)
        first = jnp.full((n + 1,), buffer, jnp.int32).at[owner].min(jnp.arange(buffer, dtype=jnp.int32))[:n]
        out = jnp.where(first < buffer, times[jnp.minimum(first, buffer - 1)], jnp.inf)
        return out[:, None], first[:, None]
    order = stable_order(owner, n)  # by neuron, then in the order written (time order)
    sorted_owner = owner[order]
    start = jnp.searchsorted(sorted_owner, jnp.arange(n + 1))
    rank = jnp.arange(buffer) - start[sorted_owner]
    row = jnp.where(rank < per_neuron, sorted_owner, n)  # overflowing spikes: dropped (the run says so)
    out = jnp.full((n, per_neuron), jnp.inf, times.dtype).at[row, rank].set(times[order], mode="drop")
    slots = jnp.full((n, per_neuron), buffer, jnp.int32).at[row, rank].set(order.astype(jnp.int32), mode="drop")
    return out, slots


def sequence_positions(lists):
    """Each event's place in its neuron's merged sequence.

    `lists`: per kind (in the order they take at equal times), times of shape
    `(n, m)` or `(m,)` (shared by all neurons), each sorted.  An event goes
    after the events of earlier kinds at its time, before those of later kinds.
    """
    out = []
    for a, (times_a, _) in enumerate(lists):
        pos = jnp.arange(times_a.shape[-1])
        for b, (times_b, _) in enumerate(lists):
            if a != b:
                pos = pos + _count_before(times_b, times_a, "right" if b < a else "left")
        out.append(pos)
    return out


def sequence_table(kinds, positions, n: int, length: int):
    """Each neuron's sequence as one table `(n, length)` of codes `index * 8 + kind`, in the
    narrowest integers that hold them (the table is kept for the backward pass, with a transposed
    copy: at a few inputs per neuron it is the size of the replay's carries).

    The longest list (the inputs) fills the places that the others (a neuron's spikes, refractory
    ends, save points: usually few) leave, in order: each place is compared with the others'
    places, without a scatter (under `vmap` a scatter's indices take three times the table's
    size: the largest buffer of the jaxsnn net's `value_and_grad` at 480 hidden, batch 256).
    """
    sizes = [times.shape[-1] for times, _ in kinds]
    top = max(sizes) * 2**KIND_BITS
    narrow = jnp.int8 if top <= 2**7 else jnp.int16 if top <= 2**15 else jnp.int32
    fill = max(range(len(kinds)), key=lambda a: sizes[a])
    others = [a for a in range(len(kinds)) if a != fill]
    places = [jnp.broadcast_to(positions[a], (n, sizes[a])).astype(jnp.int32) for a in range(len(kinds))]
    codes = [jnp.arange(sizes[a], dtype=jnp.int32) * 2**KIND_BITS + kinds[a][1] for a in range(len(kinds))]
    if sum(sizes[a] for a in others) > 16:  # many (each place would be compared with each): one scatter
        pos, code = jnp.concatenate(places, axis=1), jnp.concatenate([jnp.broadcast_to(c, (n, c.shape[0])) for c in codes], axis=1)
        return jnp.zeros((n, length), narrow).at[jnp.arange(n)[:, None], pos].set(code.astype(narrow))
    q = jnp.arange(length, dtype=jnp.int32)[None, :, None]
    table = jnp.zeros((n, length), jnp.int32)
    taken = jnp.zeros((n, length), bool)
    before = jnp.zeros((n, length), jnp.int32)  # places the others take before each place
    for a in others:
        hit = places[a][:, None, :] == q  # (n, length, m)
        table = table + jnp.sum(jnp.where(hit, codes[a], 0), axis=-1)
        taken = taken | jnp.any(hit, axis=-1)
        before = before + jnp.sum(places[a][:, None, :] < q, axis=-1, dtype=jnp.int32)
    filler = (q[..., 0] - before) * 2**KIND_BITS + kinds[fill][1]
    return jnp.where(taken, table, filler).astype(narrow)


def _count_before(sorted_times, times, side: str):
    """How many of `sorted_times` come before each of `times` (`side="right"`: also the equal ones);
    either may have a leading neuron axis."""
    axes = (0 if sorted_times.ndim == 2 else None, 0 if times.ndim == 2 else None)
    count = lambda s, x: jnp.searchsorted(s, x, side=side)  # noqa: E731
    return jax.vmap(count, in_axes=axes)(sorted_times, times) if any(a == 0 for a in axes) else count(sorted_times, times)


def event_kinds(in_times, refractory_ends, event_times, spike_times, save_times) -> list[tuple[jax.Array, int]]:
    """The kinds of a replayed sequence with their times, in the order the loop handles
    simultaneous ones (`sequence_positions`); None: a kind the population does not have."""
    kinds = [(sg(in_times), INPUT)]
    if refractory_ends is not None:
        kinds.append((refractory_ends, REFRACTORY_END))
    if event_times is not None:
        kinds.append((event_times, EVENT))
    kinds.append((spike_times, SPIKE))
    if save_times is not None:
        kinds.append((sg(save_times), SAVE))
    return kinds


def crossing_time(condition, at, y_at, f, crossing, t_event, t):
    """A spike's or internal event's time `t*` by the implicit function theorem on its condition
    (value the forward run's `t_event`, derivative `-dg / ġ` with `ġ = ∂g/∂t + ∂g/∂y · f`); at
    the time of the event before (`t`), it is taken as caused by that one: `t`."""
    g, g_dot = jax.jvp(condition, (at, y_at), (jnp.ones_like(at), f))
    g_dot = sg(jnp.where(crossing & (g_dot != 0), g_dot, 1.0))
    immediate = sg(t_event) == sg(t)
    return jnp.where(immediate, t, t_event - (g - sg(g)) / g_dot)


def spikes_with_derivative(state, slots, buffer: int, replayed):
    """The forward run's spike list (`state.spike_times`) with the replay's derivative: `replayed`
    holds each neuron's spike times `(n, per_neuron)` as replayed, `slots` their places in the
    list (`buffer`: none)."""
    known = slots < buffer
    forward = state.spike_times[jnp.minimum(slots, buffer - 1)]
    t_spikes = jnp.where(known, forward + (replayed - sg(replayed)), jnp.inf)
    return state.spike_times.at[slots].set(t_spikes, mode="drop")


def with_derivative(saved, replayed):
    """The forward run's saved states with the replay's derivative (unsaved slots, inf, kept)."""
    return jnp.where(jnp.isfinite(saved), saved + (replayed - sg(replayed)), saved)


@custom_vmap
def batch_max(x):
    """`x`; under `vmap`, the largest over the batch, unbatched (so that a `lax.cond` on it stays
    a conditional: on a batched predicate JAX runs both branches and selects)."""
    return x


@batch_max.def_vmap
def _batch_max_vmap(axis_size, in_batched, x):
    (batched,) = in_batched
    return (jnp.max(x, axis=0) if batched else x), False


def chunks_pay(length: int, integrator) -> bool:
    """Whether a replay of `length` steps runs in chunks (`replay_scan`): for closed-form flows.

    A chunk is rematerialised as a whole, and a Runge–Kutta segment integrated again costs
    more than the skipped steps save: the eventax Izhikevich net's `value_and_grad` (5→120→3,
    batch 32) took 180 ms in chunks against 162 ms without (interleaved, one process), and
    the same 162 ms in chunks not rematerialised (more memory, nothing faster).
    """
    return length > 2 * CHUNK and not integrator.takes_steps


def replay_scan(step, carry, codes, extra, n_real, skipped, chunked: bool):
    """`lax.scan` of the rematerialised `step` over a sequence's `(codes, extra)` (steps first;
    `extra`: per-step values gathered beforehand, or None); `chunked`: skipping the steps from
    `n_real` on (every neuron's events from there on are past the end of its run, where a step
    leaves the carry as it is) in whole chunks of `CHUNK`.

    A replay walks the longest sequence a population may have (its input list's length: every
    input spike of a run to t1), but only the events up to where each neuron's run ended
    matter: a first-spike run's outputs stop after their first spike.  `skipped(carry)` is a
    step's output where nothing happens.  Under `vmap` the chunks run up to the batch's largest
    `n_real` (`batch_max`), as a loop does for its busiest sample.  A chunk's derivative with
    respect to an array that its steps gather from is that whole array's (added up chunk by
    chunk): what the steps read of a long list comes gathered in `extra`, whose derivative is
    per step.
    """
    body = jax.checkpoint(traced_once(step), prevent_cse=False)
    length = codes.shape[0]
    if not chunked:
        return jax.lax.scan(body, carry, (codes, extra))
    n_chunks = -(-length // CHUNK)

    def blocks(x, fill):
        pad = jnp.full((n_chunks * CHUNK - length,) + x.shape[1:], fill, x.dtype)
        return jnp.concatenate([x, pad]).reshape((n_chunks, CHUNK) + x.shape[1:])

    xs = (blocks(codes, PAD), jax.tree_util.tree_map(lambda x: blocks(x, 0), extra))
    needed = batch_max(jax.lax.stop_gradient(n_real).astype(jnp.int32))

    def chunk(carry, xs):
        start, block = xs

        def run(carry):
            # rematerialised as a whole: the backward pass keeps a chunk's first carry, and its
            # steps' carries only while it pulls that chunk back
            return jax.checkpoint(lambda c, b: jax.lax.scan(body, c, b), prevent_cse=False)(carry, block)

        def skip(carry):
            out = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (CHUNK,) + x.shape), skipped(carry))
            return carry, out

        return jax.lax.cond(start < needed, run, skip, carry)

    carry, ys = jax.lax.scan(chunk, carry, (jnp.arange(n_chunks, dtype=jnp.int32) * CHUNK, xs))
    return carry, jax.tree_util.tree_map(lambda y: y.reshape((n_chunks * CHUNK,) + y.shape[2:])[:length], ys)


def count_real(kinds, t_end):
    """How many events of each neuron's sequence happen by the end of its run (`t_end`, one per
    neuron): a sequence is in time order, so these come first."""
    ends = t_end[..., None]
    total = jnp.zeros(t_end.shape, jnp.int32)
    for times, _ in kinds:
        times = jax.lax.stop_gradient(times)
        total = total + jnp.sum(jnp.isfinite(times) & (times <= ends), axis=-1, dtype=jnp.int32)
    return total
