"""Flags that `md-csd train` and the experiment scripts (`experiments/*.py`) share.

The scripts are command lines too: they take these flags from here, parse them, and hand the
result to `workflows.settings` (what the flags mean for a run) and the `workflows` they call.
"""

from __future__ import annotations

import argparse

from md_csd_tf.commands._options import fakes, int_range, positive


def add_augment_arguments(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """Deviations from the paper's training data: each off unless asked for."""
    parser.add_argument(
        "--flip", action="store_true", default=False if defaults else None,
        help="random horizontal flips (the paper describes no augmentation; off by default)",
    )  # fmt: skip


def add_model_arguments(parser: argparse.ArgumentParser, defaults: bool = True) -> None:
    """Model flags; with `defaults=False` they default to None so a caller can tell which
    were given (the experiment scripts layer them over the paper's or the demo's settings).

    Choices and ranges come from the registry, never re-typed: the shorthand flags of model
    options take those of the option their detector declares (`registry.Option`)."""
    from md_csd_tf.models.registry import get_entry, list_detectors

    def default(value):
        return value if defaults else None

    md_csd, clip = get_entry("md_csd").options, get_entry("dual_level").options

    parser.add_argument(
        "--detector", default=default("md_csd"), choices=list_detectors(),
        help="a registered detector (`md-csd detectors`); MD-CSD's Table V variants are md_csd_*",
    )  # fmt: skip
    parser.add_argument(
        "--model-option", action="append", default=None, metavar="NAME=VALUE",
        dest="model_option",
        help="a builder option of the detector (repeatable), as its registry entry declares it "
        "(`md-csd detectors` lists them; e.g. middle_blocks=0); --transform, --head, "
        "--middle-blocks and --clip-frames are shorthands for some",
    )  # fmt: skip
    parser.add_argument(
        "--transform", default=None, choices=list(md_csd["transform"].allowed),
        help="MD-CSD's frequency transform (default dct; Table VI); "
        "= --model-option transform=...",
    )  # fmt: skip
    parser.add_argument(
        "--head", default=None, choices=list(md_csd["head"].allowed),
        help="MD-CSD's head: fc (default; the paper's 'last fully connected layers are "
        "concatenated') or pooled (the pooled features are); = --model-option head=...",
    )  # fmt: skip
    parser.add_argument(
        "--image-size", type=int_range(32), default=None, help="default: the detector's recipe"
    )
    parser.add_argument(
        "--middle-blocks", type=int_range(*md_csd["middle_blocks"].allowed), default=None,
        help="MD-CSD's Xception middle-flow blocks (default 8); "
        "= --model-option middle_blocks=...",
    )  # fmt: skip
    parser.add_argument(
        "--clip-frames", type=int_range(*clip["clip_frames"].allowed), default=None,
        help="a clip detector's frames per clip, T (dual_level; default: its recipe's, 8); "
        "= --model-option clip_frames=...",
    )  # fmt: skip
    parser.add_argument(
        "--weights", "--rgb-weights", dest="weights", default=default("published"),
        help="backbone initialisation: 'published' (default: as the detector's paper, e.g. "
        "ImageNet for Xception branches, downloaded once), 'imagenet', 'none', a weights "
        "file, or a detector's published weights name",
    )  # fmt: skip


#: The flags that are shorthands for a model option of the same name (`registry.Option`).
SHORTHAND_FLAGS = ("transform", "head", "middle_blocks", "clip_frames", "spectrum_in_model")


def model_options(args, detector: str | None = None) -> dict:
    """The model options given on the command line: the shorthand flags (`--middle-blocks 0`
    is `--model-option middle_blocks=0`) and each `--model-option NAME=VALUE`, checked against
    the detector's declared options (`training.plan.parse_model_options`)."""
    from md_csd_tf.training.plan import parse_model_options

    given = {n: getattr(args, n) for n in SHORTHAND_FLAGS if getattr(args, n, None) is not None}
    return parse_model_options(getattr(args, "model_option", None) or (), detector, given)


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
            "--fakes", type=fakes, default=None,
            help="training fakes: dataset (default, the paper), sbi, fwa, xray (pseudo-fakes "
            "from real frames only) or a mix such as dataset+sbi",
        )  # fmt: skip
