"""Turning face crops into the model's input dict: the one place both training and inference use.

Keeping this in one function guarantees that a saved model scores a crop at inference exactly
as it saw crops in training (same resize, same transform, same dtype).
"""

from __future__ import annotations

import tensorflow as tf

from md_csd_tf.frequency import get_transform


def crops_to_inputs(
    crops: tf.Tensor,
    transform: str = "dct",
    branches=("rgb", "freq"),
    image_size: int | None = None,
) -> dict[str, tf.Tensor]:
    """Face crops `(…, H, W, 3)` (uint8 or float pixels 0..255) to `{"rgb", "freq"}` tensors.

    Pure TensorFlow: works eagerly, inside `tf.data.Dataset.map` and in an exported
    SavedModel signature.

    Args:
        crops: one crop or a batch, RGB channel order.
        transform: the frequency transform the model was trained with (`model.transform`).
        branches: the model's branches (`model.branches`); the spectrum is only computed when
            the model has a frequency branch.
        image_size: resize (bilinear, as crops were made) to this side first, if given.

    Returns:
        A dict with a float32 entry per branch.
    """
    pixels = tf.cast(crops, tf.float32)
    if image_size is not None:
        pixels = tf.image.resize(pixels, (image_size, image_size), method="bilinear")
        pixels = tf.clip_by_value(pixels, 0.0, 255.0)
    inputs = {}
    if "rgb" in branches:
        inputs["rgb"] = pixels
    if "freq" in branches:
        inputs["freq"] = get_transform(transform)(pixels)
    return inputs


def model_inputs(model, crops: tf.Tensor) -> dict[str, tf.Tensor]:
    """`crops_to_inputs` with the transform, branches and size of a built MD-CSD model."""
    return crops_to_inputs(crops, model.transform, model.branches, model.image_size)
