"""Populations, networks and input spike trains (Equinox modules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, DTypeLike, Float, Int, PRNGKeyArray

from .codegen import sample_weights
from .codegen.params import ParameterValues, check_parameter_values, parameter_values
from .errors import EqError, did_you_mean
from .waveforms import Waveform, population_waveforms, waveform_parameters

if TYPE_CHECKING:
    from .model import CompiledModel

# weight matrices by name: rows are sources (the N own neurons, then the K input channels), columns targets
WeightValues = Mapping[str, Float[ArrayLike, "rows neurons"]]
# the input channels of each named port: a count of consecutive channels, or channel ids
PortChannels = Mapping[str, int | Sequence[int]]
# the samples of each input waveform: (times, values), values one column per neuron or one for all
WaveformSamples = Mapping[str, tuple[Float[ArrayLike, " samples"], Float[ArrayLike, " samples *neurons"]]]


def default_dtype() -> np.dtype:
    """JAX's default float dtype: float64 with `jax_enable_x64`, else float32."""
    return jnp.asarray(0.0).dtype


class Spikes(eqx.Module):
    """A padded list of input spikes: unused entries have `time = inf`.

    `channels` index the K input channels; `values` (default 1) scale `on_input`.
    `times`, `channels` and `values` have one shape: `(events,)` for one sample,
    `(batch, events)` for a batch to `vmap` over.
    """

    times: Float[Array, "*batch events"]
    channels: Int[Array, "*batch events"]
    values: Float[Array, "*batch events"] | None = None

    def __init__(
        self,
        times: Float[ArrayLike, "*batch events"],
        channels: Int[ArrayLike, "*batch events"],
        values: Float[ArrayLike, "*batch events"] | None = None,
    ) -> None:
        self.times = jnp.asarray(times, dtype=default_dtype())
        _check_integral("channels", channels)
        self.channels = jnp.asarray(channels, dtype=jnp.int32)
        self.values = None if values is None else jnp.asarray(values, dtype=default_dtype())
        if self.times.shape != self.channels.shape:
            raise EqError(
                f"Spikes: `times` has shape {self.times.shape} but `channels` has shape {self.channels.shape}",
                hint="give one channel per spike time (pad unused entries with time = inf)",
            )
        if self.values is not None and self.values.shape != self.times.shape:
            raise EqError(
                f"Spikes: `values` has shape {self.values.shape} but `times` has shape {self.times.shape}",
                hint="give one value per spike time, or leave `values` out (every value is then 1)",
            )


