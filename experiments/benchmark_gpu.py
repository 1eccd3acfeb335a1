"""The GPU benchmark: one command, under 8 minutes on one GPU, one JSON of the figures that decide
how to train and serve MD-CSD on an accelerator.

    python experiments/benchmark_gpu.py --out gpu.json            # full size: 299 px, batch 32
    python experiments/benchmark_gpu.py --tiny --out tiny.json    # seconds on a CPU (the tests)

Measured, each in this one process, in this order:
- training images/s of MD-CSD (two Xceptions, 8 middle blocks, 299 px, batch 32) in float32 and
  in bfloat16 with XLA, each with the spectrum computed in tf.data (the paper's path: a
  `Dataset.map` on the host from uint8 crops, as training runs it) and inside the model
  (`spectrum_in_model`: tf.data only casts, the device computes the log-DCT);
- the input pipeline's images/s with every host core (PNG decode + log-DCT, `make_dataset`), to
  compare with the training rate: the host must keep up;
- model FLOP utilisation (MFU): 3 x forward FLOPs (`md_csd_tf.bench.forward_flops`, one
  multiply-add = 2 FLOPs) x images/s over the device's dense peak for the precision (bfloat16,
  or TF32 for float32, which TensorFlow runs on tensor cores by default) from the data sheets
  below for a known GPU, else over the dense matmul rate measured here (recorded as such); the
  measured bfloat16 matmul rate is recorded beside it either way;
- `md-csd predict`'s crops/s (`Detector.predict_crops`, batch 64, float32 and bfloat16).

Time bound. Seven measurements, in priority order: float32 and bfloat16 training with the
spectrum in tf.data, bfloat16 with it in the model, the pipeline, predict in float32 and
bfloat16, float32 training with the spectrum in the model. Each times `--seconds` (10) after
its first call, whose time (tracing, XLA compilation, autotuning) is recorded apart as
`compile_s`. A global `--budget` (420 s, counted from the process start) shortens the timings
when time runs short (each gets at most half its share of what is left) and skips, recording it
in "skipped", a measurement whose first call is expected to overrun the budget: a second run of
the same step (precision, train or predict) is expected to take its first run's first call.
Estimated for an H100 (not yet run there): start and import ~15 s, matmul rates ~6 s; float32
training variant: build ~8 s + first call ~40 s + 10 s + FLOP tracing ~8 s = ~66 s; bfloat16 +
XLA: ~8 + 60-120 + 10 + 8 = 86-146 s each; the pipeline ~11 s; each predict ~33 s. In all
~430-550 s; past 420 s the budget drops the last measurements, so the run ends by about 420 s
plus how far one XLA compile overruns its sibling's: under 8 minutes unless a compile takes
over 2 minutes more than the first one did.
The numbers are for the README; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

STARTED = time.perf_counter()  # the budget counts from the process start, imports included
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Dense tensor-core peaks (TFLOP/s, without sparsity) from NVIDIA's data sheets: (bfloat16,
# TF32). The first key found in the device name wins ("H100 PCIe" before "H100", the SXM).
PEAK_TFLOPS = {
    "H200": (989.0, 494.0), "H100 PCIe": (756.0, 378.0), "H100": (989.0, 494.0),
    "A100": (312.0, 156.0), "L4": (121.0, 60.0),
}  # fmt: skip


class Budget:
    """Seconds left of the run, and each measurement's share of them."""

    def __init__(self, total: float, seconds: float, measurements: int):
        self.end = STARTED + total
        self.seconds = seconds
        self.left_to_run = measurements

    def share(self) -> float:
        """Timing for the next measurement: `seconds`, or less when time runs short (>= 0.2)."""
        left = self.end - time.perf_counter()
        share = max(0.2, min(self.seconds, left / max(self.left_to_run, 1) / 2))
        self.left_to_run -= 1
        return share

    def allows(self, expected_first_call: float) -> bool:
        """Whether a measurement whose first call should take this long still fits."""
        return time.perf_counter() + expected_first_call < self.end


