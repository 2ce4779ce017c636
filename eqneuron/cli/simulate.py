"""`eqneuron simulate`: drive a population, plot membrane traces and a raster, save the data."""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from jaxtyping import Float, Int, PRNGKeyArray

from ..errors import EqError
from ..lang.source import zoo_file

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ..engine.result import EventRecord
    from ..model import CompiledModel
    from ..network import Population, Spikes

# Zoo models whose states are in physical units (a copy of the zoo file, under any
# parameters, keeps them; any other model is labelled with its state names only).
ZOO_UNITS = {
    "adex": {"V": "mV", "w": "pA", "i": "pA"},
    "hh": {"v": "mV", "i": "pA"},
    "izhikevich": {"v": "mV"},
    "lif_coba": {"v": "mV"},
    "morris_lecar": {"V": "mV", "i": "µA"},
}
# The arrays `--save` writes besides one array per state variable.
SAVED_ARRAYS = ("spike_times", "spike_neurons", "save_at")
SAVE_POINTS = 1001
TRACES_SHOWN = 3
# a run that lasts longer than this many seconds draws a progress bar on stderr
PROGRESS_DELAY = 2.0


def poisson_spikes(
    key: PRNGKeyArray, rate_hz: float, channels: int, duration: float, max_events: int | None = None
) -> Spikes:
    """Independent Poisson trains on `channels` channels (times in ms), padded with inf."""
    import jax

    from ..network import Spikes

    expected = rate_hz * 1e-3 * duration * channels
    size = max_events or int(expected + 6 * np.sqrt(expected + 1) + 8)
    k1, k2 = jax.random.split(key)
    gaps = jax.random.exponential(k1, (size,)) / max(rate_hz * 1e-3 * channels, 1e-12)
    times = np.cumsum(np.asarray(gaps))
    times = np.where(times <= duration, times, np.inf)
    chans = np.asarray(jax.random.randint(k2, (size,), 0, channels))
    return Spikes(times, chans)


def parse_param(item: str) -> tuple[str, float]:
    """`NAME=VALUE` of `--param` as (name, value)."""
    name, equals, value = item.partition("=")
    hint = "give --param NAME=VALUE, e.g. --param tmem=20"
    if not equals or not name.strip():
        raise EqError(f"--param {item!r}: expected NAME=VALUE", hint=hint)
    try:
        number = float(value)
    except ValueError:
        raise EqError(f"--param {item!r}: {value!r} is not a number", hint=hint) from None
    if not math.isfinite(number):
        raise EqError(f"--param {item!r}: the value must be finite", hint=hint)
    return name.strip(), number


def parse_ports(items: list[str], channels: int) -> dict[str, int] | None:
    """`--port NAME=COUNT` options -> `{name: count}` (consecutive channels, in order)."""
    if not items:
        return None
    ports = {}
    for item in items:
        name, _, count = item.partition("=")
        if not name.isidentifier() or not count.strip().isdigit():
            raise EqError(f"--port expects NAME=COUNT, got {item!r}", hint="e.g. --port exc=16 --port inh=4")
        ports[name] = int(count)
    if sum(ports.values()) != channels:
        raise EqError(
            f"--port counts add up to {sum(ports.values())}, but there are {channels} input channels",
            hint="make the counts add up to --channels",
        )
    return ports


