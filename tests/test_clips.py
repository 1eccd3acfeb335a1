"""Clip pipeline (`md_csd_tf.data.clips`): T consecutive crops of one video, in order, with frame
and video labels; balanced training stream; the crop-to-input path on clip batches."""

import numpy as np
import pytest
import tensorflow as tf
from data_fixtures import write_crop_manifest

from md_csd_tf.data.clips import clip_steps_per_epoch, clip_table, make_clip_dataset
from md_csd_tf.data.inputs import crops_to_inputs
from md_csd_tf.data.manifest import read_manifest, select
from md_csd_tf.data.pipeline import PipelineConfig, decode_crop
from md_csd_tf.frequency import log_dct

SIZE = 32
CONFIG = PipelineConfig(image_size=SIZE, batch_size=2, seed=1)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    videos = {"train": {"real": 2, "Deepfakes": 3}, "test": {"real": 1, "Deepfakes": 1}}
    return read_manifest(write_crop_manifest(tmp_path_factory.mktemp("c"), SIZE, videos, 5))


def test_clips_are_consecutive_frames_of_one_video_in_order(table):
    frames = select(table, split="test").sample(frac=1.0, random_state=0)  # shuffled rows
    paths, frame_labels, video_labels, owner, videos = clip_table(frames, 2, stride=1)
    assert paths.shape == (8, 2)  # 2 videos x 4 starts of a 2-frame run in 5 frames
    for clip, video in zip(paths, owner, strict=True):
        parents = {p.rsplit("/", 2)[-2] for p in clip}
        assert parents == {videos["video_id"][video]}  # one video
        indices = [int(p.rsplit("/", 1)[-1][:4]) for p in clip]
        assert indices[1] == indices[0] + 1  # consecutive, in order
    np.testing.assert_array_equal(frame_labels[:, 0], video_labels)
    assert set(videos["label"]) == {0, 1}
    # Disjoint clips by default; a short video is padded with its last frame.
    assert clip_table(frames, 2)[0].shape == (4, 2)
    short = clip_table(frames, 7)[0]
    assert short.shape == (2, 7) and short[0, -1] == short[0, -3]


def test_evaluation_batches_carry_crops_spectra_and_labels_in_order(table):
    frames = select(table, split="test")
    batches = list(make_clip_dataset(frames, CONFIG, 3, training=False, stride=2))
    paths, frame_labels, video_labels, _, _ = clip_table(frames, 3, stride=2)
    inputs, labels = batches[0]
    assert inputs["rgb"].shape == (2, 3, SIZE, SIZE, 3) and inputs["freq"].shape[1] == 3
    got_video = np.concatenate([y["video"].numpy() for _, y in batches])
    got_frame = np.concatenate([y["frame"].numpy() for _, y in batches])
    np.testing.assert_array_equal(got_video, video_labels)
    np.testing.assert_array_equal(got_frame, frame_labels)
    for t in range(3):
        crop = decode_crop(tf.constant(paths[0, t]), SIZE)
        np.testing.assert_array_equal(inputs["rgb"][0, t].numpy(), crop.numpy().astype(np.float32))
    np.testing.assert_allclose(inputs["freq"][0, 2].numpy(), log_dct(crop).numpy(), atol=1e-4)


def test_training_clips_are_balanced_over_videos(table):
    frames = select(table, split="train")  # 2 real, 3 fake videos
    stream = make_clip_dataset(frames, CONFIG, 2, training=True).take(40)
    video = np.concatenate([y["video"].numpy() for _, y in stream])
    assert abs(video.mean() - 0.5) < 0.2
    assert clip_steps_per_epoch(frames, CONFIG, 2) == 2 * 2 * 2 // 2  # 2 disjoint clips/video


def test_crops_to_inputs_on_clip_batches_equals_it_frame_by_frame():
    crops = np.random.default_rng(0).integers(0, 255, (2, 3, 40, 40, 3)).astype(np.uint8)
    clip = crops_to_inputs(crops, "dct", ("rgb", "freq"), image_size=SIZE)
    flat = crops_to_inputs(crops.reshape(6, 40, 40, 3), "dct", ("rgb", "freq"), image_size=SIZE)
    assert clip["rgb"].shape == (2, 3, SIZE, SIZE, 3)
    for key in ("rgb", "freq"):
        np.testing.assert_array_equal(clip[key].numpy().reshape(flat[key].shape), flat[key])
    traced = tf.function(lambda c: crops_to_inputs(c, "dct", ("rgb",), SIZE))
    spec = traced.get_concrete_function(tf.TensorSpec((None, 3, None, None, 3), tf.uint8))
    assert spec.structured_outputs["rgb"].shape.as_list() == [None, 3, SIZE, SIZE, 3]