class Population(eqx.Module):
    """`n_neurons` neurons of one model, their weights `(N+K, N)` and parameter values.

    Weight matrix rows are sources (rows 0..N-1 the population's own neurons,
    rows N..N+K-1 its K input channels), columns the N target neurons.
    Parameters are scalars (all neurons) or `(N,)` arrays (one per neuron).
    `waveforms` holds the samples of each input of the model (`inputs:`), a `Waveform`.
    """

    model: CompiledModel
    weights: dict[str, Float[Array, "rows neurons"]]
    params: dict[str, float | Float[Array, "*neurons"]]
    wmask: Bool[Array, "rows neurons"] | None
    n_neurons: int = eqx.field(static=True)
    in_size: int = eqx.field(static=True)
    recurrent: bool = eqx.field(static=True)
    ports: tuple[int, ...] = eqx.field(static=True, default=())  # per input channel: its port's index
    waveforms: dict[str, Waveform] = eqx.field(default_factory=dict)  # array leaves: gradients reach them

    @classmethod
    def create(
        cls,
        model: CompiledModel,
        n_neurons: int,
        in_size: int,
        key: PRNGKeyArray | None,
        recurrent: bool,
        wmask: Bool[ArrayLike, "rows neurons"] | None,
        params: ParameterValues | None,
        weights: WeightValues | None,
        dtype: DTypeLike | None,
        ports: PortChannels | None = None,
        waveforms: WaveformSamples | None = None,
    ) -> Population:
        """`CompiledModel.population`: the arguments checked, parameter defaults evaluated, weights drawn."""
        dtype = dtype or default_dtype()
        _check_count("n_neurons", n_neurons, minimum=1, hint="the number of neurons of the population")
        _check_count("in_size", in_size, minimum=0, hint="the number of input channels K (0: no external input)")
        if not isinstance(recurrent, (bool, np.bool_)):
            raise EqError(f"`recurrent` must be True or False, got {recurrent!r}")
        n_rows = n_neurons + in_size
        if wmask is not None:
            wmask = jnp.asarray(wmask, bool)
            if wmask.shape != (n_rows, n_neurons):
                raise EqError(
                    f"`wmask` must have shape {(n_rows, n_neurons)} (N+K rows, N columns), got {wmask.shape}",
                    hint=_rows_hint(n_neurons, in_size),
                )
        given = {}
        for name, value in (weights or {}).items():
            _check_weight(model, name, value, n_neurons, in_size)
            given[name] = jnp.asarray(value, dtype)
        for name, value in (params or {}).items():
            _check_parameter_shape(model, name, value, n_neurons)
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
            _check_parameter_shape(model, name, v, n_neurons)
        check_parameter_values(model.ir, values)
        fan_in = n_rows if recurrent else in_size
        if wmask is not None:
            fan_in = max(1, int(np.max(np.sum(np.asarray(wmask), axis=0))))
        drawn = {}
        if not recurrent and not in_size and not given:
            # no input channels and no recurrence: every weight is zero; none is stored (a graph's
            # projections bring its inputs), so that 100,000 neurons need no N x N array
            empty = {name: jnp.zeros((0, n_neurons), dtype) for name in model.weight_names}
            waveforms = population_waveforms(model, waveforms, n_neurons, dtype)
            return cls(model, empty, values, wmask, n_neurons, in_size, False, _channel_ports(model, in_size, ports), waveforms)
        if set(given) != set(model.weight_names):
            if key is None and (recurrent or in_size):
                raise EqError(
                    "population(...) needs `key=` to draw the initial weights",
                    hint="pass key=jax.random.key(0), or give every weight with `weights=`",
                )
            key = jax.random.key(0) if key is None else key  # no connections: the draw is unused
            drawn = sample_weights(model.ir, key, (n_rows, n_neurons), max(fan_in, 1), values, dtype)
        drawn.update(given)
        if not recurrent:
            own = jnp.arange(n_rows)[:, None] < n_neurons
            drawn = {k: jnp.where(own, 0.0, w).astype(dtype) for k, w in drawn.items()}
        waveforms = population_waveforms(model, waveforms, n_neurons, dtype)
        return cls(
            model, drawn, values, wmask, n_neurons, in_size, bool(recurrent), _channel_ports(model, in_size, ports), waveforms
        )

    def replace(
        self,
        weights: WeightValues | None = None,
        params: ParameterValues | None = None,
        waveforms: WaveformSamples | None = None,
    ) -> Population:
        """A new population with some weights, parameter values or input waveforms replaced.

        Weights must have the shape `(N+K, N)`; parameters are scalars or `(N,)`
        arrays (a scalar for a `per_neuron` parameter is given to every neuron).
        The other parameters keep their values: defaults that depend on a
        replaced parameter are not re-evaluated (use `model.population(params=...)`
        for that).  Waveforms are `{name: (times, values)}` as in `model.population`.
        """
        new_weights = dict(self.weights)
        for name, value in (weights or {}).items():
            _check_weight(self.model, name, value, self.n_neurons, self.in_size)
            new_weights[name] = jnp.asarray(value, self.weights[name].dtype)
        new_params = dict(self.params)
        for name, value in (params or {}).items():
            if name not in self.params:
                raise EqError(
                    f"`{name}` is not a parameter of {self.model.name}",
                    hint=did_you_mean(name, self.params) or f"parameters: {', '.join(self.params)}",
                )
            _check_parameter_shape(self.model, name, value, self.n_neurons)
            old = self.params[name]
            if isinstance(old, jax.Array) or np.ndim(value) > 0 or isinstance(value, jax.Array):
                like = old.dtype if isinstance(old, jax.Array) else default_dtype()
                shape = np.shape(old) if np.ndim(old) else np.shape(value)
                new_params[name] = jnp.broadcast_to(jnp.asarray(value, like), shape)
            else:
                new_params[name] = float(np.asarray(value))
        check_parameter_values(self.model.ir, new_params)
        new = eqx.tree_at(lambda p: (p.weights, p.params), self, (new_weights, new_params))
        if waveforms is None:
            return new
        new_waveforms = population_waveforms(self.model, waveforms, self.n_neurons, default_dtype(), self.waveforms)
        return eqx.tree_at(lambda p: p.waveforms, new, new_waveforms)

    def _masked_rows(self, w: Array, start: int) -> Array:
        """Rows `start:` of a stored weight matrix with the mask applied (zeros where none are
        stored: no inputs, no recurrence).  Sliced before the mask: built as a `(N + K, N)`
        matrix around given `(K, N)` input weights, rows `N:` are those weights, no matrix computed."""
        n = self.n_neurons
        if not w.shape[0]:
            return jnp.zeros((n + self.in_size - start, n), w.dtype)
        rows = w[start:]
        return rows if self.wmask is None else jnp.where(self.wmask[start:], rows, 0.0)

    def effective_weights(self) -> dict[str, Float[Array, "rows neurons"]]:
        """Weights with the mask (and, without recurrence, the own-neuron rows) zeroed."""
        if self.recurrent:
            return {name: self._masked_rows(w, 0) for name, w in self.weights.items()}
        n = self.n_neurons
        return {name: jnp.concatenate([jnp.zeros((n, n), w.dtype), w]) for name, w in self.input_weights().items()}

    def input_weights(self) -> dict[str, Float[Array, "inputs neurons"]]:
        """The input channels' rows of `effective_weights()`, `(K, N)`."""
        return {name: self._masked_rows(w, self.n_neurons) for name, w in self.weights.items()}

    def parameter_values(self) -> dict[str, float | Array]:
        """Parameter values as used in simulation (only trainable ones carry gradients), and the
        samples of the input waveforms (`eqneuron.codegen.waveforms`)."""
        out = {}
        for name, value in self.params.items():
            if self.model.ir.parameters[name].trainable:
                out[name] = value
            else:
                out[name] = jax.lax.stop_gradient(value)
        out.update(waveform_parameters(self.model, self.waveforms))  # samples: differentiable
        return out


