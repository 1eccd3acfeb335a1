"""The real-face corpus (prep/real_faces.py), its extra media (prep/corpus_media.py), the
classic swaps of its held-out people (prep/synthetic/swaps.py) and Debian-source fetching."""

import csv
import hashlib
import io
import json
import tarfile

import cv2
import numpy as np
import pytest
from data_fixtures import standin_landmarks

from md_csd_tf.prep import real_faces
from md_csd_tf.prep.corpus_media import CORPUS_CATALOGUE, CORPUS_SOURCES, FIXED_SPLITS
from md_csd_tf.prep.synthetic import fetch as fetching
from md_csd_tf.prep.synthetic.media import BUNDLED, Face, FaceLibrary
from md_csd_tf.prep.synthetic.swaps import CORPUS_FAKES, classic_swap, corpus_fake, outline_mask

SPLITS = {"bundled/astronaut": ("train",), "bundled/grace_hopper": ("test",)}


def _rows(folder):
    with open(folder / "frames.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_corpus_crops_every_view_as_predict_would_and_resumes(tmp_path):
    config = real_faces.CorpusConfig(out=str(tmp_path), crop_size=96, views=3, held_out_views=2)
    written = real_faces.write_corpus(FaceLibrary(BUNDLED, "bundled"), config, SPLITS)
    assert sorted(written) == [
        "bundled__astronaut__astronaut",
        "bundled__grace_hopper__grace_hopper",
    ]
    train = real_faces.medium_folder(tmp_path, "bundled__astronaut__astronaut")
    rows = _rows(train)
    assert len(rows) == 3  # every view found its face (the one meant: the centre check)
    assert {r["split"] for r in rows} == {"train"} and {r["label"] for r in rows} == {"0"}
    assert {r["dataset"] for r in rows} == {real_faces.DATASET}
    crop = cv2.imread(str(train / rows[0]["path"].rsplit("/", 1)[-1]))
    assert crop.shape == (96, 96, 3)
    # Views differ: moved, turned, scaled.
    boxes = {(r["box_left"], r["box_top"], r["box_right"], r["box_bottom"]) for r in rows}
    assert len(boxes) == 3
    info = json.loads((train / "video.json").read_text())
    assert info["person"] == "bundled/astronaut" and info["kind"] == "photo"
    held_out = real_faces.medium_folder(tmp_path, "bundled__grace_hopper__grace_hopper")
    assert len(_rows(held_out)) == 2 and _rows(held_out)[0]["split"] == "test"
    # A complete folder is not redone; an incomplete one is.
    stamp = (train / "frames.csv").stat().st_mtime_ns
    lost = held_out / _rows(held_out)[0]["path"].rsplit("/", 1)[-1]
    lost.unlink()
    real_faces.write_corpus(FaceLibrary(BUNDLED, "bundled"), config, SPLITS)
    assert (train / "frames.csv").stat().st_mtime_ns == stamp
    assert lost.is_file()


def test_corpus_splits_keep_each_person_in_one_split():
    demo_people = [f"demo/p{i}" for i in range(29)]
    demo = FaceLibrary(
        tuple(Face(p, p, "pkg", f"{p}.jpg", (0, 0, 10, 10)) for p in demo_people), "pypi"
    )
    extra_people = [f"extra/q{i}" for i in range(20)] + list(FIXED_SPLITS)
    extra = FaceLibrary(
        tuple(Face(p, p, "x", f"{p}.jpg", (0, 0, 9, 9)) for p in extra_people), "pypi"
    )
    splits = real_faces.corpus_splits(demo, extra, seed=0)
    assert set(splits) == set(demo_people) | set(extra_people)
    assert all(len(s) == 1 for s in splits.values())  # identity-disjoint
    assert all(splits[p] == (s,) for p, s in FIXED_SPLITS.items())
    counts = {s: sum(splits[p] == (s,) for p in extra_people) for s in ("train", "val", "test")}
    n = len(extra_people)
    assert counts["val"] == round(0.15 * n) and counts["test"] == round(0.15 * n)
    # The demo's people keep the pools of the stand-in videos of the same seed.
    from md_csd_tf.prep.synthetic import assign_people

    pools, _ = assign_people(demo, 0)
    assert all(splits[p] == ("train",) for p in pools["train"])
    assert all(splits[p] == ("test",) for p in pools["dfd"] + pools["celebdf"] + pools["test"])
    assert splits == real_faces.corpus_splits(demo, extra, seed=0)  # deterministic
    assert splits != real_faces.corpus_splits(demo, extra, seed=1)


def test_corpus_media_catalogue_is_consistent():
    members = {(s.package, m.path) for s in CORPUS_SOURCES for m in s.members}
    assert all((f.package, f.member) in members for f in CORPUS_CATALOGUE)
    assert all(len(m.sha256) == 64 and m.size > 0 for s in CORPUS_SOURCES for m in s.members)
    keys = [(f.person, f.key) for f in CORPUS_CATALOGUE]
    assert len(keys) == len(set(keys))
    assert len({f.person for f in CORPUS_CATALOGUE}) >= 30
    debian = [s for s in CORPUS_SOURCES if s.debian]
    assert debian and all(s.debian[0].startswith("pool/main/") for s in debian)


def _face_crop(size=96, which=0):
    """A bundled photograph's face, cut as the corpus cuts it."""
    from md_csd_tf.prep.faces import FaceCropper
    from md_csd_tf.prep.synthetic.media import load_photo

    crop, _, _ = FaceCropper(image_size=size).crop(load_photo(BUNDLED[which]))
    return crop


@pytest.mark.parametrize("blending", ["poisson", "alpha"])
def test_classic_swap_changes_only_the_face(blending):
    size = 96
    target, source = _face_crop(size, 0), _face_crop(size, 1)  # two people
    points = standin_landmarks(size)
    fake = classic_swap(target, points, source, points, blending)
    inside = outline_mask(points, size, erode=3) > 0
    changed = np.abs(fake.astype(int) - target.astype(int)).sum(-1) > 0

    def detail(image):  # the structure a swap moves: the Laplacian of the grey image
        return cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32), -1)[inside]

    # Inside the face the fake has the source's structure, not the target's (both blendings).
    assert np.corrcoef(detail(fake), detail(source))[0, 1] > 0.5
    assert (
        np.corrcoef(detail(fake), detail(source))[0, 1]
        > np.corrcoef(detail(fake), detail(target))[0, 1]
    )
    inside = outline_mask(points, size) > 0
    # Poisson editing writes only inside its mask; the alpha feather reaches ~3 sigma out.
    margin = 0 if blending == "poisson" else int(np.ceil(3 * 0.03 * size)) + 1
    grown = cv2.dilate(inside.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)) > 0
    assert not changed[~grown].any()


