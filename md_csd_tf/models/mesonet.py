"""MesoNet: Meso-4 and MesoInception-4, with the weights published with the paper.

Afchar, Nozick, Yamagishi, Echizen, "MesoNet: a Compact Facial Video Forgery Detection
Network", WIFS 2018 (arXiv:1809.00888). Two small CNNs that look at the "mesoscopic" level of a
256x256 face crop:

- Meso-4 (Sec. 3.1, Fig. 4): four blocks Conv(ReLU) -> BatchNorm -> MaxPool with 8, 8, 16, 16
  filters, kernels 3, 5, 5, 5 and pools 2, 2, 2, 4; then Flatten, Dropout 0.5, Dense 16 with
  LeakyReLU(0.1), Dropout 0.5, Dense 1 sigmoid. 27,977 trainable parameters.
- MesoInception-4 (Sec. 3.2, Fig. 5): the first two blocks are inception modules (a 1x1 branch
  and three 1x1 -> 3x3 branches with dilation 1, 2, 3; widths (1, 4, 4, 2) then (2, 4, 4, 2)),
  each followed by BatchNorm and a 2x2 max-pool; then two Meso-4 blocks of 16 filters, 5x5,
  pools 2 and 4; the same head. 28,615 trainable parameters.

Every convolution and pool uses "same" padding and BatchNorm comes after the ReLU, as in the
authors' Keras code (DariusAf/MesoNet, classifiers.py), so the published weights reproduce the
published outputs.

Recipe (Sec. 3, "weights optimization"; the authors' code): 256x256x3 inputs scaled to [0, 1]
(pixels / 255), mean squared error on the sigmoid output, Adam (default betas) with an initial
learning rate of 1e-3 divided by 10 every 1000 iterations down to 1e-6, batches of 75 images.
Video score (Sec. 4.3, "image aggregation"): the mean of the frame scores.

Published weights (Apache-2.0, `md_csd_tf/resources/mesonet/`, LICENSE and NOTICE beside them):
`mesonet-df`, `mesonet-f2f` (Meso-4) and `mesoinception-df`, `mesoinception-f2f`
(MesoInception-4), trained on Deepfake and Face2Face faces. They were saved by Keras 2.1.5 and
their sigmoid is P(real) (the authors' class 1 is real); loading them negates the last Dense
kernel and bias, so the model outputs exactly 1 - P(real) = P(fake), our convention.

Example:
    >>> from md_csd_tf import build_detector
    >>> model = build_detector("meso4", weights="mesonet-df")  # 256 px, ready to predict
"""

from __future__ import annotations

import functools
import os
import re
from importlib import resources

import h5py
import keras
import numpy as np
from keras import layers

from md_csd_tf.errors import UserError
from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.registry import Recipe, StepDecay, register

# (filters, kernel, pool) of each plain convolution block, top to bottom (Fig. 4 and 5).
_MESO4_BLOCKS = ((8, 3, 2), (8, 5, 2), (16, 5, 2), (16, 5, 4))
_INCEPTION_BLOCKS = ((1, 4, 4, 2), (2, 4, 4, 2))  # widths of branches a, b, c, d; pool 2 after each
_INCEPTION_TAIL = ((16, 5, 2), (16, 5, 4))  # MesoInception-4's two Meso-4 blocks
_DILATIONS = {"b": 1, "c": 2, "d": 3}  # the 3x3 convolution of each non-trivial branch

MESONET_VARIANTS = ("meso4", "mesoinception4")

_RESOURCE_DIR = "resources/mesonet"
PUBLISHED_WEIGHTS = {
    "mesonet-df": ("meso4", "Meso4_DF.h5"),
    "mesonet-f2f": ("meso4", "Meso4_F2F.h5"),
    "mesoinception-df": ("mesoinception4", "MesoInception_DF.h5"),
    "mesoinception-f2f": ("mesoinception4", "MesoInception_F2F.h5"),
}


def _conv_block(x, filters: int, kernel: int, pool: int, prefix: str):
    x = layers.Conv2D(filters, kernel, padding="same", activation="relu", name=f"{prefix}_conv")(x)
    x = layers.BatchNormalization(name=f"{prefix}_bn")(x)
    return layers.MaxPooling2D(pool, padding="same", name=f"{prefix}_pool")(x)


