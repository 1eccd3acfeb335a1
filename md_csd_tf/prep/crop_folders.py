"""Face crops on disk: the folder of each video, whether it is complete, and the manifest
rebuilt from the finished folders (the layout `extract.py` writes and `landmarks.py` reads).

    OUT/<dataset>/<compression>/<method>/<video_id>/0000.png ...   one crop per frame with a face
    OUT/<dataset>/<compression>/<method>/<video_id>/frames.csv      this video's manifest rows
    OUT/<dataset>/<compression>/<method>/<video_id>/video.json      frames read, faces, notes
    OUT/manifest.csv (+ manifest.parquet)                           all finished videos
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np

from md_csd_tf.data.manifest import MANIFEST_COLUMNS
from md_csd_tf.files import atomic_write
from md_csd_tf.prep.layouts import VideoRecord


def video_folder(out: str | Path, record: VideoRecord) -> Path:
    """``OUT/<dataset>/<compression>/<method>/<video_id>``."""
    return Path(out) / record.dataset / record.compression / record.method / record.video_id


def encode_crop(crop_rgb: np.ndarray, fmt: str, quality: int) -> bytes:
    """An RGB crop encoded as `fmt` (png, or jpg at `quality`), ready to write."""
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpg" else []
    ok, data = cv2.imencode(f".{fmt}", cv2.cvtColor(crop_rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"OpenCV could not encode a {fmt} image")
    # imencode + write instead of imwrite: imwrite silently fails on some non-ASCII paths.
    return data.tobytes()


def write_frames_csv(path: Path, rows: list[dict]) -> None:
    """A video folder's ``frames.csv``: its manifest rows (written last, it marks completion)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def folder_complete(folder: Path) -> bool:
    """True when every crop the folder's ``frames.csv`` lists exists and is not empty.

    Names and sizes only (one directory listing, no decoding), so a resume over thousands of
    videos stays cheap; it catches deleted crops and the zero-byte files of a full disk.
    """
    try:
        with open(folder / "frames.csv", newline="", encoding="utf-8") as handle:
            names = [row["path"].rsplit("/", 1)[-1] for row in csv.DictReader(handle)]
        sizes = {entry.name: entry.stat().st_size for entry in os.scandir(folder)}
    except (OSError, KeyError, ValueError):
        return False
    return "video.json" in sizes and all(sizes.get(name, 0) > 0 for name in names)


def finished_folders(out: Path) -> list[Path]:
    """The complete video folders under ``out`` (hidden partial folders left out)."""
    return sorted(
        p.parent
        for p in out.glob("*/*/*/*/frames.csv")
        if not p.parent.name.startswith(".") and folder_complete(p.parent)
    )


def rebuild_manifest(out: str | Path) -> tuple[Path, Path | None, dict]:
    """Rebuilds ``manifest.csv`` (and ``.parquet``) from all finished video folders under ``out``.

    Returns:
        ``(csv_path, parquet_path or None, counts)`` where ``counts`` is
        ``{dataset: {split: {method: {"videos", "crops", "frames_without_face"}}}}``.
    """
    import pandas as pd

    out = Path(out)
    tables, counts = [], {}
    for folder in finished_folders(out):
        table = pd.read_csv(
            folder / "frames.csv",
            dtype={"video_id": str, "split": str, "method": str, "compression": str, "path": str},
        )
        tables.append(table)
        try:
            info = json.loads((folder / "video.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        entry = (
            counts.setdefault(info["dataset"], {})
            .setdefault(info["split"], {})
            .setdefault(info["method"], {"videos": 0, "crops": 0, "frames_without_face": 0})
        )
        entry["videos"] += 1
        entry["crops"] += info["crops"]
        entry["frames_without_face"] += info["frames_without_face"]
    manifest = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    manifest = manifest.reindex(columns=list(MANIFEST_COLUMNS))
    csv_path = atomic_write(out / "manifest.csv", lambda temp: manifest.to_csv(temp, index=False))
    parquet_path = None
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        parquet_path = atomic_write(
            out / "manifest.parquet", lambda temp: manifest.to_parquet(temp, index=False)
        )
    return csv_path, parquet_path, counts