def test_corpus_fake_families_and_their_folders(tmp_path):
    size = 64
    config = real_faces.CorpusConfig(out=str(tmp_path), crop_size=size, views=2, held_out_views=2)
    library = FaceLibrary(BUNDLED, "bundled")
    splits = {"bundled/astronaut": ("test",), "bundled/grace_hopper": ("test",)}
    real_faces.write_corpus(library, config, splits)
    for folder in (tmp_path / "faces" / "raw" / "real").iterdir():
        np.save(folder / "landmarks.npy", np.tile(standin_landmarks(1)[None], (2, 1, 1)))
    makers = {f: (lambda *a, f=f: corpus_fake(f, *a)) for f in CORPUS_FAKES}
    written = real_faces.write_corpus_fakes(tmp_path, makers, splits=("test",))
    assert written == dict.fromkeys(CORPUS_FAKES, 4)
    for family in CORPUS_FAKES:
        folder = real_faces.medium_folder(tmp_path, "bundled__astronaut__astronaut", family)
        rows = _rows(folder)
        assert {r["label"] for r in rows} == {"1"} and {r["method"] for r in rows} == {family}
        info = json.loads((folder / "video.json").read_text())
        assert info["source_person"] == "bundled/grace_hopper"  # another person of the split
        assert np.load(folder / "landmarks.npy").shape == (2, 68, 2)
    # Done once: a second call makes nothing.
    assert real_faces.write_corpus_fakes(tmp_path, makers, splits=("test",)) == dict.fromkeys(
        CORPUS_FAKES, 0
    )


def test_debian_source_is_fetched_verified_and_refused_when_its_hash_differs(tmp_path, monkeypatch):
    data = b"\xff\xd8 a face " * 50
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:bz2") as archive:
        info = tarfile.TarInfo("pkg-1.0/examples/face.jpg")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    pool = tmp_path / "mirror" / "pool" / "main" / "p" / "pkg"
    pool.mkdir(parents=True)
    (pool / "pkg_1.0.orig.tar.bz2").write_bytes(buffer.getvalue())
    monkeypatch.setenv("MD_CSD_DEBIAN_MIRROR", (tmp_path / "mirror").as_uri())
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    member = fetching.Member(
        "pkg-1.0/examples/face.jpg", len(data), hashlib.sha256(data).hexdigest()
    )
    source = fetching.Source(
        "pkg", "1.0-1", False, (member,), debian=("pool/main/p/pkg/pkg_1.0.orig.tar.bz2", digest)
    )
    paths = fetching.fetch(source, tmp_path / "cache")
    assert paths[member.path].read_bytes() == data
    tampered = fetching.Source(
        "pkg", "2.0-1", False, (member,), debian=(source.debian[0], "0" * 64)
    )
    with pytest.raises(OSError, match="SHA-256"):
        fetching.fetch(tampered, tmp_path / "cache")
