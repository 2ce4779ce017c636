"""The `eqneuron` command line: check, zoo, simulate, gradcheck, train, evaluate.

A user's mistake never ends in a traceback: a bad option value, a missing
file or a broken model prints the error and a hint and exits with 1
(argparse's own usage errors exit with 2).  Option values are checked before
anything is compiled or simulated.  `simulate --x64` runs the command in
float64 (a `jax.enable_x64` context around the command, set in `main`);
`gradcheck` always runs in float64.
"""

from __future__ import annotations

import argparse
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from .. import xla_defaults
from ..compilation_cache import enable_compilation_cache
from ..errors import EqError, EqWarning


def _cmd_check(args) -> int:
    from ..model import compile_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EqWarning)
        model = compile_model(args.model)
    for w in caught:
        print(str(w.message), file=sys.stderr)
    print(model)
    return 0


def _cmd_zoo(args) -> int:
    from ..zoo import zoo

    entries = zoo()
    width = max(map(len, entries), default=0)
    for name, description in entries.items():
        print(f"{name:<{width}}  {description}")
    return 0


# ---------------------------------------------------------------------------
# option checks: cheap, before anything is compiled


def _integer(option: str, value, minimum: int, hint: str):
    if value < minimum:
        raise EqError(f"{option} must be an integer >= {minimum}, got {value}", hint=hint)


def _number(option: str, value, hint: str, positive: bool = True):
    bad = not math.isfinite(value) or (value <= 0 if positive else value < 0)
    if bad:
        raise EqError(f"{option} must be a finite number {'> 0' if positive else '>= 0'}, got {value:g}", hint=hint)


def _writable(option: str, path: str | None, suffixes=None):
    """The directory of an output file exists (checked before the work that produces it)."""
    if path is None:
        return
    directory = Path(path).expanduser().resolve().parent
    if not directory.is_dir():
        raise EqError(f"{option}: directory {directory} does not exist", hint="create it first, or write elsewhere")
    if Path(path).is_dir():
        raise EqError(f"{option}: {path} is a directory", hint="give a file name")
    if suffixes is not None and Path(path).suffix.lower().lstrip(".") not in suffixes:
        raise EqError(
            f"{option}: cannot tell the image format of {path!r}",
            hint=f"end the file name with one of .{', .'.join(sorted(suffixes))}",
        )


def _check_simulate(args):
    from ..engine.validate import METHODS

    _integer("--neurons", args.neurons, 1, "the number of neurons to simulate, e.g. --neurons 10")
    _number("--duration", args.duration, "the simulated time in ms, e.g. --duration 200")
    _integer("--max-spikes", args.max_spikes, 1, "the spike buffer size, e.g. --max-spikes 4096")
    _integer("--channels", args.channels, 1, "the number of Poisson input channels, e.g. --channels 20")
    if args.poisson is not None:
        _number("--poisson", args.poisson, "the input rate per channel in Hz; leave --poisson out for no input")
    if args.current is not None and not math.isfinite(args.current):
        raise EqError(f"--current must be finite, got {args.current:g}", hint="a constant bias, e.g. --current 10")
    if args.method not in METHODS:
        raise EqError(f"--method: unknown method {args.method!r}", hint=f"choose one of {', '.join(METHODS)}")
    from .simulate import parse_param

    for item in args.param:
        parse_param(item)
    from .simulate import parse_ports

    if args.port and args.poisson is None:
        raise EqError("--port assigns input channels to ports, but there is no input (--poisson RATE)",
                      hint="add --poisson RATE, or drop --port")
    parse_ports(args.port, args.channels)
    from .simulate import parse_waveforms

    parse_waveforms(args.waveform)
    if args.plot is not None:
        from matplotlib.backend_bases import FigureCanvasBase

        _writable("--plot", args.plot, set(FigureCanvasBase.get_supported_filetypes()))
    _writable("--save", args.save)


def _check_gradcheck(args):
    _integer("--neurons", args.neurons, 1, "the number of neurons, e.g. --neurons 4")
    _integer("--channels", args.channels, 1, "the number of input channels, e.g. --channels 3")
    from .simulate import parse_waveforms

    parse_waveforms(args.waveform)


def _check_evaluate(args):
    directory = Path(args.checkpoint)
    if not directory.is_dir():
        raise EqError(
            f"no checkpoint directory {args.checkpoint}",
            hint="give the directory written by `eqneuron train --out DIR`",
        )


def _cmd_simulate(args) -> int:
    from .simulate import run_simulate

    return run_simulate(args)


def _cmd_gradcheck(args) -> int:
    from ..train.gradcheck import run_gradcheck

    return run_gradcheck(args)


def _check_train(args):
    from ..train.training import check_config, config_from_args

    check_config(config_from_args(args))


def _cmd_train(args) -> int:
    from ..train.training import run_train_cli

    return run_train_cli(args)