def _rate(step, images: int, seconds: float) -> tuple[float, float]:
    """(images/s after the first call, seconds of the first call)."""
    began = time.perf_counter()
    step()
    compile_s = time.perf_counter() - began
    done, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds or done == 0:
        step()
        done += images
    return done / (time.perf_counter() - began), compile_s


def device_peak(tf, tiny: bool) -> dict:
    """The device, its dense peaks per precision and the bfloat16 matmul rate measured here."""
    from md_csd_tf.bench import matmul_flops_per_second

    gpus = tf.config.list_physical_devices("GPU")
    name = "CPU"
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name", "GPU")
    n = 256 if tiny else (8192 if gpus else 1024)
    measured = {
        dtype: matmul_flops_per_second(n, 0.3 if tiny else 2.0, dtype) / 1e12
        for dtype in ("float32", "bfloat16")
    }
    result = {"device": name, "matmul_tflops_measured": measured}
    for key, (bf16, tf32) in PEAK_TFLOPS.items():
        if key.lower() in name.lower():
            return result | {"peak_tflops": {"bfloat16": bf16, "float32": tf32},
                             "peak_source": "data sheet, dense (float32 runs as TF32)"}  # fmt: skip
    return result | {"peak_tflops": measured, "peak_source": "measured matmul"}


def train_rate(size, batch, middle_blocks, precision, in_model, seconds, xla) -> dict:
    """Training images/s of MD-CSD from uint8 crops through tf.data, the spectrum in the
    `Dataset.map` (on the host) or in the model; the loop feeds batches from the dataset."""
    import keras
    import numpy as np
    import tensorflow as tf

    from md_csd_tf import build_model
    from md_csd_tf.bench import forward_flops
    from md_csd_tf.data.inputs import crops_to_inputs
    from md_csd_tf.mixed_precision import policy_name
    from md_csd_tf.training.compile import compile_detector

    keras.mixed_precision.set_global_policy(policy_name(precision))
    try:
        model = build_model(
            "md_csd", image_size=size, middle_blocks=middle_blocks, spectrum_in_model=in_model
        )
        compile_detector(model, "bce", 2e-4, 1e-3, jit_compile=xla)
        crops = np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), np.uint8)
        labels = np.tile([0.0, 1.0], batch // 2 + 1)[:batch].astype(np.float32)

        @tf.autograph.experimental.do_not_convert  # pure TF already; a lambda's source cannot
        def to_inputs(crops, labels):  # be parsed by AutoGraph (a warning per trace)
            return crops_to_inputs(crops, model.transform, model.branches, None, in_model), labels

        data = (
            tf.data.Dataset.from_tensors((crops, labels))
            .repeat()
            .map(to_inputs, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE)
        )
        iterator = iter(data)
        rate, compile_s = _rate(lambda: model.train_on_batch(*next(iterator)), batch, seconds)
        flops = forward_flops(model)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return {"images_per_s": rate, "compile_s": compile_s, "forward_gflops": flops / 1e9,
            "seconds": seconds}  # fmt: skip


def pipeline_rate(size, batch, seconds, crops=64) -> dict:
    """images/s of `make_dataset` (PNG decode + log-DCT, every core) on `crops` PNG files."""
    import cv2
    import numpy as np
    import pandas as pd

    from md_csd_tf.data.pipeline import PipelineConfig, make_dataset

    with tempfile.TemporaryDirectory(prefix="md-csd-bench-") as folder:
        rng = np.random.default_rng(0)
        paths = []
        for i in range(crops):
            path = Path(folder) / f"{i:04d}.png"
            image = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), np.uint8), (0, 0), 2)
            cv2.imwrite(str(path), image)
            paths.append(str(path))
        frames = pd.DataFrame({"abs_path": paths, "label": [i % 2 for i in range(crops)]})
        config = PipelineConfig(image_size=size, batch_size=batch)
        iterator = iter(make_dataset(frames, config, True))
        rate, compile_s = _rate(lambda: next(iterator), batch, seconds)
    return {"images_per_s": rate, "host_cores": os.cpu_count(), "compile_s": compile_s,
            "seconds": seconds}  # fmt: skip


