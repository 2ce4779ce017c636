"""Training loops on Optax: jitted batched steps, clipping, schedules, checkpoints, resume.

`eqneuron train TASK --model NAME` and `eqn.training.train(...)` share this code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypedDict

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree
from tqdm import tqdm

from ..compilation_cache import enable_compilation_cache, persistent_jit
from ..engine import simulate
from ..engine.adjoint import ADJOINTS
from ..errors import EqError, did_you_mean
from ..model import CompiledModel, compile_model
from ..network import Network, Population, Spikes
from . import datasets, losses


@dataclass
class TrainConfig:
    task: str = "yinyang"  # yinyang | digits | mnist | xor
    model: str = "lif"
    hidden: int | None = None
    epochs: int = 20
    batch_size: int = 32
    lr: float | None = None  # default 1e-3 (5e-3 for izhikevich)
    seed: int = 0
    train_size: int | None = None
    test_size: int | None = None
    mnist_path: str | None = None
    clip: float = 1.0
    tau: float = 0.5  # softmax temperature of the TTFS loss (ms)
    alpha: float = 0.01  # TTFS regulariser strength
    deficit_scale: float | None = None  # ms per unit of threshold deficit of a silent correct output
    revive: float | None = None  # strength of the pull of silent hidden neurons towards threshold
    jitter: float | None = None  # ms: Gaussian noise on training input spike times (augmentation)
    shift: int | None = None  # pixels: random image translation of training samples (image tasks)
    weight_decay: float = 0.0  # decoupled (AdamW) weight decay
    loss: str | None = None  # "ttfs" (first output spike) | "state" (final value of the readout's first state)
    state_scale: float = 10.0  # logits = state_scale * final state, for loss="state"
    max_spikes: int | None = None  # spike buffer per population (default 512; 1024 for izhikevich)
    adjoint: str = "loop"  # how gradients are computed: "loop" | "eventprop" (`simulate`'s `adjoint`)
    out: str = "runs/train"

    def __post_init__(self) -> None:
        # unset options take the model's defaults, then the general ones
        for name, value in {**GENERAL_DEFAULTS, **MODEL_DEFAULTS.get(self.model, {})}.items():
            if getattr(self, name) is None:
                setattr(self, name, value)


GENERAL_DEFAULTS = dict(lr=1e-3, deficit_scale=10.0, revive=1.0, max_spikes=512)
# The surrogate terms are measured in units of the spike condition: 1 for LIF's
# `v > 1`, mV for Izhikevich's `v > v_th`, whose deficits are ~100x larger.
# An Izhikevich hidden layer of 120 fires ~660 spikes per Yin-Yang sample (every
# neuron ~5 times in 60 ms): 512 slots overflowed in every sample.
MODEL_DEFAULTS = {"izhikevich": dict(lr=5e-3, deficit_scale=0.1, revive=0.01, max_spikes=1024)}


class _TaskOptions(TypedDict, total=False):
    jitter: float
    shift: int
    loss: str


class TaskDefaults(_TaskOptions):
    """A task's values for the options left unset (`None`: the whole data set)."""

    hidden: int
    train_size: int | None
    test_size: int | None


TASK_DEFAULTS: dict[str, TaskDefaults] = {
    "yinyang": TaskDefaults(hidden=120, train_size=5000, test_size=1000),
    "digits": TaskDefaults(hidden=200, train_size=None, test_size=None, jitter=2.0),
    "mnist": TaskDefaults(hidden=200, train_size=None, test_size=10000),
    "xor": TaskDefaults(hidden=16, train_size=1000, test_size=200, loss="state"),
}


LOSSES = ("ttfs", "state")


