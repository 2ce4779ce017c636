"""A population loop run on its last active neurons, gathered into a block of lanes.

A large population on own clocks runs its loop on every lane while many of
its neurons are active, then on a block of the active ones (a loop of its own,
and a block of that block in turn), whose state is scattered back
(`LoopCompaction._run_compacted` says why this pays).  `LoopCompaction` is a
base class of `PopulationLoop` holding this way of running it; the iteration
is the loop's own, the same for every block.
"""

from __future__ import annotations

import abc
import copy
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Int

from ..network import Population
from .clocks import AbstractClock
from .state import LoopState, put_lanes, take_lanes

# populations on own clocks at least this large gather their last active neurons into a block
COMPACT_MIN = 512
# ... into a block of this share of its lanes (rounded up to a power of two)
COMPACT_SHARE = 8


class LoopCompaction(abc.ABC):
    """How a population loop runs on a block of its lanes (a base class of `PopulationLoop`)."""

    # set by the loop
    pop: Population
    clock: AbstractClock
    p: dict[str, float | Array]  # the population's parameter values, per lane where per neuron
    lane_ids: Int[Array, " lanes"]  # the neurons of the loop's lanes
    inbox: tuple[Int[Array, "slots lanes"], Int[Array, " lanes"]] | None
    lean: bool

    @abc.abstractmethod
    def run(self, c: LoopState, in_times, in_channels, in_values, t_stop, max_iterations=None) -> LoopState:
        """Every event up to `t_stop` (at most `max_iterations` iterations, when given)."""

    @abc.abstractmethod
    def _run_loop(self, c: LoopState, in_times, in_channels, in_values, t_stop, until, max_iterations=None) -> LoopState:
        """The loop of `run`, while `until(c)` (default: some lane not done nor paused)."""

    def _compacts(self, max_iterations) -> bool:
        """Whether `run` gathers its last active neurons into a block (`_run_compacted`)."""
        return self.compact_block is not None and max_iterations is None and not self.lean

    @property
    def compact_block(self) -> int | None:
        """Lanes of the block that takes over once few neurons are active (None: no block): an
        eighth of the loop's lanes (a power of two, at least 64), and a block of a block in turn."""
        lanes = self.lane_ids.shape[0]
        if not self.clock.lanes(self.pop.n_neurons) or lanes < COMPACT_MIN:
            return None
        if any(not isinstance(v, (jax.Array, np.ndarray, float, int)) for v in self.p.values()):
            return None  # input waveforms: their samples are not gathered
        return int(max(64, 1 << (lanes // COMPACT_SHARE - 1).bit_length()))

    def _run_compacted(self, c: LoopState, in_times, in_channels, in_values, t_stop) -> LoopState:
        """`run` in two parts: all neurons while more than a block's are active, then the active
        ones gathered into a block (their own loop, `_block_loop`) and scattered back.

        A loop iteration computes a solver step for every lane, also for neurons that have
        reached `t_stop` and wait; in a window most neurons get there in an iteration or two
        while a few (those spiking) take many short steps.  The block's iterations cost what
        its lanes do.  Each neuron's arithmetic is the same either way.
        """
        k = self.compact_block
        assert k is not None

        def many_active(c: LoopState):
            return jnp.sum(~(c.done | c.paused)) > k

        c = self._run_loop(c, in_times, in_channels, in_values, t_stop, many_active)
        # every active lane (at most k of them): `lanes` marks an empty slot
        lanes = self.lane_ids.shape[0]
        ids = jnp.nonzero(~(c.done | c.paused), size=k, fill_value=lanes)[0]
        valid = ids < lanes
        block = self._block_loop(jnp.where(valid, ids, 0))
        sub = take_lanes(c, jnp.where(valid, ids, 0))
        sub = dataclasses.replace(sub, done=sub.done | ~valid)  # empty slots do nothing
        sub = block.run(sub, in_times, in_channels, in_values, t_stop)  # a block of the block in turn
        return put_lanes(c, sub, ids)

    def _block_loop(self, ids) -> LoopCompaction:
        """This loop for its lanes `ids` only: their parameters gathered, the rest shared."""
        block = copy.copy(self)
        lanes = self.lane_ids.shape[0]
        block.p = {name: (jnp.asarray(v)[..., ids] if jnp.ndim(v) and jnp.shape(v)[-1] == lanes else v)
                   for name, v in self.p.items()}
        block.lane_ids = self.lane_ids[ids]
        if self.inbox is not None:
            block.inbox = (self.inbox[0][:, ids], self.inbox[1][ids])
        return block
