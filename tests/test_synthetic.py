"""The stand-in dataset: exact layouts, readable videos, faces dlib finds, face-only artifacts.

A tiny dataset (one official pair per split, a few small frames) is written once per module; the
artifact checks run on frames in memory, before the codec, where "equal" can mean equal.
"""

import json
import re
from pathlib import Path

import cv2
import dlib
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from md_csd_tf.cli import main
from md_csd_tf.prep import synthetic

SPLITS = Path(__file__).resolve().parent.parent / "md_csd_tf" / "resources" / "ff_splits"
FRAMES, SIZE = 5, (256, 192)


# The smallest dataset that still has every split, method and layout: one FF++ pair per split.
# The two bundled photographs keep these tests offline (test_demo_people.py covers real people).
TINY_DATASET = dict(pairs=(1, 1, 1), frames=FRAMES, size=SIZE, dfd_actors=2, dfd_scenes=1,
                    celebdf_videos=2, faces="bundled")  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    summary = synthetic.make_demo_dataset(root, **TINY_DATASET)
    return root, summary


@pytest.fixture(scope="module")
def clip():
    """A real video at the default frame size, its source-identity twin and its four fakes."""
    rng = np.random.default_rng(7)
    target = synthetic.sample_identity(rng, "astronaut")
    source = synthetic.sample_identity(rng, "grace_hopper")
    params = synthetic.sample_params(rng, n_frames=8)
    real = synthetic.render_video(target, params)
    twin = synthetic.render_video(source, params)
    boxes = synthetic.face_boxes(params)
    fakes = {
        m: synthetic.apply_manipulation(m, real, twin, boxes, np.random.default_rng(i))
        for i, m in enumerate(synthetic.FAKE_FAMILIES)
    }
    return real, boxes, fakes


def _mp4s(folder: Path) -> set[str]:
    return {p.name for p in folder.glob("*.mp4")}


def test_ffpp_layout_uses_official_pairs(dataset):
    root, summary = dataset
    ffpp = root / "ffpp"
    for split, pairs in summary["ffpp"]["pairs"].items():
        official = {tuple(p) for p in json.loads((SPLITS / f"{split}.json").read_text())}
        assert len(pairs) == 1
        assert all(tuple(p) in official for p in pairs)
    pairs = [p for ps in summary["ffpp"]["pairs"].values() for p in ps]
    reals = {f"{v}.mp4" for p in pairs for v in p}
    fakes = {f"{a}_{b}.mp4" for a, b in pairs} | {f"{b}_{a}.mp4" for a, b in pairs}
    assert all(re.fullmatch(r"\d{3}(_\d{3})?\.mp4", n) for n in reals | fakes)
    for c in ("c23", "c40"):
        assert _mp4s(ffpp / f"original_sequences/youtube/{c}/videos") == reals
        for method in ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"):
            assert _mp4s(ffpp / f"manipulated_sequences/{method}/{c}/videos") == fakes
    # No temporary file left behind.
    assert not [p for p in root.rglob("*") if p.name.startswith(".")]


def test_summary_records_every_video_with_its_people_and_split(dataset):
    root, summary = dataset
    on_disk = {str(p.relative_to(root)) for p in root.rglob("*.mp4")}
    listed = [f for v in summary["videos"] for f in v["files"]]
    assert sorted(listed) == sorted(on_disk)  # every file once
    for video in summary["videos"]:
        assert video["label"] == (video["method"] != "real")
        swap = video["method"] in synthetic.NEEDS_SOURCE
        assert len(video["people"]) == (2 if swap else 1), video
        if swap:
            assert video["people"][0] != video["people"][1], video
        assert video["split"] in ("train", "val", "test")
    # Offline, with two photographs, the summary must not claim unseen people.
    assert summary["identity_disjoint"] is False and "identity" in summary["faces"]["warning"]


def test_dfd_layout(dataset):
    root, _ = dataset
    for c in ("c23", "c40"):
        reals = _mp4s(root / f"dfd/original_sequences/actors/{c}/videos")
        fakes = _mp4s(root / f"dfd/manipulated_sequences/DeepFakeDetection/{c}/videos")
        assert len(reals) == 2 and len(fakes) == 2
        assert all(re.fullmatch(r"\d{2}__[a-z_]+\.mp4", n) for n in reals)
        for name in fakes:
            match = re.fullmatch(r"(\d{2})_(\d{2})__([a-z_]+)__([A-Z0-9]{8})\.mp4", name)
            assert match, name
            target, source, scene, _ = match.groups()
            assert target != source and f"{target}__{scene}.mp4" in reals


