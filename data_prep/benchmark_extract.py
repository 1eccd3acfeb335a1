"""Benchmark of the face-extraction fast path (a benchmark, not a test).

    python data_prep/benchmark_extract.py [--videos 4] [--frames 30] [--workers 2]

Builds a small FF++-layout set of 1280x720 videos (a real face photograph, skimage's astronaut,
drifting and zooming over a textured background; each "fake" is its original with a colour shift
inside the face, the same geometry as in FF++) and measures frames/s of:

  (a) baseline: every frame decoded, detected at full size, cropped and written, one by one in one
      process (dlib upsample 0 in both paths, so only the speed-ups differ);
  (b) the job, ``extract_faces``: detection on a copy downscaled to 640 px, parallel workers, fakes
      reusing their original's boxes; and (c) the same plus ``detect_every=5``.

It prints frames/s, the speed-up over (a) and the mean/min IoU of the crop boxes against (a).
Target (issue 3): speed-up >= 4x with IoU >= 0.9.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from md_csd_tf.prep.extract import ExtractConfig, extract_faces
from md_csd_tf.prep.faces import FaceCropper, iou
from md_csd_tf.prep.video import read_frames

WIDTH, HEIGHT = 1280, 720


def _frame(t: float, seed: int) -> np.ndarray:
    from skimage import data  # imported here: spawned workers re-import this script's top level

    rng = np.random.default_rng(seed)
    background = cv2.resize(rng.integers(40, 200, (18, 32, 3), dtype=np.uint8), (WIDTH, HEIGHT))
    # Face ~190-230 px high at 720p, as in FF++ (the photo's face is ~36% of the cut's side).
    side = int(580 + 40 * np.sin(2 * np.pi * t))  # slow zoom in and out
    face = cv2.resize(data.astronaut()[20:260, 110:350], (side, side))
    x = int(150 + 200 * t) + 40 * seed  # ~7 px per frame at 30 frames, a brisk head movement
    y = int(40 + 40 * np.cos(2 * np.pi * t))
    background[y : y + side, x : x + side] = face
    return background


def build(root: Path, videos: int, frames: int) -> Path:
    ids = [f"{i:03d}" for i in range(videos)]
    pairs = [[ids[i], ids[i + 1]] for i in range(0, videos - 1, 2)]
    splits = root / "splits"
    splits.mkdir(parents=True)
    for name in ("train", "val", "test"):
        (splits / f"{name}.json").write_text(json.dumps(pairs if name == "test" else []))
    reals = root / "original_sequences/youtube/c23/videos"
    fakes = root / "manipulated_sequences/Deepfakes/c23/videos"
    reals.mkdir(parents=True)
    fakes.mkdir(parents=True)
    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
    for a, b in pairs:
        for target, source in ((a, b), (b, a)):
            real = cv2.VideoWriter(str(reals / f"{target}.mp4"), fourcc, 25, (WIDTH, HEIGHT))
            fake = cv2.VideoWriter(
                str(fakes / f"{target}_{source}.mp4"), fourcc, 25, (WIDTH, HEIGHT)
            )
            for i in range(frames):
                frame = _frame(i / frames, int(target))
                real.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                tinted = frame.copy()
                tinted[..., 0] = np.clip(tinted[..., 0].astype(int) + 12, 0, 255)
                fake.write(cv2.cvtColor(tinted, cv2.COLOR_RGB2BGR))
            real.release()
            fake.release()
    return root


def baseline(root: Path, out: Path, frames: int) -> tuple[float, dict]:
    """Full-size detection on every frame, one process; returns (seconds, boxes by (id, frame))."""
    cropper = FaceCropper(detect_max_side=None, retry_upsample=False)
    boxes = {}
    out.mkdir(parents=True)
    start = time.perf_counter()
    for path in sorted(root.glob("*_sequences/*/c23/videos/*.mp4")):
        video, indices = read_frames(path, frames, "consecutive")
        for frame, index in zip(video, indices, strict=True):
            crop, box, _ = cropper.crop(frame)
            if crop is not None:
                cv2.imwrite(str(out / f"{path.stem}_{index:04d}.png"), crop[..., ::-1])
                boxes[(path.stem, index)] = box
    return time.perf_counter() - start, boxes


def fast(root: Path, out: Path, frames: int, workers: int, **options) -> tuple[float, dict]:
    config = ExtractConfig(
        "ffpp", str(root), str(out), methods=("Deepfakes",), splits=("test",),
        splits_dir=str(root / "splits"), frames=frames, workers=workers, progress=False,
    )  # fmt: skip
    import pandas as pd

    start = time.perf_counter()
    extract_faces(dataclasses.replace(config, **options))
    seconds = time.perf_counter() - start
    table = pd.read_csv(out / "manifest.csv", dtype={"video_id": str})
    boxes = {
        (row.video_id, row.frame_index): (row.box_left, row.box_top, row.box_right, row.box_bottom)
        for row in table.itertuples()
    }
    return seconds, boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=4, help="originals (each gets one fake)")
    parser.add_argument("--frames", type=int, default=30, help="frames per video")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = build(tmp / "ffpp", args.videos, args.frames)
        total = 2 * args.videos * args.frames
        print(
            f"{2 * args.videos} videos x {args.frames} frames of {WIDTH}x{HEIGHT} = {total} frames"
        )
        seconds, reference = baseline(root, tmp / "baseline", args.frames)
        base_fps = len(reference) / seconds
        print(f"(a) full-size detection, every frame, 1 process: {base_fps:6.1f} frames/s "
              f"({len(reference)} crops in {seconds:.1f} s)")  # fmt: skip
        runs = {
            "(b) 640 px detection + workers + original boxes": {},
            "(c) (b) + detect_every=5": {"detect_every": 5},
        }
        for number, (name, options) in enumerate(runs.items()):
            seconds, boxes = fast(root, tmp / f"fast{number}", args.frames, args.workers, **options)
            overlaps = [iou(boxes[key], reference[key]) for key in reference if key in boxes]
            fps = len(boxes) / seconds
            print(f"{name}, {args.workers} workers: {fps:6.1f} frames/s, {fps / base_fps:.1f}x; "
                  f"IoU with (a): mean {np.mean(overlaps):.3f}, min {np.min(overlaps):.3f}, "
                  f"{np.mean(np.array(overlaps) >= 0.9):.0%} of frames >= 0.9 "
                  f"over {len(overlaps)} frames; {len(boxes)} crops in {seconds:.1f} s; "
                  f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
