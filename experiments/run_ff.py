"""FF++ train + test: Table I (one manipulation) or Table II (all four), paper settings by default.

    python experiments/run_ff.py --data FACES/manifest.csv --compression c40 --manipulation all
    python experiments/run_ff.py --demo          # stand-in data, a few minutes on a 2-core CPU
    python experiments/run_ff.py --demo --smoke  # seconds; what CI runs

Expected (paper, Table II): c23 97.28 % / AUC 0.9929, c40 87.57 % / AUC 0.8901, on 3 V100s at
~4000 s per epoch; the full recipe needs one >= 16 GB GPU (batch 32 at 299 px, two Xceptions).
"""

import argparse
import json
import sys
from pathlib import Path

from md_csd_tf import workflows
from md_csd_tf.commands.train import add_model_arguments, given_settings


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="manifest.csv from `md-csd prepare --dataset ffpp`")
    parser.add_argument("--out", default=None, help="writes runs/ and results/ here (default .)")
    parser.add_argument("--compression", default="c23", choices=("c23", "c40"))
    parser.add_argument("--manipulation", default="all", choices=("all", *workflows.MANIPULATIONS))
    parser.add_argument("--epochs", type=int, default=None, help="default 20 (demo: 5)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 32 (demo: 16)")
    parser.add_argument("--demo", action="store_true", help="run on the built-in stand-in dataset")
    parser.add_argument("--smoke", action="store_true", help="tiny settings that finish in seconds")
    add_model_arguments(parser, defaults=False)
    args = parser.parse_args(argv)
    # Flags given on the command line win over the paper's, the demo's or the smoke settings.
    given = given_settings(args)

    if args.demo:
        summary = workflows.demo(args.out or "demo_run", smoke=args.smoke, **given)
        print(workflows.format_summary(summary))
        return 0
    if not args.data:
        parser.error("--data is required (or use --demo)")
    settings = {**(workflows.SMOKE if args.smoke else {}), **given}
    outcome = workflows.run_ff(
        args.data, args.out or ".", args.compression, args.manipulation, **settings
    )
    print(json.dumps(outcome["test"]["video"]["overall"], indent=2))
    print(Path(outcome["table"]).read_text())
    return 0


if __name__ == "__main__":
    from md_csd_tf.cli import run_main

    sys.exit(run_main(main))