def _cmd_evaluate(args) -> int:
    from ..train.training import run_evaluate_cli

    return run_evaluate_cli(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eqneuron", description="Declarative neuron compiler")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="parse and validate a model, print a summary")
    check.add_argument("model", help="a .eq file or a zoo name")
    check.set_defaults(run=_cmd_check)

    zoo = sub.add_parser("zoo", help="list the model zoo")
    zoo.set_defaults(run=_cmd_zoo)

    sim = sub.add_parser("simulate", help="simulate a population, plot traces and a raster")
    sim.add_argument("model")
    sim.add_argument("--neurons", type=int, default=10)
    sim.add_argument("--duration", type=float, default=200.0, help="ms")
    drive = sim.add_mutually_exclusive_group()
    drive.add_argument("--current", type=float, default=None, help="constant bias current (parameter --bias-param)")
    drive.add_argument("--poisson", type=float, default=None, help="input rate per channel (Hz)")
    sim.add_argument("--channels", type=int, default=20)
    sim.add_argument("--bias-param", default="ic", help="parameter that --current sets")
    sim.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    sim.add_argument("--port", action="append", default=[], metavar="NAME=COUNT",
                     help="input channels of a named input port (consecutive, in the order given), e.g. --port exc=16 --port inh=4")
    sim.add_argument("--waveform", action="append", default=[], metavar="NAME=FILE",
                     help="samples of the model's input NAME (inputs:): a .npy or .csv file, one row per sample: "
                     "the time (ms), then one value or one per neuron")
    sim.add_argument("--max-spikes", type=int, default=4096)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--method", default="auto", help="auto | exact | tsit5 | dopri5 | dopri8 | heun | euler")
    sim.add_argument("--plot", default=None, help="write a PNG of traces and raster")
    sim.add_argument("--save", default=None, help="write spikes and traces to .npz")
    sim.add_argument("--x64", action="store_true", help="simulate in float64 (a jax.enable_x64 context)")
    sim.add_argument("--no-progress", action="store_true",
                     help="no progress bar (by default one is drawn on stderr for runs longer than 2 s)")
    sim.set_defaults(run=_cmd_simulate, check=_check_simulate)

    grad = sub.add_parser("gradcheck", help="exact gradients against finite differences")
    grad.add_argument("model")
    grad.add_argument("--neurons", type=int, default=4)
    grad.add_argument("--channels", type=int, default=3)
    grad.add_argument("--seed", type=int, default=0)
    grad.add_argument("--waveform", action="append", default=[], metavar="NAME=FILE",
                      help="samples of the model's input NAME, as for simulate; their gradients are checked too")
    grad.set_defaults(run=_cmd_gradcheck, check=_check_gradcheck)

    train = sub.add_parser("train", help="train a network on a task")
    train.add_argument("task", help="yinyang | digits | xor | mnist")
    train.add_argument("--model", default="lif")
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=None, help="learning rate (default 1e-3; 5e-3 for izhikevich)")
    train.add_argument("--hidden", type=int, default=None)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default="runs/train")
    train.add_argument("--train-size", type=int, default=None)
    train.add_argument("--test-size", type=int, default=None)
    train.add_argument("--mnist-path", default=None)
    train.add_argument("--resume", action="store_true")
    train.add_argument("--tau", type=float, default=0.5, help="softmax temperature of the TTFS loss (ms)")
    train.add_argument("--alpha", type=float, default=0.01, help="TTFS regulariser strength")
    train.add_argument("--revive", type=float, default=None, help="pull of silent hidden neurons towards threshold (default 1; 0.01 for izhikevich)")
    train.add_argument("--deficit-scale", type=float, default=None, help="ms per unit threshold deficit of a silent correct output (default 10; 0.1 for izhikevich)")
    train.add_argument("--jitter", type=float, default=None, help="ms of Gaussian noise on training input spike times (default: 2 for digits, 0 otherwise)")
    train.add_argument("--shift", type=int, default=None, help="pixels of random translation of training images (default 0)")
    train.add_argument("--loss", default=None, help="ttfs (first output spike) or state (final readout state); default: state for xor, ttfs otherwise")
    train.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    train.add_argument("--max-spikes", type=int, default=None, help="spike buffer per population (default 512; 1024 for izhikevich)")
    train.add_argument("--adjoint", default="loop",
                       help="loop (reverse mode through the event loops) or eventprop (the event-based adjoint: memory per event)")
    train.set_defaults(run=_cmd_train, check=_check_train)

    evaluate = sub.add_parser("evaluate", help="test accuracy of a saved checkpoint")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--best", action="store_true", help="the epoch with the lowest training loss (best.eqx), not the last")
    evaluate.set_defaults(run=_cmd_evaluate, check=_check_evaluate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code: 0 done, 1 an error (printed), 2 a usage error."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed the usage and its error (or --help)
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        if xla_defaults.deferred is not None:
            raise xla_defaults.deferred
        check = getattr(args, "check", None)
        if check is not None:
            check(args)
        enable_compilation_cache()  # a second call of the same command compiles nothing
        if getattr(args, "x64", False):
            import jax

            with jax.enable_x64(True):
                return args.run(args)
        return args.run(args)
    except EqError as error:
        print(_message(args.command, error), file=sys.stderr)
        return 1
    except OSError as error:  # a file that cannot be read or written
        print(f"eqneuron {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"eqneuron {args.command}: interrupted", file=sys.stderr)
        return 130


def _message(command: str, error: EqError) -> str:
    """A model's error keeps its source line and caret; any other is one line."""
    if error.source is not None:
        return str(error)
    text = " ".join(error.message.split())
    if error.hint:
        text += f"; hint: {' '.join(error.hint.split())}"
    return f"eqneuron {command}: error: {text}"


if __name__ == "__main__":
    raise SystemExit(main())
