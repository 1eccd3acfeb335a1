"""The extraction job end to end on tiny stand-in layouts: manifest, resume, bad inputs."""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from prep_fixtures import blank_frame, make_celebdf, make_dfd, make_ffpp, write_video

from md_csd_tf.cli import main as cli_main
from md_csd_tf.commands import prepare
from md_csd_tf.data.manifest import MANIFEST_COLUMNS
from md_csd_tf.errors import UserError
from md_csd_tf.prep.extract import ExtractConfig, default_splits, extract_faces
from md_csd_tf.prep.faces import iou, reference_detect, square_box
from md_csd_tf.prep.video import read_frames

METHODS = ("Deepfakes", "FaceSwap")


def _config(dataset, root, out, **overrides):
    defaults = {"workers": 1, "progress": False, "image_size": 64}
    if dataset == "ffpp":
        defaults.update(methods=METHODS, splits_dir=str(Path(root) / "splits"))
    return ExtractConfig(dataset, str(root), str(out), **{**defaults, **overrides})


def _manifest(out):
    return pd.read_csv(Path(out) / "manifest.csv", dtype={"video_id": str})


def _failures(out):
    """``{file name: [reasons]}`` from failures.csv, and the number of lines."""
    reasons = {}
    with open(Path(out) / "failures.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        reasons.setdefault(Path(row["file"]).name, []).append(row["reason"])
    return reasons, len(rows)


def test_ffpp_manifest(tmp_path):
    root = make_ffpp(tmp_path / "ffpp", methods=METHODS, n=4)
    out = tmp_path / "out"
    result = extract_faces(_config("ffpp", root, out, frames=3))
    assert (result.videos_listed, result.videos_extracted, result.videos_failed) == (18, 18, 0)
    table = _manifest(out)
    assert list(table.columns) == list(MANIFEST_COLUMNS)
    assert len(table) == 18 * 3 == result.crops_written
    assert sorted(table.frame_index.unique()) == [0, 1, 2]  # consecutive from the first frame
    assert set(table[table.method == "real"].label) == {0}
    assert set(table[table.method != "real"].label) == {1}
    splits = table.groupby("video_id").split.first().to_dict()
    assert splits["000"] == splits["001_000"] == "train"
    assert splits["003"] == splits["002_003"] == "val"
    assert splits["005_004"] == "test"
    row = table[(table.video_id == "002_003") & (table.method == "FaceSwap")].iloc[0]
    assert row.path == "ffpp/c23/FaceSwap/002_003/0000.png"
    image = cv2.imread(str(out / row.path))
    assert image.shape == (64, 64, 3)
    assert (row.box_right - row.box_left) == (row.box_bottom - row.box_top) > 100
    # These fakes have their original's face geometry, so their own detection gives its boxes.
    boxes = ["box_left", "box_top", "box_right", "box_bottom"]
    fake = table[(table.video_id == "004_005") & (table.method == "Deepfakes")][boxes]
    real = table[table.video_id == "004"][boxes]
    np.testing.assert_array_equal(fake.to_numpy(), real.to_numpy())
    parquet = pd.read_parquet(out / "manifest.parquet")
    assert len(parquet) == len(table) and parquet.video_id.iloc[0] == table.video_id.iloc[0]
    assert parquet.video_id.map(type).eq(str).all()  # "000" stays a string, not 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["ffpp"]["train"]["real"] == {
        "videos": 2, "crops": 6, "frames_without_face": 0
    }  # fmt: skip
    assert summary["last_run"]["videos_extracted"] == 18


