"""Input waveforms at run time: samples in the parameter dict, interpolated at `t` by Diffrax.

The engine treats every entry of the parameter dict `p` as a scalar (all
neurons) or an `(N,)` array (one value per neuron): it gathers per-neuron
entries along their last axis when it works on a few neurons only, and takes
the firing neuron's entry for `on_spike`.  A waveform therefore enters `p` as
one entry per sample, `"I@t3"` (the time of sample 3, a scalar) and `"I@y3"`
(its value: a scalar for a waveform shared by all neurons, `(N,)` for one per
neuron); a cubic one stores the coefficients of its spline per interval
(`"I@d3"`, `"I@c3"`, `"I@b3"`, `"I@a3"`, Diffrax's order), computed once per
simulation.  Names in `.eq` files have no `@`, so no key collides with a
parameter.

Between samples the waveform is Diffrax's `LinearInterpolation`, or its
`CubicInterpolation` through `backward_hermite_coefficients`; before the
first sample and after the last it holds the end values.  Everything is
differentiable with respect to the samples.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..errors import EqError

_COEFFICIENTS = ("d", "c", "b", "a")  # diffrax.CubicInterpolation's order


def waveform_entries(
    name: str, interpolation: str, times: Float[Array, " samples"], values: Float[Array, "samples *neurons"]
) -> dict:
    """The parameter-dict entries of one waveform (see the module docstring)."""
    entries = {f"{name}@t{k}": times[k] for k in range(times.shape[0])}
    if interpolation == "linear":
        rows = {"y": values}
    else:
        rows = dict(zip(_COEFFICIENTS, diffrax.backward_hermite_coefficients(times, values)))
    for key, array in rows.items():
        entries.update({f"{name}@{key}{k}": array[k] for k in range(array.shape[0])})
    return entries


def waveform_at(name: str, interpolation: str, t, p: dict):
    """The waveform `name` at time `t`: a scalar or one time per neuron (lane), from the entries in `p`.

    Returns a scalar, or one value per neuron: `(N,)` for a per-neuron waveform or one time per neuron.
    """
    times = _stacked(p, name, "t")
    t = jnp.clip(t, times[0], times[-1])  # the end values hold outside the samples
    if interpolation == "linear":
        data = _stacked(p, name, "y")

        def evaluate(data, s):
            return diffrax.LinearInterpolation(times, data).evaluate(s)
    else:
        data = tuple(_stacked(p, name, key) for key in _COEFFICIENTS)

        def evaluate(data, s):
            return diffrax.CubicInterpolation(times, data).evaluate(s)

    per_neuron = jax.tree_util.tree_leaves(data)[0].ndim == 2
    if jnp.ndim(t) == 0:
        return evaluate(data, t)
    # one time per neuron (each neuron on its own clock)
    data_axis = jax.tree_util.tree_map(lambda _: 1 if per_neuron else None, data)
    return jax.vmap(evaluate, in_axes=(data_axis, 0))(data, t)


def _stacked(p: dict, name: str, key: str):
    rows = []
    while f"{name}@{key}{len(rows)}" in p:
        rows.append(p[f"{name}@{key}{len(rows)}"])
    if not rows:
        raise EqError(
            f"the parameter values have no samples of the input `{name}`",
            hint=f"use the values of a population made with `waveforms={{'{name}': (times, values)}}` "
            "(`population.parameter_values()`)",
        )
    return jnp.stack(rows)
