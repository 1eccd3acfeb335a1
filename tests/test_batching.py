"""Scoring many inputs: crops of consecutive inputs share model calls, no padding, --frames auto.

`score_inputs` crops every input in one thread and batches the crops of consecutive inputs into
model calls of up to `batch_size` (`inference.batch`); the rows must be those of scoring each
input alone. `--frames auto` scores a video's 32 grid frames in stages (`inference.sequential`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from inference_fixtures import make_media, make_model, render_face_video, write_png

from md_csd_tf import cli
from md_csd_tf.errors import UserError
from md_csd_tf.inference.batch import collect_inputs, score_inputs
from md_csd_tf.inference.detector import Detector
from md_csd_tf.prep import synthetic


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("batching")
    frames = render_face_video(n_frames=32)
    model = make_model(root / "tiny.keras", frames[::4])
    media = make_media(root / "media", frames[:8])
    media["long"] = root / "long.mp4"  # 32 frames: the grid of --frames auto
    synthetic.write_video(media["long"], frames)
    crops = root / "crops"  # a folder of 7 face crops of assorted sizes, for --no-detect
    crops.mkdir()
    rng = np.random.default_rng(0)
    for i in range(7):
        side = 71 if i % 2 else 90
        write_png(crops / f"crop{i}.png", rng.integers(0, 256, (side, side, 3), np.uint8))
    return {"model": model, "crops": crops, "root": root, **media}


@pytest.fixture(scope="module")
def model(files):
    return Detector.load(files["model"]).model


def detector(model, batch_size=4, **kwargs):
    return Detector(model, batch_size=batch_size, threshold=0.5, **kwargs)


def assert_same_rows(rows, reference):
    assert [r.error for r in rows] == [r.error for r in reference]
    for a, b in zip(rows, reference, strict=True):
        assert (a.input, a.kind, a.verdict, a.frames_scored) == (
            b.input,
            b.kind,
            b.verdict,
            b.frames_scored,
        )
        assert a.frame_indices == b.frame_indices and a.frames_sampled == b.frames_sampled
        np.testing.assert_allclose(a.frame_scores, b.frame_scores, atol=1e-5)
        if a.ok:
            assert a.fake_probability == pytest.approx(b.fake_probability, abs=1e-5)


def test_a_folder_of_images_costs_one_call_per_batch_not_per_image(files, model):
    inputs = collect_inputs([files["crops"]])
    assert len(inputs) == 7
    batched = detector(model)
    rows = score_inputs(batched, inputs, progress=False, detect=False)
    assert batched.model_calls == math.ceil(7 / 4)  # 4 + 3, the last call not padded to 4
    alone = detector(model)
    reference = score_inputs(alone, inputs, progress=False, prefetch=False, detect=False)
    assert alone.model_calls == 7
    assert_same_rows(rows, reference)
    # The same scores as predict_crops one crop at a time.
    from md_csd_tf.inference.crops import read_image

    one = [float(alone.predict_crops([read_image(p)])[0]) for p, _ in inputs]
    np.testing.assert_allclose([r.fake_probability for r in rows], one, atol=1e-5)


def test_predict_crops_takes_any_batch_unpadded(model):
    scorer = detector(model, batch_size=4)
    crops = np.random.default_rng(1).integers(0, 256, (7, 71, 71, 3), np.uint8)
    seen = []
    scorer.use_runtime(lambda c: seen.append(len(c)) or np.full(len(c), 0.25, np.float32))
    assert scorer.predict_crops(crops).tolist() == [0.25] * 7
    assert seen == [4, 3] and scorer.model_calls == 2  # runtime calls are counted too
    keras = detector(model, batch_size=4)
    scores = keras.predict_crops(crops)  # calls of 4 and 3
    assert keras.model_calls == 2
    # Calls of 3, 3 and 1 through the same traced functions: the same scores.
    np.testing.assert_allclose(
        detector(model, batch_size=3).predict_crops(crops), scores, atol=1e-5
    )
    one = [float(keras.predict_crops(crops[k : k + 1])[0]) for k in range(7)]
    np.testing.assert_allclose(one, scores, atol=1e-5)
    assert keras._forward.experimental_get_tracing_count() == 1  # one trace for every size


def test_a_video_tail_and_the_next_image_share_a_call(files, model):
    inputs = collect_inputs([files["video"], files["image"]])
    batched = detector(model)
    rows = score_inputs(batched, inputs, progress=False, frames=6, aggregate="mean")
    # 6 video crops + 1 image crop = 7: calls of 4 and 3 (alone: 4 + 2 and 1).
    assert batched.model_calls == 2 and rows[0].frames_scored == 6
    alone = detector(model)
    reference = score_inputs(alone, inputs, progress=False, prefetch=False, frames=6)
    assert alone.model_calls == 3
    assert_same_rows(rows, reference)


@pytest.mark.slow  # 3-7 s: a video decoded and searched for faces
def test_a_bad_input_in_the_middle_costs_only_its_row(files, model):
    order = ["image", "text_mp4", "video", "noise", "truncated", "noface_video", "video", "gray"]
    inputs = collect_inputs([files[name] for name in order]) + [
        (str(files["root"] / "no"), "missing")
    ]
    rows = score_inputs(detector(model), inputs, progress=False, frames=5)
    reference = score_inputs(detector(model), inputs, progress=False, prefetch=False, frames=5)
    assert [r.ok for r in rows] == [True, False, True, False, False, False, True, True, False]
    assert all(r.input in r.error for r in rows if not r.ok)
    assert_same_rows(rows, reference)


def confident(model, score):
    """A detector whose every crop scores `score` (a runtime stand-in for the model)."""
    scorer = detector(model)
    scorer.use_runtime(lambda crops: np.full(len(crops), score, np.float32))
    return scorer


def test_frames_auto_stops_early_on_a_confident_video(files, model):
    sure = confident(model, 0.99).predict_video(files["long"], frames="auto")
    assert sure.verdict == "fake" and sure.frames_scored == sure.frames_sampled == 8 < 32
    # The first stage: every 4th frame of the grid (here the video's 32 frames), in order.
    assert sure.frame_indices == list(range(2, 32, 4))
    # With other inputs: the same row, the image scored while the video waits for a decision.
    inputs = collect_inputs([files["long"], files["image"]])
    rows = score_inputs(confident(model, 0.99), inputs, progress=False, frames="auto")
    assert rows[0].frame_indices == sure.frame_indices and rows[0].frames_sampled == 8
    assert rows[1].ok and rows[1].fake_probability == pytest.approx(0.99)
    with pytest.raises(UserError, match="--every"):
        detector(model).predict_video(files["long"], frames="auto", sampling="every", every_k=2)


@pytest.mark.slow
def test_frames_auto_scores_all_32_on_an_uncertain_video(files, model):
    unsure = confident(model, 0.5).predict_video(files["long"], frames="auto")  # at the threshold
    full = detector(model).video_crops(files["long"], frames=32)[1]
    assert unsure.frames_scored == unsure.frames_sampled == 32 and unsure.frame_indices == full
    inputs = collect_inputs([files["long"], files["image"], files["long"]])
    for score in (0.99, 0.5):
        rows = score_inputs(confident(model, score), inputs, progress=False, frames="auto")
        alone = score_inputs(
            confident(model, score), inputs, progress=False, prefetch=False, frames="auto"
        )
        assert_same_rows(rows, alone)
        assert rows[0].frames_scored == (8 if score > 0.5 else 32)


@pytest.mark.slow
def test_frames_auto_keeps_the_scores_of_the_model(files, model):
    # The real model: the stage scores are the scores of those frames at --frames 32. Without
    # tracking, as a tracked search starts from the face before in scoring order, which differs.
    auto = detector(model, track=False).predict_video(files["long"], frames="auto")
    full = detector(model, track=False).predict_video(files["long"], frames=32)
    position = {index: k for k, index in enumerate(full.frame_indices)}
    expected = [full.frame_scores[position[i]] for i in auto.frame_indices]
    np.testing.assert_allclose(auto.frame_scores, expected, atol=1e-5)


@pytest.mark.slow  # 3-7 s: a video decoded and searched for faces
def test_cli_frames_auto(files, capsys):
    # An 8-frame video: its grid is its 8 frames, scored in 3 stages (2, 2 and 4 frames).
    argv = ["predict", "--model", str(files["model"]), str(files["video"]), "--quiet"]
    assert cli.main([*argv, "--frames", "auto", "--threshold", "0.5"]) == 0
    assert "1 of 1 inputs scored" in capsys.readouterr().out
    assert cli.main([*argv, "--frames", "auto", "--every", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--frames auto" in err
