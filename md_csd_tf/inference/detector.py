"""Scoring videos, images and face crops with a saved MD-CSD model.

The path from a file to a score repeats data preparation and training exactly:

    frames (`prep.video.iter_frames`, as `md-csd prepare` reads them)
    -> dlib face + FF++ 1.3x crop at the crop size the model was trained on (`FaceCropper`,
       as `md-csd prepare` cuts them)
    -> `crops_to_inputs` (the function the training pipeline maps over crops; it resizes to the
       model's side exactly as training did)
    -> the model, in batches of up to `batch_size` crops -> per-frame fake probability
    -> video score: `evaluation.metrics.video_score` (mean, the paper's video level, or vote).

Batches are not padded: the scoring `tf.function`s leave the batch dimension open (an input
signature with batch None), so they are traced once per detector and a batch of 5 costs 5 crops'
work, not 32 (`--no-detect` on a folder of 48 images used to cost 48 padded batches).

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

import numpy as np
import tensorflow as tf

from md_csd_tf.data.clips import predict_video_clips
from md_csd_tf.data.inputs import crops_to_inputs, fit_crops
from md_csd_tf.data.pipeline import PipelineConfig
from md_csd_tf.errors import UserError
from md_csd_tf.evaluation.metrics import AGGREGATES, video_score

# IMAGE_/VIDEO_EXTENSIONS, input_kind, read_image: re-exported, their home was here.
from md_csd_tf.inference.crops import (  # noqa: F401
    AUTO,
    DEFAULT_FRAMES,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    InputError,
    VideoStages,
    check_sampling,
    image_crop,
    input_kind,
    make_cropper,
    no_face_error,
    read_image,
    to_rgb_uint8,
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


def _describe(settings: dict) -> str:
    names = ("crops", "pick", "scale", "image_size", "detect_max_side")
    return ", ".join(f"{name} {settings[name]}" for name in names if name in settings)


class Detector:
    """A loaded detector of the registry plus the face cropper, scoring crops in batches.

    Args:
        model: a built or loaded detector of the registry (`md_csd_tf.build_detector`).
        batch_size: the most crops per model call (a smaller last batch is not padded).
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
        model_calls: forward calls on single crops so far (Keras or runtime; `warm_up`'s and
            a clip detector's calls, `predict_clip_crops`, are not counted).
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
        self.model_calls = 0
        self._runtime = None
        # Two functions rather than one so benchmarks can time the transform apart from the
        # network. Both leave the batch open (signature batch None), so each is traced once and
        # takes any batch unpadded. Against one fixed-shape function per size (a ragged tail cut
        # into 16/8/4/2/1 calls), on the 299 px MD-CSD in one process, A-B-A, on 2 cores at load
        # 14-21: batch 32 x0.97-1.03 (poly 0.177 and 0.189 img/s around fixed 0.184), a batch
        # of 19 inside the noise (poly 0.148 between fixed 0.249 and 0.118 as the load rose);
        # so no faster shape to buy with 6 traces, and one call per ragged batch instead of 3.
        spec = tf.TensorSpec((None, self.image_size, self.image_size, 3), tf.uint8)
        self._inputs = tf.function(
            lambda crops: crops_to_inputs(
                crops, pipeline.transform, pipeline.branches, None, pipeline.spectrum_in_model
            ),
            input_signature=[spec],
        )
        self._forward = None  # its signature is `_inputs`' output: built at the first batch

    def use_runtime(self, runtime) -> None:
        """Scores crops with a serving runtime (`md_csd_tf.inference.runtime`) instead of Keras.

        Args:
            runtime: a callable taking uint8 crops `(N, H, W, 3)` at the model's side (any N up
                to `batch_size`, not padded) and returning `(N,)` fake probabilities. It holds
                the crop-to-input preprocessing, so its time counts as "model" and "transform"
                stays 0; faces, frames and batches are unchanged.
        """
        self._runtime = runtime

    def _score_batch(self, crops: np.ndarray) -> np.ndarray:
        """One model call: uint8 crops `(N, side, side, 3)` to `(N,)` float32 probabilities."""
        began = time.perf_counter()
        if self._runtime is not None:
            probs = np.asarray(self._runtime(crops), np.float32).reshape(len(crops))
            middle = began
        else:
            inputs = self._inputs(tf.constant(crops))
            inputs = {k: v.numpy() for k, v in inputs.items()}  # materialise for fair timing
            middle = time.perf_counter()
            if self._forward is None:
                model = self.model
                signature = {
                    k: tf.TensorSpec((None, *v.shape[1:]), v.dtype) for k, v in inputs.items()
                }
                self._forward = tf.function(
                    lambda inputs: model(inputs, training=False)[:, 0], input_signature=[signature]
                )
            probs = self._forward(inputs).numpy()
        self.model_calls += 1
        self.timings["transform"] += middle - began
        self.timings["model"] += time.perf_counter() - middle
        return probs.astype(np.float32)

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
            float32 array `(N,)`, in `ceil(N / batch_size)` model calls.
        """
        if self.pipeline.clip_frames:
            raise UserError(
                f"{self.model.detector} scores clips of {self.pipeline.clip_frames} consecutive "
                "frames, not single crops or images: pass a video."
            )
        crops = fit_crops([to_rgb_uint8(c, "rgb") for c in crops], self.image_size)
        scores = [
            self._score_batch(crops[start : start + self.batch_size])
            for start in range(0, len(crops), self.batch_size)
        ]
        return np.concatenate(scores) if scores else np.zeros(0, np.float32)

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
        crops = fit_crops([to_rgb_uint8(c, "rgb") for c in crops], self.image_size)
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
                image = to_rgb_uint8(image, "rgb")
            except ValueError as error:
                raise InputError(f"{name}: {error}") from None
        began = time.perf_counter()
        crop, box = image_crop(self.cropper, image, name, detect)
        self.timings["detect"] += time.perf_counter() - began
        return self.image_result(name, float(self.predict_crops([crop])[0]), box, threshold)

    def image_result(self, name: str, score: float, box: Box, threshold: float) -> ImageResult:
        """The `ImageResult` of an image's crop score (verdict at `threshold`)."""
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
        """Traces the scoring functions now (seconds for a full Xception) with one crop of
        zeros: `score_inputs` does it while the first inputs are being cropped. Its time counts
        as "trace", and its call is not counted in `model_calls`."""
        if self.pipeline.clip_frames:  # clips are traced on the first video
            return
        before = {stage: self.timings[stage] for stage in ("transform", "model")}
        calls = self.model_calls
        began = time.perf_counter()
        self.predict_crops(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))
        self.timings.update(before)  # counted as "trace", not as scoring
        self.timings["trace"] += time.perf_counter() - began
        self.model_calls = calls

    def predict_video(
        self,
        path: str | os.PathLike,
        frames: int | str | None = DEFAULT_FRAMES,
        sampling: str = "uniform",
        every_k: int | None = None,
        aggregate: str = "mean",
        threshold: float | None = None,
    ) -> VideoResult:
        """Scores a video: sample frames, crop the face in each, score, aggregate.

        Args:
            path: the video file.
            frames: "uniform": number of evenly spaced frames (None: all), or "auto": the 32 of
                `frames=32`, decoded once and scored stage by stage (`inference.sequential`)
                until the scores so far decide the verdict; "every": an optional cap on the
                number of frames taken.
            sampling: "uniform" (spread over the whole video) or "every" (every `every_k`-th
                frame from the first).
            every_k: the stride for "every".
            aggregate: "mean" (the paper's video level) or "vote" (majority of frame verdicts).
            threshold: decision threshold on the fake probability of a frame ("vote") or of the
                video ("mean"); None: `self.threshold`.

        Raises:
            InputError: not a readable video, no frame decoded, or no face in any sampled frame.
            UserError: `frames="auto"` with "every" sampling or a clip detector.
        """
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        threshold = self.threshold if threshold is None else float(threshold)
        if frames == AUTO:
            return self._predict_video_auto(path, sampling, aggregate, threshold)
        crops, indices, boxes, sampled = self.video_crops(path, frames, sampling, every_k)
        if self.pipeline.clip_frames:  # a clip detector scores runs of T crops
            scores = self.predict_clip_crops(crops)
        else:
            scores = self.predict_crops(crops)
        return self.video_result(path, scores, indices, boxes, sampled, aggregate, threshold)

    def _predict_video_auto(self, path, sampling, aggregate, threshold) -> VideoResult:
        from md_csd_tf.inference.sequential import should_stop

        self.check_auto(sampling)
        video = VideoStages(self.cropper, path, self.track, self.timings)
        found, scores = [], []
        while video.more():
            stage = [(i, c, b) for i, c, b in video.next_stage() if c is not None]
            if stage:
                scores.extend(self.predict_crops([crop for _, crop, _ in stage]))
                found.extend(stage)
            if should_stop(scores, threshold, aggregate, video.total):
                break
        if not found:
            raise no_face_error(os.fspath(path), video.sampled)
        order = np.argsort([index for index, _, _ in found], kind="stable")
        return self.video_result(
            path,
            np.asarray(scores, np.float32)[order],
            [found[k][0] for k in order],
            [found[k][2] for k in order],
            video.sampled,
            aggregate,
            threshold,
        )

    def check_auto(self, sampling: str = "uniform") -> None:
        """Refuses `frames="auto"` where it cannot apply.

        Raises:
            UserError: "every" sampling (`crops.check_sampling`), or a clip detector (its
                scores are of runs of consecutive frames, not of frames one by one).
        """
        check_sampling(AUTO, sampling)
        if self.pipeline.clip_frames:
            raise UserError(
                f"--frames auto scores frames one by one; {self.model.detector} scores clips of "
                f"{self.pipeline.clip_frames} consecutive frames: pass a number of frames"
            )

    def video_result(
        self, path, scores, indices, boxes, sampled: int, aggregate: str, threshold: float
    ) -> VideoResult:
        """The `VideoResult` of a video's frame scores: the video score (`video_score`) and
        its verdict (at `threshold`, or a strict majority for "vote")."""
        scores = np.asarray(scores, np.float32)
        score = video_score(scores, aggregate, threshold)
        # A vote score is a fraction of frames: "fake" means more than half voted fake.
        cut = 0.5 if aggregate == "vote" else threshold
        return VideoResult(
            path=os.fspath(path),
            score=score,
            label=int(score > cut),
            frame_indices=list(indices),
            frame_scores=scores,
            boxes=list(boxes),
            frames_sampled=int(sampled),
            aggregate=aggregate,
            threshold=threshold,
        )
