"""`eqneuron simulate`: drive a population, plot membrane traces and a raster."""

from __future__ import annotations

import math

import numpy as np

from ..errors import EqError


def poisson_spikes(key, rate_hz: float, channels: int, duration: float, max_events: int | None = None):
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


def run_simulate(args) -> int:
    """`eqneuron simulate` (float64 with `--x64`: `main` runs it in a `jax.enable_x64` context)."""
    import jax
    import jax.numpy as jnp

    from ..engine import simulate
    from ..model import compile_model

    overrides = dict(parse_param(item) for item in args.param)
    model = compile_model(args.model, params=overrides or None)
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
    pop = model.population(args.neurons, in_size, key=kw, params=pop_params or None)
    save_at = jnp.linspace(0.0, args.duration, 1001)
    out = simulate(pop, inputs, t1=args.duration, max_spikes=args.max_spikes, save_at=save_at, method=args.method)
    times = np.asarray(out.spike_times)
    ids = np.asarray(out.spike_neurons)
    valid = np.isfinite(times)
    print(f"{model.name}: {int(out.n_spikes)} spikes from {args.neurons} neurons in {args.duration:g} ms"
          f" ({model.integrator}){'  OVERFLOW' if bool(out.overflow) else ''}")
    states = {k: np.asarray(v) for k, v in out.states[0].items()}
    if args.save:
        np.savez(args.save, spike_times=times[valid], spike_neurons=ids[valid], t=np.asarray(save_at), **states)
        print(f"wrote {args.save}")
    if args.plot:
        plot_simulation(model, np.asarray(save_at), states, times[valid], ids[valid], args.neurons, args.plot)
        print(f"wrote {args.plot}")
    return 0


def plot_simulation(model, t, states, spike_times, spike_ids, n_neurons, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = model.states[0]
    shown = min(3, n_neurons)
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1, 1.4]})
    for k in range(shown):
        axes[0].plot(t, states[first][:, k], lw=1, label=f"neuron {k}")
        for s in spike_times[spike_ids == k]:
            axes[0].axvline(s, color=f"C{k}", ls=":", lw=0.6)
    axes[0].set_ylabel(first)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[0].set_title(f"{model.name}: {len(spike_times)} spikes")
    second = model.states[1] if len(model.states) > 1 else first
    for k in range(shown):
        axes[1].plot(t, states[second][:, k], lw=1)
    axes[1].set_ylabel(second)
    axes[2].plot(spike_times, spike_ids, "|", ms=6, color="k")
    axes[2].set_ylabel("neuron")
    axes[2].set_ylim(-0.5, n_neurons - 0.5)
    axes[2].set_xlabel("time (ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
