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

    def __call__(self, inputs, training=False):
        return tf.reduce_mean(inputs["rgb"], axis=[1, 2, 3, 4])[:, None] / 255.0

    def predict(self, dataset, verbose=0):
        return np.concatenate([self(x).numpy() for x, _ in dataset])


def test_a_video_is_scored_over_every_clip_and_each_frame_gets_its_clips_mean():
    from md_csd_tf.inference.detector import Detector

    crops = np.stack([np.full((SIZE, SIZE, 3), 10 * (i + 1), np.uint8) for i in range(5)])
    detector = Detector.__new__(Detector)  # the scoring path only: no face cropper needed
    detector.model, detector.image_size, detector.batch_size = MeanPixelClip(), SIZE, 2
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
    from md_csd_tf.training.evaluate import predict_frames

    frames = select(table, split="test")
    scored = predict_frames(MeanPixelClip(), frames, batch_size=3, verbose=0)
    assert len(scored) == len(frames) and scored["prob"].notna().all()
    rows = [0, 1]  # the first video's first clip: frames 0 and 1 share its score
    assert scored["prob"].iloc[rows[0]] == pytest.approx(scored["prob"].iloc[rows[1]])
    crops = [decode_crop(tf.constant(p), SIZE).numpy() for p in frames["abs_path"][:2]]
    assert scored["prob"].iloc[0] == pytest.approx(np.mean(crops) / 255, rel=1e-5)
