"""`md-csd predict`: score videos, images and folders of them with a saved model."""

from __future__ import annotations

import argparse
import sys

from md_csd_tf.commands._options import aggregates, non_negative, positive, probability

NAME = "predict"
HELP = (
    "score videos and images (folders are searched recursively) with the shipped detector or a "
    "saved model: face crops as in data prep, per-frame fake probability, video score, verdict"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from md_csd_tf.inference.precision import PRECISIONS  # numpy only: the CLI stays fast

    parser.add_argument(
        "--model",
        help="a .keras model saved by md-csd-tf (default: the detector md-csd-tf ships, "
        "md-csd-sbi; or a --detector with --weights)",
    )
    parser.add_argument(
        "--detector", default=None,
        help="with --weights: a registered detector and its published weights, e.g. "
        "--detector meso4 --weights mesonet-df (no training, no download)",
    )  # fmt: skip
    parser.add_argument("--weights", default=None, help="published weights name or file")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video, image or folder")
    parser.add_argument(
        "--frames", type=_frames, default=None, metavar="N|auto",
        help="evenly spaced frames per video (default 32); auto: the 32 scored in stages, "
        "stopping once the frames scored decide the verdict; with --every, a cap (default none)",
    )  # fmt: skip
    parser.add_argument(
        "--every", type=positive, default=None, metavar="K",
        help="score every K-th frame from the first instead of evenly spaced frames",
    )  # fmt: skip
    parser.add_argument(
        "--aggregate", choices=aggregates(), default=None,
        help="video score: mean frame probability (paper) or fraction of frames voting fake",
    )  # fmt: skip
    parser.add_argument(
        "--threshold", type=probability, default=None,
        help="fake when the probability is above this (default: the threshold calibrated on "
        "the model's validation split, stored in the model; 0.5 for a model without one)",
    )  # fmt: skip
    parser.add_argument(
        "--faces", choices=("all", "largest"), default="all",
        help="all (default): every face of a video, followed across frames; the video is fake "
        "when any face seen in enough frames is (FFIW); largest: the largest face of each frame, "
        "as data prep and FF++ (images, --frames auto and clip detectors always take the largest)",
    )  # fmt: skip
    parser.add_argument(
        "--no-detect", dest="detect", action="store_false",
        help="images are already face crops: skip face detection (videos always detect)",
    )  # fmt: skip
    parser.add_argument(
        "--batch-size", type=positive, default=32, help="crops per model call (default 32)"
    )
    parser.add_argument(
        "--detect-max-side", type=non_negative, default=None,
        help="downscale frames to this longest side for face detection (0: full size; default: "
        "the model's, as its crops were prepared, else 640)",
    )  # fmt: skip
    parser.add_argument(
        "--runtime", choices=("keras", "tflite"), default="keras",
        help="score with Keras (default) or the TFLite/XNNPACK model exported beside --model",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="float32",
        help="score with a reduced-precision variant of --model (or of the shipped model); "
        "refused unless md-csd export --precision checked it against float32 (docs/inference.md)",
    )  # fmt: skip
    parser.add_argument("--output", help="write the table to this .csv or .json")
    parser.add_argument(
        "--report", metavar="DIR", default=None,
        help="write one self-contained HTML report per input (verdict, threshold, per-frame "
        "scores of each face, most suspicious frames with Grad-CAM, model card) and a summary "
        "DIR/index.html (docs/report.md)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _frames(text: str):
    """--frames: a positive count, or "auto" (`inference.sequential`)."""
    return "auto" if text == "auto" else positive(text)


_frames.__name__ = "frames"  # argparse's "invalid frames value" names it


def run(args: argparse.Namespace) -> int:
    from md_csd_tf.errors import UserError
    from md_csd_tf.files import check_writable

    if args.output and not args.output.lower().endswith((".csv", ".json")):
        raise UserError(f"--output {args.output}: must end in .csv or .json")
    if args.output:  # before scoring: an unwritable --output must not cost the whole run
        check_writable(args.output, "file", "--output")
    if args.report:  # likewise: an unwritable --report must not cost the whole run
        check_writable(args.report, "folder", "--report")
    if args.precision != "float32":  # before any model is loaded or exported
        if args.runtime != "keras":
            raise UserError(f"--precision {args.precision} picks its own runtime; drop --runtime")
        if args.detector or args.weights:
            raise UserError("--precision needs --model RUN/best.keras (or the shipped model)")

    from md_csd_tf.inference.batch import collect_inputs, format_table, write_results
    from md_csd_tf.inference.crops import DEFAULT_FRAMES, check_sampling

    inputs = collect_inputs(args.inputs)
    if not inputs:
        raise UserError(f"no image or video found in {' '.join(args.inputs)}")
    if args.every:
        sampling = {"sampling": "every", "every_k": args.every, "frames": args.frames}
    else:
        sampling = {"sampling": "uniform", "frames": args.frames or DEFAULT_FRAMES}
    check_sampling(sampling["frames"], sampling["sampling"])  # --every with --frames auto
    # Importing TensorFlow and loading the model take seconds: the first inputs are decoded
    # and cropped meanwhile (score_inputs takes the crops over if they are the model's).
    early = _start_inputs(args, inputs, sampling)
    try:
        detector = _load_detector(args)
        # The video score as the detector's publication computes it, unless asked otherwise.
        args.aggregate = args.aggregate or detector.recipe.video_aggregate
        from md_csd_tf.inference.batch import score_inputs

        rows = score_inputs(
            detector,
            inputs,
            progress=not args.quiet,
            prefetch=early if early is not None else True,
            detect=args.detect,
            aggregate=args.aggregate,
            threshold=detector.threshold,
            faces=args.faces,
            **sampling,
        )
    finally:
        if early is not None:
            early.close()
    print(format_table(rows))
    print(
        f"threshold {detector.threshold:.4f} ({detector.threshold_source}); model: {_model_name(args)}"
    )
    if detector.crop_note:
        print(f"note: {detector.crop_note}")
    for row in rows:
        if row.face_note:
            print(f"note: {row.face_note}")
        if row.ok and row.faces > 1:  # which face made the verdict, and what the others scored
            faces = "; ".join(
                f"{face.id}: {face.verdict} {face.fake_probability:.4f} in "
                f"{len(face.frame_indices)} frames{'' if face.counted else ' (too few to count)'}"
                for face in row.identities
            )
            print(f"note: {row.input}: {row.faces} faces, face {row.decided_by} decides ({faces})")
    failed = [r for r in rows if not r.ok]
    for row in failed:
        print(f"md-csd predict: error: {row.error}", file=sys.stderr)
    if args.output:
        try:
            path = write_results(
                rows,
                args.output,
                model=_model_name(args),
                aggregate=args.aggregate,
                threshold=detector.threshold,
                threshold_source=detector.threshold_source,
                detect=args.detect,
                faces=args.faces,
                precision=args.precision,
                **sampling,
            )
        except OSError as error:
            raise UserError(f"--output {args.output}: cannot be written ({error})") from None
        print(f"wrote {path}")
    if args.report:
        from md_csd_tf.inference.report import write_reports

        try:
            index = write_reports(rows, detector, args.report, threshold=detector.threshold)
        except OSError as error:
            raise UserError(f"--report {args.report}: cannot be written ({error})") from None
        print(f"wrote {len(rows)} reports and {index}")
    print(f"{len(rows) - len(failed)} of {len(rows)} inputs scored")
    return 1 if failed else 0


def _model_name(args: argparse.Namespace) -> str:
    if args.model:
        return args.model
    if args.detector:
        return f"{args.detector} ({args.weights})"
    from md_csd_tf.models.pretrained import DEFAULT

    return f"{DEFAULT} (shipped)"


def _start_inputs(args: argparse.Namespace, inputs, sampling: dict):
    """A `CropStream` already cropping the first inputs when the model is a .keras file whose
    crop size can be read without loading it."""
    from md_csd_tf.inference.crops import (
        AUTO,
        CropStream,
        make_cropper,
        saved_crop_settings,
        saved_crop_size,
    )

    model = args.model
    if model is None and args.detector is None:  # the shipped model (unchecked: loading checks)
        from md_csd_tf.errors import UserError
        from md_csd_tf.models.pretrained import path_of

        try:
            model = path_of(check=False)
        except UserError:
            model = None
    size = saved_crop_size(model) if model else None
    if size is None or not inputs:
        return None
    cropper, _ = make_cropper(size, saved_crop_settings(model), _detect_max_side(args))
    # As score_inputs settles it: auto decides on one face's scores (a clip detector, known
    # only once loaded, replaces this stream).
    faces = "largest" if sampling["frames"] == AUTO else args.faces
    stream = CropStream(
        inputs, cropper, track=True, detect=args.detect, batch_size=args.batch_size,
        faces=faces, **sampling,
    )  # fmt: skip
    return stream.start()


def _detect_max_side(args: argparse.Namespace):
    """--detect-max-side as `Detector` takes it: "model" when not given, None for 0."""
    if args.detect_max_side is None:
        return "model"
    return args.detect_max_side or None


def _load_detector(args: argparse.Namespace):
    from md_csd_tf.errors import UserError
    from md_csd_tf.inference.detector import Detector

    options = dict(
        batch_size=args.batch_size,
        detect_max_side=_detect_max_side(args),
        threshold=args.threshold,
    )
    if args.model:
        detector = Detector.load(args.model, **options)
    elif args.detector and args.weights:
        detector = Detector.pretrained(args.detector, args.weights, **options)
    elif args.detector or args.weights:
        raise UserError("pass --detector NAME with --weights WEIGHTS (or --model RUN/best.keras)")
    else:
        detector = Detector.pretrained(**options)
    if args.runtime != "keras":
        if not args.model:
            raise UserError(f"--runtime {args.runtime} needs --model RUN/best.keras")
        from md_csd_tf.inference.runtime import open_runtime

        detector.use_runtime(open_runtime(args.model, detector.model, args.runtime))
    if args.precision != "float32":
        from md_csd_tf.inference.precision import use_precision

        use_precision(detector, args.model, args.precision)
    return detector
