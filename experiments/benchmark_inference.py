"""Where a user's wait goes when `md-csd predict` scores a folder of videos, stage by stage.

    python experiments/benchmark_inference.py                      # six 10 s 720p videos, 299 px
    python experiments/benchmark_inference.py --videos DIR --model M.keras   # reuse them
    python experiments/benchmark_inference.py --cli                # also time the real command
    python experiments/benchmark_inference.py --small --seconds 2  # 71 px smoke run

The folder: six synthetic 10 s videos (1280x720, 30 fps, 300 frames; the astronaut's face,
~300 px, moving over a textured background; `md_csd_tf.prep.synthetic`), i.e. 60 s of video,
32 evenly spaced frames each (`md-csd predict` defaults), scored by a full 299 px MD-CSD saved as
.keras with `rgb_weights=None` (weights do not change the cost).

Two ways on the same folder, in one run, with one loaded model:

* old: each video in turn, decoded, then a face searched from scratch in every sampled frame
  (a coarse look at a <= 640 px copy, then dlib's exact pyramid), then scored;
* new (the default now): each frame's face search starts from the previous face's size
  (`Detector(track=True)`), and the next video is decoded and cropped in a thread while the model
  scores the current one (`score_inputs(prefetch=True)`).

Printed per way: seconds in decode, face detection, crop, transform, model and writing (decode
and detection overlap the model in "new", so they add up to more than its wall time), wall time,
CPU seconds of the process, end to end with start-up (imports, model load, tracing), and the
crops' agreement with the old way (min IoU of the crop boxes, max score difference). `--cli`
then times the command itself in a fresh process, start-up included. The machine is shared, so
the load average is printed with each way; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

WIDTH, HEIGHT, FPS = 1280, 720, 30  # 720p at 30 fps, as the issue asks
STAGES = ("decode", "detect", "crop", "transform", "model", "write")


def make_videos(folder: Path, count: int, seconds: float, large_face: bool = False) -> list[Path]:
    """Renders `count` synthetic 720p videos of the astronaut moving over a textured background.

    Args:
        folder: where the `clip{seed}.mp4` files go.
        count, seconds: how many videos, and how long each is.
        large_face: a face filling much of the frame (450-560 px at 1280x720, as in a close-up)
            instead of `synthetic.sample_params`'s ~300 px; it still moves across the frame.

    Returns:
        The paths written.
    """
    import dataclasses

    import numpy as np

    from md_csd_tf.prep import synthetic

    paths = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        params = synthetic.sample_params(rng, n_frames=round(seconds * FPS), size=(WIDTH, HEIGHT))
        if large_face:
            # The 1.3x crop of so large a face no longer fits the frame's height, so the centre
            # is kept where the face box itself fits; it travels most of the frame's width.
            face_px = HEIGHT * rng.uniform(0.62, 0.78)
            half = 0.5 * face_px * max(params.scale0, params.scale1) * 1.05
            centre = lambda: (float(rng.uniform(half, WIDTH - half)),  # noqa: E731
                              float(rng.uniform(min(half, HEIGHT / 2), max(HEIGHT - half, HEIGHT / 2))))  # fmt: skip
            params = dataclasses.replace(
                params, face_px=float(face_px), centre0=centre(), centre1=centre()
            )
        frames = synthetic.render_video(synthetic.Identity("astronaut"), params)
        paths.append(folder / f"clip{seed}.mp4")
        synthetic.write_video(paths[-1], frames, quality=90, fps=FPS)
        del frames  # 300 frames of 720p are 0.8 GB
    return paths


def score_folder(detector, folder: Path, out: Path, prefetch: bool, frames: int):
    """Scores the folder as `md-csd predict` does; returns (rows, stage seconds, wall, cpu)."""
    from md_csd_tf.inference.batch import collect_inputs, score_inputs, write_results

    detector.timings.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    rows = score_inputs(
        detector,
        collect_inputs([folder]),
        progress=False,
        prefetch=prefetch,
        frames=frames,
        sampling="uniform",
        aggregate="mean",
        threshold=0.5,
    )
    began = time.perf_counter()
    write_results(rows, out)
    stages = dict(detector.timings, write=time.perf_counter() - began)
    return rows, stages, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=Path, help="a folder of videos (default: render six)")
    parser.add_argument("--model", type=Path, help="a .keras model (default: build and save)")
    parser.add_argument("--count", type=int, default=6, help="videos to render (6)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each (10 s)")
    parser.add_argument("--frames", type=int, default=32, help="sampled frames per video (32)")
    parser.add_argument("--small", action="store_true", help="71 px model, no middle blocks")
    parser.add_argument("--cli", action="store_true", help="also time `md-csd predict` itself")
    args = parser.parse_args()

    began = time.perf_counter()
    import md_csd_tf
    from md_csd_tf.inference.detector import Detector
    from md_csd_tf.prep.faces import iou

    startup = {"imports": time.perf_counter() - began}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.videos is None:
            args.videos = tmp / "videos"
            args.videos.mkdir()
            began = time.perf_counter()
            make_videos(args.videos, args.count, args.seconds)
            print(f"rendered {args.count} videos of {args.seconds:g} s at {WIDTH}x{HEIGHT} "
                  f"{FPS} fps in {time.perf_counter() - began:.0f} s")  # fmt: skip
        if args.model is None:
            size, middle = (71, 0) if args.small else (299, 8)
            model = md_csd_tf.build_model(image_size=size, middle_blocks=middle)
            args.model = tmp / "model.keras"
            model.save(args.model)
            del model

        began = time.perf_counter()
        new = Detector.load(args.model)
        startup["model load"] = time.perf_counter() - began
        old = Detector(new.model, track=False)
        import numpy as np

        began = time.perf_counter()
        side = new.image_size
        for detector in (new, old):  # one tracing each; `md-csd predict` pays it once
            detector.predict_crops(np.zeros((1, side, side, 3), np.uint8))
        startup["tracing"] = (time.perf_counter() - began) / 2
        print("start-up: " + ", ".join(f"{k} {v:.1f} s" for k, v in startup.items()))

        results = {}
        for name, detector, prefetch in (("old", old, False), ("new", new, True)):
            load = os.getloadavg()[0]
            rows, stages, wall, cpu = score_folder(
                detector, args.videos, tmp / f"{name}.csv", prefetch, args.frames
            )
            results[name] = rows, wall
            total = sum(startup.values()) + wall
            print(f"{name}: " + "  ".join(f"{s} {stages.get(s, 0.0):.1f}" for s in STAGES)
                  + f"  | wall {wall:.1f} s, cpu {cpu:.1f} s, end to end {total:.1f} s"
                  f"  (load {load:.1f} -> {os.getloadavg()[0]:.1f})")  # fmt: skip
        failed = [r.error for rows, _ in results.values() for r in rows if not r.ok]
        assert not failed, failed
        seconds = sum(r.frames_sampled for r in results["new"][0]) / args.frames * args.seconds
        ratio = results["old"][1] / results["new"][1]
        print(f"new vs old: x{ratio:.2f} faster scoring; {seconds:.0f} s of video")
        # Agreement: the same frames, crops within IoU, scores within float noise.
        new_det, old_det = (
            {r.input: (r.frame_indices, r.frame_scores) for r in results[k][0]}
            for k in ("new", "old")
        )
        assert all(new_det[k][0] == old_det[k][0] for k in new_det), "frames differ"
        worst = max(np.abs(np.subtract(new_det[k][1], old_det[k][1])).max() for k in new_det)
        boxes = [
            (a, b)
            for path in new_det
            for a, b in zip(
                new.video_crops(path, frames=args.frames)[2],
                old.video_crops(path, frames=args.frames)[2],
                strict=True,
            )
        ]
        ious = [iou(a, b) for a, b in boxes]
        print(f"crops: same frames; crop boxes IoU min {min(ious):.3f}, "
              f"{sum(i < 1 for i in ious)} of {len(ious)} not identical; "
              f"max |score new - old| {worst:.1e}")  # fmt: skip

        if args.cli:
            command = [sys.executable, "-m", "md_csd_tf.cli", "predict", "--model",
                       str(args.model), str(args.videos), "--output", str(tmp / "cli.csv"),
                       "--quiet"]  # fmt: skip
            load = os.getloadavg()[0]
            began = time.perf_counter()
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
            wall = time.perf_counter() - began
            print(f"md-csd predict end to end (fresh process): {wall:.1f} s for {seconds:.0f} s "
                  f"of video (load {load:.1f} -> {os.getloadavg()[0]:.1f})")  # fmt: skip


if __name__ == "__main__":
    main()
