"""Reading the face-crop manifest written by data preparation, and selecting from it."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from md_csd_tf.errors import UserError

# The manifest schema, written by data preparation (`md_csd_tf.prep.extract`) and read here: one
# row per face crop. `path` is relative to the manifest's folder; label 1 = fake; the box is the
# crop box in frame pixels and `face_score` dlib's detection score.
MANIFEST_COLUMNS = (
    "dataset", "split", "method", "compression", "video_id", "frame_index", "path", "label",
    "box_left", "box_top", "box_right", "box_bottom", "face_score",
)  # fmt: skip
# What training and evaluation need; the box columns are informative.
REQUIRED_COLUMNS = MANIFEST_COLUMNS[:8]
#: Columns that identify one video, in order, where present in a table. The same video_id
#: (FF++ "000") is a real video and a fake under every method, so video_id alone is not a key.
#: `split` is left out: every layout gives a video one split (FF++ by id, DFD and Celeb-DF by
#: list), so it tells no two videos apart, and keeping it would change evaluation's columns.
VIDEO_KEY = ("dataset", "method", "compression", "video_id")
# How `md-csd prepare` cut the crops, written beside the manifest (`prep.extract`): crop side
# ("image_size"), box "scale", face "pick" rule, detector mode ("crops": "ffpp" or "fast", with
# "detect_max_side" in fast mode), file "format", ... The trainer stores it in the model (its
# metadata's "crops") and predict cuts faces by it (`inference.crops.make_cropper`).
CROP_SETTINGS_FILE = "crop_settings.json"
# Folders written before the crop mode existed hold settings files without these keys; they were
# made with these values.
LEGACY_CROP_SETTINGS = {"crops": "fast", "detect_max_side": 640, "detect_every": 1,
                        "reuse_original_boxes": True}  # fmt: skip
_STRING_COLUMNS = {
    "dataset": str,
    "split": str,
    "method": str,
    "compression": str,
    "video_id": str,
    "path": str,
}


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Loads `manifest.csv` (or `.parquet`) with crop paths made absolute.

    `video_id` stays a string: FF++ ids such as "000" must not become the integer 0.

    Raises:
        UserError: naming the file when it is missing, unreadable or lacks required columns.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.csv"
    if not path.is_file():
        raise UserError(
            f"{path}: manifest not found; run `md-csd prepare` first (it writes manifest.csv)."
        )
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
            table = table.astype({k: v for k, v in _STRING_COLUMNS.items() if k in table})
        else:
            table = pd.read_csv(path, dtype=_STRING_COLUMNS)
    except Exception as error:  # pandas raises many types for a damaged file
        raise UserError(
            f"{path}: cannot be read as a manifest ({error}); re-run `md-csd prepare`."
        ) from error
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise UserError(f"{path}: not a face-crop manifest, missing columns {missing}.")
    table = table.copy()
    table["abs_path"] = [str(path.parent / p) for p in table["path"]]
    table["label"] = table["label"].astype("int64")
    table.attrs["source"] = str(path)
    return table


def read_crop_settings(manifest: str | os.PathLike) -> dict | None:
    """The settings `md-csd prepare` cut a manifest's crops with (`CROP_SETTINGS_FILE` beside
    it; an older file's missing keys from `LEGACY_CROP_SETTINGS`).

    Args:
        manifest: the manifest file or its folder.

    Returns:
        The settings, or None when the folder has none (crops not cut by prepare, e.g. the
        real-face corpus or a hand-made manifest) or the file is unreadable.
    """
    folder = Path(manifest)
    if not folder.is_dir():
        folder = folder.parent
    try:
        settings = json.loads((folder / CROP_SETTINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(settings, dict):
        return None
    if "crops" not in settings:
        settings = {**LEGACY_CROP_SETTINGS, **settings}
    return settings


def select(
    table: pd.DataFrame,
    split: str | None = None,
    dataset: str | None = None,
    compression: str | None = None,
    methods: Sequence[str] | None = None,
    max_frames_per_video: int | None = None,
) -> pd.DataFrame:
    """Rows of one split/dataset/compression; `methods` keeps those fakes plus all reals.

    Raises:
        UserError: when nothing is left, naming the manifest and the filter, since training or
            evaluating on an empty split is always a mistake upstream.
    """
    keep = pd.Series(True, index=table.index)
    if split is not None:
        keep &= table["split"] == split
    if dataset is not None:
        keep &= table["dataset"] == dataset
    if compression is not None:
        keep &= table["compression"] == compression
    if methods:
        keep &= table["method"].isin(["real", *methods]) | (table["label"] == 0)
    selected = table[keep]
    if max_frames_per_video:
        keys = [c for c in VIDEO_KEY if c in selected]
        selected = (
            selected.sort_values([*keys, "frame_index"])
            .groupby(keys, sort=False)
            .head(max_frames_per_video)
        )
    if selected.empty:
        source = table.attrs.get("source", "the manifest")
        wanted = {
            k: v
            for k, v in dict(
                split=split, dataset=dataset, compression=compression, methods=methods
            ).items()
            if v
        }
        raise UserError(
            f"{source}: no face crops for {wanted}; check the split/compression/method options "
            "or prepare that part of the dataset."
        )
    return selected.reset_index(drop=True)


def check_crops_exist(frames: pd.DataFrame, manifest: str | os.PathLike) -> None:
    """Refuses, in one line, a selection whose crops are not all on disk.

    Checked before training or scoring, because TensorFlow reports a missing file deep inside
    the input pipeline, as a long traceback, after the model has been built.

    Raises:
        UserError: naming the manifest, the number of missing crops and one of them.
    """
    missing = [p for p in frames["abs_path"] if not os.path.exists(p)]
    if missing:
        raise UserError(
            f"{manifest}: {len(missing)} listed crops are missing on disk (e.g. {missing[0]}); "
            "run `md-csd prepare` again with the same --out: it redoes the incomplete videos."
        )
