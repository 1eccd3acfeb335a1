"""Uploads: what a file is by its first bytes, stored under a generated name, deleted when old.

The client's file name is display text only: it never becomes a path. The kind (image or
video) and the stored extension come from the content's signature, because the scoring pipeline
picks its reader by extension (`inference.crops.input_kind`) and a client's extension can lie.
A file whose signature is known but whose body is damaged (a truncated video or PNG) is
accepted here and fails as a job, with the decoder's message: only the decoder can tell.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20  # bytes per read while streaming an upload to disk
SNIFF_BYTES = 64  # enough for every signature below (the EBML doctype sits in the first ~40)


class UploadError(Exception):
    """An upload refused before any job exists; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def sniff(head: bytes) -> tuple[str, str] | None:
    """`(kind, extension)` of a file from its first bytes, or None when it is neither an image
    nor a video container that the scoring pipeline reads.

    Args:
        head: the file's first `SNIFF_BYTES` bytes (fewer for a short file).

    Returns:
        ("image", ".png" | ".jpg" | ".bmp" | ".tif" | ".webp") or
        ("video", ".mp4" | ".mov" | ".avi" | ".mkv" | ".webm"), else None.
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image", ".jpg"
    if head.startswith(b"BM") and len(head) >= 26:
        return "image", ".bmp"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image", ".tif"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image", ".webp"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video", ".avi"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, or WebM by its doctype
        return "video", ".webm" if b"webm" in head else ".mkv"
    # ISO base media (MP4, QuickTime): a box size, then the box type; QuickTime files may start
    # with other top-level atoms than `ftyp`.
    box = head[4:8]
    if box == b"ftyp":
        return "video", ".mov" if head[8:12] == b"qt  " else ".mp4"
    if box in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "video", ".mov"
    return None


def one_line(text: str) -> str:
    """`text` as a single line (error messages travel in JSON and in one table cell)."""
    return " ".join(str(text).split())


def save_upload(
    stream: BinaryIO, folder: str | os.PathLike, stem: str, display_name: str, max_bytes: int
) -> tuple[Path, str]:
    """Streams an upload to `folder/<stem><extension>`, checking size and content on the way.

    The size is counted while reading, so a client that sends more than it announced (or no
    length at all) is cut off at `max_bytes`, not after filling the disk. The file is written
    under a temporary name and renamed only once it is complete and accepted.

    Args:
        stream: the upload's body.
        folder: where uploads are kept (created if needed).
        stem: the generated name (the job id).
        display_name: the client's file name, for messages only.
        max_bytes: the largest accepted upload.

    Returns:
        `(path, kind)`: the stored file and "image" or "video".

    Raises:
        UploadError: 400 empty, 413 too large, 415 neither an image nor a video.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{stem}.part"
    size, head = 0, b""
    try:
        with open(partial, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadError(
                        413,
                        f"{display_name}: larger than the {max_bytes / 2**20:.3g} MB upload limit",
                    )
                if len(head) < SNIFF_BYTES:
                    head += chunk[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES and sniff(head) is None:
                        raise _not_media(display_name)  # before reading the rest
                out.write(chunk)
        if size == 0:
            raise UploadError(400, f"{display_name}: the file is empty")
        found = sniff(head)
        if found is None:
            raise _not_media(display_name)
        kind, extension = found
        path = folder / f"{stem}{extension}"
        os.replace(partial, path)
        return path, kind
    finally:
        partial.unlink(missing_ok=True)


def _not_media(name: str) -> UploadError:
    return UploadError(
        415,
        f"{name}: not an image or video this server reads (PNG, JPEG, BMP, TIFF, WebP; "
        "MP4, MOV, AVI, MKV, WebM), judged by its content",
    )


def remove_old_files(
    folders: Iterable[str | os.PathLike], older_than: float, keep: Collection[str] = ()
) -> int:
    """Deletes the files in `folders` last modified before the epoch time `older_than`:
    uploads and reports whose job row is gone (a crash between the file and the row), and
    partial uploads a killed server left behind. Returns how many were deleted.

    Args:
        folders: the folders to sweep (not recursively).
        older_than: epoch seconds.
        keep: job ids whose files stay whatever their age (a file's job id is its name up to
            the first dot, hidden partial uploads included).
    """
    removed = 0
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            try:
                if path.name.lstrip(".").split(".")[0] in keep:
                    continue
                if path.is_file() and path.stat().st_mtime < older_than:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # deleted meanwhile by its job's own cleanup
                continue
    return removed


def now() -> float:
    """Seconds since the epoch (one clock for rows and files)."""
    return time.time()
