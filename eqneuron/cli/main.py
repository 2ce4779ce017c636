"""The `eqneuron` command line: check, zoo, simulate, gradcheck, train, evaluate."""

from __future__ import annotations

import argparse
import sys
import warnings

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


def _cmd_simulate(args) -> int:
    from .simulate import run_simulate

    return run_simulate(args)


def _cmd_gradcheck(args) -> int:
    from ..train.gradcheck import run_gradcheck

    return run_gradcheck(args)


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
    sim.add_argument("--max-spikes", type=int, default=4096)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--method", default="auto")
    sim.add_argument("--plot", default=None, help="write a PNG of traces and raster")
    sim.add_argument("--save", default=None, help="write spikes and traces to .npz")
    sim.add_argument("--x64", action="store_true", help="simulate in float64")
    sim.set_defaults(run=_cmd_simulate)

    grad = sub.add_parser("gradcheck", help="exact gradients against finite differences")
    grad.add_argument("model")
    grad.add_argument("--neurons", type=int, default=4)
    grad.add_argument("--channels", type=int, default=3)
    grad.add_argument("--seed", type=int, default=0)
    grad.set_defaults(run=_cmd_gradcheck)

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
    train.set_defaults(run=_cmd_train)

    evaluate = sub.add_parser("evaluate", help="test accuracy of a saved checkpoint")
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--best", action="store_true", help="the epoch with the lowest training loss (best.eqx), not the last")
    evaluate.set_defaults(run=_cmd_evaluate)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except EqError as error:
        print(str(error), file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
