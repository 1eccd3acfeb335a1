"""The candidates the shipped detector was chosen from: each trained on the same real faces with the
same pseudo-fakes, from random weights, for the same training time, and compared by AUC on the
identity-held-out validation split.

    python experiments/pretrain_candidates.py                # 1200 CPU-s (~10 min) of training each
    python experiments/pretrain_candidates.py --budget 300 --only meso4@128,md_csd@128
    python experiments/pretrain_candidates.py --smoke              # seconds

Writes `pretrain_run/candidates.md` and `.csv` (detector, input size, parameters, training time
and steps, best validation AUC and its epoch, held-out test AUC and real videos' mean P(fake)),
and each candidate's run folder under `pretrain_run/runs/`. A finished candidate is not trained
again. Results and the choice: docs/pretrained-model.md.
"""

import argparse
import sys
from pathlib import Path

# detector@size[:option=value,...]: every candidate starts from random weights (no ImageNet
# download here); md_csd and its branches without Xception's middle flow fit a CPU budget.
CANDIDATES = (
    "meso4@128",
    "mesoinception4@128",
    "md_csd@128:middle_blocks=0",
    "md_csd_rgb@128:middle_blocks=0",
    "md_csd_freq@128:middle_blocks=0",
    "capsule@128",
    "attention_net@128",
    "efficientnet_b4@128",
    "meso4@256",
)


def parse(spec: str) -> tuple[str, int, dict]:
    """`"md_csd@128:middle_blocks=0"` -> `("md_csd", 128, {"middle_blocks": 0})`."""
    head, _, options = spec.partition(":")
    name, _, size = head.partition("@")
    parsed = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        parsed[key] = int(value) if value.lstrip("-").isdigit() else value
    return name, int(size), parsed


def main(argv=None) -> int:
    import dataclasses
    import json

    import pandas as pd

    from md_csd_tf.configs.pretrain_sbi import get_config
    from md_csd_tf.evaluation.results_table import markdown_table
    from md_csd_tf.files import atomic_write_text
    from md_csd_tf.pretraining import pretrain, real_mean

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output folder (default pretrain_run/)")
    parser.add_argument(
        "--budget", type=float, default=1200.0,
        help="training CPU seconds each (all threads; ~2x wall time on 2 idle cores)",
    )  # fmt: skip
    parser.add_argument("--only", default=None, help="comma-separated candidate specs")
    parser.add_argument(
        "--fakes", default="sbi", help="pseudo-fakes: sbi, xray, fwa or a mix (sbi+xray)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    specs = args.only.split(";") if args.only and ";" in args.only else (
        args.only.split(",") if args.only else CANDIDATES
    )  # fmt: skip
    out = Path(args.out or ("pretrain_run/smoke" if args.smoke else "pretrain_run"))
    base = get_config(smoke=args.smoke, seed=args.seed)
    rows = []
    for spec in specs:
        name, size, options = parse(spec)
        label = f"candidate-{name}-{size}" + "".join(f"-{k}{v}" for k, v in options.items())
        if args.fakes != "sbi":
            label += "-" + args.fakes.replace("+", "-")
        config = dataclasses.replace(
            base, name=label, detector=name, image_size=size, model_options=options,
            fakes=args.fakes, epochs=1 if args.smoke else 1000,
        )  # fmt: skip
        done = out / "runs" / label / "summary.json"
        if done.is_file():  # finished before: its figures, not another budget of training
            summary = json.loads(done.read_text(encoding="utf-8"))
        else:
            summary = pretrain(config, out, time_budget=None if args.smoke else args.budget)
        faces = summary["datasets"].get("faces", {})
        rows.append({
            "candidate": spec, "fakes": args.fakes, "detector": name, "input": size,
            "parameters": summary["parameters"],
            "train_s": summary["train_seconds_this_process"],
            "steps": summary["epochs"] * config.steps_per_epoch,
            "val_auc": summary["val_auc"], "best_epoch": summary["best_epoch"],
            "test_faces_video_auc": faces.get("video_auc"),
            "test_faces_frame_auc": faces.get("frame_auc"),
            "test_ffpp_video_auc": summary["datasets"].get("ffpp", {}).get("video_auc"),
            "test_real_mean_p_fake": real_mean(summary),
        })  # fmt: skip
        table = pd.DataFrame(rows)
        stem = "candidates" if args.fakes == "sbi" else f"candidates-{args.fakes.replace('+', '-')}"
        atomic_write_text(out / f"{stem}.csv", table.to_csv(index=False))
        atomic_write_text(out / f"{stem}.md", markdown_table(rows))
        print(table.to_string(index=False), flush=True)
    return 0


if __name__ == "__main__":
    from md_csd_tf.cli import run_main

    sys.exit(run_main(main))
