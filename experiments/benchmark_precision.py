"""Reduced precision beside float32 on one model, in one run: speed ratios and the check's figures.

    python experiments/benchmark_precision.py --check MANIFEST --calibration MANIFEST
        # the shipped detector (Meso-4, 128 px); the check set is MANIFEST's test split (the
        # stand-in test set of docs/pretrained-model.md), calibration its real train crops
    python experiments/benchmark_precision.py --model MDCSD_299.keras --speed-only
        # a 299 px MD-CSD: random crops, speed only (random weights have no verdicts to keep)

Variants: Keras float32 (the baseline, a `tf.function` as `Detector` runs it), Keras bfloat16
(`precision.bfloat16_model`), TFLite float32 with every core and with one thread, TFLite int8
(full-integer post-training quantisation calibrated on real crops, as `md-csd export
--precision int8` writes it) and TFLite with int8 weights only (dynamic range; measured, not
offered). Speed: the variants take turns on the same batches, `--rounds` times, so the shared
machine's shifting load hits each alike; images/s is the median over rounds, printed with the
load average, and only the ratios to Keras float32 mean anything. Accuracy: every crop of the
check set scored once by each variant beside float32 (`precision.compare`: max |score diff|,
AUC, verdict agreement at the model's threshold; pass = the bar `md-csd export --precision`
applies). Writes the Markdown table to --out. Cost: ~3 min for the shipped model on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a .keras model (default: the shipped md-csd-sbi)")
    parser.add_argument("--check", help="crops manifest: its --check-split rows are scored")
    parser.add_argument("--check-split", default="test")
    parser.add_argument("--calibration", help="crops manifest or folder of real crops (int8)")
    parser.add_argument("--calibration-split", default="train")
    parser.add_argument("--calibration-frames", type=int, default=300)
    parser.add_argument("--speed-only", action="store_true", help="random crops, no check")
    parser.add_argument("--timed", type=int, default=256, help="crops per timing round")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="precision.md", help="Markdown table to write")
    args = parser.parse_args(argv)

    import numpy as np

    from md_csd_tf.inference import precision
    from md_csd_tf.inference.runtime import TFLiteRuntime, cpu_cores, export_tflite
    from md_csd_tf.models.pretrained import path_of
    from md_csd_tf.models.saving import get_metadata, load_detector

    model_path = args.model or path_of()
    model = load_detector(model_path)
    size = model.image_size
    rng = np.random.default_rng(0)
    if args.speed_only:
        crops, labels = rng.integers(0, 256, (args.timed, size, size, 3), np.uint8), None
        real = crops[: min(64, len(crops))]
    else:
        crops, labels = precision.load_crops(args.check, size, split=args.check_split)
        real, _ = precision.load_crops(
            args.calibration, size, args.calibration_split, 0, args.calibration_frames
        )
    cores = cpu_cores()
    scratch = Path(tempfile.mkdtemp())
    export_tflite(model, scratch / "float32.tflite")
    (scratch / "int8.tflite").write_bytes(precision.quantize_int8(model, real))
    (scratch / "weights.tflite").write_bytes(precision.quantize_int8(model, None))
    scorers = {
        "Keras float32": precision.keras_scorer(model),
        "Keras bfloat16": precision.keras_scorer(precision.bfloat16_model(model)),
        f"TFLite float32 ({cores} threads)": TFLiteRuntime(scratch / "float32.tflite"),
        "TFLite float32 (1 thread)": TFLiteRuntime(scratch / "float32.tflite", num_threads=1),
        f"TFLite int8 ({cores} threads)": TFLiteRuntime(scratch / "int8.tflite"),
        "TFLite int8 weights only, dynamic range": TFLiteRuntime(scratch / "weights.tflite"),
    }
    timed = crops[rng.choice(len(crops), min(args.timed, len(crops)), replace=False)]
    batches = [timed[i : i + args.batch] for i in range(0, len(timed), args.batch)]
    for scorer in scorers.values():  # trace / plan every batch shape once, untimed
        for batch in {len(b): b for b in batches}.values():
            scorer(batch)
    seconds = {name: [] for name in scorers}
    loads = [os.getloadavg()[0]]
    for round_ in range(args.rounds):
        names = list(scorers) if round_ % 2 == 0 else list(reversed(scorers))  # A B .. B A
        for batch in batches:
            for name in names:
                began = time.perf_counter()
                scorers[name](batch)
                seconds[name].append(time.perf_counter() - began)
        loads.append(os.getloadavg()[0])
    per_round = len(batches)
    rate = {
        name: statistics.median(
            len(timed) / sum(times[r * per_round : (r + 1) * per_round]) for r in range(args.rounds)
        )
        for name, times in seconds.items()
    }
    base = rate["Keras float32"]
    threshold = float(get_metadata(model).get("threshold", 0.5))
    rows = []
    reference = None if args.speed_only else precision.score(scorers["Keras float32"], crops)
    for name, scorer in scorers.items():
        cells = [name, f"{rate[name]:.1f}", f"{rate[name] / base:.2f}"]
        if reference is None or "1 thread" in name:
            cells += ["-"] * 5
        elif name == "Keras float32":
            auc = precision.compare(reference, reference, labels, threshold).auc
            cells += ["0", f"{auc:.4f}", "0", "1.000", "-"]
        else:
            check = precision.compare(reference, precision.score(scorer, crops), labels, threshold)
            cells += [f"{check.max_abs_diff:.4f}", f"{check.auc:.4f}", f"{check.auc_diff:+.4f}",
                      f"{check.agreement:.4f}", "pass" if check.passed else "FAIL"]  # fmt: skip
        rows.append("| " + " | ".join(cells) + " |")
    one, many = rate["TFLite float32 (1 thread)"], rate[f"TFLite float32 ({cores} threads)"]
    what = "random crops, speed only" if args.speed_only else (
        f"{len(crops)} crops of {args.check} ({args.check_split}), threshold {threshold:.4f}")  # fmt: skip
    table = "\n".join([
        f"Model {model_path} ({model.detector}, {size} px); {what}. Speed: {len(timed)} crops "
        f"in batches of {args.batch}, median of {args.rounds} rounds taking turns; load "
        f"average {min(loads):.1f}-{max(loads):.1f} on {cores} cores.",
        "",
        "| variant | images/s | x Keras float32 | max abs score diff | AUC | AUC diff | "
        "verdict agreement | check |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"TFLite float32, {cores} threads vs 1 thread: x{many / one:.2f}.",
    ])  # fmt: skip
    print(table)
    Path(args.out).write_text(table + "\n")
    for path in scratch.iterdir():
        path.unlink()
    scratch.rmdir()
    return 0


if __name__ == "__main__":
    sys.exit(main())