class MeanPixelClip:
    """A stand-in clip detector: P(fake) = mean pixel of the clip / 255 (checkable by hand)."""

    detector, branches, transform, image_size, clip_frames, crop_size = (
        "stand_in", ("rgb",), "dct", SIZE, 2, None,
    )  # fmt: skip
    spectrum_in_model = False

    def __call__(self, inputs, training=False):
        return tf.reduce_mean(inputs["rgb"], axis=[1, 2, 3, 4])[:, None] / 255.0

    def predict(self, dataset, verbose=0):  # batches of (inputs, labels) or (inputs,)
        return np.concatenate([self(x).numpy() for x, *_ in dataset])


def test_a_video_is_scored_over_every_clip_and_each_frame_gets_its_clips_mean():
    from md_csd_tf.inference.detector import Detector

    crops = np.stack([np.full((SIZE, SIZE, 3), 10 * (i + 1), np.uint8) for i in range(5)])
    detector = Detector.__new__(Detector)  # the scoring path only: no face cropper needed
    detector.model, detector.image_size, detector.batch_size = MeanPixelClip(), SIZE, 2
    detector.pipeline = PipelineConfig.for_model(detector.model, batch_size=2)
    scores = detector.predict_clip_crops(crops)
    clip = {(a, b): (10 * (a + 1) + 10 * (b + 1)) / 2 / 255 for a, b in [(0, 1), (2, 3), (3, 4)]}
    expected = [clip[0, 1], clip[0, 1], clip[2, 3], (clip[2, 3] + clip[3, 4]) / 2, clip[3, 4]]
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    one = detector.predict_clip_crops(crops[:1])  # shorter than T: padded with itself
    np.testing.assert_allclose(one, [10 / 255], rtol=1e-5)
    from md_csd_tf.errors import UserError

    with pytest.raises(UserError, match="clips of 2 consecutive frames.*pass a video"):
        detector.predict_crops(crops)  # a single crop or image has no clip to score


def test_evaluation_scores_every_frame_of_every_video_from_its_clips(table):
    from md_csd_tf.evaluation.evaluate import predict_frames

    frames = select(table, split="test")
    scored = predict_frames(MeanPixelClip(), frames, batch_size=3, verbose=0)
    assert len(scored) == len(frames) and scored["prob"].notna().all()
    rows = [0, 1]  # the first video's first clip: frames 0 and 1 share its score
    assert scored["prob"].iloc[rows[0]] == pytest.approx(scored["prob"].iloc[rows[1]])
    crops = [decode_crop(tf.constant(p), SIZE).numpy() for p in frames["abs_path"][:2]]
    assert scored["prob"].iloc[0] == pytest.approx(np.mean(crops) / 255, rel=1e-5)


def test_a_clip_detector_with_nan_scores_is_refused_in_one_line(table):
    from md_csd_tf.errors import UserError
    from md_csd_tf.evaluation.evaluate import predict_frames

    class Diverged(MeanPixelClip):
        def __call__(self, inputs, training=False):
            return super().__call__(inputs) * np.nan

    with pytest.raises(UserError, match=r"stand_in: \d+ of \d+ scores are NaN"):
        predict_frames(Diverged(), select(table, split="test"), batch_size=3, verbose=0)


FRAMES = 7  # clips of T = 3 (`--clip-frames`): evaluation scores frames 0-2, 3-5 and 4-6


def _crop_key(crop) -> bytes:
    return np.asarray(crop, np.uint8).tobytes()


