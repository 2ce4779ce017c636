"""The command line on a user's mistake: one line naming the option and a hint, exit 1
(argparse usage errors: exit 2), never a traceback; checked before any long work."""

import hashlib
import json
import shutil
import subprocess
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import pytest

from eqneuron.cli import main
from eqneuron.train.training import (
    TrainConfig,
    _optimizer,
    build_network,
    load_task,
    make_meta,
    trainable_filter,
    write_checkpoint,
)


def run(capsys, *argv):
    """(exit code, stderr) of `eqneuron argv...`."""
    code = main(list(argv))
    return code, capsys.readouterr().err


def assert_one_line_error(code, err, *words):
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error:" in lines[0] and "hint:" in lines[0], err
    for word in words:
        assert word in lines[0], err


# ---- simulate


@pytest.mark.parametrize(
    "option, value, expected",
    [
        ("--neurons", "0", "--neurons must be an integer >= 1, got 0"),
        ("--max-spikes", "-1", "--max-spikes must be an integer >= 1, got -1"),
        ("--poisson", "-5", "--poisson must be a finite number > 0, got -5"),
        ("--duration", "-50", "--duration must be a finite number > 0, got -50"),
        ("--duration", "0", "--duration must be a finite number > 0, got 0"),
        ("--channels", "0", "--channels must be an integer >= 1, got 0"),
        ("--method", "rk4", "--method: unknown method 'rk4'"),
    ],
)
def test_simulate_rejects_an_out_of_range_option(capsys, option, value, expected):
    assert_one_line_error(*run(capsys, "simulate", "lif", option, value), expected)


def test_simulate_plot_into_a_missing_directory_is_an_error(capsys, tmp_path):
    target = tmp_path / "missing" / "out.png"
    assert_one_line_error(*run(capsys, "simulate", "lif", "--plot", str(target)), "--plot", "does not exist")
    assert not target.parent.exists()


def test_simulate_plot_of_an_unknown_image_format_is_an_error(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "simulate", "lif", "--plot", str(tmp_path / "out.xyz")), "--plot", "format")


def test_simulate_save_into_a_missing_directory_is_an_error(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "simulate", "lif", "--save", str(tmp_path / "no" / "o.npz")), "--save")


def test_simulate_param_without_a_value_is_an_error(capsys):
    assert_one_line_error(*run(capsys, "simulate", "lif", "--param", "tmem"), "--param 'tmem': expected NAME=VALUE")


def test_simulate_unknown_param_suggests_the_right_one(capsys):
    assert_one_line_error(*run(capsys, "simulate", "lif", "--param", "tmen=3"), "`tmen` is not a parameter", "`tmem`")


def test_simulate_unknown_bias_parameter_is_an_error(capsys):
    code, err = run(capsys, "simulate", "lif", "--current", "1", "--bias-param", "icc")
    assert_one_line_error(code, err, "no parameter `icc` for --current", "did you mean `ic`?")


def test_simulate_zero_time_constant_points_at_the_parameter(capsys):
    code, err = run(capsys, "simulate", "lif", "--param", "tmem=0")
    assert code == 1 and "Traceback" not in err
    assert "lif.eq:7:5" in err and "parameter `tmem` = 0 makes `1/tmem`" in err


def test_simulate_unknown_model_is_an_error(capsys):
    assert_one_line_error(*run(capsys, "simulate", "nosuchmodel"), "`nosuchmodel` is neither a file nor a zoo model")


def test_a_non_integer_count_is_an_argparse_usage_error(capsys):
    code, err = run(capsys, "simulate", "lif", "--neurons", "x")
    assert code == 2
    assert "argument --neurons: invalid int value: 'x'" in err and "Traceback" not in err


def test_gradcheck_rejects_zero_neurons(capsys):
    assert_one_line_error(*run(capsys, "gradcheck", "lif", "--neurons", "0"), "--neurons must be an integer >= 1")


# ---- train


def test_train_unknown_task_is_an_error(capsys, tmp_path):
    code, err = run(capsys, "train", "nosuchtask", "--out", str(tmp_path / "run"))
    assert_one_line_error(code, err, "unknown task 'nosuchtask'", "yinyang, digits, mnist, xor")
    assert not (tmp_path / "run").exists()


def test_train_misspelt_task_suggests_the_right_one(capsys, tmp_path):
    code, err = run(capsys, "train", "yinyan", "--out", str(tmp_path / "run"))
    assert_one_line_error(code, err, "did you mean `yinyang`?")


@pytest.mark.parametrize(
    "option, value",
    [("--batch-size", "0"), ("--hidden", "0"), ("--epochs", "0"), ("--max-spikes", "0"), ("--train-size", "0")],
)
def test_train_rejects_a_zero_count_before_any_work(capsys, tmp_path, option, value):
    code, err = run(capsys, "train", "yinyang", option, value, "--out", str(tmp_path / "run"))
    assert_one_line_error(code, err, f"({option}) must be an integer >= 1, got 0")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option, value", [("--lr", "0"), ("--tau", "-1"), ("--lr", "nan")])
def test_train_rejects_a_non_positive_rate(capsys, tmp_path, option, value):
    code, err = run(capsys, "train", "yinyang", option, value, "--out", str(tmp_path / "run"))
    assert_one_line_error(code, err, f"({option}) must be a finite number > 0")


def test_train_unknown_model_fails_before_any_data_is_loaded(capsys, tmp_path):
    code, err = run(capsys, "train", "yinyang", "--model", "nosuch", "--out", str(tmp_path / "run"))
    assert_one_line_error(code, err, "`nosuch` is neither a file nor a zoo model")
    assert not (tmp_path / "run").exists()


