"""`md-csd explain`: Grad-CAM heatmaps of the RGB and frequency branches (the paper's Fig. 3)."""

from __future__ import annotations

import argparse
import sys

from md_csd_tf.commands._options import positive

NAME = "explain"
HELP = (
    "Grad-CAM heatmaps of the RGB branch and of the frequency branch over the face crop, as "
    "PNGs, for images and sampled video frames"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a .keras model saved by md-csd-tf")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="video, image or folder")
    parser.add_argument("--out", required=True, help="folder for the PNGs")
    parser.add_argument(
        "--frames", type=positive, default=1, help="evenly spaced frames explained per video (1)"
    )
    parser.add_argument(
        "--target", choices=("predicted", "fake", "real"), default="predicted",
        help="class whose evidence is shown (default: the predicted one)",
    )  # fmt: skip
    parser.add_argument("--no-detect", dest="detect", action="store_false",
                        help="images are already face crops")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from md_csd_tf.errors import UserError
    from md_csd_tf.files import check_writable
    from md_csd_tf.inference.batch import collect_inputs
    from md_csd_tf.inference.detector import Detector, read_image
    from md_csd_tf.inference.gradcam import GradCamExplainer, write_explanation

    inputs = collect_inputs(args.inputs)
    if not inputs:
        raise UserError(f"no image or video found in {' '.join(args.inputs)}")
    check_writable(args.out, "folder", "--out")
    detector = Detector.load(args.model, batch_size=1)
    explainer = GradCamExplainer(detector.model)
    failed = 0
    for path, kind in inputs:
        try:
            if kind == "missing":
                raise UserError(f"{path}: no such file or folder")
            if kind == "image" or (kind == "unknown" and args.detect is False):
                image = read_image(path)
                if args.detect:
                    crop, _, _ = detector.cropper.crop(image)
                    if crop is None:
                        raise UserError(
                            f"{path}: no face found (dlib); pass --no-detect if it is already "
                            "a face crop"
                        )
                else:  # already a crop; Grad-CAM resizes it as every path does
                    crop = image
                crops = [(crop, None)]
            else:
                found, indices, _, _ = detector.video_crops(path, frames=args.frames)
                crops = list(zip(found, indices, strict=True))
            for crop, index in crops:
                stem = Path(path).stem if index is None else f"{Path(path).stem}_f{index:05d}"
                result = explainer.explain(crop, target=args.target)
                files = write_explanation(crop, result, args.out, stem)
                print(
                    f"{path}{'' if index is None else f' frame {index}'}: p(fake)="
                    f"{result.probability:.4f}, explained {result.target!r} -> {files[-2]}"
                )
        except Exception as error:  # noqa: BLE001 - report and go on with the other inputs
            failed += 1
            text = " ".join(str(error).split()) or type(error).__name__
            print(f"md-csd explain: error: {text if path in text else f'{path}: {text}'}",
                  file=sys.stderr)  # fmt: skip
    return 1 if failed else 0