def test_celebdf_list_has_one_for_real(dataset):
    root, _ = dataset
    celeb = root / "celebdf"
    lines = (celeb / "List_of_testing_videos.txt").read_text().splitlines()
    listed = {}
    for line in lines:
        label, rel = line.split(" ")
        listed[rel] = int(label)
        assert (celeb / rel).is_file()
        assert listed[rel] == (0 if rel.startswith("Celeb-synthesis/") else 1)
    on_disk = {str(p.relative_to(celeb)) for p in celeb.rglob("*.mp4")}
    assert set(listed) == on_disk
    assert sorted(listed.values()) == [0, 0, 1, 1, 1]
    assert all(re.fullmatch(r"id\d+_\d{4}\.mp4", n) for n in _mp4s(celeb / "Celeb-real"))
    assert all(re.fullmatch(r"\d{5}\.mp4", n) for n in _mp4s(celeb / "YouTube-real"))
    fakes = _mp4s(celeb / "Celeb-synthesis")
    assert all(re.fullmatch(r"id\d+_id\d+_\d{4}\.mp4", n) for n in fakes)


def test_videos_open_with_requested_frames_and_size(dataset):
    root, summary = dataset
    videos = sorted(root.rglob("*.mp4"))
    assert len(videos) == summary["written"] == 6 * 5 * 2 + 2 * 2 * 2 + 5
    for path in videos[::7]:
        capture = cv2.VideoCapture(str(path))
        frames = []
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(frame)
        capture.release()
        assert len(frames) == FRAMES, path
        assert frames[0].shape == (SIZE[1], SIZE[0], 3), path


def test_rerun_skips_finished_videos(dataset):
    root, summary = dataset
    again = synthetic.make_demo_dataset(root, **TINY_DATASET)
    assert again["written"] == 0 and again["skipped"] == summary["written"]
    assert again["ffpp"]["pairs"] == summary["ffpp"]["pairs"]  # deterministic given the seed


def _decode(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    return np.stack(frames)


@pytest.mark.parametrize("resolution", [1.0, 0.6])
def test_c40_loses_more_than_c23(clip, tmp_path, resolution):
    # Measured against the frames before compression: file sizes do not order the levels once the
    # camera blurs the frame (JPEG q40's block edges then cost mp4v more bits than they save).
    real = synthetic.camera(clip[0], synthetic.VideoParams(resolution=resolution))
    psnr = {}
    for level, quality in synthetic.QUALITY.items():
        synthetic.write_video(tmp_path / f"{level}.mp4", real, quality)
        error = np.mean((_decode(tmp_path / f"{level}.mp4").astype(float) - real) ** 2)
        psnr[level] = 10 * np.log10(255**2 / error)
    assert psnr["c40"] < psnr["c23"] - 1.0, psnr


def test_rendering_is_deterministic():
    rng = np.random.default_rng(3)
    identity, params = (
        synthetic.sample_identity(rng, "grace_hopper"),
        synthetic.sample_params(rng, 3),
    )
    np.testing.assert_array_equal(
        synthetic.render_video(identity, params), synthetic.render_video(identity, params)
    )


def test_camera_resolution_blurs_the_whole_frame_and_dlib_still_finds_the_face(clip):
    real, boxes, _ = clip
    params = synthetic.VideoParams(n_frames=len(real), resolution=0.6)  # the lowest drawn
    blurred = synthetic.camera(real, params)
    assert blurred.shape == real.shape and blurred.dtype == np.uint8
    sharp = [cv2.Laplacian(f, cv2.CV_32F).var() for f in (real[0], blurred[0])]
    assert sharp[1] < 0.7 * sharp[0], sharp
    assert synthetic.camera(real, synthetic.VideoParams()) is real  # full resolution: untouched
    detector = dlib.get_frontal_face_detector()
    assert all(len(detector(f, 0)) == 1 for f in blurred)


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_dlib_finds_one_face_at_the_same_place_in_reals_and_fakes(clip):
    real, boxes, fakes = clip
    detector = dlib.get_frontal_face_detector()
    real_boxes = []
    for frame, box in zip(real, boxes, strict=True):
        found = detector(frame, 0)
        assert len(found) == 1
        r = found[0]
        real_boxes.append((r.left(), r.top(), r.right(), r.bottom()))
        assert _iou(real_boxes[-1], box) > 0.5  # the rendered box is where dlib sees the face
    for method, frames in fakes.items():
        ious = []
        for frame, ref in zip(frames, real_boxes, strict=True):
            found = detector(frame, 0)
            assert len(found) == 1, method
            r = found[0]
            ious.append(_iou((r.left(), r.top(), r.right(), r.bottom()), ref))
        # A swapped-in face has another shape (FaceSwap also misregisters it on purpose) and dlib's
        # boxes move in pyramid steps: we measured a median IoU of 0.65 to 0.8 against the real.
        assert min(ious) > 0.4 and np.median(ious) > 0.6, (method, ious)


def test_fakes_differ_from_their_target_only_inside_the_face(clip):
    real, boxes, fakes = clip
    height, width = real.shape[1:3]
    for method, frames in fakes.items():
        inside_diff = []
        for t in range(len(real)):
            y0, y1, x0, x1 = synthetic._region(boxes[t], height, width)
            outside = np.ones((height, width), bool)
            outside[max(y0 - 2, 0) : y1 + 2, max(x0 - 2, 0) : x1 + 2] = False
            np.testing.assert_array_equal(frames[t][outside], real[t][outside], err_msg=method)
            diff = np.abs(frames[t].astype(int) - real[t])[y0:y1, x0:x1]
            inside_diff.append(diff.mean())
        assert np.mean(inside_diff) > 1.0, method  # and the artifact is there


def _features(frames, boxes):
    """Per frame: global colour statistics, and spectral statistics of the face crop."""
    colour, face = [], []
    for frame, box in zip(frames, boxes, strict=True):
        pixels = frame.reshape(-1, 3).astype(np.float64)
        colour.append(np.r_[pixels.mean(0), pixels.std(0)])
        x0, y0, x1, y1 = box.astype(int)
        crop = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
        crop = cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA)
        dct = cv2.dct(crop) ** 2
        bands = [
            np.log(dct[a:b, a:b].mean() + 1e-3) for a, b in ((0, 8), (8, 16), (16, 32), (32, 64))
        ]
        lap = np.log(cv2.Laplacian(crop, cv2.CV_32F).var())
        face.append(np.r_[bands, lap, np.abs(np.diff(crop, axis=1)).mean()])
    return colour, face


