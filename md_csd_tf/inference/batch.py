"""Scoring many inputs: expand folders, score each input, keep going past bad ones, save a table.

One bad file (a text file named .mp4, a truncated video, a photo without a face) must not cost
the scores of the other thousand; it becomes a row with an error message naming it, and the
caller's exit status says that something failed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from md_csd_tf.files import atomic_write_text
from md_csd_tf.inference.crops import (
    AUTO,
    FACES,
    IDLE,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    Crop,
    CropStream,
    End,
    Failed,
    input_kind,
    no_face_error,
)

if TYPE_CHECKING:  # TensorFlow is imported with the model, not to list inputs
    from md_csd_tf.inference.detector import Detector

COLUMNS = (
    "input", "kind", "frames_scored", "fake_probability", "verdict", "error", "faces", "decided_by",
)  # fmt: skip


@dataclasses.dataclass
class Identity:
    """One face followed across a video's sampled frames (`tracks.link_faces`), with its score.

    An image has one, with `frame_indices == [0]`; `md-csd predict --faces largest` gives a
    video one (the largest face of each frame, whoever it is).
    """

    id: int  # 0, 1, ... by first appearance
    frame_indices: list[int] = dataclasses.field(default_factory=list)
    frame_scores: list[float] = dataclasses.field(default_factory=list)
    boxes: list[tuple[int, int, int, int]] = dataclasses.field(default_factory=list)  # crop boxes
    fake_probability: float | None = None  # the detector's aggregate over its frames
    verdict: str = ""  # "fake" | "real"
    counted: bool = True  # has enough frames to count toward the video's verdict


@dataclasses.dataclass
class Row:
    """One input's line of the results table; `error` is set (and the score None) on failure."""

    input: str
    kind: str
    frames_scored: int = 0
    fake_probability: float | None = None
    verdict: str = ""
    error: str = ""
    frame_indices: list[int] = dataclasses.field(default_factory=list)
    frame_scores: list[float] = dataclasses.field(default_factory=list)
    frames_sampled: int = 0  # frames decoded; more than frames_scored when some had no face
    identities: list[Identity] = dataclasses.field(default_factory=list)
    decided_by: int | None = None  # id of the identity whose score and verdict are the row's
    boxes: list[tuple[int, int, int, int]] = dataclasses.field(default_factory=list)  # per frame

    @property
    def faces(self) -> int:
        """How many identities (faces followed across frames) the input holds."""
        return len(self.identities)

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def face_note(self) -> str:
        """A line saying how few frames carry the score when some sampled frames had no face
        (or, with several faces, did not show the face that decided)."""
        if not self.ok or self.frames_sampled <= self.frames_scored:
            return ""
        if self.faces > 1:
            return (
                f"{self.input}: face {self.decided_by} (of {self.faces}), which decides, is in "
                f"{self.frames_scored} of {self.frames_sampled} sampled frames; its score rests "
                "on those"
            )
        return (
            f"{self.input}: only {self.frames_scored} of {self.frames_sampled} sampled frames "
            "had a face; the score rests on those"
        )


