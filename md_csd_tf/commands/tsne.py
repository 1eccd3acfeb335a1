"""`md-csd tsne`: t-SNE of a model's pooled features of manifest crops, coloured by class."""

from __future__ import annotations

import argparse

from md_csd_tf.commands._options import int_range, non_negative, positive

NAME = "tsne"
HELP = "t-SNE of the pooled branch features of manifest crops, coloured by class and method"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a .keras model saved by md-csd-tf")
    parser.add_argument("--data", required=True, help="manifest.csv written by md-csd prepare")
    parser.add_argument("--out", required=True, help="folder for tsne.png and tsne.csv")
    parser.add_argument("--split", default=None, help="only this split (e.g. test)")
    parser.add_argument(
        "--max-samples", type=int_range(3), default=1000,
        help="crops embedded at most, spread evenly over real and each method (default 1000)",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=positive, default=32)
    parser.add_argument("--seed", type=non_negative, default=0)
    parser.add_argument("--dataset", default=None, help="required when the manifest mixes datasets")
    parser.add_argument(
        "--compression", default=None, help="required when the manifest mixes compressions"
    )


def run(args: argparse.Namespace) -> int:
    from md_csd_tf.files import check_writable

    check_writable(args.out, "folder", "--out")
    from md_csd_tf.inference.tsne import tsne_report
    from md_csd_tf.models.saving import load_detector

    model = load_detector(args.model)
    summary = tsne_report(
        model,
        args.data,
        args.out,
        args.split,
        args.max_samples,
        args.seed,
        args.batch_size,
        args.dataset,
        args.compression,
    )
    counts = ", ".join(f"{g} {n}" for g, n in sorted(summary["groups"].items()))
    print(f"t-SNE of {summary['crops']} crops ({counts})")
    for path in summary["files"]:
        print(f"  wrote {path}")
    return 0
