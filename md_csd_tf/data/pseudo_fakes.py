"""Training batches whose fakes are made on the fly from real frames (`data.blend`).

`--fakes` names where a run's training fakes come from: "dataset" (the paper: the dataset's
manipulated videos), a generator ("sbi", "fwa", "xray": real frames only, the dataset's fakes
are not read), or a mix joined with "+" ("dataset+sbi"). Validation always uses the dataset's
real fakes (`pipeline.make_dataset`), so model selection measures detection of real
manipulations.

Generator batches hold (real, pseudo-fake) pairs of the same frame, next to each other (SBI Sec.
3.3: the pair differs only by the blend, so the model cannot learn identity or scene). Every
element's randomness comes from a per-element counter over an infinite stream, so each epoch
draws new pseudo-fakes; a mix interleaves whole batches of each source with equal weight.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from md_csd_tf.data import blend
from md_csd_tf.data.inputs import crops_to_inputs
from md_csd_tf.data.pipeline import (
    AUTOTUNE,
    PipelineConfig,
    decode_crop,
    make_dataset,
    steps_per_epoch,
)
from md_csd_tf.errors import UserError

GENERATORS = ("sbi", "fwa", "xray")
SOURCES = ("dataset", *GENERATORS)


def parse_fakes(text: str) -> tuple[str, ...]:
    """`"dataset+sbi"` -> `("dataset", "sbi")`, validated.

    Raises:
        UserError: an unknown or repeated part, naming the choices.
    """
    parts = tuple(p.strip() for p in str(text).split("+"))
    if not all(parts) or any(p not in SOURCES for p in parts) or len(set(parts)) != len(parts):
        raise UserError(
            f"--fakes {text}: expected one of {', '.join(SOURCES)} or a mix joined with '+' "
            "(e.g. dataset+sbi)."
        )
    return parts


def uses_dataset_fakes(fakes: str) -> bool:
    return "dataset" in parse_fakes(fakes)


def nearest_donors(
    frames: pd.DataFrame, landmarks: np.ndarray, candidates: int = 200, seed: int = 0
) -> np.ndarray:
    """For each frame, the row of a frame of another video with the nearest landmarks.

    Face X-ray (Sec. 3.4) blends a real face into a real frame whose landmarks are close, so
    the pasted face fits; like the paper we search a random subset (`candidates`) per frame,
    not the whole set. Landmarks are compared after removing each face's mean position.
    """
    n = len(frames)
    centred = landmarks - landmarks.mean(axis=1, keepdims=True)
    flat = centred.reshape(n, -1)
    videos = (frames["dataset"] + "/" + frames["video_id"].astype(str)).to_numpy()
    rng = np.random.default_rng(seed)
    donors = np.empty(n, np.int64)
    for i in range(n):
        pool = rng.choice(n, size=min(candidates, n), replace=False)
        pool = pool[videos[pool] != videos[i]]
        if pool.size == 0:  # one video only: any other frame of it
            pool = np.setdiff1d(np.arange(n), [i]) if n > 1 else np.array([i])
        distances = np.square(flat[pool] - flat[i]).sum(axis=1)
        donors[i] = pool[int(np.argmin(distances))]
    return donors


def training_steps(frames: pd.DataFrame, config: PipelineConfig, fakes: str) -> int:
    """Batches in one training epoch: `pipeline.steps_per_epoch` when the dataset's fakes are a
    source; otherwise every real frame once with its pseudo-fake (2 x reals / batch)."""
    if uses_dataset_fakes(fakes):
        return steps_per_epoch(frames, config)
    return max(1, 2 * int((frames["label"] == 0).sum()) // config.batch_size)


def pseudo_fake_pairs(
    frames: pd.DataFrame, landmarks: np.ndarray, config: PipelineConfig, kind: str
) -> tf.data.Dataset:
    """An infinite stream of single examples `(uint8 crop, label)`: real, its pseudo-fake, ...

    Args:
        frames: real rows of a manifest (`abs_path`).
        landmarks: `(len(frames), 68, 2)` normalised to the crop side (`prep.landmarks`).
        config: image size and seed.
        kind: "sbi", "fwa" or "xray".
    """
    if kind not in GENERATORS:
        raise UserError(f"--fakes {kind}: generators are {', '.join(GENERATORS)}.")
    size = config.image_size
    points = (landmarks * size).astype(np.float32)
    paths = frames["abs_path"].to_numpy(dtype=str)
    donors = nearest_donors(frames, landmarks, seed=config.seed) if kind == "xray" else None
    index = tf.data.Dataset.range(len(frames)).shuffle(
        len(frames), seed=config.seed, reshuffle_each_iteration=True
    )
    stream = tf.data.Dataset.zip((index.repeat(), tf.data.Dataset.counter()))
    paths_t = tf.constant(paths)
    points_t = tf.constant(points)
    donors_t = tf.constant(donors if donors is not None else np.zeros(1, np.int64))
    # Offset from the augmentation seeds of `pipeline.augment` so the two never coincide.
    base = config.seed + 7919
    # Degraded pairs also go through harder JPEG (webcams, messaging apps); SBI's own is 60-100.
    quality = (40, 100) if config.pair_augment else (60, 100)

    def make(row, count):
        seed = tf.stack([tf.cast(count, tf.int32), tf.constant(base, tf.int32)])
        make_seed, jpeg_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        degrade_seed = tf.random.experimental.stateless_fold_in(seed, 1)
        frame = decode_crop(paths_t[row], size)
        marks = points_t[row]
        if kind == "sbi":
            fake = blend.sbi(frame, marks, make_seed)[0]
        elif kind == "fwa":
            fake = blend.fwa(frame, marks, make_seed)[0]
        else:
            donor = decode_crop(paths_t[donors_t[row]], size)
            fake = blend.xray(frame, marks, make_seed, donor)[0]
        real = frame
        if config.pair_augment:  # the same degradation for both: quality is never a label
            real, fake = blend.degrade_pair(real, fake, degrade_seed)
        real, fake = blend.recompress_pair(real, fake, jpeg_seed, quality)
        labels = tf.constant([0.0, 1.0])
        if config.shuffle_labels:  # the control: which image of a pair is called fake is a coin
            flip = tf.random.stateless_uniform([], make_seed) < 0.5
            labels = tf.where(flip, labels[::-1], labels)
        return tf.stack([real, fake]), labels

    pairs = stream.map(make, num_parallel_calls=AUTOTUNE, deterministic=True)
    return pairs.unbatch()


def make_training_dataset(
    frames: pd.DataFrame,
    config: PipelineConfig,
    fakes: str,
    landmarks: np.ndarray | None = None,
) -> tf.data.Dataset:
    """The training batches for `--fakes`: `make_dataset` for "dataset", pseudo-fake pairs for a
    generator, batches of each interleaved for a mix.

    Args:
        frames: the training rows (reals and, when "dataset" is a source, the dataset's fakes).
        config: the model's pipeline config (`TrainConfig.pipeline`).
        fakes: the `--fakes` value.
        landmarks: normalised landmarks aligned with `frames`' real rows (needed by generators).
    """
    sources = parse_fakes(fakes)
    if config.batch_size % 2:
        raise UserError(
            f"--batch-size {config.batch_size}: --fakes {fakes} needs an even batch, whose "
            "(real, pseudo-fake) pairs stay together."
        )
    reals = frames[frames["label"] == 0].reset_index(drop=True)
    streams = []
    for source in sources:
        if source == "dataset":
            streams.append(make_dataset(frames, config, training=True))
            continue
        examples = pseudo_fake_pairs(reals, landmarks, config, source)

        def to_inputs(image, label):
            inputs = crops_to_inputs(
                image, config.transform, config.branches, None, config.spectrum_in_model
            )  # the structure the dataset's stream yields, which it may be mixed with
            return inputs, label

        streams.append(
            examples.batch(config.batch_size, drop_remainder=True)
            .map(to_inputs, num_parallel_calls=AUTOTUNE)
            .prefetch(AUTOTUNE)
        )
    if len(streams) == 1:
        return streams[0]
    weights = [1.0 / len(streams)] * len(streams)
    return tf.data.Dataset.sample_from_datasets(streams, weights, seed=config.seed)


def sbi_crops(targets, target_points, source=None, source_points=None, rng=None) -> np.ndarray:
    """SBI pseudo-fakes of stored crops, for a fixed held-out family (`prep.real_faces`'
    fake-maker form: the source arguments are unused, SBI blends a crop with itself).

    Args:
        targets: uint8 `(T, S, S, 3)` real crops.
        target_points: `(T, 68, 2)` their landmarks in pixels.
        rng: a NumPy generator; the seeds of the T blends come from it.

    Returns:
        uint8 `(T, S, S, 3)`.
    """
    targets = np.asarray(targets, np.uint8)
    size = targets.shape[1]
    make = _traced_sbi(size)
    base = int((rng or np.random.default_rng(0)).integers(2**31 - 1))
    fakes = [
        make(tf.constant(crop), tf.constant(points, tf.float32), tf.constant([base, i], tf.int32))
        for i, (crop, points) in enumerate(zip(targets, target_points, strict=True))
    ]
    return np.stack([f.numpy() for f in fakes]) if fakes else targets.copy()


_SBI_FUNCTIONS: dict[int, tf.types.experimental.GenericFunction] = {}


def _traced_sbi(size: int):
    if size not in _SBI_FUNCTIONS:
        _SBI_FUNCTIONS[size] = tf.function(
            lambda crop, points, seed: blend.sbi(crop, points, seed)[0],
            input_signature=[
                tf.TensorSpec((size, size, 3), tf.uint8),
                tf.TensorSpec((68, 2), tf.float32),
                tf.TensorSpec((2,), tf.int32),
            ],
        )
    return _SBI_FUNCTIONS[size]