def check_config(config: TrainConfig) -> None:
    """Raise an `EqError` naming the option when a training setting is out of range.

    Run before any data is loaded or anything compiled: `hidden=0` or `epochs=0`
    is an error, never "the default" or an empty run.
    """
    if config.task not in TASK_DEFAULTS:
        raise EqError(
            f"unknown task {config.task!r}",
            hint=" ".join(filter(None, [did_you_mean(config.task, TASK_DEFAULTS), f"tasks: {', '.join(TASK_DEFAULTS)}"])),
        )
    counts = {"epochs": 1, "batch_size": 1, "hidden": 1, "train_size": 1, "test_size": 1, "max_spikes": 1, "shift": 0}
    for name, minimum in counts.items():
        value = getattr(config, name)
        if value is None and name not in ("epochs", "batch_size"):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise EqError(f"{_option(name)} must be an integer >= {minimum}, got {value!r}", hint=_HINTS.get(name))
    positive = ("lr", "tau", "clip", "state_scale")
    non_negative = ("alpha", "revive", "deficit_scale", "jitter", "weight_decay")
    for name in positive + non_negative:
        value = getattr(config, name)
        if value is None:
            continue
        lowest_ok = not isinstance(value, bool) and isinstance(value, (int, float, np.number)) and math.isfinite(value)
        if not lowest_ok or (value <= 0 if name in positive else value < 0):
            bound = "> 0" if name in positive else ">= 0"
            raise EqError(f"{_option(name)} must be a finite number {bound}, got {value!r}", hint=_HINTS.get(name))
    if config.shift and config.task not in ("digits", "mnist"):
        raise EqError(
            f"{_option('shift')} translates images: the {config.task} task has none",
            hint="use --shift with the digits or mnist task",
        )
    if config.adjoint not in ADJOINTS:
        raise EqError(
            f"{_option('adjoint')} must be one of {', '.join(ADJOINTS)}, got {config.adjoint!r}",
            hint="loop: reverse mode through the event loops; eventprop: the event-based adjoint",
        )
    if config.loss is not None and config.loss not in LOSSES:
        raise EqError(
            f"{_option('loss')} must be one of {', '.join(LOSSES)}, got {config.loss!r}",
            hint="ttfs: the first output spike decides; state: the readout's final state",
        )
    if config.task == "mnist":
        if not config.mnist_path:
            raise EqError("the mnist task needs the IDX files", hint="pass --mnist-path DIR (mnist_path=...)")
        if not Path(config.mnist_path).is_dir():
            raise EqError(
                f"{_option('mnist_path')}: no such directory: {config.mnist_path}",
                hint="the directory with the MNIST IDX files (train-images-idx3-ubyte[.gz], ...)",
            )
    out = Path(config.out)
    if out.exists() and not out.is_dir():
        raise EqError(f"{_option('out')}: {config.out} exists and is not a directory", hint="give a directory")


def _option(name: str) -> str:
    return f"`{name}` (--{name.replace('_', '-')})"


_HINTS = {
    "epochs": "the number of passes over the training set, e.g. --epochs 20",
    "batch_size": "samples per step, e.g. --batch-size 32",
    "hidden": "the number of hidden neurons; leave it out for the task's default",
    "train_size": "the number of training samples; leave it out for the task's default",
    "test_size": "the number of test samples; leave it out for the task's default",
    "max_spikes": "the spike buffer per population; leave it out for the default (512)",
    "shift": "pixels of random translation (0: none)",
    "lr": "the learning rate, e.g. --lr 1e-3",
    "tau": "the softmax temperature of the TTFS loss in ms, e.g. --tau 0.5",
    "clip": "the gradient norm clip, e.g. 1.0",
    "state_scale": "logits per unit of the readout state, e.g. 10",
    "alpha": "the TTFS regulariser strength (0: none)",
    "revive": "the pull of silent hidden neurons (0: none)",
    "deficit_scale": "ms per unit of threshold deficit (0: none)",
    "jitter": "ms of input time noise (0: none)",
    "weight_decay": "the AdamW weight decay (0: none)",
}


# Delayed XOR starts from an active network: with the zoo defaults (b_u = -2,
# b_z = 0, weights ~ N(0, 1)) an EGRU cell state never reaches threshold, no
# hidden neuron fires and nothing can be learned.  b_z = 1 drives the cell
# state towards tanh(1) = 0.76 > thresh and b_u = 0 opens the update gate
# halfway (cell time constant 40 ms): hidden neurons fire a few times per trial.
# The readout never fires (thresh 2 > |tanh|): its cell state integrates the hidden
# spikes, and its value at t1 is the logit (loss="state").
class XorStart(TypedDict, total=False):
    params: dict[str, float]  # of the hidden population
    weight_scale: float  # of every initial weight
    readout_params: dict[str, float]


XOR_INIT: dict[str, XorStart] = {
    "egru": XorStart(params={"b_u": 0.0, "b_z": 1.0}, weight_scale=3.0, readout_params={"thresh": 2.0})
}


