"""Tiny stand-in dataset layouts for the data-preparation tests.

Videos are a few frames of a real face photograph (``skimage.data.astronaut()``) pasted on a flat
background at a known place, so dlib finds exactly one face with a known box.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np
from skimage import data

FRAME_H, FRAME_W = 240, 320
# The face patch: a 180x180 cut of the astronaut photo; dlib finds her face at about
# (49, 43)-(136, 130) inside it, i.e. ~87 px, above dlib's ~80 px minimum at upsample 0.
_PATCH = (slice(40, 220), slice(130, 310))


@functools.cache
def face_patch() -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[_PATCH])


def face_frame(x: int = 60, y: int = 30, shade: int = 90, size=(FRAME_H, FRAME_W)) -> np.ndarray:
    """An RGB frame with the face patch's top-left corner at (x, y); patch clipped at the edges."""
    frame = np.full((*size, 3), shade, np.uint8)
    patch = face_patch()
    h = min(patch.shape[0], size[0] - y)
    w = min(patch.shape[1], size[1] - x)
    frame[y : y + h, x : x + w] = patch[:h, :w]
    return frame


def blank_frame(shade: int = 120, size=(FRAME_H, FRAME_W)) -> np.ndarray:
    rng = np.random.default_rng(shade)
    return rng.integers(0, 255, (*size, 3), dtype=np.uint8)


def write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {path}"
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def face_video(path: Path, n: int = 8, shade: int = 90) -> Path:
    """A face drifting right by 2 px per frame."""
    return write_video(path, [face_frame(x=50 + 2 * i, shade=shade) for i in range(n)])


# Tiny FF++ splits: pairs (000, 001) train, (002, 003) val, (004, 005) test.
TINY_SPLITS = {"train": [["000", "001"]], "val": [["002", "003"]], "test": [["004", "005"]]}


def make_ffpp(
    root: Path,
    methods=("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"),
    compression: str = "c23",
    n: int = 6,
) -> Path:
    """FF++ layout with the tiny splits written to ``root/splits``."""
    splits = root / "splits"
    splits.mkdir(parents=True, exist_ok=True)
    for name, pairs in TINY_SPLITS.items():
        (splits / f"{name}.json").write_text(json.dumps(pairs))
    ids = [v for pairs in TINY_SPLITS.values() for pair in pairs for v in pair]
    originals = root / "original_sequences" / "youtube" / compression / "videos"
    for i, video_id in enumerate(ids):
        face_video(originals / f"{video_id}.mp4", n=n, shade=60 + 10 * i)
    for method in methods:
        folder = root / "manipulated_sequences" / method / compression / "videos"
        for pairs in TINY_SPLITS.values():
            for a, b in pairs:
                for target, source in ((a, b), (b, a)):
                    face_video(folder / f"{target}_{source}.mp4", n=n, shade=70)
    return root


def make_dfd(root: Path, compression: str = "c23", n: int = 6) -> Path:
    reals = root / "original_sequences" / "actors" / compression / "videos"
    fakes = root / "manipulated_sequences" / "DeepFakeDetection" / compression / "videos"
    for name in ("01__talking", "02__walking"):
        face_video(reals / f"{name}.mp4", n=n)
    for name in (
        "01_02__talking__ABCDEF12",
        "02_01__walking__0A1B2C3D",
        "01_02__hugging__XYZ98765",
    ):
        face_video(fakes / f"{name}.mp4", n=n)
    return root


CELEBDF_FILES = {
    "Celeb-real": ["id0_0000", "id1_0001"],
    "YouTube-real": ["00000", "00001"],
    "Celeb-synthesis": ["id0_id1_0000", "id1_id0_0001", "id0_id1_0002"],
}
# Official convention of List_of_testing_videos.txt: 1 = REAL, 0 = fake.
CELEBDF_TEST_LIST = [
    "1 Celeb-real/id0_0000.mp4",
    "1 YouTube-real/00000.mp4",
    "0 Celeb-synthesis/id0_id1_0000.mp4",
]


def make_celebdf(root: Path, n: int = 12) -> Path:
    for folder, names in CELEBDF_FILES.items():
        for name in names:
            face_video(root / folder / f"{name}.mp4", n=n)
    (root / "List_of_testing_videos.txt").write_text("\n".join(CELEBDF_TEST_LIST) + "\n")
    return root
