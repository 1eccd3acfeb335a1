"""`md-csd train`: train (or resume) a registered detector on a prepared manifest, with its recipe."""

from __future__ import annotations

import argparse

from md_csd_tf.commands._options import (
    int_range,
    jpeg_quality,
    learning_rate,
    non_negative,
    positive,
    probability,
)

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
        help="compute the frequency input inside the model (GPU/TPU) instead of in tf.data",
    )
    parser.add_argument(
        "--run-eagerly", action="store_true", help="no graph tracing (CPU debugging)"
    )
    parser.add_argument("--seed", type=non_negative, default=0)
    parser.add_argument(
        "--fakes", type=_fakes, default="dataset",
        help="training fakes: dataset (default, the paper), sbi, fwa or xray (pseudo-fakes made "
        "on the fly from real frames; needs `md-csd prepare --landmarks`), or a mix such as "
        "dataset+sbi; validation keeps the dataset's fakes",
    )  # fmt: skip


def _fakes(text: str) -> str:
    from md_csd_tf.data.pseudo_fakes import parse_fakes
    from md_csd_tf.errors import UserError

    try:
        return "+".join(parse_fakes(text))
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _losses():
    from md_csd_tf.training.compile import LOSSES

    return list(LOSSES)


def _strategies():
    from md_csd_tf.training.strategy import STRATEGIES

    return STRATEGIES


