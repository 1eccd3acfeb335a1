"""Trains the detector md-csd-tf ships, on real faces only (`md_csd_tf/configs/pretrain_sbi.py`).

    python experiments/pretrain.py                         # ~10 min of training on 2 CPU cores
    python experiments/pretrain.py --seed 1                # the same recipe, another training seed
    python experiments/pretrain.py --smoke                 # seconds; what the tests run
    python experiments/pretrain.py --ship                  # copy the finished model into the package

Writes `pretrain_run/` (data, crops, the run folder with best.keras, its calibrated threshold,
the held-out test and `summary.md`); a killed run started again resumes. `--ship` copies the
run's best.keras to `md_csd_tf/resources/pretrained/` with its model card and prints the hash
to record in `md_csd_tf/models/pretrained.py`. The candidates this recipe was chosen from:
`python experiments/pretrain_candidates.py`, results in docs/pretrained-model.md.
"""

import argparse
import dataclasses
import sys
from pathlib import Path


def main(argv=None) -> int:
    from md_csd_tf.configs.pretrain_sbi import get_config
    from md_csd_tf.pretraining import format_summary, pretrain

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output folder (default pretrain_run/)")
    parser.add_argument(
        "--seed", type=int, default=0,
        help="the training's seed (initialisation, pseudo-fakes); the data and its held-out "
        "people stay the same",
    )  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="seconds: bundled faces, tiny model")
    parser.add_argument("--ship", action="store_true", help="package the finished run's model")
    parser.add_argument(
        "--shuffled-labels", action="store_true",
        help="the control run: pairs' labels shuffled (run folder <name>-shuffled-labels)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    config = get_config(smoke=args.smoke, seed=args.seed)
    if args.seed:
        config = dataclasses.replace(config, name=f"{config.name}-seed{args.seed}")
    if args.shuffled_labels:
        config = dataclasses.replace(
            config, name=f"{config.name}-shuffled-labels", shuffle_labels=True
        )
    out = Path(args.out or ("pretrain_run/smoke" if args.smoke else "pretrain_run"))
    if args.ship:
        from md_csd_tf.pretraining import model_card, ship

        run = out / "runs" / config.name
        print(ship(run, card=model_card(run), check_crops=check_crops(out)))
        return 0
    summary = pretrain(config, out)
    print(format_summary(summary))
    print(f"training: {summary['train_seconds_this_process']:.0f} s this run, "
          f"{summary['epochs']} epochs, best epoch {summary['best_epoch']}")  # fmt: skip
    return 0


def check_crops(out: Path, count: int = 64):
    """Held-out test crops of the corpus, real and fake, for the float16 storage check."""
    import cv2
    import numpy as np

    from md_csd_tf.data.manifest import read_manifest, select

    frames = select(read_manifest(out / "data" / "crops" / "manifest.csv"), "test", "faces")
    picked = frames.sample(n=min(count, len(frames)), random_state=0)
    return np.stack([cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB) for p in picked["abs_path"]])


if __name__ == "__main__":
    from md_csd_tf.cli import run_main

    sys.exit(run_main(main))
