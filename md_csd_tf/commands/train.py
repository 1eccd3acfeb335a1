"""`md-csd train`: train (or resume) a registered detector on a prepared manifest, with its recipe."""

from __future__ import annotations

import argparse

from md_csd_tf.commands._options import (
    fakes,
    jpeg_quality,
    learning_rate,
    non_negative,
    positive,
    probability,
)
from md_csd_tf.commands.flags import add_augment_arguments, add_model_arguments, model_options

NAME = "train"
HELP = (
    "train or resume a detector on face crops prepared by `md-csd prepare` (its published recipe)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--data", required=True, help="manifest.csv (or its folder)")
    parser.add_argument("--out", required=True, help="run folder; an existing one is resumed")
    parser.add_argument("--dataset", default="ffpp")
    parser.add_argument("--compression", default="c23", help="c23, c40, raw; 'any' for all")
    parser.add_argument("--methods", nargs="+", default=None, help="manipulations (default: all)")
    parser.add_argument("--epochs", type=positive, default=None, help="default: the recipe's")
    parser.add_argument(
        "--batch-size", type=positive, default=None, help="global batch (default: the recipe's)"
    )
    parser.add_argument("--base-lr", type=learning_rate, default=None, help="default: the recipe's")
    parser.add_argument(
        "--stitch-lr", type=learning_rate, default=None,
        help="the second rate (MD-CSD's cross-stitches; default: the recipe's)",
    )  # fmt: skip
    parser.add_argument(
        "--constant-lr", action="store_true",
        help="keep --base-lr for the whole run, without the recipe's step decay (MesoNet's); "
        "how runs from before the decay was in the recipe trained, so resuming one needs it",
    )  # fmt: skip
    parser.add_argument("--loss", default=None, choices=_losses(), help="default: the recipe's")
    parser.add_argument("--steps-per-epoch", type=positive, default=None)
    parser.add_argument("--max-frames-per-video", type=positive, default=None)
    parser.add_argument(
        "--jpeg-augment", type=jpeg_quality, nargs=2, metavar=("MIN", "MAX"), default=None
    )
    parser.add_argument("--blur-augment", type=probability, default=0.0, help="probability")
    add_augment_arguments(parser)
    parser.add_argument("--no-balance", action="store_true", help="no 50/50 real/fake frames")
    parser.add_argument("--strategy", default="auto", choices=_strategies())
    parser.add_argument(
        "--mixed-precision", nargs="?", const="float16", default=False,
        choices=("float16", "bfloat16"),
        help="float16 (the flag alone) or bfloat16 compute with float32 weights (GPUs, TPUs)",
    )  # fmt: skip
    parser.add_argument(
        "--jit-compile", action="store_true", help="XLA-compile the train step (GPUs, TPUs)"
    )
    parser.add_argument(
        "--spectrum-in-model",
        action="store_true",
        default=None,
        help="compute the frequency input inside the model (GPU/TPU) instead of in tf.data; "
        "= --model-option spectrum_in_model=true",
    )
    parser.add_argument(
        "--run-eagerly", action="store_true", help="no graph tracing (CPU debugging)"
    )
    parser.add_argument("--seed", type=non_negative, default=0)
    parser.add_argument(
        "--fakes", type=fakes, default="dataset",
        help="training fakes: dataset (default, the paper), sbi, fwa or xray (pseudo-fakes made "
        "on the fly from real frames; needs `md-csd prepare --landmarks`), or a mix such as "
        "dataset+sbi; validation keeps the dataset's fakes",
    )  # fmt: skip


def _losses():
    from md_csd_tf.training.compile import LOSSES

    return list(LOSSES)


def _strategies():
    from md_csd_tf.training.strategy import STRATEGIES

    return STRATEGIES


def config_from_args(args):
    from md_csd_tf.training.config import TrainConfig

    return TrainConfig(
        manifest=args.data,
        out_dir=args.out,
        dataset=args.dataset,
        compression=None if args.compression == "any" else args.compression,
        methods=tuple(args.methods) if args.methods else None,
        detector=args.detector,
        model_options=model_options(args, args.detector),  # checked against the detector's
        image_size=args.image_size,
        weights=None if str(args.weights).lower() == "none" else args.weights,
        epochs=args.epochs,
        batch_size=args.batch_size,
        base_lr=args.base_lr,
        stitch_lr=args.stitch_lr,
        constant_lr=True if args.constant_lr else None,
        loss=args.loss,
        steps_per_epoch=args.steps_per_epoch,
        max_frames_per_video=args.max_frames_per_video,
        jpeg_quality=tuple(args.jpeg_augment) if args.jpeg_augment else None,
        blur_probability=args.blur_augment,
        flip=args.flip,
        balance=not args.no_balance,
        strategy=args.strategy,
        mixed_precision=args.mixed_precision,
        jit_compile=args.jit_compile,
        run_eagerly=args.run_eagerly,
        seed=args.seed,
        fakes=args.fakes,
    )


def run(args: argparse.Namespace) -> int:
    from md_csd_tf.training.trainer import train

    train(config_from_args(args))
    return 0