def add_augment_arguments(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """Deviations from the paper's training data: each off unless asked for."""
    parser.add_argument(
        "--flip", action="store_true", default=False if defaults else None,
        help="random horizontal flips (the paper describes no augmentation; off by default)",
    )  # fmt: skip


def add_model_arguments(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """Model flags; with `defaults=False` they default to None so a caller can tell which
    were given (the experiment scripts layer them over the paper's or the demo's settings).

    Choices come from the registries (`VARIANTS`, `TRANSFORMS`, `HEADS`), never re-typed."""
    from md_csd_tf.frequency import TRANSFORMS
    from md_csd_tf.models.registry import list_detectors
    from md_csd_tf.models.variants import HEADS

    def default(value):
        return value if defaults else None

    parser.add_argument(
        "--detector", default=default("md_csd"), choices=list_detectors(),
        help="a registered detector (`md-csd detectors`); MD-CSD's Table V variants are md_csd_*",
    )  # fmt: skip
    parser.add_argument(
        "--transform", default=None, choices=list(TRANSFORMS),
        help="MD-CSD's frequency transform (default dct; Table VI)",
    )  # fmt: skip
    parser.add_argument(
        "--head", default=None, choices=list(HEADS),
        help="MD-CSD's head: fc (default; the paper's 'last fully connected layers are "
        "concatenated') or pooled (the pooled features are)",
    )  # fmt: skip
    parser.add_argument(
        "--image-size", type=int_range(32), default=None, help="default: the detector's recipe"
    )
    parser.add_argument(
        "--middle-blocks", type=int_range(0, 8), default=None,
        help="MD-CSD's Xception middle-flow blocks (default 8)",
    )  # fmt: skip
    parser.add_argument(
        "--clip-frames", type=int_range(2), default=None,
        help="a clip detector's frames per clip, T (dual_level; default: its recipe's, 8)",
    )  # fmt: skip
    parser.add_argument(
        "--weights", "--rgb-weights", dest="weights", default=default("published"),
        help="backbone initialisation: 'published' (default: as the detector's paper, e.g. "
        "ImageNet for Xception branches, downloaded once), 'imagenet', 'none', a weights "
        "file, or a detector's published weights name",
    )  # fmt: skip


def given_settings(
    args,
    names=(
        "detector",
        "transform",
        "head",
        "image_size",
        "middle_blocks",
        "clip_frames",
        "weights",
        "epochs",
        "batch_size",
        "flip",
        "fakes",
    ),
) -> dict:
    """The TrainConfig fields among `names` that were given on the command line (not None)."""
    settings = {
        name: getattr(args, name) for name in names if getattr(args, name, None) is not None
    }
    if isinstance(settings.get("weights"), str) and settings["weights"].lower() == "none":
        settings["weights"] = None
    if settings.get("fakes") == "dataset":  # the default: keeps the paper-way runs' folder names
        del settings["fakes"]
    return settings


def config_from_args(args):
    from md_csd_tf.training.trainer import TrainConfig

    return TrainConfig(
        manifest=args.data,
        out_dir=args.out,
        dataset=args.dataset,
        compression=None if args.compression == "any" else args.compression,
        methods=tuple(args.methods) if args.methods else None,
        detector=args.detector,
        transform=args.transform,
        image_size=args.image_size,
        middle_blocks=args.middle_blocks,
        clip_frames=args.clip_frames,
        head=args.head,
        weights=None if str(args.weights).lower() == "none" else args.weights,
        epochs=args.epochs,
        batch_size=args.batch_size,
        base_lr=args.base_lr,
        stitch_lr=args.stitch_lr,
        loss=args.loss,
        steps_per_epoch=args.steps_per_epoch,
        max_frames_per_video=args.max_frames_per_video,
        jpeg_quality=tuple(args.jpeg_augment) if args.jpeg_augment else None,
        blur_probability=args.blur_augment,
        flip=args.flip,
        balance=not args.no_balance,
        strategy=args.strategy,
        mixed_precision=args.mixed_precision,
        spectrum_in_model=args.spectrum_in_model,
        jit_compile=args.jit_compile,
        run_eagerly=args.run_eagerly,
        seed=args.seed,
        fakes=args.fakes,
    )


def run(args: argparse.Namespace) -> int:
    from md_csd_tf.training.trainer import train

    train(config_from_args(args))
    return 0


def add_experiment_arguments(parser: argparse.ArgumentParser, model: bool = True) -> None:
    """What every experiment script takes: data, output, the demo/smoke profiles and the flags
    that layer over the paper's (or the demo's, or the smoke) settings."""
    parser.add_argument("--data", help="manifest.csv from `md-csd prepare` (not with --demo)")
    parser.add_argument(
        "--out", default=None, help="writes runs/ and results/ here (default: . or demo_run)"
    )
    parser.add_argument(
        "--demo", action="store_true", help="the built-in stand-in data and the demo settings"
    )
    parser.add_argument(
        "--smoke", action="store_true",
        help="tiny settings that finish in seconds (alone: on the stand-in data)",
    )  # fmt: skip
    parser.add_argument("--epochs", type=positive, default=None, help="default: the profile's")
    parser.add_argument("--batch-size", type=positive, default=None, help="default: the profile's")
    if model:
        add_model_arguments(parser, defaults=False)
        add_augment_arguments(parser, defaults=False)
        parser.add_argument(
            "--fakes", type=_fakes, default=None,
            help="training fakes: dataset (default, the paper), sbi, fwa, xray (pseudo-fakes "
            "from real frames only) or a mix such as dataset+sbi",
        )  # fmt: skip


def experiment_inputs(args, fixed: tuple[str, ...] = ()) -> tuple[str, str, dict, str]:
    """`(out, manifest, settings, title_prefix)` for an experiment script's arguments.

    `--demo` or `--smoke` without `--data` make (or find) the stand-in data; with `--data` they
    choose the settings only. Flags given on the command line win over the profile's. `fixed`:
    settings the script decides itself (a table's detectors or transforms); giving one is an
    error rather than being silently ignored.
    """
    from md_csd_tf.errors import UserError
    from md_csd_tf.workflows.demo import demo_setup
    from md_csd_tf.workflows.runs import profile_settings
    from md_csd_tf.workflows.tables import STAND_IN

    given = given_settings(args)
    for name in fixed:
        if given.get(name) is not None:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag}: this script sets it itself (one run per table row); drop it")
    # A script that runs one detector passes it (and the transform) in its Run, not settings.
    given.pop("detector", None)
    given.pop("transform", None)
    if not args.data:
        if not (args.demo or args.smoke):
            raise UserError("--data is required (or use --demo, or --smoke)")
        out, manifest, settings = demo_setup(args.out, args.smoke, given)
        return out, manifest, settings, STAND_IN
    _, settings = profile_settings(args.demo, args.smoke, given)
    return args.out or ".", args.data, settings, STAND_IN if args.demo else ""