@pytest.mark.slow
def test_md_csd_train_feeds_dual_level_clips_and_evaluate_and_predict_score_every_clip(
    tmp_path, monkeypatch, capsys
):
    """The real entry points with T = 3 at 32 px (the work is building, saving and loading
    ResNet-50, not the steps): `md-csd train` hands the model clips of one video in
    frame order with per-frame and per-video labels; `md-csd evaluate` and `md-csd predict`
    score a video over every clip (checked against clips cut and scored by hand)."""
    import cv2
    import pandas as pd
    from inference_fixtures import render_face_video

    from md_csd_tf import cli, load_model
    from md_csd_tf.models.dual_level import DualLevel
    from md_csd_tf.models.registry import get_entry
    from md_csd_tf.prep import synthetic

    assert get_entry("dual_level").recipe.clip_frames == 8  # the paper's; 3 here for speed
    clip_frames = 3
    videos = {"train": {"real": 2, "Deepfakes": 2}, "val": {"real": 1, "Deepfakes": 1},
              "test": {"real": 1, "Deepfakes": 1}}  # fmt: skip
    manifest = write_crop_manifest(tmp_path / "crops", SIZE, videos, FRAMES)
    rows = pd.read_csv(manifest, dtype={"video_id": str})
    # Training fakes whose first three frames are untouched: frame labels differ from the
    # video's (evaluation's metrics refuse such videos, so the test split keeps one label).
    untouched = (rows["split"] == "train") & (rows["label"] == 1) & (rows["frame_index"] < 3)
    rows.loc[untouched, "label"] = 0
    rows.to_csv(manifest, index=False)
    table = read_manifest(manifest)
    # Every crop is noise, so its pixels name its row: (video, frame index, frame label).
    owner = {
        _crop_key(decode_crop(tf.constant(r.abs_path), SIZE)): (r.video_id, r.frame_index, r.label)
        for r in table.itertuples()
    }
    assert len(owner) == len(table)

    seen = []
    train_step = DualLevel.train_step

    def spy(self, data):  # eager (--run-eagerly): the batches as the model receives them
        x, y = data
        seen.append((x["rgb"].numpy(), {k: v.numpy() for k, v in y.items()}))
        return train_step(self, data)

    monkeypatch.setattr(DualLevel, "train_step", spy)
    run = tmp_path / "run"
    code = cli.main(["train", "--detector", "dual_level", "--data", str(manifest),
                     "--out", str(run), "--image-size", str(SIZE), "--weights", "none",
                     "--epochs", "1", "--batch-size", "2", "--steps-per-epoch", "2",
                     "--clip-frames", str(clip_frames), "--run-eagerly"])  # fmt: skip
    assert code == 0 and len(seen) == 2
    video_labels = []
    for clips, labels in seen:
        assert clips.shape == (2, clip_frames, SIZE, SIZE, 3)
        assert labels["frame"].shape == (2, clip_frames) and labels["video"].shape == (2,)
        for clip, frame_labels, video_label in zip(clips, labels["frame"], labels["video"],
                                                   strict=True):  # fmt: skip
            found = [owner[_crop_key(crop)] for crop in clip]
            assert len({video for video, _, _ in found}) == 1  # one video
            first = found[0][1]
            assert [index for _, index, _ in found] == list(range(first, first + clip_frames))
            np.testing.assert_array_equal(frame_labels, [label for _, _, label in found])
            assert video_label == max(table.loc[table["video_id"] == found[0][0], "label"])
            video_labels.append(video_label)
    assert set(video_labels) == {0.0, 1.0}  # both classes reach the model

    # Evaluation: frame f's score is the mean of the clips holding it; clips cut by hand.
    model = load_model(run / "best.keras", compile=False)
    assert model.clip_frames == clip_frames  # the option reached the model and its file
    assert cli.main(["evaluate", "--model", str(run / "best.keras"), "--data", str(manifest),
                     "--out", str(tmp_path / "eval"), "--batch-size", "3"]) == 0  # fmt: skip
    scored = pd.read_csv(tmp_path / "eval" / "predictions.csv", dtype={"video_id": str})
    test = select(table, split="test")
    assert len(scored) == len(test) == 2 * FRAMES
    starts = (0, 3, 4)  # disjoint runs of T, plus one ending at the last frame
    for video_id, frames in test.groupby("video_id"):
        crops = np.stack([
            cv2.cvtColor(cv2.imread(p), cv2.COLOR_BGR2RGB)
            for p in frames.sort_values("frame_index")["abs_path"]
        ])  # fmt: skip
        clips = np.stack([crops[s : s + clip_frames] for s in starts]).astype(np.float32)
        probs = model({"rgb": clips}, training=False).numpy()[:, 0]
        expected = np.zeros(FRAMES)
        covered = np.zeros(FRAMES)
        for start, prob in zip(starts, probs, strict=True):
            expected[start : start + clip_frames] += prob
            covered[start : start + clip_frames] += 1
        got = scored[scored["video_id"] == video_id].sort_values("frame_index")["prob"]
        np.testing.assert_allclose(got, expected / covered, atol=1e-5)

    # predict on a video: its face crops cut into the same runs of T and scored as clips.
    frames = render_face_video(seed=0, n_frames=FRAMES)
    synthetic.write_video(tmp_path / "clip.mp4", frames)
    from md_csd_tf.inference.detector import Detector

    detector = Detector.load(run / "best.keras")
    crops, _, _, _ = detector.video_crops(tmp_path / "clip.mp4", frames=None)
    assert len(crops) == FRAMES
    crops = np.stack(crops)  # cut at the training crops' size (the model's crop_size), 32 px
    assert crops.shape == (FRAMES, SIZE, SIZE, 3)
    clips = np.stack([crops[s : s + clip_frames] for s in starts]).astype(np.float32)
    by_hand = model({"rgb": clips}, training=False).numpy()[:, 0]
    weights = np.zeros(len(starts))  # each clip's share of the mean over frames
    for k, start in enumerate(starts):
        weights[k] = sum(1 / sum(s <= f < s + clip_frames for s in starts)
                         for f in range(start, start + clip_frames))  # fmt: skip
    output = tmp_path / "scores.csv"
    assert cli.main(["predict", "--model", str(run / "best.keras"), str(tmp_path / "clip.mp4"),
                     "--frames", str(FRAMES), "--output", str(output), "--quiet"]) == 0  # fmt: skip
    (row,) = pd.read_csv(output).to_dict("records")
    assert row["fake_probability"] == pytest.approx(float(weights @ by_hand) / FRAMES, abs=1e-5)
    # A single crop holds no clip: refused with a message that asks for a video.
    code = cli.main(["predict", "--model", str(run / "best.keras"), "--no-detect",
                     str(tmp_path / "crops" / test["path"].iloc[0])])  # fmt: skip
    assert code != 0 and "pass a video" in capsys.readouterr().err
