"""Scoring videos, images and face crops with a saved MD-CSD model.

The path from a file to a score repeats data preparation and training exactly:

    frames (`prep.video.iter_frames`, as `md-csd prepare` reads them)
    -> dlib face + FF++ 1.3x crop at the crop size the model was trained on (`FaceCropper`,
       as `md-csd prepare` cuts them)
    -> `crops_to_inputs` (the function the training pipeline maps over crops; it resizes to the
       model's side exactly as training did)
    -> the model, in batches of one fixed size -> per-frame fake probability
    -> video score: `evaluation.metrics.video_score` (mean, the paper's video level, or vote).

Batches are padded to `batch_size`, so the scoring `tf.function` is traced once per detector
(tracing a full Xception costs seconds on a CPU; a ragged last batch would trace again).

Example:
    >>> detector = Detector.load("runs/ffpp/best.keras")
    >>> result = detector.predict_video("clip.mp4")
    >>> result.score, result.verdict, result.frame_scores
"""

from __future__ import annotations

import collections
import dataclasses
import os
import time

import cv2
import numpy as np
import tensorflow as tf

from md_csd_tf.data.clips import predict_video_clips
from md_csd_tf.data.inputs import crops_to_inputs, fit_crops
from md_csd_tf.data.pipeline import PipelineConfig
from md_csd_tf.errors import UserError
from md_csd_tf.evaluation.metrics import AGGREGATES, video_score
from md_csd_tf.inference.crops import (  # noqa: F401 - IMAGE_/VIDEO_EXTENSIONS, input_kind:
    DEFAULT_FRAMES,  # re-exported, their home was here
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    InputError,
    input_kind,
    make_cropper,
    video_crops,
)
from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.saving import get_metadata
from md_csd_tf.prep.faces import Box, FaceCropper


@dataclasses.dataclass
class ImageResult:
    """The score of one image.

    Attributes:
        path: the input (or "<array>").
        score: probability that the face is fake.
        label: 1 (fake) when `score > threshold`, else 0 (real).
        box: the crop box `(left, top, right, bottom)` in image pixels; the whole image with
            `detect=False`.
        threshold: the decision threshold used.
    """

    path: str
    score: float
    label: int
    box: Box
    threshold: float = 0.5

    @property
    def verdict(self) -> str:
        return "fake" if self.label else "real"

    @property
    def frames_scored(self) -> int:
        return 1


@dataclasses.dataclass
class VideoResult:
    """The score of one video and of each of its scored frames.

    Attributes:
        path: the video file.
        score: the video's fake score: mean frame probability (`aggregate="mean"`) or the fraction
            of frames with probability above `threshold` (`"vote"`, so `score > 0.5` is a strict
            majority). Same definitions as `md_csd_tf.evaluation.metrics.aggregate_videos`.
        label: 1 (fake) when `score > threshold` (mean) or `score > 0.5` (vote), else 0.
        frame_indices: indices in the video of the frames scored (frames without a face are
            skipped and not listed).
        frame_scores: fake probability of each scored frame.
        boxes: crop box `(left, top, right, bottom)` of each scored frame, in frame pixels.
        frames_sampled: frames decoded for scoring, with or without a face.
        aggregate, threshold: how `score` and `label` were computed.
    """

    path: str
    score: float
    label: int
    frame_indices: list[int]
    frame_scores: np.ndarray
    boxes: list[Box]
    frames_sampled: int
    aggregate: str = "mean"
    threshold: float = 0.5

    @property
    def verdict(self) -> str:
        return "fake" if self.label else "real"

    @property
    def frames_scored(self) -> int:
        return len(self.frame_indices)


def _to_rgb_uint8(image: np.ndarray, channel_order: str) -> np.ndarray:
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
        return _to_rgb_uint8(image, order)
    except ValueError as error:
        raise InputError(f"{path}: {error}") from None


def _describe(settings: dict) -> str:
    names = ("crops", "pick", "scale", "image_size", "detect_max_side")
    return ", ".join(f"{name} {settings[name]}" for name in names if name in settings)