def load_task(config: TrainConfig) -> tuple[datasets.EventDataset, datasets.EventDataset]:
    """The training and test sets of `config.task`, cut to `train_size` and `test_size`."""
    d = TASK_DEFAULTS[config.task]
    n_train = d["train_size"] if config.train_size is None else config.train_size
    n_test = d["test_size"] if config.test_size is None else config.test_size
    if config.task == "yinyang":
        train = datasets.yinyang(n_train or 5000, seed=42)
        test = datasets.yinyang(n_test or 1000, seed=41)
    elif config.task == "digits":
        train, test = datasets.digits("train"), datasets.digits("test")
    elif config.task == "mnist":
        if not config.mnist_path:
            raise EqError("the mnist task needs the IDX files", hint="pass --mnist-path DIR (mnist_path=...)")
        train = datasets.mnist(config.mnist_path, "train", limit=n_train)
        test = datasets.mnist(config.mnist_path, "test", limit=n_test)
    elif config.task == "xor":
        train = datasets.delayed_xor(n_train or 1000, seed=config.seed)
        test = datasets.delayed_xor(n_test or 200, seed=config.seed + 1000)
    else:
        check_config(config)  # raises: an unknown task
    if n_train and len(train) > n_train:
        train = train.subset(slice(0, n_train))
    if n_test and len(test) > n_test:
        test = test.subset(slice(0, n_test))
    return train, test


def build_network(config: TrainConfig, n_channels: int, n_classes: int, key: PRNGKeyArray) -> Network:
    """A hidden population of the chosen model and a readout of the same model."""
    hidden = TASK_DEFAULTS[config.task]["hidden"] if config.hidden is None else config.hidden
    k1, k2 = jax.random.split(key)
    model = compile_model(config.model)
    if config.task == "xor":
        # a recurrent hidden population carries the first bit across the delay
        init = XOR_INIT.get(config.model, XorStart())
        params, scale = init.get("params", {}), init.get("weight_scale", 1.0)
        pops = [model.population(hidden, n_channels, key=k1, recurrent=True, params=params),
                model.population(n_classes, hidden, key=k2, params=init.get("readout_params", {}))]
        return Network([pop.replace(weights={k: scale * w for k, w in pop.weights.items()}) for pop in pops])
    return Network([model.population(hidden, n_channels, key=k1), model.population(n_classes, hidden, key=k2)])


def _shift_images(
    times: Float[np.ndarray, "samples pixels"], side: int, shift: int, rng: np.random.Generator
) -> Float[np.ndarray, "samples pixels"]:
    """Translate each sample's pixel grid by up to `shift` pixels (pixels moved in are silent)."""
    grid = times.reshape(len(times), side, side)
    out = np.full_like(grid, np.inf)
    for n, (dy, dx) in enumerate(rng.integers(-shift, shift + 1, size=(len(times), 2))):
        src = grid[n, max(0, -dy) : side - max(0, dy), max(0, -dx) : side - max(0, dx)]
        out[n, max(0, dy) : max(0, dy) + src.shape[0], max(0, dx) : max(0, dx) + src.shape[1]] = src
    return out.reshape(times.shape)


def _batch_spikes(
    data: datasets.EventDataset,
    index: Int[np.ndarray, " batch"],
    jitter: float = 0.0,
    rng: np.random.Generator | None = None,
    shift: int = 0,
) -> Spikes:
    values = None if data.values is None else jnp.asarray(data.values[index])
    times = data.times[index]
    if shift:
        assert rng is not None, "augmentation draws from `rng`"
        side = int(round(np.sqrt(data.n_channels)))
        if times.shape[1] != side * side or np.any(data.channels[index] != np.arange(side * side)):
            raise EqError("shift augmentation needs one channel per pixel, in order", hint="use it on image tasks")
        times = _shift_images(times, side, shift, rng)
    if jitter:
        assert rng is not None, "augmentation draws from `rng`"
        times = np.maximum(times + jitter * rng.standard_normal(times.shape), 0.0)  # inf stays inf
    return Spikes(jnp.asarray(times), jnp.asarray(data.channels[index]), values)


def _optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """AdamW without its learning rate: the training step scales the update by the rate of its
    step (`_schedule`), an argument of the compiled program rather than a constant in it, so that
    a run resumed with more epochs (another schedule) compiles nothing new."""
    return optax.chain(
        optax.clip_by_global_norm(config.clip),
        optax.scale_by_adam(),
        optax.add_decayed_weights(config.weight_decay),
        optax.scale(-1.0),
    )


def _schedule(config: TrainConfig, steps_per_epoch: int) -> optax.Schedule:
    """The learning rate of each step: cosine decay over the whole run to 5 % of `lr`."""
    assert config.lr is not None  # set by __post_init__
    return optax.cosine_decay_schedule(config.lr, decay_steps=max(1, config.epochs * steps_per_epoch), alpha=0.05)


