"""Grad-CAM for each branch of MD-CSD: where the RGB branch and the frequency branch look.

For a branch with last convolutional activations `A` (`{branch}_block14_sepconv2_act`, the
maps the global pooling reads), Grad-CAM weighs each channel by the mean gradient of the class
score over its map and keeps the positive part:

    L = ReLU(sum_k alpha_k A_k),   alpha_k = mean_ij d y / d A_k[i, j]

The class score `y` is the logit of the sigmoid unit (the pre-activation, as Grad-CAM asks for):
differentiating the probability instead scales the map by p(1 - p), which underflows for a
confident model and leaves nothing to see. The logit is recomputed from the pooled features
and the output layer's weights. For "real" the score is `-logit`.

The frequency branch's map lives in DCT coefficient space (top-left = low frequencies), not in
the image plane: overlaid on the crop it shows which *frequencies* mattered; both are drawn.

Reference: Selvaraju et al., Grad-CAM, ICCV 2017; MD-CSDNetwork, Fig. 3.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import cv2
import keras
import numpy as np
import tensorflow as tf

from md_csd_tf.data.inputs import model_inputs

TARGETS = ("predicted", "fake", "real")


def _layer_names(model) -> set[str]:
    return {layer.name for layer in model.layers}


def last_conv_layer(branch: str) -> str:
    """Name of a branch's last convolutional activation (exit flow, block 14)."""
    return f"{branch}_block14_sepconv2_act"


@dataclasses.dataclass
class GradCam:
    """Grad-CAM maps of one crop.

    Attributes:
        probability: the model's fake probability for the crop.
        target: the class explained, "fake" or "real".
        maps: branch name -> heatmap `(H, W)` at the crop's size, float32 in 0..1 (all zero
            when no channel pushes towards the target).
    """

    probability: float
    target: str
    maps: dict[str, np.ndarray]


class GradCamExplainer:
    """Computes Grad-CAM maps for every branch of a model in one backward pass.

    Args:
        model: an `MDCSDNetwork`.
    """

    def __init__(self, model):
        missing = [b for b in model.branches if last_conv_layer(b) not in _layer_names(model)]
        if missing:
            from md_csd_tf.errors import UserError

            raise UserError(
                f"{model.detector}: Grad-CAM reads MD-CSD's "
                f"Xception branches (layer {last_conv_layer(missing[0])}), which this detector "
                "does not have; explain an md_csd* model"
            )
        self.model = model
        head = model.get_layer("fake_probability")
        outputs = {b: model.get_layer(last_conv_layer(b)).output for b in model.branches}
        outputs["features"] = head.input
        self._grad_model = keras.Model(model.inputs, outputs)
        self._kernel, self._bias = head.kernel, head.bias

    def explain(self, crop: np.ndarray, target: str = "predicted") -> GradCam:
        """Grad-CAM of one RGB uint8 face crop `(H, W, 3)`; maps come back at `(H, W)`."""
        if target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
        crop = np.asarray(crop)
        height, width = crop.shape[:2]
        inputs = model_inputs(self.model, tf.constant(crop[np.newaxis]))
        with tf.GradientTape() as tape:
            out = self._grad_model(inputs, training=False)
            acts = {b: out[b] for b in self.model.branches}
            logit = tf.matmul(out["features"], self._kernel)[:, 0] + self._bias[0]
        probability = float(tf.sigmoid(logit)[0])
        if target == "predicted":
            target = "fake" if probability > 0.5 else "real"
        sign = 1.0 if target == "fake" else -1.0
        # d(-logit)/dA = -d(logit)/dA; the sign is applied after the tape (an op on `logit`
        # outside the tape's context is not recorded, and its gradient comes back None).
        grads = tape.gradient(logit, acts)
        maps = {}
        for branch, act in acts.items():
            weights = sign * tf.reduce_mean(grads[branch], axis=(1, 2), keepdims=True)
            cam = tf.nn.relu(tf.reduce_sum(weights * act, axis=-1))[0].numpy()
            cam = cv2.resize(
                cam.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
            )
            top = float(cam.max())
            maps[branch] = (cam / top if top > 0 else np.zeros_like(cam)).astype(np.float32)
        return GradCam(probability, target, maps)


def overlay(crop: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heatmap in the JET colormap blended over an RGB uint8 crop; RGB uint8 out."""
    heat = np.uint8(np.clip(heatmap, 0.0, 1.0) * 255)
    colour = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    blended = (1.0 - alpha) * crop.astype(np.float32) + alpha * colour.astype(np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _label(image: np.ndarray, text: str, min_side: int = 200) -> np.ndarray:
    """A caption strip above an RGB image, enlarged to `min_side` so the caption fits."""
    if image.shape[1] < min_side:
        side = (min_side, round(image.shape[0] * min_side / image.shape[1]))
        image = cv2.resize(image, side, interpolation=cv2.INTER_CUBIC)
    strip = np.full((22, image.shape[1], 3), 255, np.uint8)
    cv2.putText(strip, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([strip, image])


def write_explanation(
    crop: np.ndarray, result: GradCam, out_dir: str | os.PathLike, stem: str
) -> list[Path]:
    """Writes the crop, one overlay per branch and a side-by-side panel as PNGs.

    Files: `{stem}_crop.png`, `{stem}_gradcam_{branch}.png` and `{stem}_gradcam.png` (crop, then
    each branch's overlay, captioned with the fake probability and the class explained), plus
    `{stem}_gradcam.npz` with the raw maps.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def save(name: str, rgb: np.ndarray) -> None:
        path = out_dir / name
        if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)):
            raise OSError(f"{path}: could not be written")
        written.append(path)

    save(f"{stem}_crop.png", crop)
    panels = [_label(crop, f"p(fake)={result.probability:.3f}")]
    for branch, heatmap in result.maps.items():
        image = overlay(crop, heatmap)
        save(f"{stem}_gradcam_{branch}.png", image)
        panels.append(_label(image, f"{branch} -> {result.target}"))
    save(f"{stem}_gradcam.png", np.concatenate(panels, axis=1))
    maps_path = out_dir / f"{stem}_gradcam.npz"
    np.savez_compressed(maps_path, **result.maps)
    written.append(maps_path)
    return written
