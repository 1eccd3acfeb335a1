"""tf.data pipelines from manifest rows to `({"rgb", "freq"}, label)` batches.

Everything after the file names is TensorFlow ops (decode, resize, augment, frequency
transform), so `map` runs in parallel threads and the spectrum is computed on the fly instead of
being stored: a 299 px log-DCT in float32 is 1 MB per crop, 16x the PNG.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import tensorflow as tf

from md_csd_tf.data.inputs import crops_to_inputs, resize_crop, spectrum_in_model
from md_csd_tf.frequency import get_transform

AUTOTUNE = tf.data.AUTOTUNE


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    """How crops become batches; change with `dataclasses.replace`.

    Attributes:
        image_size: model input side; crops of another size are resized (bilinear).
        transform: frequency transform of the model ("dct", "fft", "dwt").
        branches: the model's branches; the spectrum is skipped for an RGB-only model.
        spectrum_in_model: the model computes its spectrum itself (`model.spectrum_in_model`):
            the pipeline then ships only pixels.
        batch_size: global batch (32 in the paper); split across replicas by tf.distribute.
        flip: random horizontal flips in training (a mirrored face is as real or fake). Off by
            default: the paper describes no augmentation.
        jpeg_quality: (min, max) for random JPEG re-compression in training, or None.
        blur_probability: chance of a 3x3 Gaussian blur in training (0 disables).
        balance: in training, draw real and fake frames 50/50 (the paper balances frames; FF++
            has four fakes per real video when all manipulations are used).
        shuffle_buffer: frames shuffled at once; None shuffles each class's whole file list.
            Manifests are sorted by method and video, so a smaller buffer would feed an epoch
            mostly one manipulation; the buffer holds only file names (~80 B each), so a full
            shuffle of FF++'s 800k training crops costs ~60 MB.
        seed: makes shuffling, balancing and augmentation repeatable.
        pair_augment: pseudo-fake pairs are degraded alike (`data.blend.degrade_pair`).
        shuffle_labels: a control experiment: each pseudo-fake pair's two labels are swapped
            with probability 1/2, so the labels carry nothing a detector could learn.
        clip_frames: T for a clip detector (`model.clip_frames`): batches are clips of T
            consecutive crops of one video (`data.clips`); None: single crops.

    Build it from a model with `PipelineConfig.for_model`: the model dictates the fields above
    `batch_size` and `clip_frames`, the caller the rest.
    """

    image_size: int = 299
    transform: str = "dct"
    branches: tuple[str, ...] = ("rgb", "freq")
    spectrum_in_model: bool = False
    batch_size: int = 32
    flip: bool = False
    jpeg_quality: tuple[int, int] | None = None
    blur_probability: float = 0.0
    balance: bool = True
    shuffle_buffer: int | None = None
    seed: int = 0
    pair_augment: bool = False
    shuffle_labels: bool = False
    clip_frames: int | None = None

    @classmethod
    def for_model(cls, model, **overrides) -> PipelineConfig:
        """The pipeline of `model`'s inputs: its side, transform, branches, whether it computes
        its spectrum itself and its clip length, with `overrides` (batch size, augmentation,
        seed) on top.

        The one place that reads these facts off a model, so training, evaluation, predict and
        export cannot disagree on them (two hand-built configs once dropped
        `spectrum_in_model`).
        """
        facts = dict(
            image_size=int(model.image_size),
            transform=model.transform,
            branches=tuple(model.branches),
            spectrum_in_model=spectrum_in_model(model),
            clip_frames=model.clip_frames or None,
        )
        return cls(**{**facts, **overrides})


def decode_crop(path: tf.Tensor, image_size: int) -> tf.Tensor:
    """A PNG/JPEG file to a `(size, size, 3)` uint8 crop."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return resize_crop(image, image_size)


def augment(image: tf.Tensor, config: PipelineConfig, seed: tf.Tensor) -> tf.Tensor:
    """Training augmentation on a uint8 crop, with stateless randomness from `seed`."""
    seeds = tf.random.experimental.stateless_split(seed, num=3)
    if config.flip:
        image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    if config.jpeg_quality is not None:
        low, high = config.jpeg_quality
        image = tf.image.stateless_random_jpeg_quality(image, low, high, seeds[1])
    if config.blur_probability > 0:
        kernel = tf.constant([1.0, 2.0, 1.0])
        kernel = tf.tensordot(kernel, kernel, axes=0) / 16.0
        kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
        blurred = tf.nn.depthwise_conv2d(
            tf.cast(image, tf.float32)[None], kernel, strides=[1, 1, 1, 1], padding="SAME"
        )[0]
        draw = tf.random.stateless_uniform([], seeds[2])
        image = tf.cond(
            draw < config.blur_probability,
            lambda: tf.cast(tf.clip_by_value(tf.round(blurred), 0, 255), tf.uint8),
            lambda: image,
        )
    return image