class Projection(eqx.Module):
    """Connections from population `source` to population `target` of a `Network` graph.

    `weights`: by name of the target model's weights, each `(N_source, N_target)` (or a
    scalar for every connection); `mask`: which connections exist (`(N_source, N_target)`
    booleans, e.g. from `eqneuron.connect`), all when None; `delay` (ms): a scalar or
    one per source neuron, or one per synapse (shaped as the weights: `(N_source, N_target)`,
    or `(N_source, K)` with `targets`), `None` for the source model's `delay:` (0 without one);
    `port`: the target's input port (`on_input NAME:`) for models with named ports.
    `targets`: sparse connectivity instead of a dense matrix, `(N_source, K)` target
    ids per source neuron (-1: no connection; e.g. from `eqneuron.connect.sparse`);
    the weights are then `(N_source, K)` (or a scalar), one per connection, and a
    spike costs work proportional to its targets.
    Weights and delays are array leaves: gradients reach them.
    """

    weights: dict[str, Float[Array, "source target"] | Float[Array, ""]]
    delay: Float[Array, "*source"] | None
    mask: Bool[Array, "source target"] | None
    targets: Int[Array, "source k"] | None
    source: str = eqx.field(static=True)
    target: str = eqx.field(static=True)
    port: str | None = eqx.field(static=True)

    def __init__(
        self,
        source: str,
        target: str,
        weights: Mapping[str, float | Float[ArrayLike, "source target"]],
        delay: float | Float[ArrayLike, " source"] | None = None,
        mask: Bool[ArrayLike, "source target"] | None = None,
        port: str | None = None,
        targets: Int[ArrayLike, "source k"] | None = None,
    ) -> None:
        self.source, self.target, self.port = str(source), str(target), port
        self.weights = {k: jnp.asarray(v, default_dtype()) for k, v in dict(weights).items()}
        self.delay = None if delay is None else jnp.asarray(delay, default_dtype())
        self.mask = None if mask is None else jnp.asarray(mask, bool)
        self.targets = None if targets is None else jnp.asarray(targets, jnp.int32)

    def dense_weights(self, n_source: int, n_target: int) -> dict[str, Float[Array, "source target"]]:
        """The weights as `(N_source, N_target)` matrices, zero where there is no connection."""
        out = {}
        for name, w in self.weights.items():
            if self.targets is None:
                w = jnp.broadcast_to(w, (n_source, n_target))
                out[name] = w if self.mask is None else jnp.where(self.mask, w, 0.0)
                continue
            w = jnp.broadcast_to(w, self.targets.shape)
            rows = jnp.broadcast_to(jnp.arange(n_source)[:, None], self.targets.shape)
            cols = jnp.where(self.targets >= 0, self.targets, n_target)  # out of range: dropped
            out[name] = jnp.zeros((n_source, n_target), w.dtype).at[rows, cols].add(w, mode="drop")
        return out


    def connections(self, n_source: int, n_target: int) -> Bool[Array, "source target"] | None:
        """Which (source, target) pairs are connected (None: every pair)."""
        if self.targets is not None:
            rows = jnp.broadcast_to(jnp.arange(n_source)[:, None], self.targets.shape)
            cols = jnp.where(self.targets >= 0, self.targets, n_target)  # out of range: dropped
            return jnp.zeros((n_source, n_target), bool).at[rows, cols].set(True, mode="drop")
        return self.mask


