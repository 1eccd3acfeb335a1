"""Every detector of the registry on the same FF++ split, crops and metrics: one table.

    python experiments/leaderboard.py --data FACES/manifest.csv --out /data/board \
        --detectors md_csd,xception,meso4,capsule --compression c23
    python experiments/leaderboard.py --demo          # stand-in data, CPU (~20 min)
    python experiments/leaderboard.py --smoke         # seconds

Each detector trains with its own published recipe (`md-csd detectors --recipes`); each is
tested at frame and video level, per manipulation, and on Celeb-DF and DFD when the manifest
holds them. Finished runs are reused. Writes results/leaderboard.md and .csv, with the number
the MD-CSD paper cites for a system beside ours.
"""

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    from md_csd_tf.commands.flags import add_experiment_arguments
    from md_csd_tf.models.registry import list_detectors
    from md_csd_tf.names import COMPRESSIONS, FFPP_METHODS
    from md_csd_tf.workflows import leaderboard
    from md_csd_tf.workflows.settings import experiment_inputs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_experiment_arguments(parser)
    parser.add_argument(
        "--detectors", default=None,
        help="comma-separated registered detectors (default: every one but MD-CSD's ablations)",
    )  # fmt: skip
    parser.add_argument("--compression", default="c23", choices=list(COMPRESSIONS))
    parser.add_argument("--manipulation", default="all", choices=("all", *FFPP_METHODS))
    args = parser.parse_args(argv)
    known = list_detectors()
    if args.detectors:
        chosen = [d.strip() for d in args.detectors.split(",") if d.strip()]
    else:  # the Table V ablations are MD-CSD itself with parts removed: ablation.py runs them
        chosen = [d for d in known if d == "md_csd" or not d.startswith("md_csd_")]
    unknown = [d for d in chosen if d not in known]
    if unknown:
        parser.error(f"unknown detector(s) {unknown}; choose from {known}")
    out, manifest, settings, prefix = experiment_inputs(args, fixed=("detector", "transform"))
    path = leaderboard.leaderboard(
        manifest, out, chosen, args.compression, args.manipulation, settings, prefix
    )
    print(Path(path).read_text())
    failed = "error" in Path(path).with_suffix(".csv").read_text().splitlines()[0].split(",")
    return 1 if failed else 0


if __name__ == "__main__":
    from md_csd_tf.cli import run_main

    sys.exit(run_main(main))