def collect_inputs(paths: Iterable[str | os.PathLike]) -> list[tuple[str, str]]:
    """`(path, kind)` for each input; folders are searched recursively for images and videos.

    A missing path is kept with kind "missing" so that it is reported, not silently dropped.
    Hidden files (partial downloads, `.DS_Store`) inside folders are skipped.
    """
    found = []
    for raw in paths:
        path = os.fspath(raw)
        if os.path.isdir(path):
            media = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
            files = sorted(
                p
                for p in Path(path).rglob("*")
                if p.is_file()
                and p.suffix.lower() in media
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            found.extend((str(p), input_kind(p)) for p in files)
        elif os.path.exists(path):
            found.append((path, input_kind(path)))
        else:
            found.append((path, "missing"))
    return found


def _one_line(error: BaseException, path: str) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if path in text else f"{path}: {text}"


def _row(path: str, kind: str, result) -> Row:
    """The table row of an `ImageResult` or a `VideoResult`."""
    frames = [int(i) for i in getattr(result, "frame_indices", [0])]
    scores = [float(s) for s in getattr(result, "frame_scores", [result.score])]
    boxes = getattr(result, "boxes", None)  # a VideoResult's; an ImageResult has one box
    if boxes is None:
        boxes = [result.box] if getattr(result, "box", None) is not None else []
    boxes = [_box(b) for b in boxes]
    face = Identity(0, frames, scores, boxes, float(result.score), result.verdict, counted=True)
    return Row(
        path,
        kind,
        frames_scored=result.frames_scored,
        fake_probability=float(result.score),
        verdict=result.verdict,
        frame_indices=list(frames),
        frame_scores=list(scores),
        frames_sampled=int(getattr(result, "frames_sampled", result.frames_scored)),
        identities=[face],
        decided_by=0,
        boxes=list(boxes),
    )


def _box(box) -> tuple[int, int, int, int]:
    """A crop box as four plain ints (JSON-ready; detectors may hand NumPy integers)."""
    return tuple(int(v) for v in box)


def score_input(detector: Detector, path: str, kind: str, **options) -> Row:
    """Scores one input alone, with its own model calls; any failure becomes `Row.error` (one
    line naming the input). `score_inputs(prefetch=False)` scores inputs this way."""
    if options.get("faces", "largest") == "all" and kind != "image":
        # Every face of a video is linked and scored by the stream's path, for one input too.
        return score_inputs(detector, [(path, kind)], progress=False, **options)[0]
    options.pop("faces", None)
    detect = options.pop("detect", True)
    threshold = options.get("threshold")  # None: the detector's own (calibrated or 0.5)
    try:
        if kind == "missing":
            raise FileNotFoundError(f"{path}: no such file or folder")
        if kind == "unknown":
            # No telling extension: an image reader fails fast, so try it before the video one.
            try:
                kind = "image"
                result = detector.predict_image(path, detect=detect, threshold=threshold)
            except Exception:
                kind = "video"
                result = detector.predict_video(path, **options)
        elif kind == "image":
            result = detector.predict_image(path, detect=detect, threshold=threshold)
        else:
            result = detector.predict_video(path, **options)
    except Exception as error:  # noqa: BLE001 - any failure of one input is reported, not raised
        return Row(path, kind, error=_one_line(error, path))
    return _row(path, kind, result)


@dataclasses.dataclass
class _Scoring:
    """What `score_inputs` holds of an input between its first crop and its row."""

    crops: list = dataclasses.field(default_factory=list)  # a clip detector's, until the end
    indices: list[int] = dataclasses.field(default_factory=list)
    boxes: list = dataclasses.field(default_factory=list)
    faces: list[int] = dataclasses.field(default_factory=list)  # identity of each crop
    scores: list[float] = dataclasses.field(default_factory=list)
    waiting: int = 0  # crops in the batch being filled, not scored yet
    end: End | None = None  # the last `End` event, when all crops (of the stage) are handed over


def score_inputs(
    detector: Detector,
    inputs: Sequence[tuple[str, str]],
    progress: bool = True,
    prefetch: bool | CropStream = True,
    **options,
) -> list[Row]:
    """Scores every input with a tqdm progress bar (on stderr); never raises per input.

    With `prefetch` (the default), one thread decodes, detects and crops every input in order
    (`crops.CropStream`) while this one scores: crops of consecutive inputs (the tail of a video
    and the head of the next, a folder of images) share model calls of up to
    `detector.batch_size` crops, so N crops cost `ceil(N / batch_size)` calls, not one per input
    (with `frames="auto"` a little more: a video waiting for its decision is scored in a
    partial batch when nothing else is ready).
    OpenCV, dlib and TensorFlow work outside Python's lock, so the two threads overlap; scores
    do not depend on which crops share a call, and the rows are those of `prefetch=False`. A
    clip detector scores each video's crops alone (`Detector.predict_clip_crops`).

    With `frames="auto"`, a video waiting for its stage's scores does not hold the thread: it
    goes on with the next inputs, and the video's next stage is cropped once its scores say go on
    (`sequential.should_stop`).

    Args:
        detector: the loaded model.
        inputs: `(path, kind)` pairs from `collect_inputs`.
        progress: show the bar, by finished input (it hides itself for a single input).
        prefetch: True: as above; False: each input alone, in turn (`score_input`); a
            `CropStream` started before the model was loaded (`md-csd predict`) is taken over
            when its crops are this detector's, else closed and replaced.
        **options: `predict_video` options, plus `detect` for images and `faces`: "largest"
            (the default: the largest face of each frame, data prep's and the FF++ rule) or
            "all" (every face of a video, linked into identities, `tracks`; the video is fake
            when any identity seen in enough frames is, `_video_row`). Images, `frames="auto"`
            and clip detectors keep the largest face.

    Raises:
        UserError: `frames="auto"` where it cannot apply (`Detector.check_auto`).
    """
    from tqdm import tqdm

    options = dict(options)
    if options.get("faces", "largest") not in FACES:
        raise ValueError(f"faces must be one of {FACES}, got {options['faces']!r}")
    if detector.pipeline.clip_frames or options.get("frames") == AUTO:
        # A clip is a run of one face's frames; auto's stages decide on one face's scores.
        options["faces"] = "largest"
    detect = options.get("detect", True)
    sampling = {k: options[k] for k in ("frames", "sampling", "every_k") if k in options}
    if options.get("frames") == AUTO:
        detector.check_auto(options.get("sampling", "uniform"))
    bar = tqdm(
        total=len(inputs), unit="input", disable=not progress or len(inputs) < 2, leave=False
    )
    try:
        if not prefetch:
            rows = []
            for path, kind in inputs:
                bar.set_postfix_str(Path(path).name[-30:], refresh=False)
                rows.append(score_input(detector, path, kind, **options))
                bar.update()
            return rows
        stream = prefetch if isinstance(prefetch, CropStream) else None
        faces = options.get("faces", "largest")
        if stream is not None and not stream.matches(
            inputs, detector.cropper, detector.track, detect, faces, **sampling
        ):
            stream.close()
            stream = None
        if stream is None:
            stream = CropStream(
                inputs, detector.cropper, detector.track, detect,
                batch_size=detector.batch_size, faces=faces, **sampling,
            )  # fmt: skip
        stream.start()
        try:
            detector.warm_up()  # traced while the first inputs are cropped
            return _score_stream(detector, inputs, stream, bar, options)
        finally:
            stream.close()
            for stage, seconds in stream.timings.items():
                detector.timings[stage] += seconds
    finally:
        bar.close()


def _score_stream(detector: Detector, inputs, stream: CropStream, bar, options: dict) -> list[Row]:
    """`score_inputs`' loop: batches the stream's crops into model calls, rows in input order."""
    from md_csd_tf.inference.sequential import should_stop

    aggregate = options.get("aggregate", "mean")
    threshold = options.get("threshold")
    threshold = detector.threshold if threshold is None else float(threshold)
    clips = bool(detector.pipeline.clip_frames)
    state: dict[int, _Scoring] = {}
    rows: list[Row | None] = [None] * len(inputs)
    batch: list[tuple[int, np.ndarray]] = []  # (input, crop) to score in the next call

    remaining = len(inputs)

    def finish(item: int, row: Row) -> None:
        nonlocal remaining
        rows[item], remaining = row, remaining - 1
        state.pop(item, None)
        bar.set_postfix_str(Path(row.input).name[-30:], refresh=False)
        bar.update()

    def fail(item: int, kind: str, error: BaseException) -> None:
        dropped = [entry for entry in batch if entry[0] == item]
        if dropped:
            batch[:] = [entry for entry in batch if entry[0] != item]
            stream.scored(len(dropped))
        stream.drop(item)  # an auto video's frames, if it is between stages
        finish(item, Row(inputs[item][0], kind, error=_one_line(error, inputs[item][0])))

    def settle(item: int) -> None:
        """Makes the row of `item` once all its crops handed over are scored."""
        scoring = state.get(item)
        if scoring is None or scoring.end is None or scoring.waiting:
            return
        end, path = scoring.end, inputs[item][0]
        if end.kind == "image":
            result = detector.image_result(path, scoring.scores[0], scoring.boxes[0], threshold)
            finish(item, _row(path, "image", result))
            return
        if clips:
            try:
                scoring.scores = list(detector.predict_clip_crops(scoring.crops))
            except Exception as error:  # noqa: BLE001 - one input's failure
                fail(item, "video", error)
                return
        elif not end.last and not should_stop(scoring.scores, threshold, aggregate, end.total):
            scoring.end = None
            stream.resume(item)  # its next stage, before any new input
            return
        if not end.last:
            stream.drop(item)
        if not scoring.scores:
            fail(item, "video", no_face_error(path, end.sampled))
            return
        if options.get("faces") == "all":
            finish(item, _video_row(detector, path, scoring, end.sampled, aggregate, threshold))
            return
        order = np.argsort(scoring.indices, kind="stable")  # auto stages are not in frame order
        result = detector.video_result(
            path,
            np.asarray(scoring.scores, np.float32)[order],
            [scoring.indices[k] for k in order],
            [scoring.boxes[k] for k in order],
            end.sampled,
            aggregate,
            threshold,
        )
        finish(item, _row(path, "video", result))

    def score(count: int) -> None:
        """One model call on the first `count` crops of the batch; their owners are settled.

        A failed call shared by several inputs is retried input by input, so only the inputs
        whose own crops fail get an error row (as when each input had its own calls)."""
        chunk, batch[:] = batch[:count], batch[count:]
        owners = list(dict.fromkeys(item for item, _ in chunk))
        try:
            probs = detector.predict_crops([crop for _, crop in chunk])
            scored = {item: [] for item in owners}
            for (item, _), prob in zip(chunk, probs, strict=True):
                scored[item].append(float(prob))
        except Exception as error:  # noqa: BLE001 - the inputs of this call fail, not the run
            scored = {}
            for item in owners:
                try:
                    if len(owners) == 1:
                        raise error
                    mine = [crop for owner, crop in chunk if owner == item]
                    scored[item] = [float(p) for p in detector.predict_crops(mine)]
                except Exception as own:  # noqa: BLE001 - this input's row says why
                    scored[item] = own
        stream.scored(len(chunk))
        for item, result in scored.items():
            if item not in state:
                continue
            if isinstance(result, BaseException):
                fail(item, inputs[item][1], result)
                continue
            state[item].scores.extend(result)
            state[item].waiting -= len(result)
        for item in owners:
            settle(item)

    while remaining:
        event = stream.events.get()
        if isinstance(event, BaseException):
            raise event
        if event is not IDLE and rows[event.item] is not None:  # failed in a model call before
            if isinstance(event, Crop):
                stream.scored(1)
            elif isinstance(event, End) and not event.last:
                stream.drop(event.item)
            continue
        if event is IDLE:  # the thread waits: what is held must be scored for it to go on
            while batch:
                score(min(len(batch), detector.batch_size))
        elif isinstance(event, Failed):
            if rows[event.item] is None:
                fail(event.item, event.kind, event.error)
        elif isinstance(event, Crop):
            scoring = state.setdefault(event.item, _Scoring())
            scoring.indices.append(event.index)
            scoring.boxes.append(event.box)
            scoring.faces.append(event.face)
            if event.kind == "image" and clips:
                stream.scored(1)
                try:
                    detector.predict_crops([event.crop])  # refuses: clips, not single crops
                except Exception as error:  # noqa: BLE001 - this input's row says why
                    fail(event.item, "image", error)
            elif clips:
                scoring.crops.append(event.crop)
                stream.scored(1)  # held here, not in the stream's count: a video can be long
            else:
                scoring.waiting += 1
                batch.append((event.item, event.crop))
                if len(batch) >= detector.batch_size:
                    score(detector.batch_size)
        elif isinstance(event, End) and event.item in state:
            state[event.item].end = event
            settle(event.item)
        elif isinstance(event, End):  # a stage with no face: nothing to wait for
            state[event.item] = _Scoring(end=event)
            settle(event.item)
    return rows


def _video_row(
    detector: Detector, path: str, scoring: _Scoring, sampled: int, aggregate: str, threshold: float
) -> Row:
    """The row of a video scored with every face (`faces="all"`): one `Identity` per track.

    Each identity is scored as a video of its own frames (`Detector.video_result`: the
    detector's aggregate and threshold). It counts toward the video's verdict when it is in at
    least `tracks.counted_frames` of the frames where any face was found. The video is fake when
    any counted identity is (FFIW's rule: one forged face forges the video); the row's score,
    verdict and frames are those of the counted identity with the highest score (the first one
    on a tie), which is fake exactly when one of them is. When no identity is seen that often
    (very few frames), the one seen in most frames decides, alone.
    """
    from md_csd_tf.inference.tracks import counted_frames

    by_face: dict[int, list[int]] = {}
    for k in np.argsort(scoring.indices, kind="stable"):
        by_face.setdefault(scoring.faces[k], []).append(int(k))
    need = counted_frames(len(set(scoring.indices)))
    identities = []
    for face in sorted(by_face):
        mine = by_face[face]
        result = detector.video_result(
            path,
            np.asarray([scoring.scores[k] for k in mine], np.float32),
            [scoring.indices[k] for k in mine],
            [scoring.boxes[k] for k in mine],
            sampled,
            aggregate,
            threshold,
        )
        identities.append(
            Identity(
                face,
                [int(i) for i in result.frame_indices],
                [float(v) for v in result.frame_scores],
                [_box(b) for b in result.boxes],
                float(result.score),
                result.verdict,
                counted=len(mine) >= need,
            )
        )
    counted = [face for face in identities if face.counted]
    if counted:
        decider = max(counted, key=lambda face: (face.fake_probability, -face.id))
    else:
        decider = max(identities, key=lambda face: (len(face.frame_indices), -face.id))
    return Row(
        path,
        "video",
        frames_scored=len(decider.frame_indices),
        fake_probability=decider.fake_probability,
        verdict=decider.verdict,
        frame_indices=list(decider.frame_indices),
        frame_scores=list(decider.frame_scores),
        frames_sampled=int(sampled),
        identities=identities,
        decided_by=decider.id,
        boxes=list(decider.boxes),
    )


def format_table(rows: Sequence[Row]) -> str:
    """The results as an aligned text table: input, faces (identities), frames scored (of the
    deciding face), fake probability, verdict."""
    header = ("input", "faces", "frames", "fake_prob", "verdict")
    lines = [
        (
            r.input,
            str(r.faces) if r.ok else "-",
            str(r.frames_scored),
            "-" if r.fake_probability is None else f"{r.fake_probability:.4f}",
            r.verdict if r.ok else "ERROR",
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


def write_results(rows: Sequence[Row], path: str | os.PathLike, **settings) -> Path:
    """Writes the table as CSV (one line per input) or JSON (with per-frame scores), atomically.

    Args:
        rows: the results.
        path: ends in `.csv` or `.json`.
        **settings: recorded in the JSON (model path, threshold, aggregation...).

    Returns:
        The path written, atomically (`files.atomic_write_text`): a reader never sees a
        half-written file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ValueError(f"{path}: output must end in .csv or .json")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            record = {c: getattr(row, c) for c in COLUMNS}
            if record["fake_probability"] is None:
                record["fake_probability"] = ""
            writer.writerow(record)
        text = buffer.getvalue()
    else:
        text = json.dumps(
            {"settings": settings, "results": [dataclasses.asdict(r) for r in rows]}, indent=2
        )
    return atomic_write_text(path, text)