class Detector:
    """A loaded detector of the registry plus the face cropper, scoring crops in fixed-size batches.

    Args:
        model: a built or loaded detector of the registry (`md_csd_tf.build_detector`).
        batch_size: crops per model call; the last batch is padded, so the model is traced once.
        cropper: the `FaceCropper` to find faces; by default the one that cut the model's
            training crops (`inference.crops.make_cropper`): `md-csd prepare`'s settings as the
            trainer stored them in the model (box scale, face pick rule, `--crops` mode), or,
            for a model without them, data prep's defaults (dlib, largest face, 1.3x, FF++
            boxes, a coarse first look on a copy downscaled to at most 640 px).
        detect_max_side: the default cropper's `detect_max_side`: "model" (the one the model's
            crops were detected at with `prepare --crops fast`, else 640), an int or None (full
            size); one that changes the model's boxes is said in `crop_note`.
        track: in a video, start each frame's face search from the face size found in the
            previous sampled frame (`FaceCropper.detect`'s `hint`) instead of a coarse look at
            the whole frame: ~1.4x less detection time, crop boxes within IoU 0.976 of
            per-frame detection (175 of 192 identical on the six videos of
            `experiments/benchmark_inference.py`; `tests/test_inference.py` checks >= 0.9).

        threshold: the decision threshold on the fake probability; None: the one calibrated
            on the model's validation split and stored in its file (`md-csd train`), else 0.5.

    Attributes:
        threshold / threshold_source: the threshold verdicts use and where it comes from
            ("given", "calibrated: eer on val", "default").
        crop_settings: how `md-csd prepare` cut the model's training crops (its metadata's
            "crops"), or None for a model without them.
        crop_note: a line saying that the faces are not cut as the training crops were (a given
            `cropper` or `detect_max_side` differs from the model's settings), else None.
        timings: seconds spent so far in "decode", "detect" (face detection), "crop" (cutting
            and resizing the crop), "transform" (`crops_to_inputs`), "model" and "trace"
            (`warm_up`); for benchmarks.
    """

    def __init__(
        self,
        model,
        batch_size: int = 32,
        cropper: FaceCropper | None = None,
        detect_max_side: int | None | str = "model",
        track: bool = True,
        threshold: float | None = None,
    ):
        if not isinstance(model, DetectorModel):
            raise UserError(
                f"{type(model).__name__} is not an md-csd-tf model (not a DetectorModel); "
                "use a model built by md_csd_tf.build_detector and saved by training."
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.metadata = get_metadata(model)
        if threshold is not None:
            self.threshold, self.threshold_source = float(threshold), "given"
        elif "threshold" in self.metadata:
            rule = self.metadata.get("threshold_rule", "?")
            split = self.metadata.get("threshold_split", "val")
            self.threshold = float(self.metadata["threshold"])
            self.threshold_source = f"calibrated: {rule} on {split}"
        else:
            self.threshold, self.threshold_source = 0.5, "default"
        self.batch_size = int(batch_size)
        self.image_size = int(model.image_size)
        # What the model reads (side, transform, branches, clips or single crops), in one place.
        self.pipeline = pipeline = PipelineConfig.for_model(model, batch_size=self.batch_size)
        # Faces are cut at the size of the crops the model was trained on (data preparation's
        # --image-size, recorded in the model) and then resized like training crops were.
        crop_size = int(model.crop_size or self.image_size)
        self.crop_settings = self.metadata.get("crops")
        self.cropper, self.crop_note = make_cropper(crop_size, self.crop_settings, detect_max_side)
        if cropper is not None:
            if self.crop_settings and cropper != self.cropper:
                self.crop_note = (
                    "the given face cropper replaces the crop settings the model was trained "
                    f"with ({_describe(self.crop_settings)})"
                )
            self.cropper = cropper
        self.track = bool(track)
        self.timings: dict[str, float] = collections.defaultdict(float)
        spec = tf.TensorSpec((self.batch_size, self.image_size, self.image_size, 3), tf.uint8)
        # Two functions rather than one so benchmarks can time the transform apart from the
        # network; both have a fixed input signature and are traced once.
        self._inputs = tf.function(
            lambda crops: crops_to_inputs(
                crops, pipeline.transform, pipeline.branches, None, pipeline.spectrum_in_model
            ),
            input_signature=[spec],
        )
        self._forward = tf.function(lambda inputs: model(inputs, training=False)[:, 0])

    def use_runtime(self, runtime) -> None:
        """Scores crops with a serving runtime (`md_csd_tf.inference.runtime`) instead of Keras.

        The runtime model holds the crop-to-input preprocessing, so its time counts as "model"
        and "transform" stays 0; faces, frames and batches are unchanged.
        """
        self._inputs = lambda crops: {"crops": crops}
        self._forward = lambda inputs: tf.constant(runtime(np.asarray(inputs["crops"])))

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs) -> Detector:
        """Loads a `.keras` model saved by md-csd-tf (safe mode: no code from the file runs), or
        the folder of an ensemble run (its members' vote).

        Raises:
            UserError: missing, corrupt or foreign file, with a one-line message naming it.
        """
        from md_csd_tf.models.saving import load_detector

        return cls(load_detector(path), **kwargs)

    @classmethod
    def pretrained(cls, name: str | None = None, weights: str | None = None, **kwargs) -> Detector:
        """A detector that scores with no training and no download.

        With no arguments: the model md-csd-tf ships (`models.pretrained.DEFAULT`, trained by
        the project on real faces only; docs/pretrained-model.md). Otherwise a registered
        detector with published or shipped weights (`md-csd detectors` lists them), e.g.
        `Detector.pretrained("meso4", "mesonet-df")`.
        """
        from md_csd_tf.models.registry import load_published

        return cls(load_published(name, weights), **kwargs)

    @property
    def recipe(self):
        """The registry recipe of the model (its video aggregation, input size, source)."""
        from md_csd_tf.models.registry import recipe_of

        return recipe_of(self.model)

    # -- crops ----------------------------------------------------------------------------------

    def predict_crops(self, crops) -> np.ndarray:
        """Fake probabilities of face crops.

        Args:
            crops: a sequence or array `(N, H, W, 3)` of RGB face crops (uint8 0..255, as
                `md-csd prepare` writes them; grayscale, RGBA, 16-bit and float are converted);
                any size, resized to the model's as training resized them (`fit_crops`).

        Returns:
            float32 array `(N,)`.
        """
        if self.pipeline.clip_frames:
            raise UserError(
                f"{self.model.detector} scores clips of {self.pipeline.clip_frames} consecutive "
                "frames, not single crops or images: pass a video."
            )
        crops = fit_crops([_to_rgb_uint8(c, "rgb") for c in crops], self.image_size)
        scores = []
        for start in range(0, len(crops), self.batch_size):
            chunk = np.stack(crops[start : start + self.batch_size])
            count = len(chunk)
            if count < self.batch_size:
                pad = np.zeros((self.batch_size - count, *chunk.shape[1:]), np.uint8)
                chunk = np.concatenate([chunk, pad])
            began = time.perf_counter()
            inputs = self._inputs(tf.constant(chunk))
            inputs = {k: v.numpy() for k, v in inputs.items()}  # materialise for fair timing
            middle = time.perf_counter()
            probs = self._forward(inputs).numpy()[:count]
            self.timings["transform"] += middle - began
            self.timings["model"] += time.perf_counter() - middle
            scores.append(probs)
        return np.concatenate(scores).astype(np.float32) if scores else np.zeros(0, np.float32)

    def predict_clip_crops(self, crops) -> np.ndarray:
        """A clip detector's scores of consecutive crops of one video: the crops cut into runs
        of T (the last run ending at the last crop; fewer than T crops are padded with the
        last), each run scored, each crop given the mean of its runs' scores
        (`data.clips.predict_video_clips`, the rule evaluation scores clips by).

        Args:
            crops: `(N, H, W, 3)` consecutive face crops of one video, as `predict_crops`.

        Returns:
            float32 array `(N,)`; their mean is the video's score at `aggregate="mean"`.
        """
        crops = fit_crops([_to_rgb_uint8(c, "rgb") for c in crops], self.image_size)
        return predict_video_clips(self.model, crops, self.batch_size).astype(np.float32)

    # -- images ---------------------------------------------------------------------------------

    def predict_image(
        self, image, detect: bool = True, threshold: float | None = None
    ) -> ImageResult:
        """Scores the face in one image.

        Args:
            image: a file path, or an array (RGB; grayscale, RGBA, 16-bit and float accepted).
            detect: find and crop the face as data prep does; False when the image is already a
                face crop (it is then only resized to the model's size).
            threshold: decision threshold on the fake probability (None: `self.threshold`).

        Raises:
            InputError: unreadable image, or no face found.
        """
        threshold = self.threshold if threshold is None else float(threshold)
        name = "<array>"
        if isinstance(image, (str, os.PathLike)):
            name = os.fspath(image)
            began = time.perf_counter()
            image = read_image(name)
            self.timings["decode"] += time.perf_counter() - began
        else:
            try:
                image = _to_rgb_uint8(image, "rgb")
            except ValueError as error:
                raise InputError(f"{name}: {error}") from None
        if detect:
            began = time.perf_counter()
            crop, box, _ = self.cropper.crop(image)
            self.timings["detect"] += time.perf_counter() - began
            if crop is None:
                raise InputError(
                    f"{name}: no face found (dlib); pass --no-detect if it is already a face crop"
                )
        else:
            crop, box = image, (0, 0, image.shape[1], image.shape[0])
        score = float(self.predict_crops([crop])[0])
        return ImageResult(name, score, int(score > threshold), tuple(box), threshold)

    # -- videos ---------------------------------------------------------------------------------

    def video_crops(
        self,
        path: str | os.PathLike,
        frames: int | None = DEFAULT_FRAMES,
        sampling: str = "uniform",
        every_k: int | None = None,
    ) -> tuple[list[np.ndarray], list[int], list[Box], int]:
        """Face crops of a video's sampled frames: `(crops, frame_indices, boxes, sampled)`
        (`md_csd_tf.inference.crops.video_crops` with this detector's cropper)."""
        return video_crops(self.cropper, path, frames, sampling, every_k, self.track, self.timings)

    def warm_up(self) -> None:
        """Traces the scoring functions now (seconds for a full Xception) with a padded batch
        of zeros: `score_inputs` does it while the first video is being cropped."""
        if self.pipeline.clip_frames:  # clips are traced on the first video
            return
        before = {stage: self.timings[stage] for stage in ("transform", "model")}
        began = time.perf_counter()
        self.predict_crops(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))
        self.timings.update(before)  # counted as "trace", not as scoring
        self.timings["trace"] += time.perf_counter() - began

    def predict_video(
        self,
        path: str | os.PathLike,
        frames: int | None = DEFAULT_FRAMES,
        sampling: str = "uniform",
        every_k: int | None = None,
        aggregate: str = "mean",
        threshold: float | None = None,
        prepared=None,
    ) -> VideoResult:
        """Scores a video: sample frames, crop the face in each, score, aggregate.

        Args:
            path: the video file.
            frames: "uniform": number of evenly spaced frames (None: all); "every": an optional
                cap on the number of frames taken.
            sampling: "uniform" (spread over the whole video) or "every" (every `every_k`-th
                frame from the first).
            every_k: the stride for "every".
            aggregate: "mean" (the paper's video level) or "vote" (majority of frame verdicts).
            threshold: decision threshold on the fake probability of a frame ("vote") or of the
                video ("mean"); None: `self.threshold`.
            prepared: a `concurrent.futures.Future` of `video_crops(path, frames, sampling,
                every_k)` started ahead (`batch.score_inputs` decodes and crops the next video
                while the model scores this one); its errors are raised here.

        Raises:
            InputError: not a readable video, no frame decoded, or no face in any sampled frame.
        """
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        threshold = self.threshold if threshold is None else float(threshold)
        if prepared is None:
            crops, indices, boxes, sampled = self.video_crops(path, frames, sampling, every_k)
        else:
            crops, indices, boxes, sampled = prepared.result()
        if self.pipeline.clip_frames:  # a clip detector scores runs of T crops
            scores = self.predict_clip_crops(crops)
        else:
            scores = self.predict_crops(crops)
        score = video_score(scores, aggregate, threshold)
        # A vote score is a fraction of frames: "fake" means more than half voted fake.
        cut = 0.5 if aggregate == "vote" else threshold
        return VideoResult(
            path=os.fspath(path),
            score=score,
            label=int(score > cut),
            frame_indices=indices,
            frame_scores=scores,
            boxes=boxes,
            frames_sampled=sampled,
            aggregate=aggregate,
            threshold=threshold,
        )
