"""Tiny manifests of real PNG crops for pipeline and trainer tests (no video, no dlib)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from md_csd_tf.data.manifest import MANIFEST_COLUMNS


def write_crop_manifest(
    root: Path, size: int = 71, videos: dict | None = None, frames: int = 3, seed: int = 0
) -> Path:
    """Writes PNG crops and a manifest in `md-csd prepare`'s format; returns manifest.csv.

    `videos` maps split -> {method: number of videos}. Fake crops carry a high-frequency
    checkerboard inside a central square, real ones do not, so a model can tell them apart.
    """
    rng = np.random.default_rng(seed)
    videos = videos or {
        "train": {"real": 2, "Deepfakes": 2, "FaceSwap": 2},
        "val": {"real": 1, "Deepfakes": 1},
        "test": {"real": 1, "Deepfakes": 1, "FaceSwap": 1},
    }
    rows = []
    for split, methods in videos.items():
        for method, count in methods.items():
            for v in range(count):
                # FF++-style ids ("000", "100_101"): pandas must keep them as strings.
                first = {"train": 0, "val": 100, "test": 200}.get(split, 300) + v
                video_id = f"{first:03d}" if method == "real" else f"{first:03d}_{first + 1:03d}"
                for frame in range(frames):
                    image = rng.integers(60, 200, size=(size, size, 3), dtype=np.uint8)
                    image = cv2.GaussianBlur(image, (5, 5), 0)
                    if method != "real":
                        checker = (np.indices((size, size)).sum(axis=0) % 2 * 40).astype(np.uint8)
                        q = size // 4
                        image[q:-q, q:-q] = np.clip(
                            image[q:-q, q:-q] + checker[q:-q, q:-q, None], 0, 255
                        )
                    rel = Path("ffpp") / "c23" / method / video_id / f"{frame:04d}.png"
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    cv2.imwrite(str(root / rel), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                    rows.append(
                        dict(
                            dataset="ffpp",
                            split=split,
                            method=method,
                            compression="c23",
                            video_id=video_id,
                            frame_index=frame,
                            path=str(rel),
                            label=int(method != "real"),
                            box_left=0,
                            box_top=0,
                            box_right=size,
                            box_bottom=size,
                            face_score=1.0,
                        )
                    )
    manifest = root / "manifest.csv"
    pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).to_csv(manifest, index=False)
    return manifest


def standin_face_crops(
    seed: int, videos: int, frames: int, size: int, families: tuple[str, ...] = ()
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """FF++ c23-like face crops of stand-in videos (`prep.synthetic`), rendered in memory.

    What `md-csd demo` writes, without the video files, dlib's detector or the extraction: each
    real video is rendered at the demo's 320x240, its fakes are made from it as `dataset.py`
    makes them (the camera after the manipulation), every frame is JPEG-compressed at c23's
    quality, and the 1.3x face box (known from the render) is cropped and resized to `size`.

    Returns:
        `(reals (videos * frames, size, size, 3), {family: fakes of the same frames})`, uint8 RGB.
    """
    from md_csd_tf.prep import synthetic

    rng = np.random.default_rng(seed)

    def crops(video, boxes):
        out = []
        for image, box in zip(video, boxes, strict=True):
            bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)  # JPEG's luma weights need BGR order
            _, data = cv2.imencode(
                ".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, synthetic.QUALITY["c23"]]
            )
            image = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            y0, y1, x0, x1 = synthetic._region(box, *image.shape[:2])
            out.append(cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA))
        return np.stack(out)

    reals, fakes = [], {family: [] for family in families}
    for v in range(videos):
        # The two bundled people take turns as target; the other is the swap source.
        target = synthetic.sample_identity(rng, synthetic.BUNDLED[v % 2].key)
        source = synthetic.sample_identity(rng, synthetic.BUNDLED[(v + 1) % 2].key)
        params = synthetic.sample_params(rng, frames)
        video, boxes = synthetic.render_video(target, params), synthetic.face_boxes(params)
        reals.append(crops(synthetic.camera(video, params), boxes))
        swapped = (
            synthetic.render_video(source, params)
            if synthetic.NEEDS_SOURCE & set(families)
            else None
        )
        for family in families:
            fake = synthetic.apply_manipulation(family, video, swapped, boxes, rng)
            fakes[family].append(crops(synthetic.camera(fake, params), boxes))
    return np.concatenate(reals), {k: np.concatenate(v) for k, v in fakes.items()}


def prepared_video(out: Path, video_id: str, frames: int = 2, size: int = 40) -> Path:
    """One finished FF++ real video folder of `md-csd prepare` (noise crops, frames.csv,
    video.json) under `out`; returns the folder."""
    folder = out / "ffpp" / "c23" / "real" / video_id
    folder.mkdir(parents=True)
    rows = []
    for i in range(frames):
        noise = np.random.default_rng(i).integers(40, 220, (size, size, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{i:04d}.png"), cv2.GaussianBlur(noise, (5, 5), 0))
        rows.append(
            {c: 0 for c in MANIFEST_COLUMNS} | {"path": f"ffpp/c23/real/{video_id}/{i:04d}.png"}
        )
    (folder / "video.json").write_text(json.dumps({"crops": frames}))
    with open(folder / "frames.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return folder


def standin_landmarks(size: int) -> np.ndarray:
    """68 points (x, y) in pixels of a `size` stand-in crop: the mean face outline, for tests
    that should not depend on a landmark model's output.

    The jaw (points 0-16) and brows (17-26) follow the mean of dlib's 68-point predictions on
    24 stand-in crops of the bundled photographs (per-point spread ~3 % of the face box); only
    the outline makes the blending masks, so the 41 inner points sit at the face centre.
    """
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([0.46 - 0.5 * np.cos(t), 0.33 + 0.75 * np.sin(t)], 1)  # in face-box units
    u = np.linspace(0, 1, 10)
    brows = np.stack([0.04 + 0.86 * u, 0.23 - 0.1 * np.sin(np.pi * u)], 1)
    points = np.concatenate([jaw, brows, np.tile([[0.46, 0.6]], (41, 1))])
    points = points / 1.3 + (1 - 1 / 1.3) / 2  # the face box is the crop's central 1/1.3
    return (points * size).astype(np.float32)


def tiny_train_config(manifest, out, **changes):
    """A `TrainConfig` of seconds: 71 px MD-CSD without middle flow, random init, one epoch of
    two eager steps of 4 crops; `changes` override any field."""
    from md_csd_tf.training.config import TrainConfig

    settings = dict(
        image_size=71,
        middle_blocks=0,
        weights=None,
        epochs=1,
        batch_size=4,
        steps_per_epoch=2,
        freq_stat_samples=8,
        run_eagerly=True,
        verbose=0,
    )
    return TrainConfig(manifest=str(manifest), out_dir=str(out), **{**settings, **changes})