def predict_rate(size, middle_blocks, precision, seconds, batch=64) -> dict:
    """crops/s of `Detector.predict_crops` (what `md-csd predict` runs per batch of faces)."""
    import keras
    import numpy as np

    from md_csd_tf import build_model
    from md_csd_tf.inference.detector import Detector
    from md_csd_tf.mixed_precision import policy_name

    keras.mixed_precision.set_global_policy(policy_name(precision))
    try:
        model = build_model("md_csd", image_size=size, middle_blocks=middle_blocks)
        detector = Detector(model, batch_size=batch)
        crops = np.random.default_rng(1).integers(0, 256, (batch, size, size, 3), np.uint8)
        rate, compile_s = _rate(lambda: detector.predict_crops(crops), batch, seconds)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return {"crops_per_s": rate, "compile_s": compile_s, "batch": batch, "seconds": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmark_gpu.json")
    parser.add_argument("--tiny", action="store_true", help="71 px, batch 4, no middle flow")
    parser.add_argument("--seconds", type=float, default=None,
                        help="timing per measurement (default 10; tiny 0.3)")  # fmt: skip
    parser.add_argument("--budget", type=float, default=420.0,
                        help="seconds for the whole run, from the process start (see the docstring)")  # fmt: skip
    args = parser.parse_args(argv)
    import tensorflow as tf

    size, batch, middle = (71, 4, 0) if args.tiny else (299, 32, 8)
    # XLA compiling two Xceptions takes minutes on a CPU: the tiny mode checks the code path
    # without it unless a GPU is there.
    xla = bool(tf.config.list_physical_devices("GPU")) or not args.tiny
    result = {"tensorflow": tf.__version__, "size": size, "batch": batch, "middle_blocks": middle,
              "xla": xla, "budget_s": args.budget}  # fmt: skip
    result.update(device_peak(tf, args.tiny))
    result["train"], result["predict"], result["skipped"] = {}, {}, []
    # In priority order: what the budget drops first is last. Each train or predict step's
    # second run expects the first call its first run took (`compile_s`); 0 for a first run.
    plan = [("train", "float32", False), ("train", "bfloat16", False),
            ("train", "bfloat16", True), ("pipeline", None, None), ("predict", "float32", None),
            ("predict", "bfloat16", None), ("train", "float32", True)]  # fmt: skip
    budget = Budget(args.budget, args.seconds or (0.3 if args.tiny else 10.0), len(plan))
    first_call = {}  # (kind, precision) -> seconds of the first call of its first run
    for kind, precision, in_model in plan:
        xla_on = xla and precision == "bfloat16"
        if kind == "train":
            key = f"{precision}{'+xla' if xla_on else ''}/spectrum_" + (
                "in_model" if in_model else "in_tf_data"
            )
        else:
            key = kind if kind == "pipeline" else f"predict {precision}"
        if not budget.allows(first_call.get((kind, precision), 0.0)):
            result["skipped"].append(key)
            budget.share()
            continue
        seconds = budget.share()
        if kind == "pipeline":
            result["input_pipeline"] = pipeline_rate(size, batch, seconds)
            continue
        if kind == "predict":
            measured = predict_rate(size, middle, precision, seconds)
            result["predict"][precision] = measured
        else:
            measured = train_rate(size, batch, middle, precision, in_model, seconds, xla_on)
            tflops = 3 * measured["forward_gflops"] * measured["images_per_s"] / 1e3
            measured["mfu"] = tflops / result["peak_tflops"][precision]
            result["train"][key] = measured
        first_call.setdefault((kind, precision), measured["compile_s"])
        print(f"{key}: {measured.get('images_per_s', measured.get('crops_per_s')):.1f}/s, first "
              f"call {measured['compile_s']:.0f} s, at {time.perf_counter() - STARTED:.0f} s of "
              f"{args.budget:.0f}", flush=True)  # fmt: skip
    result["seconds"] = round(time.perf_counter() - STARTED, 1)
    from md_csd_tf.files import atomic_write_json

    atomic_write_json(args.out, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
