"""Ablations on FF++ c23, all manipulations: Table V (variants) or Table VI (transforms).

    python experiments/ablation.py --table V --data FACES/manifest.csv     # rgb ... md_csd
    python experiments/ablation.py --table VI --data FACES/manifest.csv    # dwt, fft, dct
    python experiments/ablation.py --demo                                  # stand-in data, CPU

Expected (paper, AUC): Table V 0.9509 / 0.8114 / 0.9789 / 0.9900 / 0.9929; Table VI
0.9665 / 0.9800 / 0.9929. Five (three) full trainings: plan 5x (3x) the GPU time of run_ff.py.
"""

import argparse
import sys
from pathlib import Path

from md_csd_tf import workflows
from md_csd_tf.commands.train import add_model_arguments


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="V", choices=("V", "VI", "v", "vi"))
    parser.add_argument("--data", help="manifest.csv from `md-csd prepare --dataset ffpp`")
    parser.add_argument("--out", default=".")
    parser.add_argument("--compression", default="c23", choices=("c23", "c40"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--demo", action="store_true", help="run on the built-in stand-in dataset")
    parser.add_argument("--smoke", action="store_true", help="tiny settings that finish in seconds")
    add_model_arguments(parser)
    args = parser.parse_args(argv)

    settings = dict(
        image_size=args.image_size,
        middle_blocks=args.middle_blocks,
        epochs=args.epochs,
        batch_size=args.batch_size,
        rgb_weights=None if args.rgb_weights.lower() == "none" else args.rgb_weights,
    )
    data, out = args.data, args.out
    if args.demo:
        out = out if out != "." else "demo_run"
        settings = dict(workflows.DEMO)
        data = workflows.prepare_demo_data(
            out, settings["image_size"], videos=4 if args.smoke else 20
        )
    elif not data:
        parser.error("--data is required (or use --demo)")
    if args.smoke:
        settings.update(workflows.SMOKE)
    outcome = workflows.ablation(args.table, data, str(Path(out)), args.compression, **settings)
    print(Path(outcome["table"]).read_text())
    return 0


if __name__ == "__main__":
    from md_csd_tf.cli import run_main

    sys.exit(run_main(main))