def loss_kind(config: TrainConfig) -> str:
    kind = config.loss or TASK_DEFAULTS[config.task].get("loss", "ttfs")
    if kind not in LOSSES:
        raise EqError(f"unknown loss {kind!r}", hint=f"choose one of {', '.join(LOSSES)}")
    return kind


_NOT_IN_PROGRAM = ("out", "epochs", "lr")


def program_key(config: TrainConfig, t1: float, *extra: str) -> str:
    """What determines the programs `train` and `evaluate` trace: every option but the output
    folder, the number of epochs and the learning rate (the step's rate is an argument), the
    model's source, the data's duration (for `persistent_jit`)."""
    options = {k: v for k, v in asdict(config).items() if k not in _NOT_IN_PROGRAM}
    model = compile_model(config.model)
    material = [json.dumps(options, sort_keys=True, default=str), model_source_hash(model), repr(float(t1)), *extra]
    return hashlib.sha256("\0".join(material).encode()).hexdigest()


def make_functions(config: TrainConfig, t1: float) -> tuple[Callable, Predict]:
    """Jitted per-batch loss/gradient and prediction functions: `(value_and_grad, predict)`.

    `value_and_grad(net, spikes, labels)` returns `((loss, (accuracy, overflow)), grads)`
    of a batch; `predict(net, spikes)` the predicted classes."""

    grid = jnp.linspace(0.0, t1, 25)
    by_state = loss_kind(config) == "state"
    max_spikes, deficit_scale, revive = config.max_spikes, config.deficit_scale, config.revive
    assert max_spikes is not None and deficit_scale is not None and revive is not None  # set by __post_init__

    def sample_outputs(net, spikes):
        out = simulate(
            net, spikes, t1=t1, max_spikes=max_spikes, stop_after_first_spike=not by_state, save_at=grid, adjoint=config.adjoint
        )
        readout = net.populations[-1]
        saved = out.states[-1]
        y = jnp.stack([saved[name] for name in readout.model.states], axis=1)  # (times, states, N)
        p = readout.parameter_values()
        g = jax.vmap(lambda t, yt: readout.model.fn.spike_condition(t, yt, p))(grid, y)
        # how far a silent output stayed below threshold: its way back to firing
        deficit = -jnp.max(g, axis=0)
        # the same for hidden neurons: silent ones are pulled towards threshold
        hidden_deficit = jnp.asarray(0.0, g.dtype)
        for pop, saved_k, counts in zip(net.populations[:-1], out.states[:-1], out.counts[:-1]):
            yk = jnp.stack([saved_k[name] for name in pop.model.states], axis=1)
            pk = pop.parameter_values()
            gk = jax.vmap(lambda t, yt, pop=pop, pk=pk: pop.model.fn.spike_condition(t, yt, pk))(grid, yk)
            hidden_deficit = hidden_deficit + jnp.mean(jnp.where(counts == 0, jax.nn.relu(-jnp.max(gk, axis=0)), 0.0))
        if by_state:  # logits: the readout's first state at t1
            return config.state_scale * y[-1, 0], deficit, out.overflow, hidden_deficit
        return out.first_spikes[-1], deficit, out.overflow, hidden_deficit

    def prediction(outputs):
        return jnp.argmax(outputs) if by_state else losses.ttfs_prediction(outputs)

    def batch_loss(net, spikes, labels):
        first, deficit, overflow, hidden_deficit = jax.vmap(lambda s: sample_outputs(net, s))(spikes)
        if by_state:
            per_sample = jax.vmap(losses.state_cross_entropy)(first, labels)
        else:
            per_sample = jax.vmap(
                lambda f, d, y: losses.ttfs_cross_entropy(
                    f, y, tau=config.tau, t_silent=t1, alpha=config.alpha, beta=t1, deficit=d,
                    deficit_scale=deficit_scale,
                )
            )(first, deficit, labels)
        correct = jax.vmap(prediction)(first) == labels
        loss = jnp.mean(per_sample) + revive * jnp.mean(hidden_deficit)
        return loss, (jnp.mean(correct), jnp.mean(overflow))

    value_and_grad = eqx.filter_jit(eqx.filter_value_and_grad(batch_loss, has_aux=True))

    def predict(net, spikes):
        first, _, _, _ = jax.vmap(lambda s: sample_outputs(net, s))(spikes)
        return jax.vmap(prediction)(first)

    # traced once per configuration and kept on disk: a later process classifies without tracing
    persistent = persistent_jit(predict, name="predict", key=program_key(config, t1), out_structure=lambda net, spikes: 0)
    return value_and_grad, persistent