@pytest.mark.slow
def test_celebdf_and_dfd_share_an_output(tmp_path):
    out = tmp_path / "out"
    celeb = make_celebdf(tmp_path / "celeb", n=12)
    extract_faces(_config("celebdf", celeb, out, frames=4, splits=("train", "test")))
    table = _manifest(out)
    assert len(table) == 7 * 4
    assert sorted(table.frame_index.unique()) == [1, 4, 7, 10]  # uniform by default
    test = table[table.split == "test"].groupby("video_id").label.first().to_dict()
    assert test == {"id0_0000": 0, "00000": 0, "id0_id1_0000": 1}
    assert set(table[table.split == "train"].video_id) == {"id1_0001", "00001", "id1_id0_0001",
                                                          "id0_id1_0002"}  # fmt: skip
    dfd = make_dfd(tmp_path / "dfd", n=5)
    result = extract_faces(_config("dfd", dfd, out, workers=2))  # also exercises the process pool
    assert result.videos_extracted == 5 and result.videos_failed == 0
    table = _manifest(out)
    assert set(table.dataset) == {"celebdf", "dfd"}
    dfd_rows = table[table.dataset == "dfd"]
    assert len(dfd_rows) == 5 * 5 and set(dfd_rows.split) == {"test"}
    # DFD default is 25 frames: each 5-frame video is short, used whole, and reported.
    failures, _ = _failures(out)
    assert failures["01__talking.mp4"] == ["short video: 5 of 25 requested frames read; all 5 used"]


def test_resume_after_interrupted_run(tmp_path):
    root = make_dfd(tmp_path / "dfd", n=3)
    out = tmp_path / "out"
    extract_faces(_config("dfd", root, out))
    rows_before = len(_manifest(out))
    videos = out / "dfd" / "c23" / "DeepFakeDetection"
    kept = videos / "01_02__talking__ABCDEF12"
    kept_mtime = (kept / "0000.png").stat().st_mtime_ns
    # Simulate a kill in the middle of one video: its folder only exists under the temporary
    # name, with a half-written crop, and the manifest is gone.
    redo = videos / "02_01__walking__0A1B2C3D"
    partial = videos / ".partial-02_01__walking__0A1B2C3D"
    os.rename(redo, partial)
    (partial / "frames.csv").unlink()
    (partial / "0001.png").write_bytes(b"half")
    (out / "manifest.csv").unlink()
    result = extract_faces(_config("dfd", root, out))
    assert (result.videos_extracted, result.videos_skipped) == (1, 4)
    assert not partial.exists() and (redo / "frames.csv").is_file()
    assert cv2.imread(str(redo / "0001.png")) is not None
    assert (kept / "0000.png").stat().st_mtime_ns == kept_mtime  # not redone
    assert len(_manifest(out)) == rows_before
    assert not list(out.glob(".*.tmp"))


def test_rerun_with_other_crop_options_is_refused_not_silently_skipped(tmp_path):
    root = make_dfd(tmp_path / "dfd", n=2)
    out = tmp_path / "out"
    extract_faces(_config("dfd", root, out))
    with pytest.raises(UserError, match="image_size"):
        extract_faces(_config("dfd", root, out, image_size=48))
    with pytest.raises(UserError, match="another --out"):
        extract_faces(_config("dfd", root, out, frames=3))


