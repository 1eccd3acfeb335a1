"""Cross-dataset AUC of an FF++-trained model: Table III (Celeb-DF) or Table IV (DFD).

    md-csd prepare --dataset celebdf --root Celeb-DF-v2 --out FACES   # 25 frames per video
    python experiments/cross_dataset.py --model RUN/best.keras --data FACES/manifest.csv --dataset celebdf

Expected (paper): Celeb-DF frame-level AUC 0.6877 (Table III), DFD AUC 0.8951 (Table IV).
Scoring Celeb-DF's 518 test videos x 25 frames takes ~2 min on one GPU, ~40 min on 2 CPU cores.
"""

import argparse
import json
import sys
from pathlib import Path

from md_csd_tf import workflows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a .keras model trained on FF++")
    parser.add_argument("--data", required=True, help="manifest.csv holding the target dataset")
    parser.add_argument("--dataset", required=True, choices=("celebdf", "dfd"))
    parser.add_argument("--out", default=".")
    parser.add_argument(
        "--compression", default=None, help="DFD quality level if several were prepared (c23)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    outcome = workflows.cross_dataset(
        args.model, args.data, args.dataset, args.out, args.batch_size, compression=args.compression
    )
    print(json.dumps(outcome["test"]["frame"]["overall"], indent=2))
    print(Path(outcome["table"]).read_text())
    return 0


if __name__ == "__main__":
    from md_csd_tf.cli import run_main

    sys.exit(run_main(main))
