"""Input waveforms of a population: the samples of each `inputs:` name of its model.

A model's `inputs:` block declares functions of time (e.g. an injected
current) that each population supplies as samples: `times` (ms, strictly
increasing, at least two) and `values`, `(T,)` for one waveform shared by
all neurons or `(T, N)` for one per neuron.  The samples are array leaves of
the population, so `grad` reaches them and `vmap` batches them; they reach
the generated functions through the parameter dict
(`eqneuron.codegen.waveforms`), which interpolates them at `t` and holds the
end values outside `[times[0], times[-1]]`.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .codegen.waveforms import waveform_entries
from .errors import EqError, did_you_mean


class Waveform(eqx.Module):
    """Samples of one input waveform: `values[k]` at `times[k]` (ms); `values` is `(T,)` or `(T, N)`."""

    times: Float[Array, " samples"]
    values: Float[Array, " samples *neurons"]


def population_waveforms(model, given, n_neurons: int, dtype, current: dict | None = None) -> dict:
    """The checked waveforms of a population: `given` (`{name: (times, values)}`) over `current`.

    Without `current` (a new population), every input of the model needs samples.
    """
    inputs = model.ir.inputs
    if given is not None and not isinstance(given, dict):
        raise EqError(
            f"`waveforms` must be a dict of input name -> (times, values), got {type(given).__name__}",
            hint=_example(inputs),
        )
    given = dict(given or {})
    if given and not inputs:
        raise EqError(
            f"`waveforms=` given, but {model.name} has no inputs",
            hint="declare them in the model (`inputs:` with a line `I_ext (linear)`), or drop `waveforms=`",
        )
    for name in given:
        if name not in inputs:
            raise EqError(
                f"`{name}` is not an input of {model.name}",
                hint=did_you_mean(str(name), inputs) or f"inputs: {', '.join(inputs)}",
            )
    waveforms = dict(current or {})
    for name, samples in given.items():
        like = waveforms[name].values.dtype if name in waveforms else dtype  # `replace` keeps the dtype
        waveforms[name] = _waveform(name, samples, n_neurons, like)
    missing = [name for name in inputs if name not in waveforms]
    if missing:
        name = missing[0]
        raise EqError(
            f"{model.name} has the input `{name}` (line {inputs[name].span.line}), but no samples were given for it",
            hint=f"give them with `waveforms=`: {_example(inputs)}",
        )
    return {name: waveforms[name] for name in inputs}


def waveform_parameters(model, waveforms: dict) -> dict:
    """The parameter-dict entries of every waveform (read by the generated functions)."""
    entries = {}
    for name, waveform in waveforms.items():
        entries.update(
            waveform_entries(name, model.ir.inputs[name].interpolation, waveform.times, waveform.values)
        )
    return entries


def _waveform(name: str, samples, n_neurons: int, dtype) -> Waveform:
    if isinstance(samples, Waveform):
        samples = (samples.times, samples.values)
    if not isinstance(samples, tuple | list) or len(samples) != 2:
        raise EqError(
            f"waveform `{name}` must be a pair (times, values), got {type(samples).__name__}",
            hint=f"e.g. waveforms={{'{name}': (jnp.linspace(0, 100, 101), values)}}: times in ms, "
            "values (T,) for all neurons or (T, N) for one column per neuron",
        )
    times, values = samples
    for what, array in (("times", times), ("values", values)):
        if not _numeric(array):
            raise EqError(
                f"the {what} of waveform `{name}` must be numbers, got {type(array).__name__}",
                hint="give arrays of floats",
            )
    times_shape, values_shape = tuple(np.shape(times)), tuple(np.shape(values))
    if len(times_shape) != 1 or times_shape[0] < 2:
        raise EqError(
            f"the times of waveform `{name}` must have shape (T,) with T >= 2 samples, got {times_shape}",
            hint="one time (ms) per sample, strictly increasing; the waveform holds its end values outside them",
        )
    samples_count = times_shape[0]
    if values_shape not in ((samples_count,), (samples_count, n_neurons)):
        hint = f"(T,) for one waveform shared by all neurons or (T, N) for one column per neuron (T = {samples_count}, N = {n_neurons})"
        if values_shape == (n_neurons, samples_count):
            hint = f"it looks transposed: {hint}"
        raise EqError(
            f"the values of waveform `{name}` must have shape ({samples_count},) or ({samples_count}, {n_neurons}), "
            f"got {values_shape}",
            hint=hint,
        )
    if _concrete(times):
        t = np.asarray(times, float)
        if not np.all(np.isfinite(t)):
            raise EqError(f"the times of waveform `{name}` are not all finite", hint="give finite times (ms)")
        step = np.flatnonzero(np.diff(t) <= 0)
        if step.size:
            k = int(step[0]) + 1
            raise EqError(
                f"the times of waveform `{name}` must increase strictly: times[{k}] = {t[k]:g} "
                f"is not after times[{k - 1}] = {t[k - 1]:g}",
                hint="sort the samples by time and drop repeated times",
            )
    if _concrete(values) and not np.all(np.isfinite(np.asarray(values, float))):
        bad = int(np.sum(~np.isfinite(np.asarray(values, float))))
        raise EqError(
            f"the values of waveform `{name}` have {bad} non-finite entries (NaN or inf)",
            hint="give finite values",
        )
    return Waveform(jnp.asarray(times, dtype), jnp.asarray(values, dtype))


def _example(inputs) -> str:
    pairs = ", ".join(f"'{name}': (times, values)" for name in inputs) or "'I_ext': (times, values)"
    return f"waveforms={{{pairs}}} with times in ms and values (T,) or (T, N)"


def _concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def _numeric(value) -> bool:
    if isinstance(value, jax.Array):
        return jnp.issubdtype(value.dtype, jnp.number)
    try:
        array = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return np.issubdtype(array.dtype, np.number) or array.dtype == bool
