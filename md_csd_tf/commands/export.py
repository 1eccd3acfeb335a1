"""`md-csd export`: a TensorFlow SavedModel for serving, preprocessing included."""

from __future__ import annotations

import argparse

NAME = "export"
HELP = (
    "write a TensorFlow SavedModel whose serving signature takes uint8 face crops and returns "
    "the fake probability (the frequency transform is computed inside)"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # numpy only: the CLI stays fast
    from md_csd_tf.inference.precision import AUC_TOLERANCE, MIN_AGREEMENT, PRECISIONS

    parser.add_argument("--model", required=True, help="a .keras model saved by md-csd-tf")
    parser.add_argument(
        "--out", help="SavedModel folder (or .tflite file) to write; with --precision, default: "
        "beside --model, where md-csd predict --precision looks for it",
    )  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    parser.add_argument(
        "--runtime", choices=("savedmodel", "tflite"), default="savedmodel",
        help="tflite: write one .tflite file for the CPU serving runtime (XNNPACK) instead",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="float32",
        help="bfloat16 (SavedModel) or int8 (--runtime tflite, full-integer post-training "
        "quantisation): written only when its check on --check passes (|AUC diff| <= "
        f"{AUC_TOLERANCE}, verdicts agree on >= {MIN_AGREEMENT * 100:.0f}%%), with a check record "
        "beside it; docs/inference.md",
    )  # fmt: skip
    parser.add_argument(
        "--check", help="--precision: a crops manifest whose labelled --check-split rows are "
        "scored in float32 and in the reduced precision",
    )  # fmt: skip
    parser.add_argument("--check-split", default="test", help="the manifest split --check scores")
    parser.add_argument(
        "--calibration", help="--precision int8: real face crops setting the activation ranges: "
        "a crops manifest (its real --calibration-split crops) or a folder of crop images",
    )  # fmt: skip
    parser.add_argument(
        "--calibration-split", default="train", help="manifest split to calibrate on"
    )
    parser.add_argument(
        "--calibration-frames", type=int, default=300, help="at most this many calibration crops"
    )


def run(args: argparse.Namespace) -> int:
    import os

    from md_csd_tf.errors import UserError
    from md_csd_tf.files import atomic_path, check_writable

    if args.precision != "float32":
        return _run_precision(args)
    if not args.out:
        raise UserError("--out is required (the SavedModel folder or .tflite file to write)")
    if args.runtime == "tflite":
        return _run_tflite(args)
    if os.path.isdir(args.out) and os.listdir(args.out) and not args.overwrite:
        raise UserError(f"{args.out}: folder exists and is not empty; pass --overwrite")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(f"{args.out}: exists and is not a folder")
    # Checked before the model is loaded; the SavedModel is renamed into --out's parent.
    check_writable(args.out, "folder" if os.path.isdir(args.out) else "file", "--out")

    from md_csd_tf.inference.export import SIGNATURE, export_saved_model
    from md_csd_tf.models.saving import load_detector

    model = load_detector(args.model)
    # Written beside the target under a unique name and renamed, so a failed export never
    # leaves half a SavedModel where a server might pick it up.
    with atomic_path(os.path.normpath(args.out)) as partial:
        export_saved_model(model, str(partial))
    size = model.image_size
    print(f"wrote SavedModel {args.out}")
    print(
        f"  signature {SIGNATURE!r}: crops uint8 (batch, height, width, 3) RGB face crops "
        f"(resized to {size}x{size} inside) -> fake_probability float32 (batch,)"
    )
    print(f"  detector {model.detector}, branches {'+'.join(model.branches)}, "
          f"transform {model.transform}")  # fmt: skip
    return 0


def _run_tflite(args: argparse.Namespace) -> int:
    import os

    from md_csd_tf.errors import UserError
    from md_csd_tf.files import atomic_path, check_writable

    if os.path.isdir(args.out):
        raise UserError(f"{args.out}: is a folder; --runtime tflite writes one .tflite file")
    if os.path.exists(args.out) and not args.overwrite:
        raise UserError(f"{args.out}: exists; pass --overwrite")
    check_writable(args.out, "file", "--out")

    from md_csd_tf.inference.runtime import export_tflite
    from md_csd_tf.models.saving import load_detector

    model = load_detector(args.model)
    with atomic_path(args.out) as partial:
        export_tflite(model, partial)
    print(f"wrote TFLite model {args.out}: crops uint8 (batch, height, width, 3) RGB face crops")
    print(f"  (resized to {model.image_size} px inside) -> fake_probability float32 (batch,)")
    return 0


def _run_precision(args: argparse.Namespace) -> int:
    import os

    from md_csd_tf.errors import UserError
    from md_csd_tf.files import check_writable
    from md_csd_tf.inference.precision import (
        RUNTIME_OF,
        export_variant,
        record_path,
        variant_path,
    )

    runtime = RUNTIME_OF[args.precision]
    if args.runtime != runtime:
        raise UserError(f"--precision {args.precision} runs in {runtime}: pass --runtime {runtime}")
    if not args.check:
        raise UserError(f"--precision {args.precision} needs --check MANIFEST (labelled crops)")
    default = str(variant_path(args.model, args.precision))
    args.out = args.out or default
    if os.path.abspath(args.out) != os.path.abspath(default):
        print(f"note: md-csd predict --precision looks for {default}; this one is for serving")
    if os.path.exists(args.out) and not args.overwrite:
        raise UserError(f"{args.out}: exists; pass --overwrite")
    check_writable(args.out, "file", "--out")
    result = export_variant(
        args.model, args.precision, args.out, args.check, args.calibration, args.check_split,
        args.calibration_split, args.calibration_frames,
    )  # fmt: skip
    print(f"wrote {args.precision} {runtime} model {args.out} (check passed: {result.summary()})")
    print(f"  check record {record_path(args.out)}")
    return 0
