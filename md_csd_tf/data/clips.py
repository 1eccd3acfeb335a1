"""tf.data pipelines of clips: T consecutive face crops of one video, for detectors that score a
sequence of frames (a recipe with `clip_frames`, e.g. `dual_level`).

Batches are `(inputs, labels)`: `inputs["rgb"]` is `(B, T, H, W, 3)` (plus `"freq"` of the same
shape when the model reads spectra), made by the same `crops_to_inputs` as single frames;
`labels` is `{"video": (B,), "frame": (B, T)}` (a frame's label is its manifest row's, a clip's
is its video's). Decoding and augmentation reuse the frame pipeline's `decode_crop` and
`augment`, with one seed per clip so every frame of a clip gets the same flip / JPEG quality.

Clips are cut per video from its frames in `frame_index` order: consecutive runs of T, every
`stride` frames. A video with fewer than T frames gives one clip padded by repeating its last
frame, so every video is scored. Training draws clips 50/50 from real and fake videos when both
are present, shuffled over all videos; evaluation keeps every clip of every video, in order, and
`clip_table` says which video each clip belongs to.

Scoring has one rule, `score_clips`, for evaluation (`predict_clip_frames`, crops from the
manifest) and predict (`predict_video_clips`, one video's crops in memory): every clip of a video
is scored (disjoint runs of T plus one ending at the last frame) and each frame gets the mean
score of the clips holding it, so a video's mean over frames is its clips' score.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import tensorflow as tf

from md_csd_tf.data.inputs import crops_to_inputs
from md_csd_tf.data.manifest import VIDEO_KEY
from md_csd_tf.data.pipeline import (
    AUTOTUNE,
    PipelineConfig,
    augment,
    decode_crop,
    make_dataset,
    steps_per_epoch,
)


def clip_starts(length: int, clip_frames: int, stride: int | None = None, cover: bool = False):
    """First frames of the clips of a video of `length` >= T frames: every `stride` (None = T),
    plus, with `cover`, one ending at the last frame when the stride leaves a tail."""
    starts = list(range(0, length - clip_frames + 1, stride or clip_frames))
    if cover and starts[-1] + clip_frames < length:
        starts.append(length - clip_frames)
    return starts


def clip_rows(frames: pd.DataFrame, clip_frames: int, stride: int | None = None,
              cover: bool = False):  # fmt: skip
    """Positions (into `frames`) of the rows of every clip: `(rows (N, T), video_of_clip (N,),
    videos)`, videos in key order, frames in `frame_index` order.

    Args:
        frames: manifest rows (`frame_index` and the video key columns).
        clip_frames: T, frames per clip.
        stride: start-to-start distance of consecutive clips; None = T (disjoint clips).
        cover: add a last clip ending at the video's last frame when the stride leaves a tail,
            so every frame is in some clip (evaluation).

    Returns:
        `videos` is a DataFrame of the video keys and label, one row per video, indexed by
        `video_of_clip`.
    """
    if clip_frames < 1:
        raise ValueError(f"clip_frames must be at least 1, got {clip_frames}")
    keys = [c for c in VIDEO_KEY if c in frames.columns]
    table = frames.reset_index(drop=True).assign(_row=np.arange(len(frames)))
    ordered = table.sort_values([*keys, "frame_index"], kind="stable")
    rows, owners, videos = [], [], []
    for number, (key, video) in enumerate(ordered.groupby(keys, sort=False)):
        clips = _video_clips(video["_row"].to_numpy(), clip_frames, stride, cover)
        rows.extend(clips)
        owners.extend([number] * len(clips))
        names = key if isinstance(key, tuple) else (key,)
        label = int(video["label"].max())  # a video is fake if any frame is
        videos.append({**dict(zip(keys, names, strict=True)), "label": label})
    return np.stack(rows), np.asarray(owners, np.int64), pd.DataFrame(videos)


def _video_clips(positions: np.ndarray, clip_frames: int, stride: int | None = None,
                 cover: bool = False) -> list[np.ndarray]:  # fmt: skip
    """The clips of one video whose frames are `positions`, in order (see `clip_rows`)."""
    if len(positions) < clip_frames:  # pad by the last frame: every video gets a score
        positions = np.concatenate(
            [positions, np.repeat(positions[-1:], clip_frames - len(positions))]
        )
    starts = clip_starts(len(positions), clip_frames, stride, cover)
    return [positions[begin : begin + clip_frames] for begin in starts]


def clip_table(frames: pd.DataFrame, clip_frames: int, stride: int | None = None,
               cover: bool = False):  # fmt: skip
    """The clips of every video (see `clip_rows`): `(paths (N, T), frame_labels (N, T),
    video_labels (N,), video_of_clip (N,), videos)`."""
    rows, owners, videos = clip_rows(frames, clip_frames, stride, cover)
    paths = frames["abs_path"].to_numpy(dtype=str)[rows]
    frame_labels = frames["label"].to_numpy(dtype=np.float32)[rows]
    video_labels = videos["label"].to_numpy(dtype=np.float32)[owners]
    return paths, frame_labels, video_labels, owners, videos


def _clips_dataset(paths, frame_labels, video_labels) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((paths, frame_labels, video_labels))


def make_clip_dataset(
    frames: pd.DataFrame,
    config: PipelineConfig,
    clip_frames: int,
    training: bool,
    stride: int | None = None,
) -> tf.data.Dataset:
    """Batches of `(inputs (B, T, ...), {"video", "frame"} labels)` for `fit` / `predict`.

    Training: shuffled over every clip of every video, infinite, balanced real/fake clips when
    `config.balance`, augmented (one seed per clip). Evaluation: every clip in `clip_table`
    order (`cover=True`: a tail shorter than the stride gets a last, overlapping clip), one
    pass, unaugmented.
    """
    if frames.empty:
        raise ValueError("make_clip_dataset got no frames.")
    paths, frame_labels, video_labels, _, _ = clip_table(
        frames, clip_frames, stride, cover=not training
    )
    if training:
        parts = []
        classes = (0.0, 1.0) if config.balance and len(np.unique(video_labels)) == 2 else (None,)
        for label in classes:
            keep = np.ones(len(paths), bool) if label is None else video_labels == label
            parts.append(
                _clips_dataset(paths[keep], frame_labels[keep], video_labels[keep])
                .shuffle(
                    int(keep.sum()),
                    seed=config.seed + int(label or 0),
                    reshuffle_each_iteration=True,
                )  # fmt: skip
                .repeat()
            )
        dataset = (
            parts[0]
            if len(parts) == 1
            else tf.data.Dataset.sample_from_datasets(parts, [0.5, 0.5], seed=config.seed)
        )
        dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.counter()))

        def load(example, index):
            clip_paths, frame_label, video_label = example
            seed = tf.stack([tf.cast(index, tf.int32), config.seed])
            crops = tf.stack(
                [
                    augment(decode_crop(clip_paths[t], config.image_size), config, seed)
                    for t in range(clip_frames)
                ]
            )
            return _inputs(crops, config), {"video": video_label, "frame": frame_label}

    else:
        dataset = _clips_dataset(paths, frame_labels, video_labels)

        def load(clip_paths, frame_label, video_label):
            crops = tf.stack(
                [decode_crop(clip_paths[t], config.image_size) for t in range(clip_frames)]
            )
            return _inputs(crops, config), {"video": video_label, "frame": frame_label}

    dataset = dataset.map(load, num_parallel_calls=AUTOTUNE, deterministic=not training)
    return dataset.batch(config.batch_size, drop_remainder=training).prefetch(AUTOTUNE)


def make_model_dataset(frames: pd.DataFrame, config: PipelineConfig, training: bool):
    """Batches for `fit` / `predict` of the model `config` was made for
    (`PipelineConfig.for_model`): clips of T crops when it reads clips (`make_clip_dataset`),
    else single crops (`pipeline.make_dataset`)."""
    if config.clip_frames:
        return make_clip_dataset(frames, config, config.clip_frames, training)
    return make_dataset(frames, config, training)


def model_steps_per_epoch(frames: pd.DataFrame, config: PipelineConfig) -> int:
    """Batches in one training epoch of `make_model_dataset(frames, config, True)`."""
    if config.clip_frames:
        return clip_steps_per_epoch(frames, config, config.clip_frames)
    return steps_per_epoch(frames, config)


def _inputs(crops: tf.Tensor, config: PipelineConfig) -> dict[str, tf.Tensor]:
    return crops_to_inputs(crops, config.transform, config.branches, None, config.spectrum_in_model)


def clip_steps_per_epoch(frames: pd.DataFrame, config: PipelineConfig, clip_frames: int) -> int:
    """Batches in one training epoch: every clip once, or, balanced, twice the minority's."""
    _, _, video_labels, _, _ = clip_table(frames, clip_frames)
    counts = np.unique(video_labels, return_counts=True)[1]
    n = 2 * int(counts.min()) if config.balance and len(counts) == 2 else len(video_labels)
    return max(1, n // config.batch_size)


def score_clips(model, clips: tf.data.Dataset, rows: np.ndarray, length: int,
                verbose: int = 0) -> np.ndarray:  # fmt: skip
    """The clip scorer: each of `length` frames' mean score over the clips holding it.

    Args:
        model: a clip detector; `model.predict(clips)` gives one probability per clip.
        clips: batches of clip inputs, the clips in `rows` order.
        rows: `(N, T)` positions of each clip's frames (`clip_rows`, `_video_clips`).
        length: number of frames; every one must be in some clip (`cover=True`).

    Returns:
        float64 array `(length,)`.
    """
    probs = np.asarray(model.predict(clips, verbose=verbose), np.float64).reshape(-1)
    totals = np.zeros(length)
    counts = np.zeros(length)
    np.add.at(totals, rows, probs[:, None])
    np.add.at(counts, rows, 1.0)
    return totals / counts


def predict_clip_frames(model, frames: pd.DataFrame, batch_size: int = 32, verbose: int = 1):
    """`frames` with a `prob` column from a clip detector (`score_clips` over every video's
    clips, crops read from the manifest)."""
    config = PipelineConfig.for_model(model, batch_size=batch_size)
    rows, _, _ = clip_rows(frames, config.clip_frames, cover=True)
    dataset = make_clip_dataset(frames, config, config.clip_frames, training=False)
    scored = frames.copy()
    scored["prob"] = score_clips(model, dataset, rows, len(frames), verbose)
    return scored


def predict_video_clips(model, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """A clip detector's frame scores of one video (`score_clips`), crops in memory.

    Args:
        model: a clip detector.
        crops: `(N, size, size, 3)` uint8 consecutive face crops of one video at the model's
            side (`inputs.fit_crops`); fewer than T are padded with the last.
        batch_size: clips per model call.

    Returns:
        float64 array `(N,)`; their mean is the video's score at `aggregate="mean"`.
    """
    if len(crops) == 0:
        return np.zeros(0)
    config = PipelineConfig.for_model(model, batch_size=batch_size)
    rows = np.stack(_video_clips(np.arange(len(crops)), config.clip_frames, cover=True))
    clips = (
        tf.data.Dataset.from_tensor_slices(np.asarray(crops)[rows])
        .batch(batch_size)
        .map(lambda batch: (_inputs(batch, config),))  # (x,): Keras' predict needs no labels
    )
    return score_clips(model, clips, rows, len(crops))