def _inception_block(x, widths, prefix: str):
    """MesoNet's inception module (Sec. 3.2), then BatchNorm and a 2x2 max-pool.

    Layers are created in the authors' order (a, then b's 1x1 and 3x3, c's, d's): loading the
    published files relies on it (see `_published_layer_order`).
    """
    a, b, c, d = widths
    conv = {"padding": "same", "activation": "relu"}
    outputs = [layers.Conv2D(a, 1, name=f"{prefix}_a_1x1", **conv)(x)]
    for branch, width in zip("bcd", (b, c, d), strict=True):
        y = layers.Conv2D(width, 1, name=f"{prefix}_{branch}_1x1", **conv)(x)
        y = layers.Conv2D(
            width, 3, dilation_rate=_DILATIONS[branch], name=f"{prefix}_{branch}_3x3", **conv
        )(y)
        outputs.append(y)
    x = layers.Concatenate(name=f"{prefix}_concat")(outputs)
    x = layers.BatchNormalization(name=f"{prefix}_bn")(x)
    return layers.MaxPooling2D(2, padding="same", name=f"{prefix}_pool")(x)


def _published_layer_order(variant: str) -> list[str]:
    """Names of the layers with weights, in the order the authors' code creates them."""
    if variant == "meso4":
        names = [f"block{i}_{kind}" for i in (1, 2, 3, 4) for kind in ("conv", "bn")]
    else:
        names = []
        for i in (1, 2):
            names += [f"inception{i}_a_1x1"]
            names += [f"inception{i}_{b}_{k}" for b in "bcd" for k in ("1x1", "3x3")]
            names += [f"inception{i}_bn"]
        names += [f"block{i}_{kind}" for i in (3, 4) for kind in ("conv", "bn")]
    return names + ["hidden", "fake_probability"]


@keras.saving.register_keras_serializable(package="md_csd_tf")
class MesoNet(DetectorModel):
    """Meso-4 or MesoInception-4 on `{"rgb": pixels 0..255}`, returning P(fake) `(B, 1)`.

    Args:
        variant: "meso4" or "mesoinception4".
        image_size: input side; the paper uses 256 (the head's Dense 16 then reads 8x8x16).
        dropout: rate of both dropouts of the head (0.5 in the paper).
        crop_size: side of the training crops (None = `image_size`), set by the trainer.

    Returns (when called): `(batch, 1)` float32, the probability that the face is fake.

    Reference: Afchar et al., WIFS 2018, Sec. 3.1 (Fig. 4) and 3.2 (Fig. 5).
    """

    config_keys = ("variant", "image_size", "dropout", "crop_size")

    def __init__(
        self,
        variant: str = "meso4",
        image_size: int = 256,
        dropout: float = 0.5,
        crop_size: int | None = None,
        **kwargs,
    ):
        if variant not in MESONET_VARIANTS:
            raise ValueError(
                f"Unknown MesoNet variant {variant!r}; choose one of {MESONET_VARIANTS}."
            )
        inputs = {"rgb": keras.Input((image_size, image_size, 3), name="rgb", dtype="float32")}
        # Their Keras pipeline fed pixels / 255 (ImageDataGenerator(rescale=1/255)).
        x = layers.Rescaling(1 / 255, name="rgb_preprocess")(inputs["rgb"])
        if variant == "meso4":
            blocks = _MESO4_BLOCKS
        else:
            for i, widths in enumerate(_INCEPTION_BLOCKS, start=1):
                x = _inception_block(x, widths, f"inception{i}")
            blocks = _INCEPTION_TAIL
        first = 1 + (len(_MESO4_BLOCKS) - len(blocks))
        for i, (filters, kernel, pool) in enumerate(blocks, start=first):
            x = _conv_block(x, filters, kernel, pool, f"block{i}")
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(dropout, name="dropout1")(x)
        x = layers.Dense(16, name="hidden")(x)
        x = layers.LeakyReLU(negative_slope=0.1, name="hidden_leaky_relu")(x)
        x = layers.Dropout(dropout, name="dropout2")(x)
        # float32 output even under mixed precision, for a stable loss.
        output = layers.Dense(1, activation="sigmoid", dtype="float32", name="fake_probability")(x)
        super().__init__(inputs=inputs, outputs=output, **kwargs)
        self.variant = variant
        self.image_size = image_size
        self.dropout = dropout
        self.crop_size = crop_size

    @property
    def detector(self) -> str:
        return self.variant


