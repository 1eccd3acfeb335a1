"""Export for serving: a TensorFlow SavedModel that takes face crops and returns fake scores.

The serving signature holds the whole preprocessing: uint8 crops of any size in, resized to the
model's side and turned into the frequency input by `crops_to_inputs` (the same function the
training pipeline maps over crops), so TF Serving, TFLite converters or a plain
`tf.saved_model.load` need nothing from this package.

Signature `serving_default`:
    inputs:  `crops`: uint8 `(batch, height, width, 3)`, RGB face crops (FF++ 1.3x crops as
             `md-csd prepare` makes them; any side, resized bilinearly inside when it differs
             from the model's).
    outputs: `fake_probability`: float32 `(batch,)`, the probability that each face is fake.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import tensorflow as tf

from md_csd_tf.data.inputs import model_inputs
from md_csd_tf.data.pipeline import PipelineConfig

SIGNATURE = "serving_default"


def export_saved_model(model, out_dir: str | os.PathLike) -> Path:
    """Writes `model` with its preprocessing as a SavedModel in `out_dir`.

    Args:
        model: a detector of the registry (any `md_csd_tf.build_detector` model).
        out_dir: the SavedModel folder to write (created; must not hold another SavedModel).

    Returns:
        The folder. Load it with `tf.saved_model.load(out_dir).signatures["serving_default"]`
        or call `tf.saved_model.load(out_dir).serve(crops)`.
    """
    out_dir = Path(out_dir)
    # A clip detector (`clip_frames` T) serves clips (N, T, H, W, 3); others single crops.
    clip_frames = PipelineConfig.for_model(model).clip_frames
    crops_shape = (None, *((clip_frames,) if clip_frames else ()), None, None, 3)

    def serve(crops):
        # Resizing a crop already at the model's side is the identity (bilinear at the same grid), so
        # exact-size crops score bit-for-bit like the Keras model on the same inputs.
        inputs = model_inputs(model, crops)
        return {"fake_probability": model(inputs, training=False)[:, 0]}

    # keras.export.ExportArchive (Keras 3) tracks the model's variables and writes a plain TF
    # SavedModel; tf.saved_model.save on the Keras 3 model itself would also try to save its
    # Python-side config and custom layers, which serving does not need.
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serve",
        fn=serve,
        input_signature=[tf.TensorSpec(crops_shape, tf.uint8, name="crops")],
    )
    archive.write_out(os.fspath(out_dir), verbose=False)
    return out_dir
