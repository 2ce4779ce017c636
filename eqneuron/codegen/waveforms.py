"""Input waveforms at run time: Diffrax's interpolation of the samples, in the parameter dict.

The engine reads every entry of the parameter dict `p` by its `ndim`: a
scalar is the same for all neurons, an `(N,)` array holds one value per
neuron, and where the engine works on a few neurons only (the lanes that
cross threshold in a step) it gathers the per-neuron entries of those
neurons.  A waveform enters `p` as two entries:

- `"I@waveform"`: a `SampledWaveform`, Diffrax's `LinearInterpolation` of
  the samples or its `CubicInterpolation` through
  `backward_hermite_coefficients` (computed once per simulation).  It
  declares `ndim = 0`, so the engine passes it whole, as a scalar;
- `"I@neuron"` for a waveform with one column per neuron: the neuron
  indices `0..N-1`, an `(N,)` entry that the engine gathers like a
  per-neuron parameter, so a call on a subset of the neurons knows which
  columns are theirs.

Names in `.eq` files have no `@`, so no key collides with a parameter.
Before the first sample and after the last the waveform holds its end
values.  Everything is differentiable with respect to the samples.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import EqError


class SampledWaveform(eqx.Module):
    """One input waveform in the parameter dict (a scalar to the engine: `ndim` is 0)."""

    path: diffrax.LinearInterpolation | diffrax.CubicInterpolation
    per_neuron: bool = eqx.field(static=True)  # one column of samples per neuron
    ndim: ClassVar[int] = 0

    def next_kink(self, t):
        """The first sample time after `t` (one per lane), inf if none.

        The slope of a linear interpolant jumps at every sample, and so does
        the second derivative of the C¹ cubic spline; at the first and last
        sample both start or stop holding a constant.
        """
        times = self.path.ts
        later = jnp.searchsorted(times, t, side="right")
        return jnp.where(later < times.shape[0], times[jnp.minimum(later, times.shape[0] - 1)], jnp.inf)


def next_kink(p: dict, t):
    """The first time after `t` where a waveform among the entries of `p` has a kink (inf if
    none), or None if `p` holds no waveform."""
    kinks = [entry.next_kink(t) for entry in p.values() if isinstance(entry, SampledWaveform)]
    return functools.reduce(jnp.minimum, kinks) if kinks else None


def waveform_entries(
    name: str, interpolation: str, times: Float[Array, " samples"], values: Float[Array, " samples *neurons"]
) -> dict[str, SampledWaveform | Array]:
    """The parameter-dict entries of one waveform (see the module docstring)."""
    path: diffrax.LinearInterpolation | diffrax.CubicInterpolation
    if interpolation == "linear":
        path = diffrax.LinearInterpolation(times, values)
    else:
        path = diffrax.CubicInterpolation(times, diffrax.backward_hermite_coefficients(times, values))
    per_neuron = values.ndim == 2
    entries: dict[str, SampledWaveform | Array] = {f"{name}@waveform": SampledWaveform(path, per_neuron)}
    if per_neuron:
        entries[f"{name}@neuron"] = jnp.arange(values.shape[1], dtype=values.dtype)
    return entries


def waveform_at(name: str, t, p: dict):
    """The waveform `name` at time `t` (a scalar, or one time per neuron), from the entries in `p`.

    Returns a scalar or one value per neuron.
    """
    waveform = p.get(f"{name}@waveform")
    if not isinstance(waveform, SampledWaveform):
        raise EqError(
            f"the parameter values have no samples of the input `{name}`",
            hint=f"use the values of a population made with `waveforms={{'{name}': (times, values)}}` "
            "(`population.parameter_values()`)",
        )
    path = waveform.path
    t = jnp.clip(t, path.t0, path.t1)  # the end values hold outside the samples
    if not waveform.per_neuron:
        return path.evaluate(t) if jnp.ndim(t) == 0 else jax.vmap(path.evaluate)(t)
    # the neurons of this call (all of them, a block of them, or the one that fired)
    neurons = jnp.round(p[f"{name}@neuron"]).astype(jnp.int32)
    if jnp.ndim(t) == 0:
        return path.evaluate(t)[neurons]
    neurons = jnp.broadcast_to(neurons, t.shape)
    samples, columns = jax.tree_util.tree_leaves(path)[-1].shape
    if samples <= columns:  # per lane, the cheaper of one neuron's column and one row of all neurons
        return jax.vmap(lambda i, s: _column(path, i).evaluate(s))(neurons, t)
    return jax.vmap(lambda i, s: path.evaluate(s)[i])(neurons, t)


def _column(path, neuron):
    """The interpolation of one neuron's column of samples."""
    if isinstance(path, diffrax.LinearInterpolation):
        return diffrax.LinearInterpolation(path.ts, path.ys[:, neuron])
    return diffrax.CubicInterpolation(path.ts, tuple(c[:, neuron] for c in path.coeffs))
