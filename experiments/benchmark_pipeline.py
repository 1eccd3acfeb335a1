"""Input pipeline vs model: can tf.data (decode + on-the-fly log-DCT) keep the trainer fed?

    python experiments/benchmark_pipeline.py --fakes sbi    # pseudo-fakes made on the fly
    python experiments/benchmark_pipeline.py [--size 299] [--crops 256] [--seconds 20]

Prints the pipeline's images/s (PNG decode, flip, log-DCT at the model size, batching; no model)
beside the full MD-CSD model's training images/s at the same size on this machine. The pipeline
should be at least 10x faster than the model so that input never limits training. Numbers only.

It also times the pipeline without the spectrum (`spectrum_in_model`: the model computes it on
the accelerator), the two taking turns so the machine's shifting load hits both alike, and
turns both rates into the input cores a GPU host needs per accelerator: the accelerator's
training images/s (`--accelerator-rate`, an estimate for one modern GPU, not measured here)
divided by the pipeline's images/s per core of this machine.
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


def pipeline_rates(frames, size: int, seconds: float, batch: int) -> dict[bool, float]:
    """Images/s of the training pipeline with the spectrum (False) and without it (True)."""
    from md_csd_tf.data.pipeline import PipelineConfig, make_dataset

    iterators = {}
    for in_model in (False, True):
        config = PipelineConfig(
            image_size=size,
            batch_size=batch,
            shuffle_buffer=len(frames),
            spectrum_in_model=in_model,
        )
        iterators[in_model] = iter(make_dataset(frames, config, training=True))
        next(iterators[in_model])  # builds the graph of the map function
    images, spent = dict.fromkeys(iterators, 0), dict.fromkeys(iterators, 0.0)
    while min(spent.values()) < seconds:
        for in_model, iterator in iterators.items():  # 2-second turns each
            start = time.perf_counter()
            while time.perf_counter() - start < 2.0:
                inputs, _ = next(iterator)
                images[in_model] += int(inputs["rgb"].shape[0])
            spent[in_model] += time.perf_counter() - start
    return {k: images[k] / spent[k] for k in iterators}


def outline_landmarks(count: int):
    """`count` copies of 68 normalised points: a jaw half-ellipse, brows, the rest centred."""
    import numpy as np

    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([0.5 - 0.3 * np.cos(t), 0.45 + 0.4 * np.sin(t)], 1)
    brows = np.stack([np.linspace(0.22, 0.78, 10), np.full(10, 0.32)], 1)
    points = np.concatenate([jaw, brows, np.tile([[0.5, 0.55]], (41, 1))]).astype(np.float32)
    return np.repeat(points[None], count, axis=0)


def pipeline_rate(frames, size: int, seconds: float, batch: int, fakes: str = "dataset") -> float:
    from md_csd_tf.data.pipeline import PipelineConfig, make_dataset
    from md_csd_tf.data.pseudo_fakes import make_training_dataset

    config = PipelineConfig(image_size=size, batch_size=batch, shuffle_buffer=len(frames))
    if fakes == "dataset":
        dataset = make_dataset(frames, config, training=True)
    else:
        frames = frames.assign(label=0, dataset="bench", video_id=frames.index.astype(str))
        dataset = make_training_dataset(frames, config, fakes, outline_landmarks(len(frames)))
    iterator = iter(dataset)
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
    parser.add_argument(
        "--accelerator-rate", type=float, default=400.0,
        help="training images/s of one accelerator (estimate for MD-CSD at 299 px, one A100 "
        "in bfloat16; not measured here)",
    )  # fmt: skip
    parser.add_argument(
        "--fakes", default="dataset",
        help="dataset (the spectrum comparison), or sbi, fwa, xray: pseudo-fakes/s vs training",
    )  # fmt: skip
    parser.add_argument("--middle-blocks", type=int, default=8, help="MD-CSD's (8: the paper)")
    args = parser.parse_args(argv)

    from md_csd_tf.bench import benchmark_size

    if args.fakes != "dataset":
        cores = os.cpu_count()
        with tempfile.TemporaryDirectory() as folder:
            frames = write_crops(Path(folder), args.crops, args.size)
            load = os.getloadavg()[0]
            pipe = pipeline_rate(frames, args.size, args.seconds, args.batch, args.fakes)
        # A generator pair is two training images, so the trainer's images/s is what the pipeline's
        # images/s (not its pseudo-fakes/s) must match; per core, since tf.data's parallel calls
        # spread over every core and an accelerator host has more of them than this machine.
        per_core = pipe / cores
        print(f"pipeline (decode + {args.fakes} pairs + JPEG + log-DCT, {args.size} px, "
              f"{cores} CPU threads, load average {load:.1f} -> {os.getloadavg()[0]:.1f}): "
              f"{pipe:.1f} images/s, of which pseudo-fakes {pipe / 2:.1f}/s; "
              f"{per_core:.1f} images/s per core")  # fmt: skip
        if args.size == 299:  # the size --accelerator-rate is an estimate for
            print(f"  -> {args.accelerator_rate / per_core:.0f} cores of this machine per "
                  f"accelerator at {args.accelerator_rate:.0f} images/s")  # fmt: skip
        if not args.skip_model:
            load = os.getloadavg()[0]
            model = benchmark_size(
                args.size, batch=8, seconds=args.seconds, middle_blocks=args.middle_blocks
            )["train_images_per_s"]
            print(f"MD-CSD training ({args.size} px, batch 8, {args.middle_blocks} middle blocks, "
                  f"load average {load:.1f} -> {os.getloadavg()[0]:.1f}): {model:.2f} images/s; "
                  f"pipeline / training: {pipe / model:.1f}x (target >= 10x)")  # fmt: skip
        return 0
    with tempfile.TemporaryDirectory() as folder:
        frames = write_crops(Path(folder), args.crops, args.size)
        load = os.getloadavg()[0]
        rates = pipeline_rates(frames, args.size, args.seconds, args.batch)
    pipe, cores = rates[False], os.cpu_count()
    print(f"pipeline, {args.size} px, {cores} CPU threads, load average {load:.1f} -> "
          f"{os.getloadavg()[0]:.1f}:")  # fmt: skip
    for in_model, label in ((False, "decode + log-DCT (paper)"), (True, "decode, no spectrum")):
        per_core = rates[in_model] / cores
        print(f"  {label:26s} {rates[in_model]:7.1f} images/s = {per_core:6.1f}/core -> "
              f"{args.accelerator_rate / per_core:5.1f} cores per accelerator at "
              f"{args.accelerator_rate:.0f} images/s")  # fmt: skip
    print(f"  spectrum in the model: pipeline x{rates[True] / rates[False]:.2f}")
    if args.skip_model:
        return 0
    model = benchmark_size(args.size, batch=8, seconds=args.seconds)["train_images_per_s"]
    print(f"MD-CSD training ({args.size} px, batch 8): {model:.2f} images/s")
    print(f"pipeline / model: {pipe / model:.0f}x (target >= 10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
