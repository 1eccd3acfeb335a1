"""`md-csd spectrum`: mean log-DCT spectra of real vs each manipulation (the paper's Fig. 1)."""

from __future__ import annotations

import argparse

from md_csd_tf.commands._options import non_negative, positive

NAME = "spectrum"
HELP = (
    "mean log-DCT heatmaps of real crops and of each manipulation, and their differences "
    "(Fig. 1), from a manifest"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="manifest.csv written by md-csd prepare")
    parser.add_argument("--out", required=True, help="folder for the PNGs and the .npy")
    parser.add_argument("--split", default=None, help="only this split (default: all rows)")
    parser.add_argument(
        "--max-per-group", type=positive, default=500,
        help="crops averaged per group at most, drawn at random (default 500)",
    )  # fmt: skip
    parser.add_argument("--seed", type=non_negative, default=0)
    parser.add_argument("--dataset", default=None, help="required when the manifest mixes datasets")
    parser.add_argument(
        "--compression", default=None, help="required when the manifest mixes compressions"
    )


def run(args: argparse.Namespace) -> int:
    from md_csd_tf.files import check_writable
    from md_csd_tf.inference.spectrum import spectrum_report

    check_writable(args.out, "folder", "--out")
    summary = spectrum_report(
        args.data,
        args.out,
        args.split,
        args.max_per_group,
        args.seed,
        args.dataset,
        args.compression,
    )
    counts = ", ".join(f"{g} {n}" for g, n in summary["crops"].items())
    print(f"mean log-DCT spectra over crops: {counts}")
    for path in summary["files"]:
        print(f"  wrote {path}")
    return 0