def parse_waveforms(items: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`--waveform NAME=FILE` options -> `{name: (times, values)}`.

    FILE is a `.npy` array or a `.csv` file (comma-separated, an optional header
    line), one row per sample: the time (ms), then one value (all neurons) or
    one value per neuron.
    """
    waveforms = {}
    for item in items:
        name, equals, path = item.partition("=")
        name = name.strip()
        hint = "e.g. --waveform I_ext=current.csv: one row per sample, the time (ms) then one value or one per neuron"
        if not equals or not name.isidentifier() or not path.strip():
            raise EqError(f"--waveform expects NAME=FILE, got {item!r}", hint=hint)
        if name in waveforms:
            raise EqError(f"--waveform {name} is given twice", hint="give each input once")
        table = _read_table(path.strip(), f"--waveform {item}")
        if table.ndim != 2 or table.shape[1] < 2 or table.shape[0] < 2:
            raise EqError(
                f"--waveform {item}: expected rows of a time and its values (at least 2 rows, 2 columns), "
                f"got an array of shape {table.shape}",
                hint=hint,
            )
        values = table[:, 1] if table.shape[1] == 2 else table[:, 1:]
        waveforms[name] = (table[:, 0], values)
    return waveforms


def waveforms_for(model: CompiledModel, items: list[str]) -> dict:
    """The samples of every input of `model` from `--waveform` options (an error naming a missing one)."""
    from ..errors import did_you_mean

    waveforms = parse_waveforms(items)
    inputs = model.ir.inputs
    for name in waveforms:
        if name not in inputs:
            raise EqError(
                f"--waveform {name}: `{name}` is not an input of {model.name}",
                hint=did_you_mean(name, inputs)
                or (f"inputs: {', '.join(inputs)}" if inputs else f"{model.name} has no inputs: drop --waveform"),
            )
    missing = [name for name in inputs if name not in waveforms]
    if missing:
        raise EqError(
            f"{model.name} has the input `{missing[0]}` (line {model.ir.inputs[missing[0]].span.line}): "
            "give its samples with --waveform",
            hint=f"--waveform {missing[0]}=FILE, a .npy or .csv file with one row per sample: "
            "the time (ms), then one value or one per neuron",
        )
    return waveforms


def _read_table(path: str, option: str) -> np.ndarray:
    from pathlib import Path

    file = Path(path).expanduser()
    if not file.is_file():
        raise EqError(f"{option}: no file {path}", hint="give the path of a .npy or .csv file")
    try:
        if file.suffix.lower() == ".npy":
            table = np.load(file, allow_pickle=False)
        else:
            lines = [line for line in file.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
            header = bool(lines) and not _is_number(lines[0].split(",")[0])
            table = np.loadtxt(lines[1:] if header else lines, delimiter=",", ndmin=2)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise EqError(
            f"{option}: cannot read {path}: {error}",
            hint="a .npy array, or a .csv file of numbers separated by commas (an optional header line)",
        ) from None
    if not np.issubdtype(table.dtype, np.number):
        raise EqError(f"{option}: {path} holds {table.dtype} values, not numbers", hint="save a float array")
    return np.asarray(table, float)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def run_simulate(args: argparse.Namespace) -> int:
    """`eqneuron simulate` (float64 with `--x64`: `main` runs it in a `jax.enable_x64` context)."""
    import jax
    import jax.numpy as jnp

    from ..engine import simulate
    from ..model import compile_model

    overrides = dict(parse_param(item) for item in args.param)
    model = compile_model(args.model, params=overrides or None)
    clashes = sorted(set(SAVED_ARRAYS) & set(model.states))
    if args.save and clashes:
        raise EqError(
            f"--save: the state `{clashes[0]}` has the name of another array in the file",
            hint=f"rename the state: {', '.join(SAVED_ARRAYS)} are the spikes and the save times",
        )
    key = jax.random.key(args.seed)
    kw, ki = jax.random.split(key)
    pop_params = {}
    inputs, in_size = None, 0
    if args.current is not None:
        if args.bias_param not in model.params:
            from ..errors import did_you_mean

            raise EqError(
                f"{model.name} has no parameter `{args.bias_param}` for --current",
                hint=did_you_mean(args.bias_param, model.params)
                or f"choose the parameter with --bias-param: {', '.join(model.params)}",
            )
        pop_params[args.bias_param] = args.current
    if args.poisson is not None:
        in_size = args.channels
        inputs = poisson_spikes(ki, args.poisson, args.channels, args.duration)
    ports = parse_ports(args.port, args.channels) if in_size else None
    waveforms = waveforms_for(model, args.waveform)
    pop = model.population(
        args.neurons, in_size, key=kw, params=pop_params or None, ports=ports, waveforms=waveforms or None
    )
    save_at = jnp.linspace(0.0, args.duration, SAVE_POINTS)
    out = simulate(
        pop, inputs, t1=args.duration, max_spikes=args.max_spikes, save_at=save_at, method=args.method,
        progress=False if args.no_progress else PROGRESS_DELAY,
    )
    times = np.asarray(out.spike_times)
    ids = np.asarray(out.spike_neurons)
    valid = np.isfinite(times)
    print(
        f"{model.name}: {int(out.n_spikes)} spikes from {args.neurons} neurons in {args.duration:g} ms"
        f" ({model.integrator}){'  OVERFLOW' if bool(out.overflow) else ''}"
    )
    states = {k: np.asarray(v) for k, v in out.states[0].items()}
    events = internal_events(out.events[0])
    if events:
        counts = ", ".join(f"{len(t)} {name}" for name, (t, _) in events.items())
        print(f"internal events: {counts}")
    if args.save:
        # Any: `savez` would type the arrays passed by keyword like its `allow_pickle` flag
        arrays: dict[str, Any] = {
            "spike_times": times[valid],
            "spike_neurons": ids[valid],
            "save_at": np.asarray(save_at),
            **states,
        }
        for name, (t, n) in events.items():
            arrays[f"event_{name}_times"], arrays[f"event_{name}_neurons"] = t, n
        np.savez(args.save, **arrays)
        print(f"wrote {args.save}")
    if args.plot:
        figure = plot_simulation(pop, np.asarray(save_at), states, times[valid], ids[valid], events)
        figure.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")
    return 0


def internal_events(record: EventRecord | None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A population's internal events by name: (times, neurons) in time order, padding dropped."""
    if record is None:
        return {}
    out = {}
    for name in record.names:
        t, n = record.of(name)
        t, n = np.asarray(t), np.asarray(n)
        keep = np.isfinite(t)
        out[name] = (t[keep], n[keep])
    return out


def state_units(model: CompiledModel) -> dict[str, str]:
    """The units of a model's states where they are known, by state name.

    A file written with units declares them; a zoo model written in plain
    numbers of physical units (an unchanged copy of its file, under any
    parameters) has them listed in `ZOO_UNITS`. Any other model: `{}`.
    """
    declared = {name: unit for name, unit in model.ir.units.items() if name in model.states}
    if declared:
        return declared
    for stem, units in ZOO_UNITS.items():
        path = zoo_file(stem)
        if path is not None and path.read_text() == model.ir.source.text:
            return dict(units)
    return {}


def axis_label(model: CompiledModel, state: str) -> str:
    """`v (mV)` where the unit is known, else the state's name."""
    unit = state_units(model).get(state)
    return f"{state} ({unit})" if unit else state


def _threshold_slope(model: CompiledModel, state: str) -> float | None:
    """The constant factor of `state` in the threshold condition, or None if it is not linear in it."""
    import sympy as sp

    from ..ir import symbol

    x = symbol(state)
    slope = sp.diff(model.ir.threshold, x)
    if slope.is_number and slope != 0 and sp.diff(slope, x) == 0:
        return float(slope)
    return None


def plotted_states(model: CompiledModel) -> tuple[str, str | None]:
    """The states `plot_simulation` draws: the one the threshold is a condition on, and one more.

    The first is the first state in which the threshold condition is linear
    (`v` of `v > v_th`, `y` of resonate-and-fire's `y > a_thresh`), so each
    spike can be drawn at its threshold; else the first state. The second is
    another state of the threshold (an adaptive threshold's `a`), else the
    next state of the model; None for a model with one state.
    """
    in_threshold = [s for s in model.states if s in {str(x) for x in model.ir.threshold.free_symbols}]
    first = next((s for s in in_threshold if _threshold_slope(model, s) is not None), model.states[0])
    others = [s for s in in_threshold if s != first] + [s for s in model.states if s != first]
    return first, (others[0] if others else None)


def spike_heights(
    pop: Population,
    state: str,
    save_at: Float[np.ndarray, " saves"],
    states: dict[str, Float[np.ndarray, "saves neurons"]],
    spike_times: Float[np.ndarray, " spikes"],
    spike_neurons: Int[np.ndarray, " spikes"],
) -> Float[np.ndarray, " spikes"] | None:
    """The value of `state` at which each spike's threshold was crossed, or None.

    Defined when the threshold condition is `state` times a nonzero constant
    plus terms without `state` (`v > v_th`, `v < 1 - w`): the height is where
    the condition is zero. Terms of other states (an adaptive threshold) take
    their values at the last save point before the spike. Another threshold
    (`v**2 > 1`, or one without `state`) has no such height: None.
    """
    import jax
    import jax.numpy as jnp

    model = pop.model
    slope = _threshold_slope(model, state)
    if slope is None:
        return None
    if len(spike_times) == 0:
        return np.zeros(0)
    row = model.states.index(state)
    before = np.clip(np.searchsorted(save_at, spike_times, side="left") - 1, 0, len(save_at) - 1)
    stacked = np.stack([states[name] for name in model.states], axis=1)  # (saves, states, neurons)
    y = jnp.asarray(stacked[before]).at[:, row, :].set(0.0)  # the condition without its `state` term
    params = pop.parameter_values()
    condition = jax.vmap(lambda t, yt: model.fn.spike_condition(t, yt, params))(jnp.asarray(spike_times), y)
    rest = np.asarray(condition)[np.arange(len(spike_times)), spike_neurons]
    return -rest / slope


def plot_simulation(
    pop: Population,
    save_at: Float[np.ndarray, " saves"],
    states: dict[str, Float[np.ndarray, "saves neurons"]],
    spike_times: Float[np.ndarray, " spikes"],
    spike_neurons: Int[np.ndarray, " spikes"],
    events: dict | None = None,
) -> Figure:
    """Traces of two states (`plotted_states`) of up to three neurons, their spikes, and a raster
    (with the internal events of `events`: name -> (times, neurons), if any).

    Each spike is drawn where it happened: a dot at the spike time on the
    threshold (`spike_heights`), the trace drawn up to it and then down to the
    value after the reset, so a sampled trace reaches its threshold at every
    spike. Where the threshold has no such height, a dotted line marks the
    spike time. Time is in ms; states of zoo models in physical units carry
    them (`v (mV)`), others are labelled by name.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    model = pop.model
    first, second = plotted_states(model)
    shown = min(TRACES_SHOWN, pop.n_neurons)
    traced = spike_neurons < shown
    spike_times_traced, spike_neurons_traced = spike_times[traced], spike_neurons[traced]
    heights = spike_heights(pop, first, save_at, states, spike_times_traced, spike_neurons_traced)
    figure = Figure(figsize=(9, 7 if second else 5.5))
    rows = [2, 1, 1.4] if second else [2, 1.4]
    axes = figure.subplots(len(rows), 1, sharex=True, gridspec_kw={"height_ratios": rows})
    trace_axes, raster = axes[:-1], axes[-1]
    for k in range(shown):
        colour = f"C{k}"
        mine = spike_neurons_traced == k
        t, v = save_at, states[first][:, k]
        if heights is not None and mine.any():
            # the trace passes through each spike's point; the next save point is after its reset
            t = np.concatenate([t, spike_times_traced[mine]])
            v = np.concatenate([v, heights[mine]])
            order = np.argsort(t, kind="stable")
            t, v = t[order], v[order]
        trace_axes[0].plot(t, v, lw=1, color=colour, label=f"neuron {k}")
        if heights is not None:
            trace_axes[0].plot(
                spike_times_traced[mine], heights[mine], "o", ms=4, color=colour, gid=f"spikes-{k}"
            )
        else:
            for s in spike_times_traced[mine]:
                trace_axes[0].axvline(s, color=colour, ls=":", lw=0.6)
        if second:
            trace_axes[1].plot(save_at, states[second][:, k], lw=1, color=colour)
    trace_axes[0].set_ylabel(axis_label(model, first))
    trace_axes[0].legend(loc="upper right", fontsize=8)
    trace_axes[0].set_title(
        f"{model.name}: {_count(len(spike_times), 'spike')} from {_count(pop.n_neurons, 'neuron')}"
    )
    if second:
        trace_axes[1].set_ylabel(axis_label(model, second))
    raster.plot(spike_times, spike_neurons, "|", ms=6, color="k", label="spikes")
    markers = "x+1234"
    for j, (name, (t, n)) in enumerate((events or {}).items()):
        # internal events: on the raster, and as ticks at the bottom of the traced neurons' panel
        raster.plot(t, n, markers[j % len(markers)], ms=5, color=f"C{(j + 3) % 10}", label=f"event {name}",
                    gid=f"events-{name}")
        for k in range(shown):
            for s in t[n == k]:
                trace_axes[0].axvline(s, ymax=0.06, color=f"C{k}", lw=1.2)
    if events:
        raster.legend(loc="upper right", fontsize=8)
    raster.set_ylabel("neuron")
    raster.set_ylim(-0.5, pop.n_neurons - 0.5)
    raster.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    raster.set_xlabel("time (ms)")
    figure.tight_layout()
    return figure


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
