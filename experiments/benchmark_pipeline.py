"""Input pipeline vs model: can tf.data (decode + on-the-fly log-DCT) keep the trainer fed?

    python experiments/benchmark_pipeline.py [--size 299] [--crops 256] [--seconds 20]

Prints the pipeline's images/s (PNG decode, flip, log-DCT at the model size, batching; no model)
beside the full MD-CSD model's training images/s at the same size on this machine. The pipeline
should be at least 10x faster than the model so that input never limits training. Numbers only.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def write_crops(folder: Path, count: int, size: int) -> "object":
    """Face-like PNG crops (a real photograph, shifted and recoloured) and their manifest rows."""
    import cv2
    import numpy as np
    import pandas as pd
    import skimage.data

    rng = np.random.default_rng(0)
    face = cv2.resize(skimage.data.astronaut()[0:300, 100:400], (size + 32, size + 32))
    rows = []
    for i in range(count):
        dx, dy = rng.integers(0, 32, 2)
        crop = np.clip(face[dy : dy + size, dx : dx + size] * rng.uniform(0.8, 1.2, 3), 0, 255)
        path = folder / f"{i:05d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(crop.astype(np.uint8), cv2.COLOR_RGB2BGR))
        rows.append({"abs_path": str(path), "label": i % 2})
    return pd.DataFrame(rows)


def pipeline_rate(frames, size: int, seconds: float, batch: int) -> float:
    from md_csd_tf.data.pipeline import PipelineConfig, make_dataset

    config = PipelineConfig(image_size=size, batch_size=batch, shuffle_buffer=len(frames))
    iterator = iter(make_dataset(frames, config, training=True))
    next(iterator)  # builds the graph of the map function
    images, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        inputs, _ = next(iterator)
        images += int(inputs["freq"].shape[0])
    return images / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=299)
    parser.add_argument("--crops", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args(argv)

    from md_csd_tf.bench import benchmark_size

    with tempfile.TemporaryDirectory() as folder:
        frames = write_crops(Path(folder), args.crops, args.size)
        pipe = pipeline_rate(frames, args.size, args.seconds, args.batch)
    print(
        f"pipeline (decode + flip + log-DCT, {args.size} px): {pipe:.1f} images/s on {os.cpu_count()} CPU threads"
    )
    if args.skip_model:
        return 0
    model = benchmark_size(args.size, batch=8, seconds=args.seconds)["train_images_per_s"]
    print(f"MD-CSD training ({args.size} px, batch 8): {model:.2f} images/s")
    print(f"pipeline / model: {pipe / model:.0f}x (target >= 10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
