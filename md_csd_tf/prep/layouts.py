"""Enumerates the videos of FaceForensics++, DFD and Celeb-DF v2 exactly as their authors ship them.

Layouts (``<c>`` is ``raw`` (also written ``c0``), ``c23`` or ``c40``)::

    FF++      original_sequences/youtube/<c>/videos/000.mp4
              manipulated_sequences/<Method>/<c>/videos/<target>_<source>.mp4
    DFD       original_sequences/actors/<c>/videos/<actor>__<scene>.mp4
              manipulated_sequences/DeepFakeDetection/<c>/videos/<target>_<source>__<scene>__<id>.mp4
    Celeb-DF  Celeb-real/*.mp4, YouTube-real/*.mp4, Celeb-synthesis/*.mp4,
              List_of_testing_videos.txt  ("<label> <folder>/<file>.mp4", 1 = REAL, 0 = fake)

Every record carries our label convention, 1 = fake. ``method`` is ``"real"`` for all original
videos (FF++ youtube, DFD actors, Celeb-DF's Celeb-real and YouTube-real), the manipulation folder
name for fakes (``"Deepfakes"``, ..., ``"DeepFakeDetection"``, ``"Celeb-synthesis"``). Celeb-DF
ships one quality level, recorded as compression ``"original"``.

Problems that concern one method or one video (a missing method folder, a split id without a video)
are returned as :class:`Failure` lines; only a root that is not the dataset at all raises
:class:`~md_csd_tf.errors.UserError`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from md_csd_tf.errors import UserError
from md_csd_tf.names import DATASETS, FFPP_METHODS, FFPP_OPTIONAL_METHODS
from md_csd_tf.prep.splits import SPLITS, load_splits, split_of_videos

CELEBDF_FOLDERS = {
    "Celeb-real": "real",
    "YouTube-real": "real",
    "Celeb-synthesis": "Celeb-synthesis",
}
CELEBDF_TEST_LIST = "List_of_testing_videos.txt"
CELEBDF_COMPRESSION = "original"
MAX_MISSING_LINES = 20  # more missing split ids than this per method: one summary line
_RAW_NAMES = ("raw", "c0")  # the FF++ download script writes "raw"; papers often say "c0"


@dataclasses.dataclass(frozen=True)
class VideoRecord:
    """One video to extract.

    Attributes:
        dataset: ``"ffpp"``, ``"dfd"`` or ``"celebdf"``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        method: ``"real"`` for originals, otherwise the manipulation folder name.
        compression: the quality folder actually read (``"raw"``/``"c0"``, ``"c23"``, ``"c40"``;
            ``"original"`` for Celeb-DF).
        video_id: file stem, e.g. ``"000"``, ``"000_003"``, ``"id0_id1_0000"``.
        path: absolute path of the video file.
        label: 0 = real, 1 = fake.
        original_id: for FF++ fakes, the id of the target original video (same frame geometry,
            so its face boxes can be reused); ``None`` otherwise.
    """

    dataset: str
    split: str
    method: str
    compression: str
    video_id: str
    path: str
    label: int
    original_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Failure:
    """A file or folder that could not be used, with a one-line reason."""

    file: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Listing:
    videos: list[VideoRecord]
    failures: list[Failure]


def _require_dir(path: Path, dataset: str, root: Path) -> None:
    if not path.is_dir():
        raise UserError(
            f"--root {root} does not look like {dataset}: expected folder "
            f"{path.relative_to(root)} is missing"
        )


def _quality_dir(parent: Path, compression: str) -> Path:
    """Returns ``parent/<compression>``, accepting ``raw`` and ``c0`` for each other."""
    names = _RAW_NAMES if compression in _RAW_NAMES else (compression,)
    for name in names:
        if (parent / name).is_dir():
            return parent / name
    return parent / compression


def _mp4s(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.glob("*.mp4"))}


def _list_ffpp(root, compression, methods, splits, splits_dir) -> Listing:
    originals = _quality_dir(root / "original_sequences" / "youtube", compression)
    _require_dir(originals / "videos", "FaceForensics++", root)
    owner = split_of_videos(load_splits(splits_dir))
    explicit = methods is not None
    if methods is None:
        methods = FFPP_METHODS + tuple(
            m for m in FFPP_OPTIONAL_METHODS if (root / "manipulated_sequences" / m).is_dir()
        )
    videos, failures = [], []

    def collect(folder: Path, method: str) -> None:
        found = _mp4s(folder / "videos")
        wanted = sorted(
            v for v, s in owner.items() if s in splits and ("_" in v) == (method != "real")
        )
        missing = [v for v in wanted if v not in found]
        if len(missing) > MAX_MISSING_LINES:  # a partial download: one line, not thousands
            failures.append(Failure(
                str(folder / "videos"),
                f"{len(missing)} of {len(wanted)} split ids have no video in {method} "
                f"(e.g. {', '.join(missing[:5])}); partial download?",
            ))  # fmt: skip
        else:
            failures.extend(
                Failure(str(folder / "videos" / f"{v}.mp4"),
                        f"split id {v} ({owner[v]}) has no video in {method}")
                for v in missing
            )  # fmt: skip
        for video_id in wanted:
            if video_id not in found:
                continue
            videos.append(VideoRecord(
                dataset="ffpp", split=owner[video_id], method=method, compression=folder.name,
                video_id=video_id, path=str(found[video_id]), label=int(method != "real"),
                original_id=video_id.split("_")[0] if method != "real" else None,
            ))  # fmt: skip

    collect(originals, "real")
    for method in methods:
        folder = _quality_dir(root / "manipulated_sequences" / method, compression)
        if not (folder / "videos").is_dir():
            why = "requested" if explicit else "expected"
            failures.append(Failure(str(folder / "videos"), f"{why} method folder is missing"))
            continue
        collect(folder, method)
    return Listing(videos, failures)


def _list_dfd(root, compression, methods, splits) -> Listing:
    originals = _quality_dir(root / "original_sequences" / "actors", compression)
    _require_dir(originals / "videos", "DFD (DeepFakeDetection)", root)
    videos, failures = [], []
    if "test" not in splits:  # DFD is test data only
        return Listing(videos, failures)
    for video_id, path in _mp4s(originals / "videos").items():
        videos.append(VideoRecord("dfd", "test", "real", originals.name, video_id, str(path), 0))
    if methods is None or "DeepFakeDetection" in methods:
        fakes = _quality_dir(root / "manipulated_sequences" / "DeepFakeDetection", compression)
        if not (fakes / "videos").is_dir():
            failures.append(Failure(str(fakes / "videos"), "DeepFakeDetection folder is missing"))
        else:
            for video_id, path in _mp4s(fakes / "videos").items():
                videos.append(
                    VideoRecord(
                        "dfd", "test", "DeepFakeDetection", fakes.name, video_id, str(path), 1
                    )
                )
    return Listing(videos, failures)


def _list_celebdf(root, methods, splits) -> Listing:
    for folder in (*CELEBDF_FOLDERS, CELEBDF_TEST_LIST):
        if not (root / folder).exists():
            raise UserError(
                f"--root {root} does not look like Celeb-DF v2: expected {folder} is missing"
            )
    failures = []
    # The list says 1 = REAL, 0 = fake; we store labels as 1 = fake, so every listed label is
    # inverted. It is checked against the folder, which is the ground truth of the release.
    listed: dict[str, int] = {}
    lines = (root / CELEBDF_TEST_LIST).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            failures.append(Failure(f"{CELEBDF_TEST_LIST}:{number}", f"unreadable line {line!r}"))
            continue
        listed[parts[1].replace("\\", "/")] = 1 - int(parts[0])
    videos, seen = [], set()
    for folder, method in CELEBDF_FOLDERS.items():
        if methods is not None and method not in methods:
            continue
        for video_id, path in _mp4s(root / folder).items():
            key = f"{folder}/{path.name}"
            seen.add(key)
            label = int(method != "real")
            if key in listed and listed[key] != label:
                failures.append(
                    Failure(
                        str(path),
                        f"{CELEBDF_TEST_LIST} label contradicts folder "
                        f"{folder}; the folder's label is used",
                    )
                )
            split = "test" if key in listed else "train"
            if split in splits:
                videos.append(
                    VideoRecord(
                        "celebdf", split, method, CELEBDF_COMPRESSION, video_id, str(path), label
                    )
                )
    for key in sorted(set(listed) - seen):
        folder = key.split("/")[0]
        if methods is None or CELEBDF_FOLDERS.get(folder) in methods:
            failures.append(Failure(str(root / key), f"listed in {CELEBDF_TEST_LIST} but missing"))
    return Listing(videos, failures)


def scan_dataset(
    dataset: str,
    root: str | Path,
    compression: str = "c23",
    methods: tuple[str, ...] | None = None,
    splits: tuple[str, ...] = SPLITS,
    splits_dir: str | Path | None = None,
) -> Listing:
    """Lists the videos of a dataset and the problems found on the way.

    Args:
        dataset: ``"ffpp"``, ``"dfd"`` or ``"celebdf"``.
        root: the folder the dataset was downloaded or unpacked into.
        compression: quality folder for FF++ and DFD; ignored for Celeb-DF.
        methods: manipulation folders to include (``"real"`` is always included for FF++ and DFD);
            ``None`` takes all (FF++: the four of the paper plus FaceShifter when present).
        splits: the splits to keep.
        splits_dir: a folder with FF++ ``train/val/test.json`` overriding the shipped copies.

    Returns:
        A :class:`Listing` of :class:`VideoRecord` and :class:`Failure`.

    Raises:
        UserError: ``root`` is not the dataset; the message names the missing folder.
    """
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise UserError(f"--root {root} is not a folder")
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise UserError(f"unknown split(s) {sorted(unknown)}; choose from {list(SPLITS)}")
    if methods and dataset in ("ffpp", "dfd"):  # originals are always listed there
        methods = tuple(m for m in methods if m != "real") or None
    methods = tuple(methods) if methods else None
    if dataset == "ffpp":
        return _list_ffpp(root, compression, methods, set(splits), splits_dir)
    if dataset == "dfd":
        return _list_dfd(root, compression, methods, set(splits))
    if dataset == "celebdf":
        return _list_celebdf(root, methods, set(splits))
    raise UserError(f"unknown dataset {dataset!r}; choose from {list(DATASETS)}")


def list_videos(dataset: str, root: str | Path, **kwargs) -> list[VideoRecord]:
    """The videos of :func:`scan_dataset` (same arguments), without the failure lines."""
    return scan_dataset(dataset, root, **kwargs).videos