class Network(eqx.Module):
    """Populations and the connections between them.

    `Network([a, b, c])`: a feed-forward stack, population k's neurons are k+1's
    input channels.  `Network({"exc": a, "inh": b}, projections=[...], input="exc")`:
    a graph of named populations and `Projection`s (cycles and self-connections
    allowed when they have a delay > 0); the external input spikes of `simulate`
    go to the population `input` (default: the first).
    """

    populations: list[Population]
    projections: list[Projection]
    names: tuple[str, ...] = eqx.field(static=True)
    input: int = eqx.field(static=True)  # the population receiving the external input spikes
    graph: bool = eqx.field(static=True)

    def __init__(
        self,
        populations: Population | Sequence[Population] | dict[str, Population],
        projections: Sequence[Projection] | None = None,
        input: str | None = None,
    ) -> None:
        if isinstance(populations, Population):
            populations = [populations]
        graph = isinstance(populations, dict) or projections is not None
        if isinstance(populations, dict):
            names = tuple(str(k) for k in populations)
            populations = list(populations.values())
        else:
            populations = list(populations)
            names = tuple(str(k) for k in range(len(populations)))
        self.populations, self.names, self.graph = populations, names, graph
        self.projections = list(projections or [])
        if not self.populations:
            raise EqError("Network needs at least one population", hint="Network([population, ...])")
        for k, pop in enumerate(self.populations):
            if not isinstance(pop, Population):
                raise EqError(
                    f"Network: entry {names[k]!r} is a {type(pop).__name__}, not a Population",
                    hint="make populations with model.population(n_neurons, in_size, key=...)",
                )
        if input is not None and input not in names:
            raise EqError(f"Network: `input` {input!r} is not a population", hint=did_you_mean(input, names) or f"populations: {', '.join(names)}")
        self.input = 0 if input is None else names.index(input)
        if not graph:
            for k in range(1, len(self.populations)):
                before, after = self.populations[k - 1], self.populations[k]
                if after.in_size != before.n_neurons:
                    raise EqError(
                        f"Network: population {k} has in_size={after.in_size} but population {k - 1} "
                        f"has {before.n_neurons} neurons",
                        hint=f"population {k} receives the spikes of population {k - 1}: give it in_size={before.n_neurons}",
                    )
            return
        for k, proj in enumerate(self.projections):
            _check_projection(self, k, proj)

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

    def population(self, name: str) -> Population:
        if name not in self.names:
            raise EqError(f"no population {name!r}", hint=did_you_mean(name, self.names) or f"populations: {', '.join(self.names)}")
        return self.populations[self.names.index(name)]


