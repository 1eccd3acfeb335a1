"""Reading frames from video files with OpenCV.

Frames leave this module as RGB ``uint8`` arrays of shape ``(height, width, 3)``: OpenCV decodes
to BGR and the conversion happens here, once, so nothing downstream has to remember it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

SAMPLINGS = ("consecutive", "uniform")  # what data preparation offers (the paper's protocols)
STRIDED = "every"  # predict's third way: every k-th frame from the first
PREDICT_SAMPLINGS = ("uniform", STRIDED)  # what predict offers: evenly spaced or every k-th


class VideoError(Exception):
    """A video that cannot be decoded; the message names the file and says why, on one line."""


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    frame_count: int  # as reported by the container; 0 when unknown
    fps: float
    width: int
    height: int


def _open(path: str | os.PathLike) -> cv2.VideoCapture:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise VideoError(f"{path}: file not found")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        capture.release()
        raise VideoError(f"{path}: not a readable video (OpenCV could not open it)")
    return capture


def probe(path: str | os.PathLike) -> VideoInfo:
    """Returns the frame count, frame rate and size the container reports."""
    capture = _open(path)
    try:
        return VideoInfo(
            frame_count=max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
            fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
            width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        )
    finally:
        capture.release()


def frame_count(path: str | os.PathLike) -> int:
    """Counts decodable frames by decoding them (container counts can be wrong or missing)."""
    capture = _open(path)
    count = 0
    try:
        while capture.grab():
            count += 1
    finally:
        capture.release()
    return count


def sample_indices(total: int, count: int | None, sampling: str) -> list[int]:
    """Frame indices to take from a video of ``total`` frames.

    ``consecutive`` takes the first ``count`` frames (FF++ protocol: "270 consecutive frames",
    from the first frame); ``uniform`` spreads ``count`` indices evenly over the whole video
    (Celeb-DF protocol: 25 frames per video). ``count=None`` or ``count >= total`` takes all.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if count is None or count >= total:
        return list(range(total))
    if count <= 0:
        return []
    if sampling == "consecutive":
        return list(range(count))
    # Centre of each of `count` equal segments: never repeats an index, and avoids the very
    # first and last frames, which are the most often black or blended.
    return [int((i + 0.5) * total / count) for i in range(count)]


def iter_frames(
    path: str | os.PathLike,
    count: int | None,
    sampling: str = "consecutive",
    every: int | None = None,
    indices: Iterable[int] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yields ``(frame_index, frame_rgb)`` one at a time (see :func:`read_frames`).

    The one frame sampler of the package: data preparation and predict both read videos here.
    Streaming matters: 270 frames of 1080p video are 1.7 GB as arrays, per worker.

    Args:
        path: the video file.
        count: frames wanted (``None``: all); with ``sampling="every"``, an optional cap.
        sampling: ``"consecutive"``, ``"uniform"`` (see :func:`sample_indices`) or ``"every"``
            (every ``every``-th frame from the first).
        every: the stride for ``"every"``.
        indices: these frames only (``count`` and ``sampling`` are then ignored), e.g. the
            frames a report shows: only they are converted, the others are only grabbed.

    Raises:
        VideoError: at the first ``next()``, if the file is missing, empty, not a video, or yields
            no frame at all.
    """
    if sampling not in (*SAMPLINGS, STRIDED):
        raise ValueError(f"sampling must be one of {(*SAMPLINGS, STRIDED)}, got {sampling!r}")
    if sampling == STRIDED and (every is None or every < 1):
        raise ValueError("sampling='every' needs every >= 1")
    if indices is not None:
        probe(path)
        wanted = {int(i) for i in indices}
        stop, sampling, count = (max(wanted) + 1 if wanted else 0), "uniform", len(wanted)
    elif sampling == STRIDED:
        probe(path)  # a one-line VideoError for a missing, empty or unopenable file
        wanted, stop = None, None
    elif sampling == "uniform":
        # Seeking (CAP_PROP_POS_FRAMES) is not frame-exact for every codec, so we decode
        # sequentially and keep the wanted frames; grab() skips the colour conversion.
        total = probe(path).frame_count or frame_count(path)
        wanted = set(sample_indices(total, count, sampling))
        stop = max(wanted) + 1 if wanted else 0
    else:
        wanted, stop = None, count
    capture = _open(path)
    yielded = 0
    try:
        index = 0
        while stop is None or index < stop:
            if not capture.grab():
                break
            keep = index % every == 0 if sampling == STRIDED else wanted is None or index in wanted
            if keep:
                ok, bgr = capture.retrieve()
                if not ok or bgr is None:
                    break
                yield index, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                yielded += 1
                if sampling == STRIDED and count is not None and yielded >= count:
                    break
            index += 1
    finally:
        capture.release()
    if not yielded and (count is None or count > 0):
        raise VideoError(f"{os.fspath(path)}: no frame could be decoded (corrupt or truncated)")


def read_frames(
    path: str | os.PathLike, count: int | None, sampling: str = "consecutive"
) -> tuple[list[np.ndarray], list[int]]:
    """Reads ``count`` frames of a video.

    Args:
        path: the video file.
        count: number of frames wanted; ``None`` reads all.
        sampling: ``"consecutive"`` (from the first frame) or ``"uniform"`` (evenly spaced).

    Returns:
        ``(frames, indices)``: RGB ``uint8`` arrays and their frame indices in the video. A video
        shorter than ``count`` gives fewer frames (all it has); callers compare the lengths.

    Raises:
        VideoError: the file is missing, empty, not a video, or yields no frame at all.
    """
    frames, indices = [], []
    for index, frame in iter_frames(path, count, sampling):
        frames.append(frame)
        indices.append(index)
    return frames, indices
