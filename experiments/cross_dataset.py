"""Cross-dataset AUC of an FF++-trained model: Table III (Celeb-DF) or Table IV (DFD).

    md-csd prepare --dataset celebdf --root Celeb-DF-v2 --out FACES   # its 518 test videos
    python experiments/cross_dataset.py --data FACES/manifest.csv --dataset celebdf
    python experiments/cross_dataset.py --model RUN/best.keras --data FACES/manifest.csv --dataset dfd
    python experiments/cross_dataset.py --demo --dataset celebdf     # stand-in data, CPU
    python experiments/cross_dataset.py --smoke                      # seconds

Without --model, the Table II c23 model (FF++ c23, all four manipulations; the paper does not
say which FF++ model it used) is trained once from --data, or found finished under --out, and
both Table III columns (FF++ Deepfakes AUC, Celeb-DF AUC) come from it.
Expected (paper): Table III 0.9970 / 0.6877, Table IV 0.8951 (frame-level AUC). Scoring
Celeb-DF's 518 test videos x 25 frames takes ~2 min on one GPU, ~40 min on 2 CPU cores.
"""

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    from md_csd_tf.commands.flags import add_experiment_arguments
    from md_csd_tf.workflows import tables
    from md_csd_tf.workflows.settings import experiment_inputs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", help="a saved .keras model (default: train the Table II c23 one)"
    )
    parser.add_argument("--dataset", default="celebdf", choices=("celebdf", "dfd"))
    parser.add_argument(
        "--compression", default=None, help="DFD quality level if several were prepared (c23)"
    )
    add_experiment_arguments(parser)
    args = parser.parse_args(argv)
    out, manifest, settings, prefix = experiment_inputs(args)
    outcome = tables.cross_dataset(
        manifest,
        args.dataset,
        out,
        args.model,
        settings,
        args.compression,
        prefix,
        args.detector,
        args.transform,
    )
    if "test" in outcome:
        print(json.dumps(outcome["test"]["frame"]["overall"], indent=2))
        print(Path(outcome["table"]).read_text())
    else:
        print(json.dumps(outcome["measured"], indent=2))
        print(Path(outcome["tables"]).read_text())
    return 0


if __name__ == "__main__":
    from md_csd_tf.cli import run_main

    sys.exit(run_main(main))
