"""Tiny manifests of real PNG crops for pipeline and trainer tests (no video, no dlib)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from md_csd_tf.prep.extract import MANIFEST_COLUMNS


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
