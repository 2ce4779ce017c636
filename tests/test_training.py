"""Losses, datasets and the training loop."""

import gzip
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from eqneuron import datasets, losses
from eqneuron.train.training import TrainConfig, load_checkpoint, train


def test_yinyang_class_geometry_matches_the_published_definition():
    # the dots: centres at (0.25, 0.5) and (0.75, 0.5), radius 0.1
    assert datasets.yinyang_class(0.25, 0.5) == 2 and datasets.yinyang_class(0.75, 0.5) == 2
    assert datasets.yinyang_class(0.5, 0.9) == 1  # top of the disc: yin
    assert datasets.yinyang_class(0.5, 0.1) == 0  # bottom: yang
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 1, size=(200_000, 2))
    inside = np.hypot(xy[:, 0] - 0.5, xy[:, 1] - 0.5) <= 0.5
    x, y = xy[inside, 0], xy[inside, 1]
    c = datasets.yinyang_class(x, y)
    # point symmetry through the centre swaps yin and yang (dots map to dots)
    mirrored = datasets.yinyang_class(1 - x, 1 - y)
    not_dot = (c != 2) & (mirrored != 2)
    assert np.mean(c[not_dot] == 1 - mirrored[not_dot]) > 0.999
    # areas: each dot pi r^2 of the disc pi R^2 -> 2 * (0.1/0.5)^2 = 0.08; yin and yang equal
    assert abs(np.mean(c == 2) - 0.08) < 0.005
    assert abs(np.mean(c == 0) - np.mean(c == 1)) < 0.01


def test_yinyang_dataset_is_balanced_and_encoded():
    data = datasets.yinyang(3000, seed=1)
    counts = np.bincount(data.labels, minlength=3)
    assert np.all(np.abs(counts / 3000 - 1 / 3) < 0.03)
    assert data.times.shape == (3000, 5) and data.n_channels == 5
    x = (data.times[:, 0] - 2.0) / 18.0
    y = (data.times[:, 1] - 2.0) / 18.0
    np.testing.assert_array_equal(datasets.yinyang_class(x, y), data.labels)
    np.testing.assert_allclose(data.times[:, 2], 2.0 + (1 - x) * 18.0)
    assert np.all(np.hypot(x - 0.5, y - 0.5) <= 0.5 + 1e-12)


def test_digits_are_latency_encoded():
    train_set, test_set = datasets.digits("train"), datasets.digits("test")
    assert len(train_set) + len(test_set) == 1797 and train_set.n_channels == 64
    assert np.all((train_set.times[np.isfinite(train_set.times)] >= 0) & (train_set.times[np.isfinite(train_set.times)] <= 20))
    assert set(np.unique(test_set.labels)) == set(range(10))


def write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_loader_reads_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 28, 28))
    labels = np.arange(7) % 10
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), images)
    data = datasets.mnist(tmp_path, "test")
    np.testing.assert_array_equal(data.labels, labels)
    assert data.n_channels == 784
    # the brightest pixel of image 0 spikes first, at t = 0
    brightest = np.argmax(images[0].reshape(-1))
    assert data.channels[0, 0] == brightest and data.times[0, 0] == pytest.approx(0.0)


def test_delayed_xor_labels():
    data = datasets.delayed_xor(64, seed=0)
    first = data.channels[:, 0]
    second = data.channels[:, 1] - 2
    np.testing.assert_array_equal(data.labels, first ^ second)
    assert np.all(data.times[:, 1] - data.times[:, 0] == 40.0)


def test_ttfs_loss_of_a_silent_output_has_finite_gradients():
    first = jnp.array([jnp.inf, 3.0, jnp.inf])
    grad = jax.grad(lambda f: losses.ttfs_cross_entropy(f, 0, tau=2.0, t_silent=60.0, alpha=0.01, beta=60.0))(first)
    assert np.all(np.isfinite(grad))
    assert float(grad[0]) == 0.0 and float(grad[1]) != 0.0
    # the correct neuron firing earlier lowers the loss
    early = losses.ttfs_cross_entropy(jnp.array([1.0, 3.0, 5.0]), 0, tau=2.0)
    late = losses.ttfs_cross_entropy(jnp.array([4.0, 3.0, 5.0]), 0, tau=2.0)
    assert early < late
    np.testing.assert_allclose(early, -jax.nn.log_softmax(jnp.array([-0.5, -1.5, -2.5]))[0], rtol=1e-12)


def test_spike_count_and_state_losses():
    counts = jnp.array([3, 0, 1])
    assert losses.spike_count_cross_entropy(counts, 0) < losses.spike_count_cross_entropy(counts, 1)
    trace = jnp.array([[0.0, 1.0], [2.0, -1.0], [1.0, 0.5]])
    np.testing.assert_allclose(losses.max_over_time(trace), [2.0, 1.0])
    np.testing.assert_allclose(losses.final_value(trace), [1.0, 0.5])
    assert losses.firing_rate_regulariser(counts, target=4 / 3) == pytest.approx(0.0)


