"""`md-csd evaluate`: frame- and video-level metrics of a saved model on a manifest split."""

from __future__ import annotations

import argparse
import json

from md_csd_tf.commands._options import aggregates, positive, probability

NAME = "evaluate"
HELP = "score a saved model on prepared crops: accuracy, AUC, EER, AP; metrics.json, predictions.csv, roc.png"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="a .keras file (e.g. RUN/best.keras) or ensemble folder")
    parser.add_argument(
        "--detector", default=None,
        help="with --weights: a registered detector's published weights, e.g. meso4 mesonet-df",
    )  # fmt: skip
    parser.add_argument("--weights", default=None, help="published weights name")
    parser.add_argument("--data", required=True, help="manifest.csv (or its folder)")
    parser.add_argument(
        "--out", required=True, help="folder for metrics.json, predictions.csv, roc.png"
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--dataset", default=None, help="default: every dataset in the manifest")
    parser.add_argument("--compression", default=None)
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument(
        "--aggregate", choices=aggregates(), default=None,
        help="video score (default: the detector's recipe; the paper's mean for MD-CSD)",
    )  # fmt: skip
    parser.add_argument("--threshold", type=probability, default=0.5)
    parser.add_argument("--batch-size", type=positive, default=32)


def run(args: argparse.Namespace) -> int:
    from md_csd_tf.data.manifest import check_crops_exist, read_manifest, select
    from md_csd_tf.errors import UserError
    from md_csd_tf.evaluation.evaluate import evaluate_model
    from md_csd_tf.files import check_writable
    from md_csd_tf.models.registry import load_published
    from md_csd_tf.models.saving import load_detector

    if not args.model and not (args.detector and args.weights):
        raise UserError("pass --model RUN/best.keras, or --detector NAME --weights WEIGHTS")
    # Everything that can be refused in one line is checked before the model is loaded.
    check_writable(args.out, "folder", "--out")
    frames = select(
        read_manifest(args.data),
        split=args.split,
        dataset=args.dataset,
        compression=args.compression,
        methods=args.methods,
    )
    check_crops_exist(frames, args.data)
    # The same loading as predict: a .keras file, an ensemble folder or published weights.
    model = load_detector(args.model) if args.model else load_published(args.detector, args.weights)
    result = evaluate_model(
        model, frames, args.out, args.batch_size, args.aggregate, args.threshold
    )
    print(json.dumps({level: result[level]["overall"] for level in ("frame", "video")}, indent=2))
    print(f"wrote {args.out}/metrics.json, predictions.csv, roc.png")
    return 0
