"""Writing outputs safely: atomic replacement, one writer per output folder, writability first.

Every file a long job writes goes through `atomic_path` (or one of its shortcuts): the content is
written under a unique hidden name in the same folder and renamed into place, so a reader, a
killed job or a second process never sees half a file, and two processes never share a
temporary name. A job that owns an output folder holds an `OutputLock` on it for its whole run;
a second job on the same folder is refused with one line naming the holder's PID. Commands call
`check_writable` before any work, so an unwritable `--out` costs seconds, not a finished run.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from md_csd_tf.errors import UserError

LOCK_NAME = ".md-csd.lock"


def temporary_sibling(path: str | os.PathLike, suffix: str = "") -> Path:
    """A hidden, unique name beside `path` (same folder, so a rename is atomic).

    Unique per process and call (`.<name>.<pid>.<random>.tmp<suffix>`): two processes writing the
    same target never clobber each other's temporary file. `suffix` keeps an extension that a
    writer needs (Keras wants `.keras`, OpenCV's video writer picks the container by it).
    """
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "", mode: int = 0o644) -> Iterator[Path]:
    """Yields a temporary path to write; on success it replaces `path`, on error it is removed.

    Works for files and folders (a SavedModel, a video's crops): whatever the block leaves at the
    temporary path is moved into place with one rename. A folder target that already exists is
    removed first (rename cannot replace a non-empty folder); that one step is not atomic.

    Example:
        >>> with atomic_path("results/table.csv") as temp:
        ...     frame.to_csv(temp, index=False)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temporary_sibling(path, suffix)
    try:
        yield temp
        if temp.is_dir():
            if path.is_dir():
                shutil.rmtree(path)
            os.replace(temp, path)
        else:
            with contextlib.suppress(OSError):  # mkstemp-like 0600 would hide shared results
                os.chmod(temp, mode)
            os.replace(temp, path)
    except BaseException:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        else:
            temp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any], suffix: str = "") -> Path:
    """Calls `write(temporary_path)` and moves the result to `path` atomically; returns `path`."""
    with atomic_path(path, suffix) as temp:
        write(temp)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Writes UTF-8 text atomically (newlines as given)."""

    def write(temp: Path) -> None:
        with open(temp, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)

    return atomic_write(path, write)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes bytes atomically."""
    return atomic_write(path, lambda temp: temp.write_bytes(data))


def atomic_write_json(path: str | os.PathLike, data: Any, indent: int = 2) -> Path:
    """Writes JSON atomically (objects JSON cannot hold are written as strings)."""
    return atomic_write_text(path, json.dumps(data, indent=indent, default=str) + "\n")


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(path: str | os.PathLike, kind: str = "folder", flag: str = "--out") -> Path:
    """Checks, before any work, that an output can be written; returns the path.

    Args:
        path: the output folder (`kind="folder"`, created if missing) or file (`kind="file"`,
            its folder is created if missing; the file itself is not touched).
        kind: "folder" or "file".
        flag: the option that named it, for the message.

    Raises:
        UserError: one line naming the path and the reason (a file in the way, no permission,
            read-only disk), and what to do.
    """
    path = Path(path).expanduser()
    folder = path if kind == "folder" else path.parent
    if kind == "file" and path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; give a file name")
    blocker = _first_existing(folder)
    if blocker.exists() and not blocker.is_dir():
        raise UserError(
            f"{flag} {path}: cannot be created, {blocker} is a file; choose another {flag}"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = temporary_sibling(folder / "write-check")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UserError(
            f"{flag} {path}: cannot write there ({reason}); choose another {flag}"
        ) from None
    return path


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class OutputLock:
    """One writer per output folder: an OS lock on `<folder>/.md-csd.lock` held for a run.

    The lock is `fcntl.flock` (released by the OS when the process dies, even by kill -9, so a
    crashed run never leaves a stale lock behind). The file records the holder's PID, host and
    command so the refusal can say who holds it.

    Example:
        >>> with OutputLock("runs/ff_c23", "md-csd train"):
        ...     train(...)

    Raises (on enter):
        UserError: another process holds the folder.
    """

    def __init__(self, folder: str | os.PathLike, what: str = "md-csd"):
        self.folder = Path(folder)
        self.what = what
        self._handle = None

    def _holder(self) -> str:
        try:
            info = json.loads((self.folder / LOCK_NAME).read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return "another process"
        pid = info.get("pid")
        host = info.get("host")
        local = host in (None, socket.gethostname())
        state = "" if not local or pid is None or _pid_alive(int(pid)) else ", not running"
        where = "" if local else f" on {host}"
        return f"{info.get('command', 'another process')} (PID {pid}{where}{state})"

    def acquire(self) -> OutputLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115
        try:
            _lock(handle)
        except BlockingIOError:
            handle.close()
            raise UserError(
                f"{self.folder}: in use by {self._holder()}; wait for it to finish or use "
                "another output folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.what,
            "since": time.strftime("%Y-%m-%d %H:%M:%S"),
            "argv": sys.argv,
        }
        handle.write(json.dumps(record))
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.flush()
            _unlock(self._handle)
        self._handle.close()
        self._handle = None

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


if os.name == "nt":  # pragma: no cover - the project is tested on Linux
    import msvcrt

    def _lock(handle) -> None:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError as error:
            raise BlockingIOError(errno.EAGAIN, str(error)) from None

    def _unlock(handle) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(handle) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
