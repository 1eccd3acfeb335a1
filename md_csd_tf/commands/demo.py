"""`md-csd demo`: the whole pipeline on the built-in stand-in dataset, in minutes on a CPU."""

from __future__ import annotations

import argparse

from md_csd_tf.commands._options import fakes, positive

NAME = "demo"
HELP = "make the stand-in dataset, prepare faces, train a small model, test it, print the tables"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_run", help="folder for data, runs and results")
    parser.add_argument("--epochs", type=positive, default=None, help="default: the demo's 5")
    parser.add_argument("--smoke", action="store_true", help="tiny settings that finish in seconds")
    parser.add_argument(
        "--fakes", type=fakes, default=None,
        help="training fakes: dataset (default, the paper) or sbi, fwa, xray: pseudo-fakes made "
        "from the stand-in real videos only, tested on the held-out stand-in fakes",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from md_csd_tf.workflows.demo import demo, format_summary

    overrides = {"epochs": args.epochs} if args.epochs else {}
    if args.fakes and args.fakes != "dataset":
        overrides["fakes"] = args.fakes
    print(format_summary(demo(args.out, smoke=args.smoke, **overrides)))
    return 0