def trainable_filter(net: Network) -> Network:
    """Weights and `trainable` parameters are trained; everything else stays fixed.

    **Returns:** the network's structure with a boolean at each leaf (`eqx.partition`'s filter)."""
    spec = jax.tree_util.tree_map(lambda _: False, net)
    return eqx.tree_at(lambda s: s.populations, spec, [_trainable_leaves(pop) for pop in net.populations])


def _trainable_leaves(pop: Population) -> Population:
    spec = jax.tree_util.tree_map(lambda _: False, pop)
    weights = {name: True for name in pop.weights}
    params = {name: name in pop.model.ir.trainable and eqx.is_array(v) for name, v in pop.params.items()}
    return eqx.tree_at(lambda s: (s.weights, s.params), spec, (weights, params))


# `predict(net, spikes)`: the predicted class of each sample of a batch of input spikes
Predict = Callable[[Network, Spikes], Int[Array, " batch"]]


def accuracy(
    predict: Predict,
    net: Network,
    data: datasets.EventDataset,
    batch_size: int,
    progress: bool = False,
    desc: str = "evaluate",
) -> float:
    """The fraction of `data` that `predict` classifies correctly, in batches of `batch_size`.

    **Arguments:**

    - `predict`: the batched classifier of `make_functions`.
    - `net`: the network it classifies with.
    - `data`: the samples and their labels; the last batch is padded.
    - `progress`: show a progress bar (on standard error) with the running accuracy.
    - `desc`: the bar's label.
    """
    correct, seen = 0, 0
    starts = range(0, len(data), batch_size)
    with tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False, dynamic_ncols=True) as bar:
        for start in bar:
            index = np.arange(start, min(start + batch_size, len(data)))
            pad = batch_size - len(index)
            padded = np.concatenate([index, np.zeros(pad, int)]) if pad else index
            pred = np.asarray(predict(net, _batch_spikes(data, padded)))[: len(index)]
            correct += int(np.sum(pred == data.labels[index]))
            seen += len(index)
            bar.set_postfix(acc=f"{correct / seen:.3f}", refresh=False)
    return correct / len(data)


class _BestEpoch(TypedDict, total=False):
    best_epoch: int  # counted from 1
    best_test_acc: float


class TrainResult(_BestEpoch):
    """What `train` returns; the best epoch is missing when no epoch ran."""

    test_acc: float
    history: dict[str, list[float]]  # per epoch: epoch, loss, train_acc, test_acc, seconds