@pytest.mark.slow
def test_no_global_colour_cue_but_face_artifacts_are_learnable():
    photos = sorted(synthetic.PHOTOS)
    colour, face, labels, groups = [], [], [], []
    for i in range(16):  # 16 targets, each a real video and one fake, four of each method
        rng = np.random.default_rng(100 + i)
        target = synthetic.sample_identity(rng, photos[i % 2])
        source = synthetic.sample_identity(rng, photos[(i + 1) % 2])
        params = synthetic.sample_params(rng, n_frames=6, size=(256, 192))
        real, boxes = synthetic.render_video(target, params), synthetic.face_boxes(params)
        method = synthetic.FFPP_METHODS[i % 4]
        twin = synthetic.render_video(source, params) if method in synthetic.NEEDS_SOURCE else None
        fake = synthetic.apply_manipulation(method, real, twin, boxes, rng)
        for label, frames in ((0, real), (1, fake)):
            c, f = _features(frames, boxes)
            colour += c
            face += f
            labels += [label] * len(frames)
            groups += [i] * len(frames)
    # A real video and its fakes share a group, so no fold sees a video's twin during training.
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folds = GroupKFold(4)
    global_acc = cross_val_score(classifier, colour, labels, groups=groups, cv=folds).mean()
    face_acc = cross_val_score(classifier, face, labels, groups=groups, cv=folds).mean()
    assert global_acc < 0.7, global_acc
    assert face_acc > 0.75 and face_acc > global_acc + 0.15, (face_acc, global_acc)


@pytest.mark.slow
def test_cli_writes_and_reports_and_workers_change_nothing(tmp_path, capsys):
    args = ["--pairs", "1,1,1", "--frames", "2", "--size", "160x120", "--faces", "bundled"]
    assert main(["make-demo-data", "--out", str(tmp_path / "a"), *args, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "ffpp: pairs train/val/test 1/1/1" in out and str(tmp_path / "a") in out
    assert main(["make-demo-data", "--out", str(tmp_path / "b"), *args]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.mp4"))
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*.mp4"))
    for rel in files:  # the same bytes whichever process rendered a video
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert main(["make-demo-data", "--out", str(tmp_path / "c"), "--videos", "4"]) == 2
