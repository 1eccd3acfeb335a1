"""Scoring videos and images: API, CLI table and files, aggregation, bad inputs, bad models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from inference_fixtures import make_bad_models, make_media, make_model, render_face_video

from md_csd_tf import cli
from md_csd_tf.errors import UserError
from md_csd_tf.evaluation.metrics import aggregate_videos, video_score
from md_csd_tf.inference.batch import collect_inputs, score_inputs
from md_csd_tf.inference.detector import Detector, InputError
from md_csd_tf.prep import synthetic


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("inference")
    frames = render_face_video()
    model = make_model(root / "tiny.keras", frames)
    return {"model": model, **make_media(root / "media", frames), "root": root}


@pytest.fixture(scope="module")
def detector(files):
    return Detector.load(files["model"], batch_size=4)


@pytest.mark.slow
def test_video_result_and_aggregation(files, detector):
    result = detector.predict_video(files["video"], frames=6)
    assert result.frames_sampled == 6 and result.frames_scored == 6
    assert result.frame_indices == sorted(set(result.frame_indices))
    assert len(result.boxes) == 6 and all(b[2] > b[0] and b[3] > b[1] for b in result.boxes)
    scores = result.frame_scores
    assert scores.shape == (6,) and np.all((scores > 0) & (scores < 1))
    assert scores.std() > 0.01  # the sharpened head tells the frames apart
    assert result.score == pytest.approx(scores.mean(), abs=1e-7)
    assert result.label == int(result.score > 0.5)
    # One aggregator: evaluation's per-video rows and predict's video score agree.
    table = pd.DataFrame({"video_id": "v", "label": 0, "prob": scores})
    for how in ("mean", "vote"):
        expected = aggregate_videos(table, how=how, threshold=0.5)["prob"].iloc[0]
        assert video_score(scores, how, 0.5) == pytest.approx(expected, abs=1e-12)
    # Same crops, a ragged last batch (not padded) and a different batch size: same scores.
    voted = Detector(detector.model, batch_size=3).predict_video(
        files["video"], frames=6, aggregate="vote", threshold=0.5
    )
    np.testing.assert_allclose(voted.frame_scores, scores, atol=1e-6)
    assert voted.score == pytest.approx(np.mean(scores > 0.5))
    assert voted.label == int(voted.score > 0.5)


def test_every_k_sampling(files, detector):
    result = detector.predict_video(files["video"], sampling="every", every_k=3, frames=None)
    assert result.frame_indices == [0, 3, 6]


def test_images_of_any_mode_are_scored(files, detector):
    base = detector.predict_image(files["image"])
    assert 0 < base.score < 1 and base.frames_scored == 1
    # RGBA drops alpha, 16-bit maps back to the same 8 bits: exactly the same face.
    for name in ("rgba", "deep"):
        assert detector.predict_image(files[name]).score == pytest.approx(base.score, abs=1e-6)
    for name in ("gray", "odd"):
        assert 0 < detector.predict_image(files[name]).score < 1
    # An array works as well as a file, and --no-detect takes the image as the crop.
    crop, _, _ = detector.cropper.crop(detector_frame(files))
    assert detector.predict_image(crop, detect=False).score == pytest.approx(
        float(detector.predict_crops([crop])[0]), abs=1e-7
    )


def detector_frame(files):
    from md_csd_tf.inference.detector import read_image

    return read_image(files["image"])


@pytest.mark.parametrize("name", ["noise", "flat", "text_mp4", "truncated", "noface_video"])
def test_bad_inputs_raise_one_line_naming_the_input(files, detector, name):
    with pytest.raises(InputError) as info:
        if str(files[name]).endswith(".png"):
            detector.predict_image(files[name])
        else:
            detector.predict_video(files[name])
    message = str(info.value)
    assert str(files[name]) in message and "\n" not in message


def test_bad_models_are_refused(files):
    bad = make_bad_models(files["root"] / "models")
    for name, path in bad.items():
        with pytest.raises(UserError) as info:
            Detector.load(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value), name
    assert "not an md-csd-tf" in str(pytest.raises(UserError, Detector.load, bad["foreign"]).value)
    # Keras' own refusal is long and ended up cut mid-sentence; ours is whole and says why.
    refusal = str(pytest.raises(UserError, Detector.load, bad["lambda"]).value)
    assert refusal.endswith("md-csd-tf models contain none, so use a model saved by md-csd-tf.")
    assert "Lambda" in refusal and "safe_mode=False" not in refusal
    # The CLI turns them into exit status 2 and one line.
    assert cli.main(["predict", "--model", str(bad["corrupt"]), str(files["image"])]) == 2


@pytest.mark.slow
def test_cli_table_files_and_exit_status(files, detector, capsys):
    media = files["root"] / "media"
    out_csv = files["root"] / "out" / "results.csv"
    status = cli.main(
        ["predict", "--model", str(files["model"]), str(media), str(files["root"] / "nothere"),
         "--frames", "6", "--batch-size", "4", "--output", str(out_csv), "--quiet"]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert status == 1  # some inputs failed, the rest were scored
    inputs = collect_inputs([media])
    table = pd.read_csv(out_csv)
    assert len(table) == len(inputs) + 1
    assert list(table.columns) == [
        "input", "kind", "frames_scored", "fake_probability", "verdict", "error", "faces",
        "decided_by",
    ]  # fmt: skip
    by_name = table.set_index("input")
    good = by_name.loc[[str(files[n]) for n in ("video", "image", "gray", "rgba", "deep", "odd")]]
    assert (good["error"].isna()).all() and good["verdict"].isin(["real", "fake"]).all()
    bad = [files[n] for n in ("noise", "flat", "text_mp4", "truncated", "noface_video")]
    for path in [*bad, files["root"] / "nothere"]:
        row = by_name.loc[str(path)]
        assert str(path) in row["error"] and np.isnan(row["fake_probability"])
        assert f"error: {row['error']}" in captured.err
    # The printed table holds every input; the scores agree with the API.
    assert all(str(p) in captured.out for p in by_name.index)
    api = detector.predict_video(files["video"], frames=6)
    assert by_name.loc[str(files["video"]), "fake_probability"] == pytest.approx(api.score, 1e-6)
    assert by_name.loc[str(files["video"]), "frames_scored"] == 6
    assert f"{api.score:.4f}" in captured.out
    assert not list(out_csv.parent.glob(".*tmp"))  # the atomic write left nothing behind


@pytest.mark.slow
def test_cli_json_vote_all_good(files, detector, capsys):
    out_json = files["root"] / "out" / "results.json"
    status = cli.main(
        ["predict", "--model", str(files["model"]), str(files["video"]), str(files["image"]),
         "--every", "2", "--aggregate", "vote", "--output", str(out_json), "--quiet"]
    )  # fmt: skip
    assert status == 0
    data = json.loads(out_json.read_text())
    assert data["settings"]["aggregate"] == "vote" and data["settings"]["every_k"] == 2
    video, image = data["results"]
    assert video["frame_indices"] == [0, 2, 4, 6]
    assert video["fake_probability"] == pytest.approx(
        np.mean(np.array(video["frame_scores"]) > 0.5)
    )
    api = detector.predict_image(files["image"])
    assert image["fake_probability"] == pytest.approx(api.score, abs=1e-6)
    assert "2 of 2 inputs scored" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_says_when_only_some_sampled_frames_had_a_face(files, capsys):
    flat = np.full((3, 240, 320, 3), 90, np.uint8)
    video = files["root"] / "partly.mp4"
    synthetic.write_video(video, np.concatenate([render_face_video()[:3], flat]))
    status = cli.main(
        ["predict", "--model", str(files["model"]), str(video), "--frames", "6", "--quiet"]
    )
    printed = capsys.readouterr().out
    assert status == 0
    assert f"note: {video}: only 3 of 6 sampled frames had a face" in printed


def test_cli_checks_the_output_before_scoring(files, capsys):
    blocker = files["root"] / "a-file"
    blocker.write_text("")
    output = blocker / "results.csv"
    argv = ["predict", "--model", str(files["model"]), str(files["video"]), "--output", str(output)]
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing was scored, no table printed and then lost
    assert captured.err.count("\n") == 1 and f"--output {output}" in captured.err


def test_tracking_keeps_the_per_frame_crops(files, detector, tmp_path):
    # Tracking starts each frame's search from the previous face's size; the crops must stay
    # within IoU 0.9 of detection from scratch in every frame, on the same frames.
    from md_csd_tf.prep.faces import iou

    video = tmp_path / "moving.mp4"
    synthetic.write_video(video, render_face_video(seed=3, n_frames=16))
    fresh = Detector(detector.model, batch_size=4, track=False)
    tracked = detector.video_crops(video, frames=8)
    scratch = fresh.video_crops(video, frames=8)
    assert tracked[1] == scratch[1] and len(tracked[1]) == 8  # same frames
    assert min(iou(a, b) for a, b in zip(tracked[2], scratch[2], strict=True)) >= 0.9
    assert detector.track and fresh.timings["crop"] > 0  # crop timed apart from detection


@pytest.mark.slow
def test_prefetch_gives_the_rows_of_one_input_at_a_time(files, detector):
    # Every input is decoded and cropped in one thread while the model scores: same rows,
    # errors included, whatever the order of videos, images and bad inputs.
    order = ["video", "image", "video", "truncated", "noface_video", "video", "text_mp4"]
    inputs = collect_inputs([files[name] for name in order])
    options = dict(frames=4, sampling="uniform", aggregate="mean", threshold=0.5)
    ahead = score_inputs(detector, inputs, progress=False, prefetch=True, **options)
    serial = score_inputs(detector, inputs, progress=False, prefetch=False, **options)
    assert [r.error for r in ahead] == [r.error for r in serial]
    assert sum(r.ok for r in ahead) == 4
    for a, b in zip(ahead, serial, strict=True):
        assert a.frame_indices == b.frame_indices
        np.testing.assert_allclose(a.frame_scores, b.frame_scores, atol=1e-6)


def test_crops_started_before_the_model_are_taken_over_only_if_they_are_its(files, detector):
    # `md-csd predict` crops the first inputs while TensorFlow loads, with a cropper built from
    # the crop size in the .keras file; score_inputs must drop those crops if they differ.
    from md_csd_tf.inference.crops import CropStream, saved_crop_size
    from md_csd_tf.prep.faces import FaceCropper

    assert saved_crop_size(files["model"]) == detector.cropper.image_size
    assert saved_crop_size(files["image"]) is None  # not a .keras archive
    inputs = collect_inputs([files["video"], files["image"], files["video"]])
    options = dict(frames=4, sampling="uniform", aggregate="mean", threshold=0.5)
    sampling = dict(frames=4, sampling="uniform")
    serial = score_inputs(detector, inputs, progress=False, prefetch=False, **options)
    for size in (detector.cropper.image_size, 40):  # the model's crops, then foreign ones
        early = CropStream(inputs, FaceCropper(image_size=size), True, True, 4, **sampling)
        early.start()
        assert early.matches(inputs, detector.cropper, True, True, **sampling) == (size != 40)
        rows = score_inputs(detector, inputs, progress=False, prefetch=early, **options)
        for a, b in zip(rows, serial, strict=True):
            assert a.ok and a.frame_indices == b.frame_indices
            np.testing.assert_allclose(a.frame_scores, b.frame_scores, atol=1e-6)
