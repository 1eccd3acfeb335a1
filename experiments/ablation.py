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
from md_csd_tf.commands.train import given_settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="V", choices=("V", "VI", "v", "vi"))
    parser.add_argument("--data", help="manifest.csv from `md-csd prepare --dataset ffpp`")
    parser.add_argument("--out", default=None, help="writes runs/ and results/ here (default .)")
    parser.add_argument("--compression", default="c23", choices=("c23", "c40"))
    parser.add_argument("--epochs", type=int, default=None, help="default 20 (demo: 5)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32 (demo: 16)")
    parser.add_argument("--demo", action="store_true", help="run on the built-in stand-in dataset")
    parser.add_argument("--smoke", action="store_true", help="tiny settings that finish in seconds")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--middle-blocks", type=int, default=None)
    parser.add_argument(
        "--rgb-weights", default=None, help="'imagenet' (default), 'none' or a file"
    )
    args = parser.parse_args(argv)
    # The table fixes the variant (V) or the transform (VI); the other flags layer over the
    # paper's settings, or the demo's, or the smoke settings.
    given = given_settings(
        args, ("image_size", "middle_blocks", "rgb_weights", "epochs", "batch_size")
    )
    data, out = args.data, args.out or "."
    base = {}
    if args.demo:
        out = args.out or "demo_run"
        base = dict(workflows.DEMO)
        if args.smoke:
            base.update(workflows.SMOKE)
            out = str(Path(out) / "smoke")
        data = workflows.prepare_demo_data(
            out, {**base, **given}.get("image_size", 71), videos=4 if args.smoke else 20
        )
    elif not data:
        parser.error("--data is required (or use --demo)")
    elif args.smoke:
        base = dict(workflows.SMOKE)
    prefix = workflows.STAND_IN if args.demo else ""
    outcome = workflows.ablation(
        args.table, data, out, args.compression, title_prefix=prefix, **{**base, **given}
    )
    print(Path(outcome["table"]).read_text())
    return 0


if __name__ == "__main__":
    from md_csd_tf.cli import run_main

    sys.exit(run_main(main))
