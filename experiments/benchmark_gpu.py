"""The GPU benchmark: one command, under 8 minutes on one GPU, one JSON of the figures that decide
how to train and serve MD-CSD on an accelerator.

    python experiments/benchmark_gpu.py --out gpu.json            # full size: 299 px, batch 32
    python experiments/benchmark_gpu.py --tiny --out tiny.json    # seconds on a CPU (the tests)

Measured, each in this one process:
- training images/s of MD-CSD (two Xceptions, 8 middle blocks, 299 px, batch 32) in float32 and
  in bfloat16 with XLA, each with the spectrum computed in tf.data (the paper's path, on the
  host) and inside the model (`spectrum_in_model`, on the accelerator), on inputs already on
  the device (the model's own rate);
- the input pipeline's images/s with every host core (PNG decode + log-DCT, `make_dataset`), to
  compare with the training rate: the host must keep up;
- model FLOP utilisation (MFU): 3 x forward FLOPs x images/s over the device's peak (its dense
  bfloat16 rate from the table below for a known GPU, else the dense matmul rate measured here,
  recorded as such);
- `md-csd predict`'s crops/s (`Detector.predict_crops`, batch 64, float32 and bfloat16).

Each measurement runs for `--seconds` after its first call (tracing and XLA compilation are
timed apart, as `compile_s`). The numbers are for the README; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Dense bfloat16 tensor-core peaks (TFLOP/s, without sparsity) from the vendors' data sheets.
PEAK_BF16_TFLOPS = {
    "H200": 989.0, "H100 SXM": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0,
    "L40S": 362.0, "L4": 121.0, "A10G": 125.0, "V100": 125.0, "T4": 65.0,
}  # fmt: skip


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


def device_peak(tf) -> dict:
    """The device, and the peak its MFU is measured against."""
    gpus = tf.config.list_physical_devices("GPU")
    name = "CPU"
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name", "GPU")
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key.lower() in name.lower():
            return {"device": name, "peak_tflops": tflops, "peak_source": "data sheet, bf16 dense"}
    from md_csd_tf.bench import matmul_flops_per_second

    measured = matmul_flops_per_second(n=4096 if gpus else 1024, seconds=2.0)
    return {"device": name, "peak_tflops": measured / 1e12, "peak_source": "measured matmul"}


def train_rate(size, batch, middle_blocks, precision, in_model, seconds, xla=True) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from md_csd_tf import build_model
    from md_csd_tf.bench import forward_flops
    from md_csd_tf.data.inputs import crops_to_inputs
    from md_csd_tf.training.compile import compile_detector
    from md_csd_tf.training.precision import policy_name

    keras.mixed_precision.set_global_policy(policy_name(precision))
    try:
        model = build_model(
            "md_csd", image_size=size, middle_blocks=middle_blocks, spectrum_in_model=in_model
        )
        compile_detector(model, "bce", 2e-4, 1e-3, jit_compile=xla and precision != "float32")
        crops = tf.constant(
            np.random.default_rng(0).integers(0, 256, (batch, size, size, 3), np.uint8)
        )
        inputs = crops_to_inputs(crops, model.transform, model.branches, None, in_model)
        labels = tf.constant(np.tile([0.0, 1.0], batch // 2 + 1)[:batch], tf.float32)
        data = tf.data.Dataset.from_tensors((inputs, labels)).repeat().prefetch(2)
        iterator = iter(data)
        model.train_on_batch(*next(iterator))  # builds the optimizer outside the timing
        rate, compile_s = _rate(lambda: model.train_on_batch(*next(iterator)), batch, seconds)
        flops = forward_flops(model)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return {"images_per_s": rate, "compile_s": compile_s, "forward_gflops": flops / 1e9}


def pipeline_rate(size, batch, seconds, crops=64) -> dict:
    import cv2
    import numpy as np
    import pandas as pd

    from md_csd_tf.data.pipeline import PipelineConfig, make_dataset

    folder = Path(tempfile.mkdtemp(prefix="md-csd-bench-"))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(crops):
        path = folder / f"{i:04d}.png"
        image = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), np.uint8), (0, 0), 2)
        cv2.imwrite(str(path), image)
        paths.append(str(path))
    frames = pd.DataFrame({"abs_path": paths, "label": [i % 2 for i in range(crops)]})
    iterator = iter(make_dataset(frames, PipelineConfig(image_size=size, batch_size=batch), True))
    rate, _ = _rate(lambda: next(iterator), batch, seconds)
    return {"images_per_s": rate, "host_cores": os.cpu_count()}


def predict_rate(size, middle_blocks, precision, seconds, batch=64) -> dict:
    import keras
    import numpy as np

    from md_csd_tf import build_model
    from md_csd_tf.inference.detector import Detector
    from md_csd_tf.training.precision import policy_name

    keras.mixed_precision.set_global_policy(policy_name(precision))
    try:
        model = build_model("md_csd", image_size=size, middle_blocks=middle_blocks)
        detector = Detector(model, batch_size=batch)
        crops = np.random.default_rng(1).integers(0, 256, (batch, size, size, 3), np.uint8)
        rate, compile_s = _rate(lambda: detector.predict_crops(crops), batch, seconds)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return {"crops_per_s": rate, "compile_s": compile_s, "batch": batch}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmark_gpu.json")
    parser.add_argument("--tiny", action="store_true", help="71 px, batch 4, no middle flow")
    parser.add_argument("--seconds", type=float, default=None, help="per measurement")
    args = parser.parse_args(argv)
    import tensorflow as tf

    size, batch, middle = (71, 4, 0) if args.tiny else (299, 32, 8)
    seconds = args.seconds or (0.5 if args.tiny else 20.0)
    # XLA compiling two Xceptions takes minutes on a CPU: the tiny mode checks the code path
    # without it unless a GPU is there.
    xla = bool(tf.config.list_physical_devices("GPU")) or not args.tiny
    began = time.perf_counter()
    result = {"tensorflow": tf.__version__, "size": size, "batch": batch, "middle_blocks": middle,
              "xla": xla}  # fmt: skip
    result.update(device_peak(tf))
    result["train"] = {}
    for precision in ("float32", "bfloat16"):
        for in_model in (False, True):
            key = f"{precision}{'+xla' if xla and precision != 'float32' else ''}/spectrum_" + (
                "in_model" if in_model else "in_tf_data"
            )
            measured = train_rate(size, batch, middle, precision, in_model, seconds, xla)
            tflops = 3 * measured["forward_gflops"] * measured["images_per_s"] / 1e3
            measured["mfu"] = tflops / result["peak_tflops"]
            result["train"][key] = measured
            print(f"train {key}: {measured['images_per_s']:.1f} images/s, MFU {measured['mfu']:.1%}",
                  flush=True)  # fmt: skip
    result["input_pipeline"] = pipeline_rate(size, batch, seconds)
    result["predict"] = {p: predict_rate(size, middle, p, seconds) for p in ("float32", "bfloat16")}
    result["seconds"] = round(time.perf_counter() - began, 1)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