@pytest.mark.slow
def test_short_yinyang_training_lowers_the_loss_and_checkpoints(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EQNEURON_CACHE_DIR", str(tmp_path / "cache"))  # this run's programs only
    config = TrainConfig(task="yinyang", model="lif", hidden=20, epochs=2, batch_size=16, lr=5e-3,
                         train_size=256, test_size=64, out=str(tmp_path / "run"))
    result = train(config)
    history = result["history"]
    # a progress bar per epoch, the running loss and accuracy in its postfix, then the epoch's line
    shown = capsys.readouterr().err
    for epoch in (1, 2):
        assert f"epoch {epoch}/2: 100%" in shown and "16/16 [" in shown
        assert f"epoch {epoch}/2: loss {history['loss'][epoch - 1]:.4f}" in shown
        assert f"test acc {history['test_acc'][epoch - 1]:.4f}" in shown
    assert f"loss={history['loss'][-1]:.4f}" in shown and f"acc={history['train_acc'][-1]:.3f}" in shown
    assert history["loss"][1] < history["loss"][0]
    assert all(np.isfinite(history["loss"]))
    assert (tmp_path / "run" / "checkpoint.eqx").exists() and (tmp_path / "run" / "curves.png").exists()
    _, net = load_checkpoint(tmp_path / "run")
    # the restored network predicts as well as the trained one
    from eqneuron.train.training import accuracy, load_task, make_functions

    _, test = load_task(config)
    _, predict = make_functions(config, test.duration)
    assert accuracy(predict, net, test, 16) == pytest.approx(result["test_acc"])
    # best.eqx: the epoch of the lowest training loss, restored with its recorded test accuracy
    assert result["best_epoch"] == int(np.argmin(history["loss"])) + 1
    _, best = load_checkpoint(tmp_path / "run", best=True)
    assert accuracy(predict, best, test, 16) == pytest.approx(history["test_acc"][result["best_epoch"] - 1])
    # resume continues from the checkpoint, with the traced training step of the first run: more
    # epochs (another learning-rate schedule) are no other program
    programs = sorted(p.name for p in (tmp_path / "cache" / "exported").glob("*.bin"))
    assert [name.split("-")[0] for name in programs] == ["predict", "update"]
    more = train(TrainConfig(**{**config.__dict__, "epochs": 3}), resume=True, verbose=False)
    assert len(more["history"]["epoch"]) == 3
    assert sorted(p.name for p in (tmp_path / "cache" / "exported").glob("*.bin")) == programs


def test_the_optimizer_and_its_rate_per_step_are_adamw_on_the_cosine_schedule():
    """`train` scales the update of `_optimizer` by `_schedule`'s rate of the step, an argument of the
    compiled step: the same steps as Optax's AdamW built with the schedule inside."""
    import optax

    from eqneuron.train.training import _optimizer, _schedule

    config = TrainConfig(epochs=3, lr=0.1, weight_decay=0.01, clip=0.5)
    steps_per_epoch = 4
    reference = optax.chain(
        optax.clip_by_global_norm(0.5),
        optax.adamw(optax.cosine_decay_schedule(0.1, decay_steps=12, alpha=0.05), weight_decay=0.01),
    )
    ours, schedule = _optimizer(config), _schedule(config, steps_per_epoch)
    target = jnp.array([1.0, -2.0, 3.0])
    grad = jax.grad(lambda x: jnp.sum((x - target) ** 2 * jnp.arange(1.0, 4.0)))
    x_ref = x_ours = jnp.zeros(3)
    state_ref, state_ours = reference.init(x_ref), ours.init(x_ours)
    for step in range(12):
        u, state_ref = reference.update(grad(x_ref), state_ref, x_ref)
        x_ref = x_ref + u
        u, state_ours = ours.update(grad(x_ours), state_ours, x_ours)
        x_ours = x_ours + schedule(step) * u
    np.testing.assert_allclose(np.asarray(x_ours), np.asarray(x_ref), rtol=1e-12, atol=1e-12)
    assert float(jnp.max(jnp.abs(x_ref))) > 0.5  # the steps moved the point


def test_shift_augmentation_translates_the_pixel_grid():
    from eqneuron.train.training import _shift_images

    class Fixed:  # shift down by one row, left by one column
        def integers(self, lo, hi, size):
            return np.array([[1, -1]])

    image = np.arange(16.0).reshape(1, 16)
    shifted = _shift_images(image, 4, 1, Fixed()).reshape(4, 4)
    expected = np.array([[np.inf] * 4, [1, 2, 3, np.inf], [5, 6, 7, np.inf], [9, 10, 11, np.inf]])
    np.testing.assert_array_equal(shifted, expected)


@pytest.mark.slow
def test_xor_egru_starts_active_and_the_state_loss_reaches_recurrent_weights():
    """Delayed XOR: the hidden EGRU fires, the readout's final state is the logit."""

    from eqneuron import simulate
    from eqneuron.train.training import _batch_spikes, build_network, load_task, make_functions

    config = TrainConfig(task="xor", model="egru", train_size=64, test_size=8)
    data, _ = load_task(config)
    net = build_network(config, data.n_channels, data.n_classes, jax.random.key(0))
    assert net.populations[0].recurrent
    spikes = _batch_spikes(data, np.arange(8))
    out = jax.vmap(lambda s: simulate(net, s, t1=data.duration, max_spikes=256, save_at=jnp.array([data.duration])))(spikes)
    assert np.all(np.asarray(out.counts[0]).sum(axis=1) > 0), "every trial drives the hidden layer"
    value_and_grad, predict = make_functions(config, data.duration)
    (loss, (acc, overflow)), grads = value_and_grad(net, spikes, jnp.asarray(data.labels[:8]))
    assert np.isfinite(float(loss)) and float(overflow) == 0.0
    recurrent = np.asarray(grads.populations[0].weights["w_z"][: net.populations[0].n_neurons])
    assert np.all(np.isfinite(recurrent)) and np.any(recurrent != 0)
    # the prediction is the readout whose first state ends highest
    final = out.states[-1]["c"][:, -1]  # (trials, readout neurons)
    np.testing.assert_array_equal(np.asarray(predict(net, spikes)), np.argmax(np.asarray(final), axis=1))
