"""FF++ train + test: a Table I cell (one manipulation) or a Table II row (all four).

    python experiments/run_ff.py --data FACES/manifest.csv --compression c40 --manipulation all
    python experiments/run_ff.py --demo          # stand-in data, a few minutes on a 2-core CPU
    python experiments/run_ff.py --smoke         # seconds; what CI runs

Expected (paper, Table II): c23 97.28 % / AUC 0.9929, c40 87.57 % / AUC 0.8901, on 3 V100s at
~4000 s per epoch; the full recipe needs one >= 16 GB GPU (batch 32 at 299 px, two Xceptions).
Every experiment's command, number and cost: `python experiments/tables.py --list`.
"""

import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    from md_csd_tf.commands.flags import add_experiment_arguments
    from md_csd_tf.names import COMPRESSIONS, FFPP_METHODS
    from md_csd_tf.workflows import demo, tables
    from md_csd_tf.workflows.settings import experiment_inputs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_experiment_arguments(parser)
    parser.add_argument("--compression", default="c23", choices=list(COMPRESSIONS))
    parser.add_argument("--manipulation", default="all", choices=("all", *FFPP_METHODS))
    args = parser.parse_args(argv)
    if (
        (args.demo or args.smoke)
        and not args.data
        and args.manipulation == "all"
        and (args.detector in (None, "md_csd"))
    ):
        # The demo itself: Table II's row plus the cross-dataset stand-ins and the shortcut check.
        summary = demo.demo(args.out or "demo_run", smoke=args.smoke, **_given(args))
        print(demo.format_summary(summary))
        return 0
    out, manifest, settings, prefix = experiment_inputs(args)
    outcome = tables.run_ff(
        manifest,
        out,
        args.compression,
        args.manipulation,
        settings,
        prefix,
        args.detector,
        args.transform,
    )
    print(json.dumps(outcome["measured"], indent=2))
    print(Path(outcome["tables"]).read_text())
    return 0


def _given(args):
    from md_csd_tf.workflows.settings import given_settings

    return given_settings(args)


if __name__ == "__main__":
    from md_csd_tf.cli import run_main

    sys.exit(run_main(main))