# -- the published weights -----------------------------------------------------------------------


def published_weights_path(name: str) -> str:
    """The file of a published weights name (`mesonet-df`, ...), shipped as package data."""
    if name not in PUBLISHED_WEIGHTS:
        raise UserError(
            f"unknown MesoNet weights {name!r}; choose one of {', '.join(PUBLISHED_WEIGHTS)} "
            "or give a path to a weights file"
        )
    resource = resources.files("md_csd_tf").joinpath(_RESOURCE_DIR, PUBLISHED_WEIGHTS[name][1])
    return os.fspath(resource)


def _suffix(layer_name: str) -> int:
    # Keras 2 numbers layers of a kind in creation order: conv2d, conv2d_1 (or _1, _2, ...).
    match = re.search(r"_(\d+)$", layer_name)
    return int(match.group(1)) if match else 0


def read_keras2_weights(path: str) -> dict[str, list[list[np.ndarray]]]:
    """The weights of a Keras 2 `save_weights` HDF5 file, by kind, in creation order.

    Returns `{"conv2d": [[kernel, bias], ...], "batch_normalization": [[gamma, beta, mean,
    var], ...], "dense": [...]}`. Keras 3's `load_weights` cannot take these files by layer
    name (our names differ), so we read the groups and `weight_names` attributes ourselves.
    """
    by_kind: dict[str, list[tuple[int, list[np.ndarray]]]] = {}
    with h5py.File(path, "r") as f:
        group = f.get("model_weights", f)  # a whole-model .h5, too
        for raw in group.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            weight_names = group[name].attrs.get("weight_names", [])
            if len(weight_names) == 0:
                continue
            arrays = [
                np.asarray(group[name][w.decode() if isinstance(w, bytes) else w])
                for w in weight_names
            ]
            kind = re.sub(r"_\d+$", "", name)
            by_kind.setdefault(kind, []).append((_suffix(name), arrays))
    return {
        kind: [a for _, a in sorted(items, key=lambda t: t[0])] for kind, items in by_kind.items()
    }


_KINDS = {
    layers.Conv2D: "conv2d",
    layers.BatchNormalization: "batch_normalization",
    layers.Dense: "dense",
}


def load_published_weights(model: MesoNet, path: str, flip_to_fake: bool = True) -> None:
    """Assigns a MesoNet Keras 2.1.5 HDF5 file to `model`, checking every shape.

    The k-th convolution (BatchNorm, Dense) the authors' code created gets the k-th of the file;
    `flip_to_fake` negates the last Dense so the output is 1 - (their P(real)) = P(fake).

    Raises:
        UserError: one line, if the file is not a Keras 2 weights file for this architecture.
    """
    where = (
        f"weights file {os.fspath(path)!r} does not fit {model.variant} at {model.image_size} px"
    )
    try:
        stored = read_keras2_weights(path)
    except (OSError, KeyError) as err:
        raise UserError(f"{where}: not a Keras 2 HDF5 weights file ({err})") from None
    targets: dict[str, list] = {}
    for name in _published_layer_order(model.variant):
        layer = model.get_layer(name)
        targets.setdefault(_KINDS[type(layer)], []).append(layer)
    if sorted(stored) != sorted(targets):
        raise UserError(f"{where}: it has layers {sorted(stored)}, expected {sorted(targets)}")
    for kind, layer_list in targets.items():
        if len(stored[kind]) != len(layer_list):
            raise UserError(
                f"{where}: {len(stored[kind])} {kind} layers, expected {len(layer_list)}"
            )
        for layer, arrays in zip(layer_list, stored[kind], strict=True):
            expected = [tuple(w.shape) for w in layer.weights]
            got = [tuple(a.shape) for a in arrays]
            if expected != got:
                raise UserError(f"{where}: {kind} shapes {got}, expected {expected} ({layer.name})")
    for kind, layer_list in targets.items():
        for layer, arrays in zip(layer_list, stored[kind], strict=True):
            layer.set_weights(arrays)
    if flip_to_fake:
        # sigmoid(-z) = 1 - sigmoid(z): the published P(real) becomes P(fake).
        last = model.get_layer("fake_probability")
        kernel, bias = last.get_weights()
        last.set_weights([-kernel, -bias])


