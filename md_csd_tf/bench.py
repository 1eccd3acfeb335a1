"""Throughput benchmark: `python -m md_csd_tf.bench [--sizes 299 71] [--batch 8] [--seconds 20]`.

Prints, per input size, training and inference images/s of the full MD-CSD model and the
model's achieved FLOP rate beside this machine's dense-matmul FLOP rate measured in the same
run, so the ratio (how much of the machine the model uses) can be read off. Numbers, never
assertions: speed belongs here, not in tests.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def forward_flops(model) -> int:
    """Multiply-adds x 2 of the convolutions and dense layers of one forward pass of one image.

    BN, activations, pooling and adds are left out: they are a few percent of Xception's cost.
    """
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.SeparableConv2D):
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += 2 * h * w * (k * c_in + c_in * c_out)
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            c_in = layer.input.shape[-1]
            k = layer.kernel_size[0] * layer.kernel_size[1]
            total += 2 * h * w * k * c_in * c_out
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return int(total)


def matmul_flops_per_second(n: int = 2048, seconds: float = 3.0) -> float:
    """Dense float32 matmul rate of this machine through TensorFlow (the achievable ceiling)."""
    import tensorflow as tf

    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul().numpy()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        matmul().numpy()
        runs += 1
    return 2 * n**3 * runs / (time.perf_counter() - start)


def _rate(step, batch: int, seconds: float) -> float:
    step()  # first call traces and compiles; not timed
    images, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or images == 0:
        step()
        images += batch
    return images / (time.perf_counter() - start)


def benchmark_size(size: int, batch: int, seconds: float, middle_blocks: int = 8) -> dict:
    import numpy as np

    from md_csd_tf import build_model, compile_model

    model = build_model("md_csd", image_size=size, middle_blocks=middle_blocks)
    compile_model(model, jit_compile=False)
    rng = np.random.default_rng(0)
    x = {
        "rgb": rng.uniform(0, 255, (batch, size, size, 3)).astype("float32"),
        "freq": rng.normal(size=(batch, size, size, 3)).astype("float32"),
    }
    y = np.tile([0.0, 1.0], batch // 2 + 1)[:batch].astype("float32")
    flops = forward_flops(model)
    start = time.perf_counter()
    train = _rate(lambda: model.train_on_batch(x, y), batch, seconds)
    trace_and_train = time.perf_counter() - start
    infer = _rate(lambda: model.predict_on_batch(x), batch, seconds)
    return {
        "size": size,
        "params": model.count_params(),
        "forward_gflops_per_image": flops / 1e9,
        "train_images_per_s": train,
        "infer_images_per_s": infer,
        # A training step costs about 3 forward passes (forward, input and weight gradients).
        "train_gflops_per_s": 3 * flops * train / 1e9,
        "infer_gflops_per_s": flops * infer / 1e9,
        "first_train_call_s": trace_and_train,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[299, 71])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20.0, help="timing per measurement")
    parser.add_argument("--middle-blocks", type=int, default=8)
    args = parser.parse_args(argv)

    import tensorflow as tf

    print(
        f"TensorFlow {tf.__version__}; CPU threads: {os.cpu_count()}; "
        f"GPUs: {len(tf.config.list_physical_devices('GPU'))}"
    )
    peak = matmul_flops_per_second()
    print(f"dense matmul (2048^2, float32): {peak / 1e9:.1f} GFLOP/s")
    header = ("size", "params", "GFLOP/img", "train img/s", "infer img/s", "train GFLOP/s",
              "infer GFLOP/s", "train/matmul", "infer/matmul")  # fmt: skip
    print(" | ".join(header))
    for size in args.sizes:
        r = benchmark_size(size, args.batch, args.seconds, args.middle_blocks)
        print(
            f"{r['size']} | {r['params'] / 1e6:.1f}M | {r['forward_gflops_per_image']:.2f} | "
            f"{r['train_images_per_s']:.2f} | {r['infer_images_per_s']:.2f} | "
            f"{r['train_gflops_per_s']:.1f} | {r['infer_gflops_per_s']:.1f} | "
            f"{r['train_gflops_per_s'] * 1e9 / peak:.0%} | {r['infer_gflops_per_s'] * 1e9 / peak:.0%}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