def train(config: TrainConfig, resume: bool = False, verbose: bool = True) -> TrainResult:
    """Train and evaluate; writes `checkpoint.eqx`, `meta.json`, `history.json`, `curves.png` to `out`.

    **Arguments:**

    - `config`: the task, the model and every training setting (`eqneuron train`'s options).
    - `resume`: continue from the checkpoint in `config.out` up to `config.epochs` epochs.
    - `verbose`: a progress bar per epoch (loss and accuracy so far) and one for the
      test evaluation, on standard error, and a line per epoch.

    **Returns:** `{"test_acc", "history", "best_epoch", "best_test_acc"}`: the final
    test accuracy, the per-epoch history (`epoch`, `loss`, `train_acc`, `test_acc`,
    `seconds`), and the epoch with the lowest training loss (`best.eqx`) with its test
    accuracy.

    `meta.json` records the configuration, the model's source hash, the
    network's shapes and the checkpoints' hashes; `resume` and `load_checkpoint`
    refuse a checkpoint that does not match them.
    """
    check_config(config)
    compile_model(config.model)  # an unknown or broken model fails before any data is loaded
    enable_compilation_cache()  # a second run of the same configuration compiles nothing
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    train_data, test_data = load_task(config)
    key = jax.random.key(config.seed)
    k_net, k_shuffle = jax.random.split(key)
    net = build_network(config, train_data.n_channels, train_data.n_classes, k_net)
    steps_per_epoch = max(1, len(train_data) // config.batch_size)
    schedule = _schedule(config, steps_per_epoch)
    optimizer = _optimizer(config)
    spec = trainable_filter(net)
    params, static = eqx.partition(net, spec)
    opt_state = optimizer.init(params)
    history: dict[str, list[float]] = {"epoch": [], "loss": [], "train_acc": [], "test_acc": [], "seconds": []}
    start_epoch = 0
    checkpoints = {}
    if resume and (out / "checkpoint.eqx").exists():
        meta = read_meta(out)
        verify_meta(meta, out, net, config, resuming=True)
        params, opt_state = _deserialise(out, "checkpoint.eqx", meta, (params, opt_state))
        checkpoints = dict(meta["checkpoints"])
        history = json.loads((out / "history.json").read_text())
        start_epoch = len(history["epoch"])
    t1 = train_data.duration
    value_and_grad, predict = make_functions(config, t1)

    def update(params, opt_state, spikes, labels, rate):
        def loss_of(p, spikes, labels):
            return value_and_grad(eqx.combine(p, static), spikes, labels)

        (loss, (acc, overflow)), grads = loss_of(params, spikes, labels)
        grads = eqx.filter(grads, spec)
        grads = jax.tree_util.tree_map(lambda g: jnp.where(jnp.isfinite(g), g, 0.0), grads)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        updates = jax.tree_util.tree_map(lambda u: rate.astype(u.dtype) * u, updates)
        return eqx.apply_updates(params, updates), opt_state, loss, acc, overflow

    # the training step's traced program is kept on disk: a second run of the same configuration
    # (or a resumed one) neither traces nor compiles it again
    update = persistent_jit(
        update,
        name="update",
        key=program_key(config, t1, f"{len(train_data)}"),
        out_structure=lambda params, opt_state, spikes, labels, rate: (params, opt_state, 0.0, 0.0, 0.0),
    )

    rng = np.random.default_rng(config.seed)
    jitter = config.jitter if config.jitter is not None else TASK_DEFAULTS[config.task].get("jitter", 0.0)
    shift = config.shift if config.shift is not None else TASK_DEFAULTS[config.task].get("shift", 0)
    for epoch in range(start_epoch, config.epochs):
        t_start = time.time()
        order = rng.permutation(len(train_data))
        losses_, accs, overflows = [], [], []
        bar = tqdm(
            range(steps_per_epoch), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
            disable=not verbose, dynamic_ncols=True,
        )
        for step in bar:
            index = order[step * config.batch_size : (step + 1) * config.batch_size]
            rate = schedule(epoch * steps_per_epoch + step)
            params, opt_state, loss, acc, overflow = update(
                params, opt_state, _batch_spikes(train_data, index, jitter, rng, shift), jnp.asarray(train_data.labels[index]), rate
            )
            losses_.append(float(loss))
            accs.append(float(acc))
            overflows.append(float(overflow))
            bar.set_postfix(loss=f"{np.mean(losses_):.4f}", acc=f"{np.mean(accs):.3f}", refresh=False)
        bar.close()
        net = eqx.combine(params, static)
        test_acc = accuracy(predict, net, test_data, config.batch_size, progress=verbose, desc="test")
        seconds = time.time() - t_start
        history["epoch"].append(epoch + 1)
        history["loss"].append(float(np.mean(losses_)))
        history["train_acc"].append(float(np.mean(accs)))
        history["test_acc"].append(test_acc)
        history["seconds"].append(seconds)
        if verbose:
            overflowed = np.mean(overflows)
            warning = f"  [spike buffer overflow in {overflowed:.0%} of the samples: raise --max-spikes]" if overflowed > 0 else ""
            tqdm.write(
                f"epoch {epoch + 1}/{config.epochs}: loss {history['loss'][-1]:.4f}  train acc "
                f"{history['train_acc'][-1]:.4f}  test acc {test_acc:.4f}  ({seconds:.1f} s){warning}",
                file=sys.stderr,
            )
        checkpoints["checkpoint.eqx"] = write_checkpoint(out / "checkpoint.eqx", params, opt_state)
        # model selection on training data only: the epoch with the lowest mean training loss
        if _best_epoch(history) == epoch + 1:
            checkpoints["best.eqx"] = write_checkpoint(out / "best.eqx", params, opt_state)
        (out / "history.json").write_text(json.dumps(history))
        (out / "meta.json").write_text(json.dumps(make_meta(config, net, checkpoints), indent=1))
    net = eqx.combine(params, static)
    final = TrainResult(test_acc=accuracy(predict, net, test_data, config.batch_size), history=history)
    if history["loss"]:
        best = _best_epoch(history)
        final["best_epoch"] = best
        final["best_test_acc"] = history["test_acc"][best - 1]
    plot_history(history, out / "curves.png", title=f"{config.task} / {config.model}")
    return final


def _best_epoch(history: dict[str, list[float]]) -> int:
    """The (first) epoch with the lowest mean training loss, counted from 1: what best.eqx holds."""
    return int(np.argmin(history["loss"])) + 1


def plot_history(history: dict[str, list[float]], path: Path, title: str = "") -> None:
    """Training loss and accuracies per epoch, side by side, saved to `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    a.plot(history["epoch"], history["loss"], marker="o")
    a.set_xlabel("epoch")
    a.set_ylabel("training loss")
    b.plot(history["epoch"], history["train_acc"], marker="o", label="train")
    b.plot(history["epoch"], history["test_acc"], marker="s", label="test")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy")
    b.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------
# checkpoints

META_VERSION = 2


def make_meta(config: TrainConfig, net: Network, checkpoints: dict[str, str]) -> dict[str, Any]:
    """What `meta.json` holds: the configuration, the model, the shapes and the checkpoints' hashes."""
    model = net.populations[0].model
    return {
        "version": META_VERSION,
        "config": asdict(config),
        "model": {"name": model.name, "source_sha256": model_source_hash(model)},
        "populations": network_shapes(net),
        "checkpoints": checkpoints,
    }


def model_source_hash(model: CompiledModel) -> str:
    """The sha256 of the model's source and its bases' (`extends`)."""
    return hashlib.sha256(model.ir.source.text_with_bases.encode()).hexdigest()


def network_shapes(net: Network) -> list[dict[str, Any]]:
    """Per population: its model, sizes and the shapes of its weights and parameters."""
    return [
        {
            "model": pop.model.name,
            "n_neurons": pop.n_neurons,
            "in_size": pop.in_size,
            "recurrent": pop.recurrent,
            "weights": {name: list(np.shape(w)) for name, w in pop.weights.items()},
            "params": {name: list(np.shape(v)) for name, v in pop.params.items()},
        }
        for pop in net.populations
    ]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_checkpoint(path: Path, params: PyTree, opt_state: PyTree) -> str:
    """Serialise the trained leaves and the optimiser state; return the file's sha256 (for meta.json)."""
    eqx.tree_serialise_leaves(path, (params, opt_state))
    return _sha256(path)


def read_meta(directory: Path) -> dict[str, Any]:
    """`meta.json` of a training directory, checked for its form."""
    if not directory.is_dir():
        raise EqError(
            f"no checkpoint directory {directory}",
            hint="give the directory written by `eqneuron train --out DIR`",
        )
    path = directory / "meta.json"
    if not path.exists():
        raise EqError(
            f"{directory} has no meta.json: not a directory written by `eqneuron train`",
            hint="give the directory written by `eqneuron train --out DIR`",
        )
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EqError(f"{path} is corrupted: {error}", hint="retrain, or restore the file") from None
    if not isinstance(meta, dict) or meta.get("version") != META_VERSION:
        raise EqError(
            f"{path} is not a version-{META_VERSION} checkpoint description (written by an older eqneuron "
            "without the model's hash and shapes, or not by `eqneuron train`)",
            hint="retrain with this version of eqneuron",
        )
    for key in ("config", "model", "populations", "checkpoints"):
        if key not in meta:
            raise EqError(f"{path} is corrupted: it has no `{key}`", hint="retrain, or restore the file")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(meta["config"]) - known)
    if unknown:
        raise EqError(f"{path} is corrupted: unknown setting `{unknown[0]}`", hint="retrain, or restore the file")
    return meta


