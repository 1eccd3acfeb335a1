"""From a video file to its face crops, without TensorFlow: what can run while the model loads.

`md-csd predict` spends its first seconds importing TensorFlow and loading the model; the first
videos' frames can be decoded and their faces found meanwhile. So this module imports OpenCV and
dlib only, and `VideoPrefetcher` runs `video_crops` in one thread, one video ahead of the model
(`batch.score_inputs`), or from before the model is loaded (`commands/predict.py`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from md_csd_tf.errors import UserError
from md_csd_tf.prep.faces import Box, FaceCropper
from md_csd_tf.prep.video import PREDICT_SAMPLINGS, STRIDED, VideoError, iter_frames

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp"}
)
DEFAULT_FRAMES = 32  # evenly spaced frames per video; FF++ test videos give 32 crops in ~5 s
DEFAULT_DETECT_MAX_SIDE = 640  # FaceCropper's; see its docstring for why
#: `models.saving.METADATA_FILE`, read here without importing Keras (that module does).
METADATA_FILE = "md_csd_tf.json"


class InputError(UserError):
    """An input that cannot be scored (unreadable, no face); the message names the input."""


def input_kind(path: str | os.PathLike) -> str:
    """ "image", "video" or "unknown", from the file extension."""
    suffix = Path(path).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    return "unknown"


def video_crops(
    cropper: FaceCropper,
    path: str | os.PathLike,
    frames: int | None = DEFAULT_FRAMES,
    sampling: str = "uniform",
    every_k: int | None = None,
    track: bool = True,
    timings: dict[str, float] | None = None,
) -> tuple[list[np.ndarray], list[int], list[Box], int]:
    """Face crops of a video's sampled frames: `(crops, frame_indices, boxes, sampled)`.

    Args:
        cropper: finds the face and cuts the crop (`Detector.cropper`).
        path, frames, sampling, every_k: the video and which frames (`Detector.predict_video`).
        track: start each frame's face search from the size of the last face found
            (`FaceCropper.detect`'s `hint`), instead of a coarse look at the whole frame.
        timings: seconds are added to its "decode", "detect" and "crop" entries.

    Raises:
        InputError: not a readable video, no frame decoded, or no face in any sampled frame.
    """
    path = os.fspath(path)
    if sampling not in PREDICT_SAMPLINGS:
        raise ValueError(f"sampling must be one of {PREDICT_SAMPLINGS}, got {sampling!r}")
    if sampling == STRIDED and (every_k is None or every_k < 1):
        raise ValueError("sampling='every' needs every_k >= 1")
    timings = collections.defaultdict(float) if timings is None else timings
    crops, indices, boxes, sampled = [], [], [], 0
    hint = None  # the width of the last face found, when tracking
    stream = iter_frames(path, frames, sampling, every=every_k)
    try:
        while True:
            began = time.perf_counter()
            item = next(stream, None)
            timings["decode"] += time.perf_counter() - began
            if item is None:
                break
            index, frame = item
            sampled += 1
            began = time.perf_counter()
            found = cropper.detect(frame, hint)
            middle = time.perf_counter()
            timings["detect"] += middle - began
            if found is not None:
                face = found[0]
                hint = face[2] - face[0] if track else None
                crop, box = cropper.crop_box(frame, face)
                timings["crop"] += time.perf_counter() - middle
                crops.append(crop)
                indices.append(index)
                boxes.append(tuple(box))
    except VideoError as error:
        raise InputError(str(error)) from None
    except cv2.error as error:
        first = str(error).strip().splitlines()[-1] if str(error).strip() else "cv2.error"
        raise InputError(f"{path}: cannot decode the video ({first[:160]})") from None
    if sampled == 0:
        raise InputError(f"{path}: no frame could be decoded (corrupt or truncated video)")
    if not crops:
        raise InputError(f"{path}: no face found in any of the {sampled} sampled frames")
    return crops, indices, boxes, sampled


def saved_crop_size(model_path: str | os.PathLike) -> int | None:
    """The crop side a `.keras` file's model was trained on, read from its `config.json`
    without loading it (so without TensorFlow); None when the file does not say.
    """
    try:
        with zipfile.ZipFile(model_path) as archive:
            config = json.loads(archive.read("config.json"))["config"]
        return int(config.get("crop_size") or config["image_size"])
    except Exception:  # noqa: BLE001 - not ours or unreadable: the model loader will say why
        return None


def saved_crop_settings(model_path: str | os.PathLike) -> dict | None:
    """The crop settings of `md-csd prepare` stored in a `.keras` file's md-csd-tf metadata
    (its "crops"), read without loading the model; None when it has none or is unreadable."""
    try:
        with zipfile.ZipFile(model_path) as archive:
            settings = json.loads(archive.read(METADATA_FILE)).get("crops")
    except Exception:  # noqa: BLE001 - no metadata, not ours or unreadable: no settings
        return None
    return settings if isinstance(settings, dict) else None


def make_cropper(
    crop_size: int, settings: dict | None = None, detect_max_side: int | None | str = "model"
) -> tuple[FaceCropper, str | None]:
    """The face cropper that cuts faces as a model's training crops were cut.

    Args:
        crop_size: side of the model's training crops (`model.crop_size`, else its input side).
        settings: how `md-csd prepare` cut them (`data.manifest.read_crop_settings`, stored by
            the trainer in the model's metadata as "crops"): box scale, face pick rule and
            detector mode ("ffpp": the FF++ procedure's boxes; "fast": detection on a copy
            downscaled to "detect_max_side"). None (a model trained before they were stored, or
            on crops prepare did not cut, such as the shipped md-csd-sbi): data prep's defaults,
            dlib's largest face, the 1.3x box, FF++ boxes.
        detect_max_side: "model": the one the crops were detected at in "fast" mode, else
            640; an int, or None (full size): the caller's, which replaces the model's.

    Returns:
        `(cropper, note)`: the note (else None) says when `detect_max_side` changes the boxes
        from those of the model's training crops.
    """
    settings = settings or {}
    fast = settings.get("crops") == "fast"  # the box depends on the downscale only then
    side = (
        settings.get("detect_max_side", DEFAULT_DETECT_MAX_SIDE)
        if fast
        else DEFAULT_DETECT_MAX_SIDE
    )
    note = None
    if detect_max_side != "model":
        if fast and detect_max_side != side:
            note = (
                f"--detect-max-side {detect_max_side or 0} replaces the {side or 0} px the "
                "model's training crops were detected at (prepare --crops fast); its boxes may "
                "differ from training's"
            )
        side = detect_max_side
    cropper = FaceCropper(
        image_size=int(crop_size),
        scale=float(settings.get("scale", FaceCropper.scale)),
        detect_max_side=side,
        pick=settings.get("pick", FaceCropper.pick),
        exact=not fast,
    )
    return cropper, note


class VideoPrefetcher:
    """Crops the videos of a list of inputs in one thread, ahead of the caller.

    dlib's detector is one object per process (`prep.faces`) and not known to be thread-safe, so
    callers start a video only while they are not detecting faces themselves (see
    `batch.score_inputs`: only behind a video).

    Args:
        inputs: `(path, kind)` pairs (`batch.collect_inputs`); only "video" ones are started.
        cropper: the face cropper; its crops must be the detector's (`matches`).
        track: as `video_crops`.
        **sampling: `frames`, `sampling`, `every_k` as `video_crops`.
    """

    def __init__(
        self,
        inputs: Sequence[tuple[str, str]],
        cropper: FaceCropper,
        track: bool = True,
        **sampling,
    ):
        self.inputs, self.cropper, self.track, self.sampling = inputs, cropper, track, sampling
        self.timings: dict[str, float] = collections.defaultdict(float)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._ahead: dict[int, concurrent.futures.Future] = {}

    def start(self, i: int) -> None:
        """Starts cropping input `i` if it is a video not started yet."""
        if i < len(self.inputs) and self.inputs[i][1] == "video" and i not in self._ahead:
            self._ahead[i] = self._pool.submit(
                video_crops, self.cropper, self.inputs[i][0], track=self.track,
                timings=self.timings, **self.sampling,
            )  # fmt: skip

    def take(self, i: int) -> concurrent.futures.Future | None:
        """The future of input `i`'s `video_crops`, or None if it was not started."""
        return self._ahead.pop(i, None)

    def matches(self, cropper: FaceCropper, track: bool, **sampling) -> bool:
        """Whether this prefetcher's crops are the ones `cropper` and these settings give."""
        return cropper == self.cropper and track == self.track and sampling == self.sampling

    def close(self) -> None:
        """Drops what was not started and waits for the video in progress."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._ahead.clear()
