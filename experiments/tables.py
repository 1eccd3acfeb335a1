"""Tables I-VI of the paper, assembled from whatever runs have finished under --out.

    python experiments/tables.py --out /data/exp                # after run_ff/ablation/cross
    python experiments/tables.py --demo                         # the demo's runs (demo_run/)
    python experiments/tables.py --list                         # every experiment, its command,
                                                                # the paper's number, its cost

Trains nothing: cells whose run has not finished say so ("not run", "training (epoch 3 of
20)"). Pass the same profile and flags as the runs (--demo, --smoke, --epochs ...): they decide
which run folder a cell reads. Writes results/table_<n>.md|csv and results/tables.md.
"""

import argparse
import sys


def main(argv=None) -> int:
    from md_csd_tf.commands.flags import add_augment_arguments, add_model_arguments
    from md_csd_tf.workflows import runs, tables
    from md_csd_tf.workflows.paper_configs import EXPERIMENTS
    from md_csd_tf.workflows.settings import given_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="the --out of the runs (default . or demo_run)")
    parser.add_argument("--demo", action="store_true", help="the runs made with --demo")
    parser.add_argument("--smoke", action="store_true", help="the runs made with --smoke")
    parser.add_argument("--list", action="store_true", help="list the experiments and stop")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    add_model_arguments(parser, defaults=False)
    add_augment_arguments(parser, defaults=False)
    args = parser.parse_args(argv)
    if args.list:
        for experiment in EXPERIMENTS.values():
            print(experiment.doc)
        return 0
    given = given_settings(args)
    _, settings = runs.profile_settings(args.demo, args.smoke, given)
    # Where the scripts put runs made without --data: demo_run/, demo_run/smoke/.
    out = args.out or ("demo_run/smoke" if args.smoke else "demo_run" if args.demo else ".")
    prefix = tables.STAND_IN if args.demo or args.smoke else ""
    path = tables.assemble_tables(out, settings, prefix)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    from md_csd_tf.cli import run_main

    sys.exit(run_main(main))
