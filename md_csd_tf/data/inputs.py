"""Turning face crops into a model's input dict: the one path from a crop to a score.

Training (crops decoded from disk), evaluation, predict on videos, images and crops, the exported
SavedModel, Grad-CAM, the spectrum figure and t-SNE all call `crops_to_inputs` (through
`model_inputs` or `fit_crops`), so a crop is scored exactly as the model saw crops in training:
same resize, same transform, same dtype. A crop of another size than the model's is resized by
`resize_crop` (TensorFlow bilinear, rounded back to uint8) and by nothing else.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from md_csd_tf.frequency import get_transform


def resize_crop(crops: tf.Tensor, image_size: int) -> tf.Tensor:
    """Bilinear resize of uint8 crops to `image_size`, rounded back to uint8; a no-op at size.

    Rounding to uint8 makes a resized crop the same kind of object as a crop read from disk, so
    the frequency transform sees the same numbers whichever path the crop came by.
    """
    crops = tf.convert_to_tensor(crops)
    if crops.shape[-3] == image_size and crops.shape[-2] == image_size:
        return crops
    resized = tf.image.resize(
        tf.cast(crops, tf.float32), (image_size, image_size), method="bilinear"
    )
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def crops_to_inputs(
    crops: tf.Tensor,
    transform: str = "dct",
    branches=("rgb", "freq"),
    image_size: int | None = None,
    spectrum_in_model: bool = False,
) -> dict[str, tf.Tensor]:
    """Face crops `(…, H, W, 3)` (uint8 or float pixels 0..255) to `{"rgb", "freq"}` tensors.

    Any leading dims: a clip batch `(B, T, H, W, 3)` is flattened to `(B * T, H, W, 3)` around
    the resize and the transform (which take at most 4 dims) and reshaped back.

    Pure TensorFlow: works eagerly, inside `tf.data.Dataset.map` and in an exported
    SavedModel signature.

    Args:
        crops: one crop or a batch, RGB channel order, uint8 (float input is taken as pixel
            values 0..255 and, when resized, rounded like uint8).
        transform: the frequency transform the model was trained with (`model.transform`).
        branches: the model's branches (`model.branches`); the spectrum is only computed when
            the model has a frequency branch.
        image_size: resize to this side first (`resize_crop`), if given.
        spectrum_in_model: the model computes its spectrum itself from the pixels
            (`model.spectrum_in_model`): return only `"rgb"`, whatever the branches.

    Returns:
        A dict with a float32 entry per input the model reads.
    """
    crops = tf.convert_to_tensor(crops)
    if crops.shape.rank > 4:  # clips (B, T, H, W, 3): resize and transforms take <= 4 dims
        leading = tf.shape(crops)[:-3]
        flat = crops_to_inputs(
            tf.reshape(crops, tf.concat([[-1], tf.shape(crops)[-3:]], 0)),
            transform,
            branches,
            image_size,
            spectrum_in_model,
        )
        shaped = {}
        for key, value in flat.items():
            shaped[key] = tf.reshape(value, tf.concat([leading, tf.shape(value)[1:]], 0))
            # Keep what is known statically (T, H, W): Keras inputs check it when traced.
            shaped[key].set_shape(crops.shape[:-3].concatenate(value.shape[1:]))
        return shaped
    if image_size is not None:
        crops = resize_crop(crops, image_size)
    pixels = tf.cast(crops, tf.float32)
    if spectrum_in_model:
        return {"rgb": pixels}
    inputs = {}
    if "rgb" in branches:
        inputs["rgb"] = pixels
    if "freq" in branches:
        inputs["freq"] = get_transform(transform)(pixels)
    return inputs


def model_inputs(model, crops: tf.Tensor) -> dict[str, tf.Tensor]:
    """`crops_to_inputs` with the transform, branches, size and spectrum option of a model."""
    return crops_to_inputs(
        crops, model.transform, model.branches, model.image_size, spectrum_in_model(model)
    )


def spectrum_in_model(model) -> bool:
    """Whether `model` computes its frequency input itself (`DetectorModel.spectrum_in_model`)."""
    return bool(model.spectrum_in_model)


@functools.cache
def _resizer(image_size: int):
    # One trace for every crop shape: the signature leaves height and width open.
    return tf.function(
        lambda crop: resize_crop(crop, image_size),
        input_signature=[tf.TensorSpec((None, None, 3), tf.uint8)],
    )


def fit_crops(crops: Sequence[np.ndarray] | np.ndarray, image_size: int) -> np.ndarray:
    """Crops of any sizes as one uint8 batch `(N, image_size, image_size, 3)`, via `resize_crop`.

    For callers holding crops of different sizes (images, files on disk) that must batch them:
    each crop goes through exactly the resize the training pipeline and the SavedModel apply.
    """
    out = np.empty((len(crops), image_size, image_size, 3), np.uint8)
    for i, crop in enumerate(crops):
        crop = np.asarray(crop)
        if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3:
            raise ValueError(f"crop {i}: expected uint8 (H, W, 3), got {crop.dtype} {crop.shape}")
        out[i] = crop if crop.shape[:2] == (image_size, image_size) else _resizer(image_size)(crop)
    return out