def verify_meta(meta: dict[str, Any], directory: Path, net: Network, config: TrainConfig, resuming: bool) -> None:
    """Refuse a checkpoint of another model (or another version of its source) or of other shapes.

    `net` is the network built from `config`: the options given to `train --resume`,
    or the configuration recorded in `meta.json` when evaluating."""
    model = net.populations[0].model
    recorded = meta["model"]
    if recorded.get("name") != model.name:
        if resuming:
            hint = f"resume with --model {meta['config'].get('model')}, or train into another --out directory"
        else:
            hint = "meta.json is inconsistent (edited?): restore it, or retrain"
        raise EqError(
            f"{directory} holds a network of model `{recorded.get('name')}`, but the configuration asks "
            f"for `{config.model}` ({model.name})",
            hint=hint,
        )
    if recorded.get("source_sha256") != model_source_hash(model):
        raise EqError(
            f"{directory} was trained with another version of model `{model.name}`: its source has "
            f"changed since (sha256 {str(recorded.get('source_sha256'))[:12]}… then, "
            f"{model_source_hash(model)[:12]}… now)",
            hint="use the model source the network was trained on, or retrain",
        )
    shapes = network_shapes(net)
    if meta["populations"] != shapes:
        raise EqError(
            f"{directory} holds a network of other shapes: {_first_difference(meta['populations'], shapes)}",
            hint="the checkpoint was written with other settings (e.g. --hidden); use them, or another --out",
        )


