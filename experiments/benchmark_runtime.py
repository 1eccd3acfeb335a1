"""Keras vs CPU serving runtimes on the same crops, side by side in one run: images/s and ratio.

    python experiments/benchmark_runtime.py                 # full 299 px MD-CSD, weights=None
    python experiments/benchmark_runtime.py --small         # 71 px, no middle blocks (smoke)

Scores one batch of uint8 crops with (a) the Keras model through `model_inputs` (tf.data's
spectrum, as `md-csd predict` does) in a `tf.function` traced for the fixed batch (what
`Detector` runs), (a') the same model through `model.predict` (Keras' own loop, to check that
(a) is not an unfair baseline), (b) the TFLite model of `md_csd_tf.inference.runtime` (XNNPACK,
preprocessing inside), (c) OpenVINO on the same SavedModel in float32 and (d) ONNX Runtime on
the serving function converted by tf2onnx, each when its package is importable (they are not
dependencies: measured only to choose), and with `--bf16` (e) the Keras model rebuilt under the
`mixed_bfloat16` policy (same weights; the CPU's bf16 units), to show what giving up float32
buys. The runtimes take turns batch by batch, so the machine's shifting load hits each alike;
the ratio of medians is printed with the load average and each one's max score difference from
(a). Numbers, never assertions. TensorFlow's thread pools are its defaults (intra-op = cores,
inter-op = cores); `TF_NUM_INTEROP_THREADS=1` / `TF_NUM_INTRAOP_THREADS` change them per run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="71 px, no middle blocks")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="runtime CPU threads")
    parser.add_argument("--bf16", action="store_true", help="also Keras in mixed_bfloat16")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    from md_csd_tf.data.inputs import model_inputs
    from md_csd_tf.inference.export import export_saved_model
    from md_csd_tf.inference.runtime import TFLiteRuntime, export_tflite
    from md_csd_tf.models.md_csd import build_model

    size, middle = (71, 0) if args.small else (299, 8)
    model = build_model("md_csd", image_size=size, middle_blocks=middle)
    model.set_frequency_statistics([5.0, 5.0, 5.0], [2.0, 2.0, 2.0])  # typical log-DCT scale
    crops = np.random.default_rng(0).integers(0, 256, (args.batch, size, size, 3), np.uint8)

    keras_fn = tf.function(lambda c: model(model_inputs(model, c), training=False)[:, 0])
    scorers = {
        "keras": lambda c: keras_fn(tf.constant(c)).numpy(),
        "keras .predict": lambda c: model.predict(
            model_inputs(model, c), batch_size=len(c), verbose=0
        )[:, 0],
    }
    with tempfile.TemporaryDirectory() as folder:
        began = time.perf_counter()
        path = export_tflite(model, Path(folder) / "m.tflite")
        print(f"tflite export: {time.perf_counter() - began:.1f} s")
        scorers["tflite"] = TFLiteRuntime(path, num_threads=args.threads)
        try:
            import openvino
        except ImportError:
            print("openvino: not installed, not measured")
        else:
            export_saved_model(model.with_spectrum_in_model(), Path(folder) / "saved")
            compiled = openvino.Core().compile_model(
                openvino.convert_model(str(Path(folder) / "saved")),
                "CPU",
                {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": args.threads},
            )
            scorers["openvino"] = lambda c: compiled([c])[compiled.outputs[0]]
        if not all(importlib.util.find_spec(m) for m in ("onnxruntime", "tf2onnx")):
            print("onnxruntime / tf2onnx: not installed, not measured")
        else:
            scorers["onnxruntime"] = onnx_scorer(model, size, Path(folder), args.threads)
        if args.bf16:
            scorers["keras bf16"] = bf16_scorer(model)

        reference = scorers["keras"](crops)  # also the warm-up of each
        for name, score in scorers.items():
            diff = np.abs(score(crops) - reference).max()
            print(f"{name}: max |score - keras| = {diff:.2e}")
        seconds = {name: [] for name in scorers}
        load_before = os.getloadavg()[0]
        for _ in range(args.rounds):
            for name, score in scorers.items():
                began = time.perf_counter()
                score(crops)
                seconds[name].append(time.perf_counter() - began)
        load_after = os.getloadavg()[0]

    print(f"\n{size} px MD-CSD, batch {args.batch}, {args.rounds} rounds taking turns; "
          f"load average {load_before:.1f} -> {load_after:.1f} on {os.cpu_count()} cores")  # fmt: skip
    keras_rate = args.batch / statistics.median(seconds["keras"])
    for name, times in seconds.items():
        rate = args.batch / statistics.median(times)
        print(f"  {name:9s} {rate:7.2f} images/s   x{rate / keras_rate:.2f} of Keras")
    return 0


def onnx_scorer(model, size: int, folder: Path, threads: int):
    """ONNX Runtime (CPU provider) on the serving function (uint8 crops in, spectrum inside)."""
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    from md_csd_tf.data.inputs import model_inputs

    served = model.with_spectrum_in_model()  # tf.signal's DCT has no ONNX op; matmuls do
    spec = tf.TensorSpec((None, size, size, 3), tf.uint8, name="crops")
    function = tf.function(
        lambda c: served(model_inputs(served, c), training=False)[:, 0], input_signature=[spec]
    )
    began = time.perf_counter()
    tf2onnx.convert.from_function(
        function, input_signature=[spec], opset=17, output_path=str(folder / "m.onnx")
    )
    print(f"onnx export (tf2onnx): {time.perf_counter() - began:.1f} s")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(
        str(folder / "m.onnx"), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    return lambda c: session.run(None, {name: c})[0]


def bf16_scorer(model):
    """The same model and weights under Keras' mixed_bfloat16 policy, in a tf.function."""
    import keras
    import tensorflow as tf

    from md_csd_tf.data.inputs import model_inputs

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        copy = type(model).from_config(model.get_config())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    copy.set_weights(model.get_weights())
    function = tf.function(lambda c: copy(model_inputs(copy, c), training=False)[:, 0])
    return lambda c: tf.cast(function(tf.constant(c)), tf.float32).numpy()


if __name__ == "__main__":
    sys.exit(main())
