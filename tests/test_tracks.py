"""Every face in a video (`md-csd predict --faces all`): the linking rule on boxes, two stand-in
people in one video giving two tracks, the video verdict rule, and `--faces largest` keeping
today's rows."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from md_csd_tf.inference.batch import _Scoring, _video_row, score_input, score_inputs
from md_csd_tf.inference.crops import iter_video_faces
from md_csd_tf.inference.tracks import MAX_GAP, Linker, counted_frames, link_faces
from md_csd_tf.prep import synthetic
from md_csd_tf.prep.faces import FaceCropper

WIDTH = 320  # each person's half of the two-person frame


def _box(x: int, y: int, side: int = 100) -> tuple[int, int, int, int]:
    return (x, y, x + side, y + side)


# -- the linking rule on boxes ------------------------------------------------------------------


def test_two_faces_crossing_keep_their_tracks():
    # A walks right on top, B left below; they overlap mid-way (IoU ~0.2 between them there)
    # while each moves 30 px a frame (IoU ~0.54 with its own last box).
    frames = [[_box(30 * t, 0), _box(300 - 30 * t, 60)] for t in range(11)]
    ids = link_faces(frames)
    assert all(frame == [0, 1] for frame in ids), ids


def test_faces_given_in_another_order_keep_their_ids():
    frames = [[_box(0, 0), _box(300, 0)], [_box(305, 5), _box(5, 0)], [_box(10, 0), _box(310, 5)]]
    assert link_faces(frames) == [[0, 1], [1, 0], [0, 1]]


def test_a_face_that_moved_far_is_matched_by_its_centre():
    # 45 px of a 100 px face: IoU 0.38 -> 0.29 (< IOU_MIN), centre within half the side.
    assert link_faces([[_box(0, 0)], [_box(45, 0)]]) == [[0], [0]]
    assert link_faces([[_box(0, 0)], [_box(60, 0)]]) == [[0], [1]]


def test_a_face_missing_a_few_frames_comes_back_on_its_track_and_later_on_a_new_one():
    short = [[_box(0, 0)]] + [[]] * MAX_GAP + [[_box(5, 0)]]
    assert link_faces(short)[-1] == [0]
    long = [[_box(0, 0)]] + [[]] * (MAX_GAP + 1) + [[_box(5, 0)]]
    assert link_faces(long)[-1] == [1]


def test_a_new_face_starts_a_new_track_and_a_taken_track_is_not_shared():
    linker = Linker()
    assert linker.add([_box(0, 0)]) == [0]
    assert linker.add([_box(0, 0), _box(400, 0)]) == [0, 1]
    # Two faces near one track: the better one keeps it, the other is new.
    assert linker.add([_box(30, 0), _box(2, 0), _box(400, 0)]) == [2, 0, 1]


def test_counted_frames_is_at_least_three_and_a_quarter():
    assert [counted_frames(n) for n in (1, 8, 12, 13, 32)] == [3, 3, 3, 4, 8]


# -- the video rule -----------------------------------------------------------------------------


class _Rule:
    """What `_video_row` reads of a detector: `video_result` (the real one, mean aggregate)."""

    def video_result(self, *args):
        from md_csd_tf.inference.detector import Detector

        return Detector.video_result(self, *args)


def _scoring(faces: dict[int, tuple[list[int], float]]) -> _Scoring:
    """Crops of each identity on the given frames, all scored its one score."""
    scoring = _Scoring()
    for face, (frames, score) in faces.items():
        for index in frames:
            scoring.indices.append(index)
            scoring.faces.append(face)
            scoring.boxes.append(_box(100 * face, 0))
            scoring.scores.append(score)
    return scoring


def test_the_video_is_fake_when_any_counted_identity_is():
    frames = list(range(0, 80, 10))
    row = _video_row(
        _Rule(), "v.mp4", _scoring({0: (frames, 0.2), 1: (frames, 0.9)}), 8, "mean", 0.5
    )
    assert (row.verdict, row.decided_by, row.faces) == ("fake", 1, 2)
    assert row.fake_probability == pytest.approx(0.9)
    assert [face.verdict for face in row.identities] == ["real", "fake"]
    assert row.frame_indices == frames and row.boxes == [_box(100, 0)] * 8


def test_all_real_the_highest_counted_decides_and_a_brief_fake_face_does_not_count():
    frames = list(range(8))
    row = _video_row(
        _Rule(),
        "v",
        _scoring({0: (frames, 0.3), 1: (frames, 0.4), 2: ([3, 4], 0.99)}),
        8,
        "mean",
        0.5,
    )
    assert [face.counted for face in row.identities] == [True, True, False]
    assert (row.verdict, row.decided_by) == ("real", 1)
    assert row.fake_probability == pytest.approx(0.4)


def test_with_no_identity_counted_the_longest_track_decides():
    row = _video_row(_Rule(), "v", _scoring({0: ([0], 0.9), 1: ([1, 2], 0.1)}), 2, "mean", 0.5)
    assert not any(face.counted for face in row.identities)
    assert (row.decided_by, row.verdict, row.frames_scored) == (1, "real", 2)


# -- stand-in videos ----------------------------------------------------------------------------


def _person(name: str, seed: int, frames: int) -> np.ndarray:
    params = synthetic.sample_params(
        np.random.default_rng(seed), n_frames=frames, size=(WIDTH, 240)
    )
    return synthetic.render_video(synthetic.Identity(name), params)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """A two-person video (the astronaut left, Grace Hopper right) and a one-person one."""
    root = tmp_path_factory.mktemp("tracks")
    frames = 8
    two = np.concatenate([_person("astronaut", 0, frames), _person("grace_hopper", 1, frames)], 2)
    synthetic.write_video(root / "two.mp4", two)
    synthetic.write_video(root / "one.mp4", _person("astronaut", 2, frames))
    return {"two": str(root / "two.mp4"), "one": str(root / "one.mp4")}


@pytest.fixture(scope="module")
def detector():
    from md_csd_tf.inference.detector import Detector

    return Detector.pretrained()


def test_two_people_in_one_video_are_two_tracks(videos):
    sides = {}
    for _, faces in iter_video_faces(FaceCropper(image_size=128), videos["two"], frames=8):
        assert len(faces) == 2
        for _, (left, _, right, _), face in faces:
            sides.setdefault(face, set()).add((left + right) / 2 < WIDTH)
    assert sorted(sides) == [0, 1]  # two identities, each always on its own side
    assert sorted(len(side) for side in sides.values()) == [1, 1] and sides[0] != sides[1]


@pytest.mark.slow
def test_the_two_person_video_verdict_follows_the_rule(videos, detector):
    threshold = detector.threshold
    [row] = score_inputs(
        detector, [(videos["two"], "video")], progress=False, frames=8, faces="all"
    )
    assert row.ok and row.faces == 2
    assert all(face.counted and len(face.frame_indices) == 8 for face in row.identities)
    for face in row.identities:  # each identity is scored as a video of its own crops
        assert face.fake_probability == pytest.approx(np.mean(face.frame_scores), abs=1e-6)
        assert face.verdict == ("fake" if face.fake_probability > threshold else "real")
    top = max(row.identities, key=lambda face: face.fake_probability)
    assert row.decided_by == top.id and row.fake_probability == top.fake_probability
    fake = any(face.verdict == "fake" for face in row.identities)
    assert row.verdict == ("fake" if fake else "real")
    # The rule holds whichever way the threshold falls: between the two scores, the top decides.
    low, high = sorted(face.fake_probability for face in row.identities)
    [again] = score_inputs(
        detector, [(videos["two"], "video")], progress=False, frames=8, faces="all",
        threshold=(low + high) / 2,
    )  # fmt: skip
    assert (again.verdict, again.decided_by) == ("fake", top.id)
    # Its crops are those of the boxes it reports: the deciding face's, frame by frame.
    assert again.boxes == top.boxes and again.frame_indices == top.frame_indices


@pytest.mark.slow
def test_faces_largest_keeps_todays_rows_and_all_agrees_on_one_face(videos, detector):
    inputs = [(videos["one"], "video")]
    today = score_input(detector, videos["one"], "video", frames=8)  # Detector.predict_video
    [largest] = score_inputs(detector, inputs, progress=False, frames=8, faces="largest")
    [default] = score_inputs(detector, inputs, progress=False, frames=8)
    assert dataclasses.asdict(largest) == dataclasses.asdict(today) == dataclasses.asdict(default)
    assert largest.faces == 1 and largest.decided_by == 0
    [every] = score_inputs(detector, inputs, progress=False, frames=8, faces="all")
    # One person: every face is the face `detect` finds, crop for crop, so the same row.
    assert dataclasses.asdict(every) == dataclasses.asdict(largest)


def test_detect_every_gives_detect_s_face_first_then_the_other(videos):
    import cv2

    cropper = FaceCropper(image_size=128)
    capture = cv2.VideoCapture(videos["two"])
    ok, frame = capture.read()
    capture.release()
    frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    found = cropper.detect_every(frame)
    assert len(found) == 2 and found[0] == cropper.detect(frame)
    assert {(box[0] + box[2]) / 2 < WIDTH for box, _ in found} == {True, False}
    # No face at all: nothing, whatever the minimum size.
    assert cropper.detect_every(np.full_like(frame, 90), min_side=None) == []


@pytest.mark.slow
def test_predict_cli_writes_identities(videos, tmp_path, capsys):
    import csv
    import json

    from md_csd_tf import cli

    out = tmp_path / "rows.json"
    assert (
        cli.main(["predict", videos["two"], "--frames", "8", "--quiet", "--output", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    [row] = json.loads(out.read_text())["results"]
    assert len(row["identities"]) == 2 and row["decided_by"] in (0, 1)
    decider = row["identities"][row["decided_by"]]
    assert row["fake_probability"] == decider["fake_probability"]
    assert row["boxes"] == decider["boxes"] and len(row["boxes"]) == 8
    assert f"{videos['two']}: 2 faces, face {row['decided_by']} decides" in printed
    table = tmp_path / "rows.csv"
    argv = ["predict", videos["two"], "--frames", "8", "--quiet", "--faces", "largest"]
    assert cli.main([*argv, "--output", str(table)]) == 0
    [line] = list(csv.DictReader(table.open()))
    assert (line["faces"], line["decided_by"]) == ("1", "0")
