"""Ablations on FF++ c23, all manipulations: Table V (variants) or Table VI (transforms).

    python experiments/ablation.py --table V --data FACES/manifest.csv     # rgb ... md_csd
    python experiments/ablation.py --table VI --data FACES/manifest.csv    # dwt, fft, dct
    python experiments/ablation.py --demo                                  # stand-in data, CPU
    python experiments/ablation.py --smoke                                 # seconds

Expected (paper, AUC): Table V 0.9509 / 0.8114 / 0.9789 / 0.9900 / 0.9929; Table VI
0.9665 / 0.9800 / 0.9929. Table V row 5 and Table VI's DCT row are Table II's c23 model: it is
trained once (or found finished under --out) and reused, so Table V costs four more trainings
and Table VI two.
"""

import argparse
import sys
from pathlib import Path


def main(argv=None) -> int:
    from md_csd_tf.commands.flags import add_experiment_arguments
    from md_csd_tf.workflows import tables
    from md_csd_tf.workflows.settings import experiment_inputs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default="V", type=str.upper, choices=("V", "VI"))
    add_experiment_arguments(parser)
    args = parser.parse_args(argv)
    out, manifest, settings, prefix = experiment_inputs(args, fixed=("detector", "transform"))
    outcome = tables.ablation(args.table, manifest, out, settings, prefix)
    print(Path(outcome["table"]).read_text())
    return 0


if __name__ == "__main__":
    from md_csd_tf.cli import run_main

    sys.exit(run_main(main))