def _check_projection(net: Network, k: int, proj) -> None:
    where = f"Network: projection {k}"
    if not isinstance(proj, Projection):
        raise EqError(f"{where} is a {type(proj).__name__}, not a Projection",
                      hint="eqn.Projection(source, target, weights={...}, delay=...)")
    for end in (proj.source, proj.target):
        if end not in net.names:
            raise EqError(f"{where}: no population {end!r}", hint=did_you_mean(end, net.names) or f"populations: {', '.join(net.names)}")
    src, tgt = net.population(proj.source), net.population(proj.target)
    model = tgt.model
    shape = (src.n_neurons, tgt.n_neurons)
    if proj.targets is not None:
        t = proj.targets
        if t.ndim != 2 or t.shape[0] != src.n_neurons:
            raise EqError(f"{where}: `targets` must have shape ({src.n_neurons}, K): target ids per source neuron, "
                          f"got {tuple(t.shape)}", hint="e.g. eqn.connect.sparse(mask) or eqn.connect.sparse_fixed_fan_out(...)")
        if proj.mask is not None:
            raise EqError(f"{where}: give `targets` (sparse) or `mask` (dense), not both",
                          hint="a sparse projection lists its connections in `targets`")
        if _is_concrete(t) and t.size and (int(t.min()) < -1 or int(t.max()) >= tgt.n_neurons):
            raise EqError(f"{where}: `targets` holds ids outside -1..{tgt.n_neurons - 1}",
                          hint="target ids are 0..N_target-1, and -1 marks an unused slot")
        shape = (int(t.shape[0]), int(t.shape[1]))
    for name, w in proj.weights.items():
        if name not in model.weight_names:
            raise EqError(f"{where}: `{name}` is not a weight of {model.name}",
                          hint=did_you_mean(name, model.weight_names) or f"weights: {', '.join(model.weight_names) or 'none'}")
        if np.ndim(w) and tuple(np.shape(w)) != shape:
            what = "(source, slot of `targets`)" if proj.targets is not None else "(source, target)"
            raise EqError(f"{where}: weight `{name}` must be a scalar or have shape {shape} {what}, got {tuple(np.shape(w))}")
        if _is_concrete(w) and not np.all(np.isfinite(np.asarray(w))):
            raise EqError(f"{where}: weight `{name}` has non-finite entries", hint="give finite weights")
    missing = [n for n in model.weight_names if n not in proj.weights]
    if missing:
        raise EqError(f"{where}: no value for weight {', '.join(f'`{n}`' for n in missing)} of {model.name}",
                      hint="give every weight of the target model (a scalar is allowed)")
    if proj.mask is not None and tuple(proj.mask.shape) != shape:
        raise EqError(f"{where}: `mask` must have shape {shape} (source, target), got {tuple(proj.mask.shape)}")
    if proj.delay is not None:
        if proj.delay.ndim and tuple(proj.delay.shape) not in ((src.n_neurons,), shape):
            what = "(source, slot of `targets`)" if proj.targets is not None else "(source, target)"
            raise EqError(f"{where}: `delay` must be a scalar, one per source neuron ({src.n_neurons},) or one per "
                          f"synapse {shape} {what}, got {tuple(proj.delay.shape)}",
                          hint="e.g. delay=1.0, delay=jnp.full(N_source, 1.0), or an array shaped as the weights")
        if _is_concrete(proj.delay) and not np.all(np.asarray(proj.delay) >= 0):
            raise EqError(f"{where}: delays must be finite and >= 0 (ms)")
    ports = model.fn.port_names
    if proj.port is not None and proj.port not in ports:
        raise EqError(f"{where}: {proj.port!r} is not an input port of {model.name}",
                      hint=did_you_mean(proj.port, ports) or (f"ports: {', '.join(ports)}" if ports else f"{model.name} has no named ports"))
    if proj.port is None and len(ports) > 1:
        raise EqError(f"{where}: {model.name} has input ports {', '.join(ports)}: say which one with `port=`")