def test_train_mnist_without_its_files_is_an_error(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "train", "mnist", "--out", str(tmp_path / "r")), "mnist", "--mnist-path")


# ---- evaluate

CONFIG = dict(task="yinyang", model="lif", hidden=4, train_size=1, test_size=1, epochs=1)


def write_run(directory, edit=None):
    """A training directory as `train` writes it (without the training); `edit(params)` changes the weights."""
    config = TrainConfig(**CONFIG, out=str(directory))
    data, _ = load_task(config)
    net = build_network(config, data.n_channels, data.n_classes, jax.random.key(config.seed))
    params, _ = eqx.partition(net, trainable_filter(net))
    if edit is not None:
        params = edit(params)
    opt_state = _optimizer(config).init(params)
    directory.mkdir()
    sha = write_checkpoint(directory / "checkpoint.eqx", params, opt_state)
    (directory / "meta.json").write_text(json.dumps(make_meta(config, net, {"checkpoint.eqx": sha})))
    return directory


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("runs") / "good")


@pytest.fixture
def run_copy(good_run, tmp_path):
    return shutil.copytree(good_run, tmp_path / "copy")


def edit_meta(directory, change):
    meta = json.loads((directory / "meta.json").read_text())
    change(meta)
    (directory / "meta.json").write_text(json.dumps(meta))


def test_evaluate_a_missing_directory_is_an_error(capsys, tmp_path):
    code, err = run(capsys, "evaluate", str(tmp_path / "nothing"))
    assert_one_line_error(code, err, "no checkpoint directory", "eqneuron train --out DIR")


def test_evaluate_a_directory_without_meta_is_an_error(capsys, tmp_path):
    assert_one_line_error(*run(capsys, "evaluate", str(tmp_path)), "has no meta.json")


def test_evaluate_corrupted_meta_is_an_error(capsys, run_copy):
    (run_copy / "meta.json").write_text("{broken")
    assert_one_line_error(*run(capsys, "evaluate", str(run_copy)), "meta.json is corrupted")


def test_evaluate_meta_of_an_older_format_is_an_error(capsys, run_copy):
    (run_copy / "meta.json").write_text(json.dumps(CONFIG))
    assert_one_line_error(*run(capsys, "evaluate", str(run_copy)), "not a version-2 checkpoint description")


def test_evaluate_truncated_checkpoint_is_an_error(capsys, run_copy):
    data = (run_copy / "checkpoint.eqx").read_bytes()
    (run_copy / "checkpoint.eqx").write_bytes(data[: len(data) // 2])
    assert_one_line_error(*run(capsys, "evaluate", str(run_copy)), "checkpoint.eqx does not match its meta.json")


def test_evaluate_unreadable_checkpoint_is_reported_as_corrupted(capsys, run_copy):
    garbage = b"garbage" * 10  # with a matching hash: the file itself cannot be read
    (run_copy / "checkpoint.eqx").write_bytes(garbage)
    edit_meta(run_copy, lambda m: m["checkpoints"].update({"checkpoint.eqx": hashlib.sha256(garbage).hexdigest()}))
    assert_one_line_error(*run(capsys, "evaluate", str(run_copy)), "checkpoint.eqx is corrupted")


def test_evaluate_missing_checkpoint_file_is_an_error(capsys, run_copy):
    assert_one_line_error(*run(capsys, "evaluate", str(run_copy), "--best"), "has no best.eqx")


def test_evaluate_refuses_a_checkpoint_of_another_model(capsys, run_copy):
    edit_meta(run_copy, lambda m: m["config"].update(model="qif"))
    code, err = run(capsys, "evaluate", str(run_copy))
    assert_one_line_error(code, err, "holds a network of model `LIF`, but the configuration asks for `qif`")


def test_evaluate_refuses_a_checkpoint_of_a_changed_model_source(capsys, run_copy):
    edit_meta(run_copy, lambda m: m["model"].update(source_sha256="0" * 64))
    code, err = run(capsys, "evaluate", str(run_copy))
    assert_one_line_error(code, err, "trained with another version of model `LIF`")


def test_evaluate_refuses_a_checkpoint_of_other_shapes(capsys, run_copy):
    edit_meta(run_copy, lambda m: m["config"].update(hidden=5))
    code, err = run(capsys, "evaluate", str(run_copy))
    assert_one_line_error(code, err, "other shapes: population 0 `n_neurons` is 4 in the checkpoint, 5 now")


def test_evaluate_reports_non_finite_weights(capsys, tmp_path):
    def poison(params):
        w = params.populations[1].weights["w"]
        return eqx.tree_at(lambda p: p.populations[1].weights["w"], params, w.at[4, 0].set(jnp.nan))

    directory = write_run(tmp_path / "nan", edit=poison)
    code, err = run(capsys, "evaluate", str(directory))
    assert_one_line_error(code, err, "1 non-finite values (NaN or inf) in population 1 weight `w`")


# ---- float64 is scoped to the command


def test_x64_and_gradcheck_leave_the_default_dtype_alone(tmp_path):
    script = f"""
import jax.numpy as jnp, numpy as np
from eqneuron.cli import main
assert main(["simulate", "lif", "--neurons", "2", "--duration", "5", "--x64", "--save", r"{tmp_path / 'x.npz'}"]) == 0
print("simulate", np.load(r"{tmp_path / 'x.npz'}")["v"].dtype, jnp.asarray(0.0).dtype)
assert main(["gradcheck", "lif", "--neurons", "1", "--channels", "1"]) == 0
print("gradcheck", jnp.asarray(0.0).dtype)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "simulate float64 float32" in result.stdout
    assert "gradcheck float32" in result.stdout
