"""Dataset layouts: FF++ (official splits), DFD, Celeb-DF v2 (inverted label list)."""

from __future__ import annotations

import pytest
from prep_fixtures import make_celebdf, make_dfd, make_ffpp

from md_csd_tf.errors import UserError
from md_csd_tf.prep.layouts import list_videos, scan_dataset
from md_csd_tf.prep.splits import load_splits, split_of_videos


def test_official_splits_shipped_with_package():
    splits = load_splits()
    assert {k: len(v) for k, v in splits.items()} == {"train": 360, "val": 70, "test": 70}
    owner = split_of_videos(splits)
    assert len(owner) == 2000  # 1000 originals + 1000 fakes per method
    a, b = splits["val"][0]
    assert owner[a] == owner[b] == owner[f"{a}_{b}"] == owner[f"{b}_{a}"] == "val"
    originals = {v for v in owner if "_" not in v}
    assert originals == {f"{i:03d}" for i in range(1000)}


def test_ffpp_records(tmp_path):
    root = make_ffpp(tmp_path / "ffpp", n=2)
    listing = scan_dataset("ffpp", root, splits_dir=root / "splits")
    assert listing.failures == []
    videos = listing.videos
    assert len(videos) == 6 + 6 * 4
    by_key = {(v.method, v.video_id): v for v in videos}
    real = by_key[("real", "002")]
    assert (real.split, real.label, real.compression, real.original_id) == ("val", 0, "c23", None)
    assert real.path.endswith("original_sequences/youtube/c23/videos/002.mp4")
    fake = by_key[("Face2Face", "005_004")]
    assert (fake.split, fake.label, fake.original_id) == ("test", 1, "005")
    assert fake.path.endswith("manipulated_sequences/Face2Face/c23/videos/005_004.mp4")
    assert {v.split for v in videos if v.video_id in ("000", "001", "000_001", "001_000")} == {
        "train"
    }
    with_real = list_videos("ffpp", root, methods=("real", "FaceSwap"), splits_dir=root / "splits")
    assert {v.method for v in with_real} == {"real", "FaceSwap"} and len(with_real) == 12
    only_test = list_videos("ffpp", root, splits=("test",), splits_dir=root / "splits")
    assert {v.split for v in only_test} == {"test"} and len(only_test) == 10


def test_ffpp_raw_is_also_c0(tmp_path):
    root = make_ffpp(tmp_path / "ffpp", methods=("Deepfakes",), compression="c0", n=2)
    videos = list_videos(
        "ffpp", root, compression="raw", methods=("Deepfakes",), splits_dir=root / "splits"
    )
    assert len(videos) == 12 and {v.compression for v in videos} == {"c0"}


def test_ffpp_missing_method_and_split_id_are_failures(tmp_path):
    root = make_ffpp(tmp_path / "ffpp", methods=("Deepfakes", "FaceSwap"), n=2)
    (root / "manipulated_sequences/FaceSwap/c23/videos/003_002.mp4").unlink()
    listing = scan_dataset("ffpp", root, splits_dir=root / "splits")
    reasons = {f.file.split("manipulated_sequences/")[-1]: f.reason for f in listing.failures}
    assert "method folder is missing" in reasons["Face2Face/c23/videos"]
    assert "method folder is missing" in reasons["NeuralTextures/c23/videos"]
    assert reasons["FaceSwap/c23/videos/003_002.mp4"] == (
        "split id 003_002 (val) has no video in FaceSwap"
    )
    assert len(listing.videos) == 6 + 6 + 5


def test_ffpp_partial_download_gives_one_line_per_method(tmp_path):
    root = make_ffpp(tmp_path / "ffpp", methods=("Deepfakes",), n=1)
    listing = scan_dataset("ffpp", root, methods=("Deepfakes",))  # official 1000-id splits
    # Our tiny fakes (000_001, ...) are not official pairs: videos outside the splits are ignored.
    assert len(listing.videos) == 6 and {v.method for v in listing.videos} == {"real"}
    reasons = [f.reason for f in listing.failures]
    assert len(reasons) == 2
    assert reasons[0].startswith("994 of 1000 split ids have no video in real (e.g. ")
    assert reasons[1].startswith("1000 of 1000 split ids have no video in Deepfakes (e.g. ")


def test_wrong_root_names_missing_folder(tmp_path):
    with pytest.raises(UserError, match="original_sequences/youtube/c23/videos is missing"):
        list_videos("ffpp", tmp_path)
    with pytest.raises(UserError, match="original_sequences/actors/c40/videos is missing"):
        list_videos("dfd", tmp_path, compression="c40")
    make_celebdf(tmp_path / "celeb", n=1)
    (tmp_path / "celeb" / "List_of_testing_videos.txt").unlink()
    with pytest.raises(UserError, match="List_of_testing_videos.txt is missing"):
        list_videos("celebdf", tmp_path / "celeb")
    with pytest.raises(UserError, match="is not a folder"):
        list_videos("ffpp", tmp_path / "nope")


def test_dfd_records(tmp_path):
    root = make_dfd(tmp_path / "dfd", n=1)
    videos = list_videos("dfd", root)
    assert len(videos) == 5 and {v.split for v in videos} == {"test"}
    labels = {v.video_id: (v.method, v.label) for v in videos}
    assert labels["01__talking"] == ("real", 0)
    assert labels["01_02__talking__ABCDEF12"] == ("DeepFakeDetection", 1)
    assert list_videos("dfd", root, splits=("train",)) == []


def test_celebdf_inverted_test_list(tmp_path):
    root = make_celebdf(tmp_path / "celeb", n=1)
    listing = scan_dataset("celebdf", root)
    assert listing.failures == []
    got = {v.video_id: (v.split, v.method, v.label) for v in listing.videos}
    # The list says "1 Celeb-real/id0_0000.mp4" (1 = REAL); our label 1 = fake, so 0 here.
    assert got["id0_0000"] == ("test", "real", 0)
    assert got["00000"] == ("test", "real", 0)
    assert got["id0_id1_0000"] == ("test", "Celeb-synthesis", 1)
    assert got["id1_0001"] == ("train", "real", 0)
    assert got["id1_id0_0001"] == ("train", "Celeb-synthesis", 1)
    assert len(got) == 7
    assert {v.compression for v in listing.videos} == {"original"}


def test_celebdf_list_problems_are_failures(tmp_path):
    root = make_celebdf(tmp_path / "celeb", n=1)
    lines = [
        "0 Celeb-real/id1_0001.mp4",  # contradicts the folder (written with our convention)
        "1 YouTube-real/99999.mp4",  # listed, not on disk
        "garbage",
    ]
    (root / "List_of_testing_videos.txt").write_text("\n".join(lines))
    listing = scan_dataset("celebdf", root)
    reasons = sorted(f.reason for f in listing.failures)
    assert len(reasons) == 3
    assert any("contradicts folder Celeb-real" in r for r in reasons)
    assert any("listed in List_of_testing_videos.txt but missing" in r for r in reasons)
    assert any("unreadable line" in r for r in reasons)
    labels = {v.video_id: v.label for v in listing.videos}
    assert labels["id1_0001"] == 0  # the folder wins