def build(
    image_size: int = 256,
    weights: str | os.PathLike | None = None,
    crop_size: int | None = None,
    variant: str = "meso4",
    **options,
) -> MesoNet:
    """Builds Meso-4 / MesoInception-4 and loads `weights`.

    Args:
        image_size: input side (256 in the paper; the published weights need 256).
        weights: None (random), a published name (`mesonet-df`, `mesonet-f2f`,
            `mesoinception-df`, `mesoinception-f2f`), a path to one of the authors' Keras 2
            HDF5 files (their P(real) is flipped to P(fake)), or a path to a Keras 3
            `.weights.h5` saved from this model (loaded as is).
        crop_size: side of the training crops (None = `image_size`).
        variant: "meso4" or "mesoinception4" (each registry name fixes it).
        **options: other `MesoNet` arguments (`dropout`).

    Returns:
        A `MesoNet`.
    """
    if weights == "imagenet":
        raise UserError(
            f"{variant} has no ImageNet weights; use weights=None or one of "
            f"{', '.join(n for n, (v, _) in PUBLISHED_WEIGHTS.items() if v == variant)}"
        )
    model = MesoNet(variant, image_size=image_size, crop_size=crop_size, **options)
    if weights is None:
        return model
    weights = os.fspath(weights)
    if weights in PUBLISHED_WEIGHTS:
        trained_for = PUBLISHED_WEIGHTS[weights][0]
        if trained_for != variant:
            raise UserError(
                f"weights {weights!r} are for {trained_for}, not {variant}; "
                f"use --detector {trained_for}"
            )
        weights = published_weights_path(weights)
    if not os.path.isfile(weights):
        raise UserError(
            f"weights {weights!r} is neither a file nor a published name "
            f"({', '.join(PUBLISHED_WEIGHTS)})"
        )
    with h5py.File(weights, "r") as f:
        keras2 = "layer_names" in f.attrs or "model_weights" in f
    if keras2:
        load_published_weights(model, weights)
    else:
        model.load_weights(weights)
    return model


# -- registry entries -----------------------------------------------------------------------------

_PAPER = (
    "Afchar et al., MesoNet, WIFS 2018: Sec. 3.1-3.2 (architectures), Sec. 3 (training), "
    "Sec. 4.3 (image aggregation); authors' code DariusAf/MesoNet"
)


# Where the MD-CSD paper cites MesoNet (Tables I-III; numbers from other papers).
_CITED = {
    "meso4": {"I": "MesoNET [6]", "II": "MesoNET [6]", "III": "Meso4 [6]"},
    "mesoinception4": {"III": "MesoInception4 [6]"},
}


def _recipe(parameters: int, variant: str = "meso4") -> Recipe:
    return Recipe(
        paper=_PAPER,
        image_size=256,  # Sec. 3: 256x256x3 face crops
        inputs=("rgb",),
        normalisation="RGB x/255",
        loss="mse",  # their compile(loss="mean_squared_error") on the sigmoid
        optimizer="adam",
        learning_rate=1e-3,  # Sec. 3, and what the authors' code compiles
        lr_schedule=StepDecay(1000, 0.1, 1e-6),  # Sec. 3: /10 every 1000 iterations to 1e-6
        batch_size=75,  # Sec. 3: batches of 75 images
        epochs=20,  # not in the paper (it counts iterations); the house default
        video_aggregate="mean",  # Sec. 4.3: frame scores averaged over the video
        parameters=parameters,
        init=None,  # trained from scratch: no pretrained backbone
        cited=_CITED[variant],
    )


def _register(variant: str, parameters: int, summary: str) -> None:
    weights = {
        name: f"{_RESOURCE_DIR}/{filename}"
        for name, (v, filename) in PUBLISHED_WEIGHTS.items()
        if v == variant
    }
    builder = functools.partial(build, variant=variant)
    register(variant, builder, _recipe(parameters, variant), summary, weights=weights)


LISTING_ORDER = 20  # where `list_detectors()` puts this module's entries

# count_params(): trainable (27,977 / 28,615, the paper's) + BatchNorm moving statistics.
_register("meso4", 28_073, "Meso-4 (WIFS 2018): 4 conv blocks, 28k parameters; published weights")
_register(
    "mesoinception4",
    28_725,
    "MesoInception-4 (WIFS 2018): 2 inception + 2 conv blocks; published weights",
)
