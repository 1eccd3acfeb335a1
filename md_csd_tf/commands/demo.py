"""`md-csd demo`: the whole pipeline on the built-in stand-in dataset, in minutes on a CPU."""

from __future__ import annotations

import argparse

from md_csd_tf.commands._options import positive

NAME = "demo"
HELP = "make the stand-in dataset, prepare faces, train a small model, test it, print the tables"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_run", help="folder for data, runs and results")
    parser.add_argument("--epochs", type=positive, default=None, help="default: the demo's 5")
    parser.add_argument("--smoke", action="store_true", help="tiny settings that finish in seconds")


def run(args: argparse.Namespace) -> int:
    from md_csd_tf import workflows

    overrides = {"epochs": args.epochs} if args.epochs else {}
    print(workflows.format_summary(workflows.demo(args.out, smoke=args.smoke, **overrides)))
    return 0