def _first_difference(recorded: list[dict[str, Any]], current: list[dict[str, Any]]) -> str:
    if len(recorded) != len(current):
        return f"{len(recorded)} populations in the checkpoint, {len(current)} now"
    for k, (a, b) in enumerate(zip(recorded, current)):
        for key in b:
            if a.get(key) != b[key]:
                return f"population {k} `{key}` is {a.get(key)} in the checkpoint, {b[key]} now"
    return "unknown difference"


def _deserialise(directory: Path, filename: str, meta: dict[str, Any], like: PyTree) -> PyTree:
    path = directory / filename
    if not path.exists():
        raise EqError(
            f"{directory} has no {filename}",
            hint="training writes it after each epoch" + (" (best.eqx: evaluate without --best)" if filename == "best.eqx" else ""),
        )
    if meta["checkpoints"].get(filename) != _sha256(path):
        raise EqError(
            f"{path} does not match its meta.json: the file was changed, truncated or copied from another run",
            hint="retrain, or restore the file",
        )
    try:
        return eqx.tree_deserialise_leaves(path, like)
    except (RuntimeError, ValueError, OSError, EOFError) as error:
        raise EqError(f"{path} is corrupted: {str(error).splitlines()[0]}", hint="retrain, or restore the file") from None


def _check_finite_network(net: Network, path: Path) -> None:
    for k, pop in enumerate(net.populations):
        for kind, leaves in (("weight", pop.weights), ("parameter", pop.params)):
            for name, value in leaves.items():
                bad = int(np.sum(~np.isfinite(np.asarray(value))))
                if bad:
                    raise EqError(
                        f"{path} has {bad} non-finite values (NaN or inf) in population {k} {kind} `{name}`",
                        hint="training diverged: retrain with a lower --lr, or evaluate --best",
                    )


def load_checkpoint(directory: str | Path, best: bool = False) -> tuple[TrainConfig, Network]:
    """(config, trained network) from a directory written by `train`: the final
    parameters, or with `best` those of the epoch with the lowest training loss.

    Raises an `EqError` when the directory or its files are missing or
    corrupted, when the checkpoint belongs to another model (or another version
    of its source) or other shapes, and when it holds non-finite values."""
    directory = Path(directory)
    meta = read_meta(directory)
    config = TrainConfig(**meta["config"])
    check_config(config)
    train_data, _ = load_task(TrainConfig(**{**asdict(config), "train_size": 1, "test_size": 1}))
    net = build_network(config, train_data.n_channels, train_data.n_classes, jax.random.key(config.seed))
    verify_meta(meta, directory, net, config, resuming=False)
    spec = trainable_filter(net)
    params, static = eqx.partition(net, spec)
    optimizer = _optimizer(config)
    filename = "best.eqx" if best else "checkpoint.eqx"
    params, _ = _deserialise(directory, filename, meta, (params, optimizer.init(params)))
    net = eqx.combine(params, static)
    _check_finite_network(net, directory / filename)
    return config, net


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The `TrainConfig` of `eqneuron train`'s options."""
    return TrainConfig(
        task=args.task, model=args.model, hidden=args.hidden, epochs=args.epochs, batch_size=args.batch_size,
        lr=args.lr, seed=args.seed, train_size=args.train_size, test_size=args.test_size,
        mnist_path=args.mnist_path, out=args.out, tau=args.tau, alpha=args.alpha,
        deficit_scale=args.deficit_scale, revive=args.revive, jitter=args.jitter, shift=args.shift, weight_decay=args.weight_decay,
        loss=args.loss, max_spikes=args.max_spikes, adjoint=args.adjoint,
    )


def run_train_cli(args: argparse.Namespace) -> int:
    """`eqneuron train`: train, then print the final and the best test accuracy."""
    config = config_from_args(args)
    result = train(config, resume=args.resume)
    print(f"final test accuracy: {result['test_acc']:.4f}  (checkpoint and curves in {config.out})")
    if "best_epoch" in result:
        print(f"lowest training loss at epoch {result['best_epoch']}: test accuracy {result['best_test_acc']:.4f} (best.eqx)")
    return 0


def run_evaluate_cli(args: argparse.Namespace) -> int:
    """`eqneuron evaluate`: the test accuracy of a trained checkpoint."""
    config, net = load_checkpoint(args.checkpoint, best=args.best)
    _, test = load_task(config)
    _, predict = make_functions(config, test.duration)
    acc = accuracy(predict, net, test, config.batch_size, progress=True)
    print(f"{config.task} / {config.model}: test accuracy {acc:.4f} on {len(test)} samples")
    return 0