def test_bad_inputs_are_reported_and_the_rest_completes(tmp_path):
    root = make_ffpp(tmp_path / "ffpp", methods=("Deepfakes",), n=4)
    originals = root / "original_sequences/youtube/c23/videos"
    good = (originals / "000.mp4").read_bytes()
    (originals / "001.mp4").write_bytes(good[: len(good) // 3])  # truncated: corrupt
    (originals / "002.mp4").write_text("<html>not a video</html>\n" * 20)  # non-video .mp4
    (originals / "003.mp4").write_bytes(b"")  # empty
    write_video(originals / "004.mp4", [blank_frame(i) for i in range(4)])  # no face at all
    (root / "manipulated_sequences/Deepfakes/c23/videos/005_004.mp4").unlink()  # missing id
    out = tmp_path / "out"
    result = extract_faces(
        _config("ffpp", root, out, methods=("Deepfakes", "Face2Face"), frames=6)
    )  # Face2Face is requested but not there; 6 frames asked of 4-frame videos
    failures, lines = _failures(out)
    assert "not a readable video" in failures["001.mp4"][0]
    assert "not a readable video" in failures["002.mp4"][0]
    assert failures["003.mp4"] == ["empty file (0 bytes)"]
    assert failures["004.mp4"] == [
        "short video: 4 of 6 requested frames read; all 4 used",
        "no face found in any of 4 frames read",
    ]
    assert failures["005_004.mp4"] == ["split id 005_004 (test) has no video in Deepfakes"]
    assert failures["videos"] == ["requested method folder is missing"]  # Face2Face/c23/videos
    assert failures["000.mp4"] == ["short video: 4 of 6 requested frames read; all 4 used"]
    assert result.videos_failed == 3
    table = _manifest(out)
    assert set(table[table.method == "real"].video_id) == {"000", "005"}
    assert len(table[table.method == "Deepfakes"].video_id.unique()) == 5
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["failures"]) == lines == result.failure_count
    assert summary["counts"]["ffpp"]["test"]["real"]["frames_without_face"] == 4
    # A second run skips finished videos but still reports their problems.
    again = extract_faces(_config("ffpp", root, out, methods=("Deepfakes", "Face2Face"), frames=6))
    assert again.videos_extracted == 0 and again.failure_count == result.failure_count


def test_wrong_root(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError, match="expected folder original_sequences/youtube/c23/videos"):
        extract_faces(_config("ffpp", tmp_path, out))
    assert not out.exists()  # refused before writing anything, no stray failures.csv


def test_a_root_with_the_right_folders_but_no_video_is_an_error(tmp_path):
    root = make_celebdf(tmp_path / "celeb", n=2)
    for video in root.rglob("*.mp4"):
        video.unlink()
    with pytest.raises(UserError, match=r"no celebdf videos found .* \(e\.g\. \.mp4\)"):
        extract_faces(_config("celebdf", root, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_resume_redoes_videos_whose_crops_are_missing_or_empty(tmp_path):
    root = make_dfd(tmp_path / "dfd", n=3)
    out = tmp_path / "out"
    extract_faces(_config("dfd", root, out))
    videos = out / "dfd" / "c23" / "DeepFakeDetection"
    deleted = videos / "01_02__talking__ABCDEF12" / "0001.png"
    emptied = videos / "02_01__walking__0A1B2C3D" / "0000.png"
    deleted.unlink()
    emptied.write_bytes(b"")  # what a full disk leaves behind
    result = extract_faces(_config("dfd", root, out))
    assert (result.videos_extracted, result.videos_redone, result.videos_skipped) == (2, 2, 3)
    assert cv2.imread(str(deleted)) is not None and cv2.imread(str(emptied)) is not None
    table = _manifest(out)
    assert len(table) == 5 * 3 and all((out / p).stat().st_size > 0 for p in table.path)
    # A video that cannot be redone (its file is gone) drops out of the manifest instead of
    # listing crops that do not exist.
    deleted.unlink()
    (
        root / "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__talking__ABCDEF12.mp4"
    ).unlink()
    extract_faces(_config("dfd", root, out))
    assert "01_02__talking__ABCDEF12" not in set(_manifest(out).video_id)


def test_cli_prepare(tmp_path, capsys):
    root = make_celebdf(tmp_path / "celeb", n=3)
    out = tmp_path / "out"
    argv = ["prepare", "--dataset", "celebdf", "--root", str(root), "--out", str(out),
            "--image-size", "32", "--format", "jpg", "--frames", "2", "--quiet", "--workers", "1"]  # fmt: skip
    assert cli_main(argv) == 0
    printed = capsys.readouterr().out
    # Celeb-DF's default is the paper's test list only: 3 of the 7 videos.
    assert "3 videos listed, 3 extracted" in printed and str(out / "manifest.csv") in printed
    assert set(_manifest(out).split) == {"test"}
    assert cli_main([*argv, "--splits", "train,test"]) == 0
    assert "7 videos listed, 4 extracted, 3 already done" in capsys.readouterr().out
    table = _manifest(out)
    assert len(table) == 14 and table.path.str.endswith(".jpg").all()
    (out / table.path[0]).unlink()
    assert cli_main(argv) == 0
    # The deleted crop belongs to a test video (the default splits): redone, not trusted.
    assert "1 extracted (1 redone: crops were missing), 2 already done" in capsys.readouterr().out
    assert cli_main(["prepare", "--dataset", "ffpp", "--root", str(root), "--out", str(out)]) == 2


def test_default_splits_depend_on_the_dataset():
    parser = argparse.ArgumentParser()
    prepare.add_arguments(parser)
    args = parser.parse_args(["--dataset", "celebdf", "--root", "r", "--out", "o"])
    assert prepare.config_from_args(args).splits is None  # resolved per dataset by the job
    assert default_splits("celebdf") == ("test",)
    assert default_splits("ffpp") == default_splits("dfd") == ("train", "val", "test")
    args = parser.parse_args(["--dataset", "celebdf", "--root", "r", "--out", "o",
                              "--splits", "train,test"])  # fmt: skip
    assert prepare.config_from_args(args).splits == ("train", "test")
    assert "celebdf test only" in parser.format_help().replace("\n", " ").replace("  ", " ")


def _boxes(folder):
    table = pd.read_csv(folder / "frames.csv")
    return table[["frame_index", "box_left", "box_top", "box_right", "box_bottom"]].to_numpy()


def test_crop_modes(tmp_path):
    root = make_ffpp(tmp_path / "ffpp", methods=("Deepfakes",), n=3)
    fake = Path("ffpp/c23/Deepfakes/004_005")
    # Default: the FF++ procedure's boxes on every video, fakes included.
    out = tmp_path / "exact"
    extract_faces(_config("ffpp", root, out, methods=("Deepfakes",), splits=("test",)))
    assert json.loads((out / fake / "video.json").read_text())["boxes_from_original"] is False
    video = root / "manipulated_sequences/Deepfakes/c23/videos/004_005.mp4"
    frames, _ = read_frames(video, 3, "consecutive")
    for (index, *box), frame in zip(_boxes(out / fake), frames, strict=True):
        expected = square_box(reference_detect(frame)[0], frame.shape)
        assert iou(tuple(box), expected) > 0.95, index
    # Another mode in the same folder is refused, naming the option.
    with pytest.raises(UserError, match="crops=ffpp"):
        extract_faces(_config("ffpp", root, out, methods=("Deepfakes",), splits=("test",),
                              crops="fast"))  # fmt: skip
    # Fast: fakes take their original's boxes.
    fast = tmp_path / "fast"
    extract_faces(_config("ffpp", root, fast, methods=("Deepfakes",), splits=("test",),
                          crops="fast"))  # fmt: skip
    assert json.loads((fast / fake / "video.json").read_text())["boxes_from_original"] is True
    np.testing.assert_array_equal(_boxes(fast / fake), _boxes(fast / "ffpp/c23/real/004"))
    # A folder from before the crop modes (no "crops" key) was made by the fast path: it resumes
    # in fast mode and refuses the new default.
    settings = json.loads((fast / "crop_settings.json").read_text())
    legacy = {k: settings[k] for k in ("image_size", "scale", "format", "pick")}
    (fast / "crop_settings.json").write_text(json.dumps(legacy))
    again = extract_faces(_config("ffpp", root, fast, methods=("Deepfakes",), splits=("test",),
                                  crops="fast"))  # fmt: skip
    assert again.videos_skipped == 4
    with pytest.raises(UserError, match="crops=fast"):
        extract_faces(_config("ffpp", root, fast, methods=("Deepfakes",), splits=("test",)))
