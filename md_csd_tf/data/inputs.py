"""Turning face crops into the model's input dict: the one place both training and inference use.

Keeping this in one function guarantees that a saved model scores a crop at inference exactly
as it saw crops in training (same resize, same transform, same dtype).
"""

from __future__ import annotations

import tensorflow as tf

from md_csd_tf.frequency import get_transform


def resize_crop(crops: tf.Tensor, image_size: int) -> tf.Tensor:
    """Bilinear resize of uint8 crops to `image_size`, rounded back to uint8; a no-op at size.

    Training (crops read from disk), the SavedModel signature and `crops_to_inputs` all resize
    this one way, so a crop of another size is scored as it would have been trained on.
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
) -> dict[str, tf.Tensor]:
    """Face crops `(…, H, W, 3)` (uint8 or float pixels 0..255) to `{"rgb", "freq"}` tensors.

    Pure TensorFlow: works eagerly, inside `tf.data.Dataset.map` and in an exported
    SavedModel signature.

    Args:
        crops: one crop or a batch, RGB channel order, uint8 (float input is taken as pixel
            values 0..255 and, when resized, rounded like uint8).
        transform: the frequency transform the model was trained with (`model.transform`).
        branches: the model's branches (`model.branches`); the spectrum is only computed when
            the model has a frequency branch.
        image_size: resize to this side first (`resize_crop`), if given.

    Returns:
        A dict with a float32 entry per branch.
    """
    if image_size is not None:
        crops = resize_crop(crops, image_size)
    pixels = tf.cast(crops, tf.float32)
    inputs = {}
    if "rgb" in branches:
        inputs["rgb"] = pixels
    if "freq" in branches:
        inputs["freq"] = get_transform(transform)(pixels)
    return inputs


def model_inputs(model, crops: tf.Tensor) -> dict[str, tf.Tensor]:
    """`crops_to_inputs` with the transform, branches and size of a built MD-CSD model."""
    return crops_to_inputs(crops, model.transform, model.branches, model.image_size)
