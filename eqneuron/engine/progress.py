"""A progress bar for long simulations, fed from inside the compiled event loops.

A simulation is a few compiled `while` loops, so the bar cannot be advanced
from Python between iterations.  Instead every `refresh` iterations each
population loop sends its clock and its spike count to the host with
`jax.debug.callback` (the way Diffrax's `TqdmProgressMeter` does), and
`ProgressMeter` draws a tqdm bar over simulated time: the mean, over the
populations, of how far each has got (the slowest of its neurons when they
run on their own clocks), with the spikes so far and the rate at which they
are found.

The meter is created when `simulate` is traced.  Under `jax.jit` the same
meter serves every later call: it opens a fresh bar at the first report of a
call and closes it at the call's last report.  Under `jax.vmap` a report
carries the slowest element of the batch.  In reverse mode the checkpointed
loops run their iterations again, and with them the reports: the bar is
meant for forward runs.
"""

from __future__ import annotations

import math
import threading
import time

import equinox.internal as eqxi
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int
from tqdm import tqdm

from ..errors import EqError

# iterations of a population loop between two reports: a report costs a host
# round trip (tens of microseconds), an iteration from one to a few hundred
REFRESH = 64


class ProgressMeter:
    """Host side of a simulation's progress bar.

    `delay` (seconds) hides the bar of runs shorter than that, as tqdm's own
    `delay` does.
    """

    def __init__(self, n_populations: int, delay: float = 0.0, refresh: int = REFRESH):
        self.n_populations = n_populations
        self.delay = float(delay)
        self.refresh = refresh
        self._lock = threading.Lock()
        self._bar: tqdm | None = None
        self._start = 0.0
        self._times = np.zeros(n_populations)
        self._spikes = np.zeros(n_populations, dtype=np.int64)

    # -- traced side -------------------------------------------------------
    def report(
        self,
        population: int,
        iteration: Int[Array, ""],
        fraction: Float[ArrayLike, "*lanes"],
        n_spikes: Int[ArrayLike, "*lanes"],
    ) -> None:
        """In a loop body: every `refresh` iterations, send the fraction of `t1` reached
        and the spikes so far to the host."""
        due = eqxi.nonbatchable(eqxi.unvmap_max(iteration) % self.refresh == 0)
        # the slowest element of a batch; a report is not differentiated (the time it is read from
        # is, under reverse mode, and `unvmap_max` has no derivative)
        fraction = -eqxi.unvmap_max(-jax.lax.stop_gradient(jnp.asarray(fraction)))
        n_spikes = eqxi.unvmap_max(jnp.asarray(n_spikes))

        def send():
            jax.debug.callback(self._update, population, fraction, n_spikes)

        jax.lax.cond(due, send, lambda: None)

    def close(self, n_spikes: Int[ArrayLike, ""]) -> None:
        """After the loops: the final spike count, and the bar closes."""
        jax.debug.callback(self._close, eqxi.unvmap_max(jnp.asarray(n_spikes)))

    # -- host side ---------------------------------------------------------
    def _opened_bar(self) -> tqdm:
        """The bar, opened at the first report."""
        if self._bar is not None:
            return self._bar
        self._start = time.perf_counter()
        self._times[:] = 0.0
        self._spikes[:] = 0
        self._bar = tqdm(
            total=1.0,
            desc="simulate",
            delay=self.delay,
            dynamic_ncols=True,
            leave=False,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]",
        )
        return self._bar

    def _show(self, bar: tqdm, spikes: int | None = None) -> None:
        """Draw the bar; `spikes`: the run's total (default: the sum of the populations' reports)."""
        spikes = int(self._spikes.sum()) if spikes is None else spikes
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        bar.n = float(self._times.mean())
        bar.set_postfix_str(f"{spikes} spikes, {spikes / elapsed:.3g} spikes/s", refresh=False)
        if elapsed >= self.delay:  # tqdm's own `delay` holds back `update`, not `refresh`
            bar.refresh()

    def _update(self, population, fraction, n_spikes):
        with self._lock:
            bar = self._opened_bar()
            k = int(np.asarray(population).reshape(-1)[0])
            reached = float(np.asarray(fraction).reshape(-1)[0])
            self._times[k] = min(max(reached, 0.0), 1.0) if np.isfinite(reached) else 1.0
            self._spikes[k] = int(np.asarray(n_spikes).reshape(-1)[0])
            self._show(bar)

    def _close(self, n_spikes):
        with self._lock:
            bar = self._opened_bar()
            self._times[:] = 1.0
            self._show(bar, int(np.asarray(n_spikes).reshape(-1)[0]))
            bar.close()
            self._bar = None


def progress_meter(progress: bool | float, n_populations: int) -> ProgressMeter | None:
    """`simulate`'s `progress` argument as a meter (None: no bar); anything else is an `EqError`."""
    if progress is False:
        return None
    if progress is True:
        return ProgressMeter(n_populations)
    if isinstance(progress, bool) or not isinstance(progress, (int, float, np.integer, np.floating)) or not (
        0 <= progress < math.inf
    ):
        raise EqError(f"simulate: `progress` must be True, False or a number of seconds >= 0, got {progress!r}",
                      hint="progress=True draws a bar; progress=2.0 draws it for runs longer than 2 s")
    return ProgressMeter(n_populations, delay=float(progress))
