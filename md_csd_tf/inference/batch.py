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

from md_csd_tf.files import atomic_write_text
from md_csd_tf.inference.crops import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    VideoPrefetcher,
    input_kind,
)

if TYPE_CHECKING:  # TensorFlow is imported with the model, not to list inputs
    from md_csd_tf.inference.detector import Detector

COLUMNS = ("input", "kind", "frames_scored", "fake_probability", "verdict", "error")


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

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def face_note(self) -> str:
        """A line saying how few frames carry the score when some sampled frames had no face."""
        if not self.ok or self.frames_sampled <= self.frames_scored:
            return ""
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


def score_input(detector: Detector, path: str, kind: str, prepared=None, **options) -> Row:
    """Scores one input; any failure becomes `Row.error` (one line naming the input).

    `prepared`: for a video, the `Future` of its `video_crops` started ahead (`score_inputs`).
    """
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
            result = detector.predict_video(path, prepared=prepared, **options)
    except Exception as error:  # noqa: BLE001 - any failure of one input is reported, not raised
        return Row(path, kind, error=_one_line(error, path))
    frames = getattr(result, "frame_indices", [0])
    scores = getattr(result, "frame_scores", [result.score])
    return Row(
        path,
        kind,
        frames_scored=result.frames_scored,
        fake_probability=float(result.score),
        verdict=result.verdict,
        frame_indices=[int(i) for i in frames],
        frame_scores=[float(s) for s in scores],
        frames_sampled=int(getattr(result, "frames_sampled", result.frames_scored)),
    )


def score_inputs(
    detector: Detector,
    inputs: Sequence[tuple[str, str]],
    progress: bool = True,
    prefetch: bool | VideoPrefetcher = True,
    **options,
) -> list[Row]:
    """Scores every input in turn with a tqdm progress bar (on stderr); never raises per input.

    Args:
        detector: the loaded model.
        inputs: `(path, kind)` pairs from `collect_inputs`.
        progress: show the bar (it hides itself for a single input).
        prefetch: decode and crop the next video in a thread while the model scores this one
            (and trace the model while the first is cropped). OpenCV, dlib and TensorFlow
            work outside Python's lock, so they overlap; the rows are the same. A
            `VideoPrefetcher` started before the model was loaded (`md-csd predict`) is taken
            over when its crops are this detector's, else discarded.
        **options: `predict_video` options, plus `detect` for images.
    """
    from tqdm import tqdm

    sampling = {k: options[k] for k in ("frames", "sampling", "every_k") if k in options}
    early = prefetch if isinstance(prefetch, VideoPrefetcher) else None
    if early is not None and not early.matches(detector.cropper, detector.track, **sampling):
        early.close()
        early = None
    ahead = early
    if ahead is None and prefetch:
        ahead = VideoPrefetcher(inputs, detector.cropper, detector.track, **sampling)
    rows = []
    bar = tqdm(inputs, unit="input", disable=not progress or len(inputs) < 2, leave=False)
    try:
        for i, (path, kind) in enumerate(bar):
            bar.set_postfix_str(Path(path).name[-30:], refresh=False)
            if ahead is not None and kind == "video":
                # Only behind a video: the face detector is one dlib object, not known to be
                # thread-safe, so nothing runs ahead while an image is cropped here.
                ahead.start(i)
                ahead.start(i + 1)
                if i == 0:
                    detector.warm_up()  # trace while the first video is cropped
            future = ahead.take(i) if ahead is not None else None
            rows.append(score_input(detector, path, kind, future, **dict(options)))
    finally:
        if ahead is not None:
            ahead.close()
            for stage, seconds in ahead.timings.items():
                detector.timings[stage] += seconds
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """The results as an aligned text table: input, frames scored, fake probability, verdict."""
    header = ("input", "frames", "fake_prob", "verdict")
    lines = [
        (
            r.input,
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