def _frames_dataset(frames: pd.DataFrame) -> tf.data.Dataset:
    paths = frames["abs_path"].to_numpy(dtype=str)
    labels = frames["label"].to_numpy(dtype=np.float32)
    return tf.data.Dataset.from_tensor_slices((paths, labels))


def make_dataset(frames: pd.DataFrame, config: PipelineConfig, training: bool) -> tf.data.Dataset:
    """Batches of `(inputs, label)` for `model.fit` / `model.predict`.

    Training: shuffled, infinite (pass `steps_per_epoch`), balanced and augmented. Evaluation: in
    manifest order, one pass, unaugmented, so predictions line up with `frames` row by row.
    """
    if frames.empty:
        raise ValueError("make_dataset got no frames.")
    if training:
        if config.balance and frames["label"].nunique() == 2:
            parts = [
                _frames_dataset(frames[frames["label"] == label])
                .shuffle(
                    config.shuffle_buffer or int((frames["label"] == label).sum()),
                    seed=config.seed + label,
                    reshuffle_each_iteration=True,
                )
                .repeat()
                for label in (0, 1)
            ]
            dataset = tf.data.Dataset.sample_from_datasets(parts, [0.5, 0.5], seed=config.seed)
        else:
            dataset = (
                _frames_dataset(frames)
                .shuffle(
                    config.shuffle_buffer or len(frames),
                    seed=config.seed,
                    reshuffle_each_iteration=True,
                )
                .repeat()
            )
        # A per-element counter gives each example its own stateless augmentation seed.
        dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.counter()))

        def load(example, index):
            path, label = example
            image = decode_crop(path, config.image_size)
            image = augment(image, config, tf.stack([tf.cast(index, tf.int32), config.seed]))
            return crops_to_inputs(
                image, config.transform, config.branches, None, config.spectrum_in_model
            ), label

    else:
        dataset = _frames_dataset(frames)

        def load(path, label):
            image = decode_crop(path, config.image_size)
            return crops_to_inputs(
                image, config.transform, config.branches, None, config.spectrum_in_model
            ), label

    dataset = dataset.map(load, num_parallel_calls=AUTOTUNE, deterministic=not training)
    return dataset.batch(config.batch_size, drop_remainder=training).prefetch(AUTOTUNE)


def steps_per_epoch(frames: pd.DataFrame, config: PipelineConfig) -> int:
    """Batches in one training epoch: every frame once, or, balanced, twice the minority class.

    With balancing, an epoch shows each real frame about once and as many fake frames, drawn
    afresh from the larger fake pool every epoch.
    """
    counts = frames["label"].value_counts()
    n = 2 * int(counts.min()) if config.balance and len(counts) == 2 else len(frames)
    return max(1, n // config.batch_size)


def frequency_statistics(
    frames: pd.DataFrame, image_size: int, transform: str = "dct", samples: int = 512, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the frequency input over a random sample of crops.

    These go into the model (`MDCSDNetwork.set_frequency_statistics`) so the frequency branch
    sees standardised inputs (the paper normalises each branch separately, Sec. II.B).
    """
    sample = frames.sample(n=min(samples, len(frames)), random_state=seed)
    fn = get_transform(transform)
    dataset = (
        tf.data.Dataset.from_tensor_slices(sample["abs_path"].to_numpy(dtype=str))
        .map(
            lambda p: fn(tf.cast(decode_crop(p, image_size), tf.float32)),
            num_parallel_calls=AUTOTUNE,
        )
        .batch(32)
    )
    count, total, squares = 0.0, np.zeros(3), np.zeros(3)
    for batch in dataset:
        values = batch.numpy().astype(np.float64).reshape(-1, 3)
        count += values.shape[0]
        total += values.sum(axis=0)
        squares += (values**2).sum(axis=0)
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 1e-12))
    return mean.astype(np.float32), std.astype(np.float32)