def _channel_ports(model, in_size: int, ports) -> tuple[int, ...]:
    """The port index of every input channel, from `{port: count}` or `{port: [channels]}`."""
    names = model.fn.port_names
    if not names:
        if ports is not None:
            raise EqError(
                f"`ports=` given, but {model.name} has no named input ports",
                hint="declare them in the model (`on_input exc:`, `on_input inh:`), or drop `ports=`",
            )
        return ()
    if ports is None:
        if len(names) == 1 or in_size == 0:
            return (0,) * in_size
        raise EqError(
            f"{model.name} has input ports {', '.join(names)}: say which channels go to which",
            hint=f"e.g. ports={{{', '.join(repr(n) + ': ...' for n in names)}}} with channel counts or lists of channel ids",
        )
    if not isinstance(ports, dict):
        raise EqError(f"`ports` must be a dict of port name -> channel count or channel ids, got {type(ports).__name__}")
    out = [-1] * in_size
    start = 0
    for name, channels in ports.items():
        if name not in names:
            raise EqError(
                f"`{name}` is not an input port of {model.name}",
                hint=did_you_mean(name, names) or f"ports: {', '.join(names)}",
            )
        if isinstance(channels, (int, np.integer)) and not isinstance(channels, bool):
            channels = list(range(start, start + int(channels)))
        channels = [int(c) for c in np.asarray(channels).reshape(-1)]
        for c in channels:
            if not 0 <= c < in_size:
                raise EqError(f"port `{name}`: channel {c} is not one of the {in_size} input channels",
                              hint=f"channel ids are 0..{in_size - 1}")
            if out[c] != -1:
                raise EqError(f"channel {c} is assigned to two ports ({names[out[c]]} and {name})",
                              hint="every channel belongs to exactly one port")
            out[c] = names.index(name)
        start = max(channels, default=start - 1) + 1
    missing = [c for c, k in enumerate(out) if k == -1]
    if missing:
        raise EqError(f"input channels {missing[:8]} are not assigned to a port",
                      hint=f"ports={{...}} must cover all {in_size} channels")
    return tuple(out)


def _scalars(values: dict) -> dict:
    return {k: v for k, v in values.items() if np.ndim(v) == 0}


def _is_concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


def _check_count(name: str, value, minimum: int, hint: str):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise EqError(f"`{name}` must be an integer >= {minimum}, got {value!r}", hint=hint)


def _check_integral(name: str, value):
    if not _is_concrete(value):
        return
    array = np.asarray(value)
    if array.dtype.kind == "f" and not np.all(np.mod(array[np.isfinite(array)], 1) == 0):
        raise EqError(f"Spikes: `{name}` must be integers, got non-integral values", hint="channel ids are 0..K-1")


def _rows_hint(n_neurons: int, in_size: int) -> str:
    return (
        f"rows are sources (rows 0..{n_neurons - 1} the population's own neurons, "
        f"rows {n_neurons}..{n_neurons + in_size - 1} its input channels), columns the {n_neurons} targets"
    )


def _check_weight(model, name: str, value, n_neurons: int, in_size: int):
    """A weight matrix given by the user: a known name, shape exactly (N+K, N), finite."""
    if name not in model.weight_names:
        raise EqError(
            f"`{name}` is not a weight of {model.name}",
            hint=did_you_mean(name, model.weight_names)
            or (f"weights: {', '.join(model.weight_names)}" if model.weight_names else f"{model.name} has no weights"),
        )
    shape = (n_neurons + in_size, n_neurons)
    got = tuple(np.shape(value))
    if got != shape:
        if got == shape[::-1] and shape[0] != shape[1]:
            hint = f"it looks transposed: {_rows_hint(n_neurons, in_size)}"
        elif got == (in_size, n_neurons):
            hint = (
                f"give all N+K rows, the own neurons' first: e.g. jnp.concatenate([jnp.zeros(({n_neurons}, "
                f"{n_neurons})), w_in]) (they are ignored without recurrence)"
            )
        else:
            hint = _rows_hint(n_neurons, in_size)
        raise EqError(f"weight `{name}` must have shape {shape} (N+K, N), got {got}", hint=hint)
    if _is_concrete(value) and not np.all(np.isfinite(np.asarray(value))):
        bad = int(np.sum(~np.isfinite(np.asarray(value))))
        raise EqError(f"weight `{name}` has {bad} non-finite entries (NaN or inf)", hint="give finite weights")


def _check_parameter_shape(model, name: str, value, n_neurons: int):
    if name not in model.ir.parameters:
        raise EqError(
            f"`{name}` is not a parameter of {model.name}",
            hint=did_you_mean(name, model.ir.parameters) or f"parameters: {', '.join(model.ir.parameters)}",
        )
    if np.ndim(value) > 0 and np.shape(value) != (n_neurons,):
        raise EqError(
            f"parameter `{name}` has shape {np.shape(value)}; expected a scalar or ({n_neurons},)",
            hint=f"give one value for all neurons, or one per neuron ({n_neurons} values)",
        )
