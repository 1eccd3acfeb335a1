"""tf.data pipeline: shapes, labels, order, balance, on-the-fly spectra, statistics, bad manifests."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from data_fixtures import write_crop_manifest

from md_csd_tf.data.manifest import read_manifest, select
from md_csd_tf.data.pipeline import (
    PipelineConfig,
    decode_crop,
    frequency_statistics,
    make_dataset,
    steps_per_epoch,
)
from md_csd_tf.errors import UserError
from md_csd_tf.frequency import log_dct, log_fft

CONFIG = PipelineConfig(image_size=71, batch_size=4, seed=1)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return write_crop_manifest(tmp_path_factory.mktemp("crops"))


@pytest.fixture(scope="module")
def table(manifest):
    return read_manifest(manifest)


def test_manifest_keeps_string_ids_and_absolute_paths(table):
    assert table["video_id"].map(type).eq(str).all()
    assert "000" in set(table["video_id"])  # not the integer 0
    assert table["abs_path"].map(lambda p: p.startswith("/")).all()


def test_evaluation_batches_keep_manifest_order_with_correct_spectra(table):
    frames = select(table, split="test")
    batches = list(make_dataset(frames, CONFIG, training=False))
    labels = np.concatenate([y.numpy() for _, y in batches])
    np.testing.assert_array_equal(labels, frames["label"].to_numpy())
    inputs, _ = batches[0]
    assert inputs["rgb"].shape == (4, 71, 71, 3) and inputs["rgb"].dtype == tf.float32
    first = decode_crop(tf.constant(frames["abs_path"][0]), 71)
    np.testing.assert_array_equal(inputs["rgb"][0].numpy(), first.numpy().astype(np.float32))
    # The spectrum computed inside tf.data equals the transform applied eagerly to the crop.
    np.testing.assert_allclose(inputs["freq"][0].numpy(), log_dct(first).numpy(), atol=1e-4)


def test_transform_and_branches_follow_the_config(table):
    frames = select(table, split="val")
    fft = dataclasses.replace(CONFIG, transform="fft")
    inputs, _ = next(iter(make_dataset(frames, fft, training=False)))
    first = decode_crop(tf.constant(frames["abs_path"][0]), 71)
    np.testing.assert_allclose(inputs["freq"][0].numpy(), log_fft(first).numpy(), atol=1e-4)
    rgb_only = dataclasses.replace(CONFIG, branches=("rgb",))
    inputs, _ = next(iter(make_dataset(frames, rgb_only, training=False)))
    assert set(inputs) == {"rgb"}


def test_crops_of_another_size_are_resized(table):
    frames = select(table, split="val")
    inputs, _ = next(
        iter(make_dataset(frames, dataclasses.replace(CONFIG, image_size=80), training=False))
    )
    assert inputs["rgb"].shape[1:] == (80, 80, 3) and inputs["freq"].shape[1:] == (80, 80, 3)


def test_training_stream_is_balanced_although_fakes_outnumber_reals(table):
    frames = select(table, split="train")
    assert (frames["label"] == 1).sum() == 2 * (frames["label"] == 0).sum()
    config = dataclasses.replace(CONFIG, batch_size=50, branches=("rgb",))
    labels = np.concatenate(
        [y.numpy() for _, y in make_dataset(frames, config, training=True).take(8)]
    )
    assert abs(labels.mean() - 0.5) < 0.06
    assert steps_per_epoch(frames, dataclasses.replace(CONFIG, batch_size=2)) == 2 * 6 // 2
    unbalanced = dataclasses.replace(CONFIG, balance=False, batch_size=50, branches=("rgb",))
    labels = np.concatenate(
        [y.numpy() for _, y in make_dataset(frames, unbalanced, training=True).take(8)]
    )
    assert abs(labels.mean() - 2 / 3) < 0.06


def test_augmentations_change_pixels_the_same_eagerly_and_in_tf_data(table):
    from md_csd_tf.data.pipeline import augment

    image = decode_crop(tf.constant(table["abs_path"].iloc[0]), 71)
    # The paper describes no augmentation: off unless asked for.
    assert not CONFIG.flip and CONFIG.jpeg_quality is None and CONFIG.blur_probability == 0
    plain = augment(image, CONFIG, tf.constant([3, 1]))
    np.testing.assert_array_equal(plain.numpy(), image.numpy())
    config = dataclasses.replace(CONFIG, flip=True, jpeg_quality=(50, 90), blur_probability=1.0)
    seeds = tf.constant([[i, 1] for i in range(8)])
    eager = np.stack([augment(image, config, s).numpy() for s in seeds])
    mapped = tf.data.Dataset.from_tensor_slices(seeds).map(lambda s: augment(image, config, s))
    mapped = np.stack([m.numpy() for m in mapped])
    np.testing.assert_array_equal(eager, mapped)  # eager and inside tf.data: the same pixels
    changed = np.abs(eager.astype(int) - image.numpy()[None].astype(int)).mean(axis=(1, 2, 3))
    assert np.all(changed > 0.5)  # JPEG + blur always change the crop
    flipped = [np.abs(e.astype(int) - e[:, ::-1].astype(int)).mean() for e in eager]
    assert len({round(f, 3) for f in flipped}) > 1  # not every draw flips the same way
    frames = select(table, split="train")
    inputs, labels = next(iter(make_dataset(frames, config, training=True)))
    assert inputs["rgb"].shape == (4, 71, 71, 3) and labels.shape == (4,)
    assert np.all(np.isfinite(inputs["freq"].numpy()))


def test_frequency_statistics_equal_numpy_over_the_sampled_crops(table):
    frames = select(table, split="train")
    mean, std = frequency_statistics(frames, 71, "dct", samples=len(frames))
    spectra = np.stack(
        [log_dct(decode_crop(tf.constant(p), 71)).numpy() for p in frames["abs_path"]]
    )
    np.testing.assert_allclose(mean, spectra.reshape(-1, 3).mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(std, spectra.reshape(-1, 3).std(axis=0), rtol=1e-4)


def test_select_filters_methods_and_refuses_an_empty_split(table):
    only_fs = select(table, split="test", methods=["FaceSwap"])
    assert set(only_fs["method"]) == {"real", "FaceSwap"}
    with pytest.raises(UserError, match="no face crops"):
        select(table, split="test", compression="c40")


def test_bad_manifests_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match="manifest not found"):
        read_manifest(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(UserError, match="missing columns"):
        read_manifest(bad)
