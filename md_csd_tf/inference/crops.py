"""From an input file to its face crops, without TensorFlow: what can run while the model loads.

`md-csd predict` spends its first seconds importing TensorFlow and loading the model; the first
inputs can be decoded and their faces found meanwhile. So this module imports OpenCV and dlib
only, and `CropStream` decodes, detects and crops every input (images and videos) in one thread,
ahead of the model (`batch.score_inputs`), from before the model is loaded (`commands/predict.py`).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import queue
import threading
import time
import zipfile
from collections.abc import Iterator, Sequence
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
# What a face-less image's error tells the command-line user (`md-csd serve` says its own).
NO_DETECT_HINT = "pass --no-detect if it is already a face crop"
FACES = ("all", "largest")  # --faces: every face, linked into identities, or data prep's one
AUTO = "auto"  # --frames auto: the grid of `sequential.MAX_FRAMES` frames, scored in stages
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


def to_rgb_uint8(image: np.ndarray, channel_order: str) -> np.ndarray:
    """Any decoded image (grayscale, RGB/BGR, with alpha, 8/16-bit or float) to RGB uint8."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise ValueError(f"unsupported image shape {image.shape}")
    if image.dtype == np.uint16:
        # 65535 / 257 = 255 exactly: the 8-bit value a 16-bit encoder started from comes back.
        image = np.round(image.astype(np.float32) / 257.0)
    elif image.dtype.kind == "f":
        # Float images are 0..1 by convention (skimage, matplotlib), 0..255 otherwise.
        image = image * 255.0 if np.nanmax(image) <= 1.0 else image
    elif image.dtype != np.uint8:
        raise ValueError(f"unsupported pixel type {image.dtype}")
    image = np.clip(np.nan_to_num(image), 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        # Alpha is dropped, not composited: a face photo's transparent border is background
        # either way, and compositing would invent a colour the model never saw.
        code = cv2.COLOR_BGRA2RGB if channel_order == "bgr" else cv2.COLOR_RGBA2RGB
        return cv2.cvtColor(image, code)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if channel_order == "bgr" else image


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as RGB uint8, whatever its mode (grayscale, RGBA, 16-bit).

    Raises:
        InputError: missing file or not a readable image.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: file not found")
    # IMREAD_UNCHANGED keeps 16-bit depth and alpha, which we convert ourselves; the default
    # flag would silently drop the alpha channel and truncate 16-bit values.
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    order = "bgr"
    if image is None:  # formats OpenCV lacks (GIF, some TIFFs): Pillow, as a second chance
        try:
            from PIL import Image

            with Image.open(path) as handle:
                image = np.asarray(handle.convert("RGB"))
            order = "rgb"
        except Exception:
            raise InputError(f"{path}: not a readable image (OpenCV and Pillow failed)") from None
    try:
        return to_rgb_uint8(image, order)
    except ValueError as error:
        raise InputError(f"{path}: {error}") from None


def image_crop(
    cropper: FaceCropper, image: np.ndarray, name: str, detect: bool = True
) -> tuple[np.ndarray, Box]:
    """The crop an image is scored on and its box: the face as data prep cuts it, or with
    `detect=False` (the image is already a face crop) the whole image.

    Raises:
        InputError: no face found.
    """
    if not detect:
        return image, (0, 0, image.shape[1], image.shape[0])
    crop, box, _ = cropper.crop(image)
    if crop is None:
        raise InputError(f"{name}: no face found (dlib); {NO_DETECT_HINT}")
    return crop, tuple(box)


def check_sampling(frames, sampling: str = "uniform") -> None:
    """Refuses `frames="auto"` with a sampling other than evenly spaced frames.

    Raises:
        UserError: "every" sampling with `frames="auto"` (auto refines a grid of evenly spaced
            frames; every K-th frame has no such grid).
    """
    if frames == AUTO and sampling != "uniform":
        raise UserError(
            "--frames auto scores evenly spaced frames in stages; it cannot be combined with "
            "--every (pass a number of frames instead)"
        )


def no_face_error(path: str, sampled: int) -> InputError:
    """The error of a video none of whose sampled frames shows a face."""
    return InputError(f"{path}: no face found in any of the {sampled} sampled frames")


def _find_face(cropper, frame, hint, timings) -> tuple[np.ndarray, Box, Box] | None:
    """`(crop, crop_box, face_box)` of the face in `frame`, or None; time into `timings`."""
    began = time.perf_counter()
    found = cropper.detect(frame, hint)
    middle = time.perf_counter()
    timings["detect"] += middle - began
    if found is None:
        return None
    crop, box = cropper.crop_box(frame, found[0])
    timings["crop"] += time.perf_counter() - middle
    return crop, tuple(box), found[0]


def _video_frames(
    path: str, frames, sampling, every_k, timings
) -> Iterator[tuple[int, np.ndarray]]:
    """`iter_frames` with its failures as one-line `InputError`s and its time as "decode"."""
    stream = iter_frames(path, frames, sampling, every=every_k)
    try:
        while True:
            began = time.perf_counter()
            item = next(stream, None)
            timings["decode"] += time.perf_counter() - began
            if item is None:
                return
            yield item
    except VideoError as error:
        raise InputError(str(error)) from None
    except cv2.error as error:
        first = str(error).strip().splitlines()[-1] if str(error).strip() else "cv2.error"
        raise InputError(f"{path}: cannot decode the video ({first[:160]})") from None


def _sampled_frames(path, frames, sampling, every_k, timings) -> Iterator[tuple[int, np.ndarray]]:
    """`_video_frames` for `iter_video_crops` and `iter_video_faces`: the sampling checked
    first, and an `InputError` naming the file when no frame decodes."""
    path = os.fspath(path)
    if sampling not in PREDICT_SAMPLINGS:
        raise ValueError(f"sampling must be one of {PREDICT_SAMPLINGS}, got {sampling!r}")
    if sampling == STRIDED and (every_k is None or every_k < 1):
        raise ValueError("sampling='every' needs every_k >= 1")
    sampled = 0
    for index, frame in _video_frames(path, frames, sampling, every_k, timings):
        sampled += 1
        yield index, frame
    if sampled == 0:
        raise InputError(f"{path}: no frame could be decoded (corrupt or truncated video)")


def iter_video_crops(
    cropper: FaceCropper,
    path: str | os.PathLike,
    frames: int | None = DEFAULT_FRAMES,
    sampling: str = "uniform",
    every_k: int | None = None,
    track: bool = True,
    timings: dict[str, float] | None = None,
) -> Iterator[tuple[int, np.ndarray | None, Box | None]]:
    """`(frame_index, crop, box)` of each sampled frame in turn; crop and box None without a face.

    Args: as `video_crops`.

    Raises:
        InputError: not a readable video or no frame decoded (at the first `next()` or later).
    """
    timings = collections.defaultdict(float) if timings is None else timings
    hint = None  # the last face found, when tracking (`FaceCropper.detect` searches near it)
    for index, frame in _sampled_frames(path, frames, sampling, every_k, timings):
        found = _find_face(cropper, frame, hint, timings)
        if found is None:
            yield index, None, None
            continue
        crop, box, face = found
        hint = face if track else None
        yield index, crop, box


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
        track: start each frame's face search from the last face found (`FaceCropper.detect`'s
            `hint`), instead of a coarse look at the whole frame.
        timings: seconds are added to its "decode", "detect" and "crop" entries.

    Raises:
        InputError: not a readable video, no frame decoded, or no face in any sampled frame.
    """
    crops, indices, boxes, sampled = [], [], [], 0
    for index, crop, box in iter_video_crops(
        cropper, path, frames, sampling, every_k, track, timings
    ):
        sampled += 1
        if crop is not None:
            crops.append(crop)
            indices.append(index)
            boxes.append(box)
    if not crops:
        raise no_face_error(os.fspath(path), sampled)
    return crops, indices, boxes, sampled


def iter_video_faces(
    cropper: FaceCropper,
    path: str | os.PathLike,
    frames: int | None = DEFAULT_FRAMES,
    sampling: str = "uniform",
    every_k: int | None = None,
    track: bool = True,
    timings: dict[str, float] | None = None,
) -> Iterator[tuple[int, list[tuple[np.ndarray, Box, int]]]]:
    """`(frame_index, [(crop, box, identity), ...])` of each sampled frame: every face
    (`FaceCropper.detect_every`: `iter_video_crops`' face first, crop for crop, then the
    others), linked across frames into identities (`tracks.Linker`).

    Args: as `video_crops`.

    Raises:
        InputError: not a readable video or no frame decoded (at the first `next()` or later).
    """
    from md_csd_tf.inference.tracks import Linker

    timings = collections.defaultdict(float) if timings is None else timings
    linker, hint = Linker(), None
    for index, frame in _sampled_frames(path, frames, sampling, every_k, timings):
        began = time.perf_counter()
        found = cropper.detect_every(frame, hint)
        middle = time.perf_counter()
        timings["detect"] += middle - began
        if found and track:
            hint = found[0][0]  # as `iter_video_crops`: the face `detect` found
        ids = linker.add([face for face, _ in found])
        faces = []
        for (face, _), identity in zip(found, ids, strict=True):
            crop, box = cropper.crop_box(frame, face)
            faces.append((crop, tuple(box), identity))
        timings["crop"] += time.perf_counter() - middle
        yield index, faces


class VideoStages:
    """A video for `--frames auto`: its grid frames decoded once, then cropped stage by stage.

    The grid is the `sequential.MAX_FRAMES` evenly spaced frames `frames=32` samples (fewer in a
    shorter video); `sequential.stages` orders them. Frames are kept until their stage is cropped
    (at most 32 decoded frames: ~200 MB at 1080p), so a video is decoded once however many
    stages are scored.

    Args:
        cropper, path, track, timings: as `video_crops`.

    Raises:
        InputError: not a readable video or no frame decoded.
    """

    def __init__(self, cropper: FaceCropper, path, track: bool = True, timings=None):
        from md_csd_tf.inference.sequential import MAX_FRAMES, stages

        self.cropper, self.path, self.track = cropper, os.fspath(path), track
        self.timings = collections.defaultdict(float) if timings is None else timings
        self._frames = list(_video_frames(self.path, MAX_FRAMES, "uniform", None, self.timings))
        if not self._frames:
            raise InputError(f"{self.path}: no frame could be decoded (corrupt or truncated video)")
        self.total = len(self._frames)
        self._stages = stages(self.total)
        self.sampled = 0  # grid frames looked at so far, with or without a face
        self._hint = None

    def more(self) -> bool:
        """Whether a stage is left to crop."""
        return bool(self._stages)

    def next_stage(self) -> list[tuple[int, np.ndarray | None, Box | None]]:
        """`(frame_index, crop, box)` of each frame of the next stage, as `iter_video_crops`."""
        out = []
        for position in self._stages.pop(0):
            index, frame = self._frames[position]
            self._frames[position] = (index, None)  # cropped once: the frame is not needed again
            self.sampled += 1
            found = _find_face(self.cropper, frame, self._hint, self.timings)
            if found is None:
                out.append((index, None, None))
                continue
            crop, box, face = found
            self._hint = face if self.track else None
            out.append((index, crop, box))
        return out


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


@dataclasses.dataclass
class Crop:
    """A `CropStream` event: one face crop of input `item` (`index`: its frame, 0 for an image;
    `face`: its identity in the video, `tracks`, 0 with `faces="largest"`)."""

    item: int
    kind: str
    crop: np.ndarray
    index: int
    box: Box
    face: int = 0


@dataclasses.dataclass
class End:
    """A `CropStream` event: input `item` has handed over all its crops, or for `--frames auto`
    those of its current stage (`last`: no stage is left; `total`: the grid's size)."""

    item: int
    kind: str
    sampled: int
    total: int = 0
    last: bool = True


@dataclasses.dataclass
class Failed:
    """A `CropStream` event: input `item` cannot be scored; crops it handed over are void."""

    item: int
    kind: str
    error: BaseException


AHEAD_BATCHES = 3  # crops ahead of the model: enough to fill the next call while one runs
IDLE = "idle"  # a `CropStream` event: the thread waits (for scores, decisions, or has no input)


class _Closed(Exception):
    """Raised in the stream's thread to abandon its work when the stream is closed."""


class CropStream:
    """Decodes, finds faces and crops every input, in order, in one thread ahead of the model.

    One thread does all of it: dlib's detector is one object per process (`prep.faces`), not known
    to be thread-safe, so only this thread uses it; OpenCV and dlib work outside Python's lock,
    so it runs while TensorFlow scores in the caller's thread. The caller (`batch.score_inputs`)
    reads `events` (`Crop`, `End`, `Failed`, `IDLE`), batches crops of consecutive inputs into
    model calls and answers with `scored`, and for `--frames auto` with `resume` or `drop`.

    Memory is bounded: the thread waits while `ahead` crops are handed over and not yet scored,
    and while `parked` auto videos wait for a decision; each holds up to 32 decoded frames (about
    200 MB at 1080p, 800 MB at 4K), so `--frames auto` holds at most `parked + 1` such videos.

    Args:
        inputs: `(path, kind)` pairs (`batch.collect_inputs`).
        cropper: the face cropper; its crops must be the detector's (`matches`).
        track: as `video_crops`.
        detect: find the face in images (False, `--no-detect`: the image is the crop).
        faces: "largest" (data prep's face of each frame) or "all" (every face of a video's
            frames, each crop tagged with its identity, `iter_video_faces`); images, and videos
            with `frames="auto"`, always give the largest face.
        batch_size: the model's batch (`Detector.batch_size`): the thread stays at most
            `AHEAD_BATCHES` batches of crops handed over and not yet `scored` ahead.
        parked: the most `--frames auto` videos waiting for a decision (4 x 8 first-stage crops
            fill a batch of 32).
        **sampling: `frames` (a count, None for all, or "auto"), `sampling`, `every_k` as
            `video_crops`.

    Attributes:
        events: the `queue.Queue` of events, in the order they happen (an exception when the
            thread itself failed, not one input).
        timings: seconds spent in "decode", "detect" and "crop".
    """

    def __init__(
        self,
        inputs: Sequence[tuple[str, str]],
        cropper: FaceCropper,
        track: bool = True,
        detect: bool = True,
        batch_size: int = 32,
        parked: int = 4,
        faces: str = "largest",
        **sampling,
    ):
        check_sampling(sampling.get("frames"), sampling.get("sampling", "uniform"))
        if faces not in FACES:
            raise ValueError(f"faces must be one of {FACES}, got {faces!r}")
        self.inputs, self.cropper, self.track, self.detect = list(inputs), cropper, track, detect
        self.faces = faces
        self.sampling, self.parked = sampling, max(int(parked), 1)
        self.ahead = AHEAD_BATCHES * max(int(batch_size), 1)
        self.timings: dict[str, float] = collections.defaultdict(float)
        self.events: queue.Queue = queue.Queue()
        self._lock = threading.Condition()
        self._unscored = 0  # crops handed over, not yet scored
        self._videos: dict[int, VideoStages] = {}  # auto videos between stages
        self._resume: collections.deque[int] = collections.deque()
        self._closed = self._idle = False
        self._next = 0
        self._thread = threading.Thread(target=self._run, name="md-csd-crops", daemon=True)

    def start(self) -> CropStream:
        """Starts the thread (once); returns self."""
        if not self._thread.is_alive() and self._thread.ident is None:
            self._thread.start()
        return self

    def matches(
        self, inputs, cropper: FaceCropper, track: bool, detect: bool, faces: str = "largest",
        **sampling,
    ) -> bool:  # fmt: skip
        """Whether this stream crops these inputs as `cropper` and these settings would."""
        return (list(inputs), cropper, track, detect, faces, sampling) == (
            self.inputs, self.cropper, self.track, self.detect, self.faces, self.sampling
        )  # fmt: skip

    def scored(self, count: int) -> None:
        """The caller has scored (or dropped) `count` crops handed over: room for more."""
        with self._lock:
            self._unscored -= count
            self._lock.notify_all()

    def resume(self, item: int) -> None:
        """Crops the next stage of auto video `item` (before any new input)."""
        with self._lock:
            self._resume.append(item)
            self._lock.notify_all()

    def drop(self, item: int) -> None:
        """Auto video `item` is decided: its remaining frames are freed."""
        with self._lock:
            self._videos.pop(item, None)
            self._lock.notify_all()

    def close(self) -> None:
        """Stops the thread (after the frame or `--frames auto` stage in progress) and waits
        for it."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        if self._thread.ident is not None:
            self._thread.join()
        self._videos.clear()

    # -- the thread -----------------------------------------------------------------------------

    def _post(self, event) -> None:
        self._idle = False
        self.events.put(event)

    def _wait(self) -> None:
        """Waits to be notified, saying IDLE first (once) so the caller scores what it holds;
        to be called holding the lock."""
        self._check_closed()
        if not self._idle:
            self._idle = True
            self.events.put(IDLE)
        self._lock.wait()
        self._check_closed()

    def _check_closed(self) -> None:
        """Abandons the thread's work once the stream is closed (read without the lock: a
        frame later is soon enough)."""
        if self._closed:
            raise _Closed

    def _emit(self, event: Crop) -> None:
        with self._lock:
            self._check_closed()
            while self._unscored >= self.ahead:
                self._wait()
            self._unscored += 1
            self._post(event)

    def _job(self) -> tuple[str, int]:
        with self._lock:
            while True:
                self._check_closed()
                if self._resume:
                    return "resume", self._resume.popleft()
                if self._next < len(self.inputs) and len(self._videos) < self.parked:
                    self._next += 1
                    return "input", self._next - 1
                self._wait()

    def _run(self) -> None:
        try:
            while True:
                what, item = self._job()
                if what == "resume":
                    self._guarded(item, "video", self._stage, item)
                else:
                    self._input(item)
        except _Closed:
            return
        except Exception as error:  # noqa: BLE001 - a bug here must not leave the caller waiting
            self.events.put(error)

    def _guarded(self, item: int, kind: str, work, *args) -> None:
        """Runs `work(*args)` for input `item`; its failure becomes a `Failed` event."""
        try:
            work(*args)
        except _Closed:
            raise
        except Exception as error:  # noqa: BLE001 - a bad input fails alone
            with self._lock:
                self._videos.pop(item, None)
            self._post(Failed(item, kind, error))

    def _input(self, item: int) -> None:
        path, kind = self.inputs[item]
        if kind == "missing":
            self._post(Failed(item, kind, FileNotFoundError(f"{path}: no such file or folder")))
            return
        if kind in ("image", "unknown"):
            try:
                crop, box = self._image(path)
            except Exception as error:  # noqa: BLE001 - reported, or tried as a video
                if kind == "image":
                    self._post(Failed(item, kind, error))
                    return
                # No telling extension and not an image (or one without a face): maybe a video.
            else:
                self._emit(Crop(item, "image", crop, 0, box))
                self._post(End(item, "image", 1))
                return
        self._guarded(item, "video", self._video, item, path)

    def _image(self, path: str) -> tuple[np.ndarray, Box]:
        began = time.perf_counter()
        image = read_image(path)
        middle = time.perf_counter()
        self.timings["decode"] += middle - began
        crop, box = image_crop(self.cropper, image, path, self.detect)
        self.timings["detect"] += time.perf_counter() - middle
        return crop, box

    def _video(self, item: int, path: str) -> None:
        if self.sampling.get("frames") == AUTO:
            video = VideoStages(self.cropper, path, self.track, self.timings)
            with self._lock:
                self._videos[item] = video
            self._stage(item)
            return
        options = {k: v for k, v in self.sampling.items() if k in ("frames", "sampling", "every_k")}
        count = sampled = 0
        if self.faces == "all":
            for index, faces in iter_video_faces(
                self.cropper, path, track=self.track, timings=self.timings, **options
            ):
                self._check_closed()
                sampled += 1
                for crop, box, identity in faces:
                    self._emit(Crop(item, "video", crop, index, box, identity))
                    count += 1
            if not count:
                raise no_face_error(path, sampled)
            self._post(End(item, "video", sampled))
            return
        for index, crop, box in iter_video_crops(
            self.cropper, path, track=self.track, timings=self.timings, **options
        ):
            self._check_closed()  # also between faceless frames, which emit nothing
            sampled += 1
            if crop is not None:
                self._emit(Crop(item, "video", crop, index, box))
                count += 1
        if not count:
            raise no_face_error(path, sampled)
        self._post(End(item, "video", sampled))

    def _stage(self, item: int) -> None:
        with self._lock:
            video = self._videos.get(item)
        if video is None:  # dropped meanwhile
            return
        for index, crop, box in video.next_stage():
            if crop is not None:
                self._emit(Crop(item, "video", crop, index, box))
        last = not video.more()
        if last:
            with self._lock:
                self._videos.pop(item, None)
        self._post(End(item, "video", video.sampled, video.total, last))
