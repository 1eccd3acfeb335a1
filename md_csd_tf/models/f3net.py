"""F3-Net's frequency-aware decomposition (FAD) branch (Qian et al., ECCV 2020) as a detector.

FAD (Sec. 3.1, Eq. 1): the image's full 2-D DCT per channel, D x D^T with the orthonormal
DCT-II matrix D; N band-pass filters f_i = f_base_i + sigma(f_w_i) on the spectrum, each a fixed
binary band mask plus a learnable offset squashed by sigma(w) = (1 - e^-w) / (1 + e^-w)
= 2 * sigmoid(w) - 1 into (-1, 1); back to pixels by the inverse DCT D^T y D; the band images are
stacked along channels and fed to an Xception whose first convolution takes 3N channels. The
closest frequency-domain rival of MD-CSD: it also reads a full-image DCT, but filters it into
band images instead of feeding the (log) spectrum itself.

Where we chose (docs/detectors.md):
- Four bands, low / middle / high / all, so 12 channels: the paper's three band filters plus
  the all-pass band that the public re-implementation (yyk-wew/F3Net, also used by
  DeepfakeBench) adds; every band, the all-pass one included, has its learnable offset, as in
  Eq. 1 and that code. `FrequencyAwareDecomposition.BANDS` names them in channel order.
- Band boundaries: the paper's "low band is the first 1/16 of the entire spectrum, middle between
  1/16 and 1/8, high the last 7/8". We read the fractions as areas of the spectrum swept from the
  DC corner along anti-diagonals (i + j < c), so c = size * sqrt(2 * fraction): at 299 px the
  cut-offs are i + j = 106 and 150 (the re-implementation's final `size // 2.82` and
  `size // 2`; its first version cut at `size // 16` and `size // 8`, i.e. fractions of the
  side, which leaves 0.2% of the spectrum to the low band). Our masks tile the spectrum exactly
  (its masks overlap on the boundary diagonals, or miss DC, depending on the version), so with
  zero offsets low + middle + high = all = the image. `band_edges` is an option.
- Offsets start from N(0, 0.1) (the re-implementation's; the paper gives none), so at
  initialisation the filters differ from the binary masks by about +-0.05.
- Pixels are scaled to [-1, 1] before the DCT, as the re-implementation's Normalize(0.5, 0.5)
  does; the model does it itself.
- ImageNet initialisation (`weights="imagenet"`): every Xception layer from Keras' ImageNet
  Xception; the 12-channel first convolution takes the pretrained 3-channel kernel, tiled over
  the four bands and divided by 4 (so an all-equal input gives the RGB network's response),
  as the re-implementation does.
- Head: ReLU + global average pooling of Xception's last maps (Keras' Xception ends in that
  ReLU), dropout 0.2, one sigmoid unit (their one logit with BCE), as the re-implementation.
"""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
from keras import layers, ops

from md_csd_tf.frequency import dct_matrix
from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.registry import Recipe, register
from md_csd_tf.models.xception import xception_source

BACKBONE = "xception"  # the name keras.applications gives the nested backbone model


def band_cutoffs(size: int, band_edges: tuple[float, float] = (1 / 16, 1 / 8)) -> tuple[int, int]:
    """The anti-diagonal indices i + j where the middle and the high bands start.

    A band edge `fraction` of the spectrum's area, swept from the DC corner, is the triangle
    i + j < c with c^2 / 2 = fraction * size^2, so c = size * sqrt(2 * fraction), rounded.
    """
    low, middle = (math.floor(size * math.sqrt(2 * f) + 0.5) for f in band_edges)
    if not 0 < low < middle <= 2 * size - 2:
        raise ValueError(f"band_edges {band_edges} give no three bands at size {size}")
    return low, middle


def band_masks(size: int, band_edges: tuple[float, float] = (1 / 16, 1 / 8)) -> np.ndarray:
    """The base filters f_base: (4, size, size) binary masks, low / middle / high / all.

    Low: i + j < c1; middle: c1 <= i + j < c2; high: i + j >= c2; all: everything (c1, c2 from
    `band_cutoffs`). Low, middle and high tile the spectrum.
    """
    c1, c2 = band_cutoffs(size, band_edges)
    diagonal = np.add.outer(np.arange(size), np.arange(size))
    return np.stack(
        [diagonal < c1, (diagonal >= c1) & (diagonal < c2), diagonal >= c2, diagonal >= 0]
    ).astype("float32")


@keras.saving.register_keras_serializable(package="md_csd_tf")
class FrequencyAwareDecomposition(layers.Layer):
    """F3-Net's FAD: DCT, four learnable band filters, inverse DCT, stacked as 12 channels.

    Input `(B, S, S, C)` images; output `(B, S, S, 4C)`, band-major: channels `[b*C:(b+1)*C]`
    hold band `BANDS[b]` of every input channel. Weights: the learnable offsets, `(4, S, S)`
    (one filter per band, shared by the channels, as in the paper).

    Args:
        band_edges: the spectrum fractions (by area from the DC corner) where the middle and
            the high bands start (paper: 1/16 and 1/8; see `band_cutoffs`).
        offset_stddev: standard deviation of the offsets' normal initialisation; 0 starts the
            filters at the binary masks exactly.

    Reference: Qian et al., Thinking in Frequency, ECCV 2020, Sec. 3.1, Eq. 1.
    """

    BANDS = ("low", "middle", "high", "all")

    def __init__(
        self,
        band_edges: tuple[float, float] = (1 / 16, 1 / 8),
        offset_stddev: float = 0.1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.band_edges = tuple(band_edges)
        self.offset_stddev = offset_stddev

    def build(self, input_shape):
        size = input_shape[1]
        if size is None or input_shape[2] != size:
            raise ValueError(f"FAD needs square inputs of a known size, got {input_shape}")
        initializer = (
            keras.initializers.RandomNormal(0.0, self.offset_stddev)
            if self.offset_stddev
            else "zeros"
        )
        self.offsets = self.add_weight(
            shape=(len(self.BANDS), size, size), initializer=initializer, name="offsets"
        )
        # Constants, not weights: they are functions of the size and would only bloat the file.
        self._dct = dct_matrix(size).astype("float32")
        self._masks = band_masks(size, self.band_edges)

    def filters(self):
        """The current band filters f_base + sigma(f_w), `(4, S, S)`."""
        return ops.convert_to_tensor(self._masks) + 2.0 * ops.sigmoid(self.offsets) - 1.0

    def call(self, images):
        dct = ops.convert_to_tensor(self._dct, images.dtype)
        x = ops.transpose(images, (0, 3, 1, 2))  # (B, C, S, S): the DCT acts on the last two
        spectrum = ops.einsum("bcik,lk->bcil", ops.einsum("ij,bcjk->bcik", dct, x), dct)
        filtered = spectrum[:, None] * ops.cast(self.filters(), images.dtype)[None, :, None]
        bands = ops.einsum("bncik,kl->bncil", ops.einsum("ji,bncjk->bncik", dct, filtered), dct)
        bands = ops.transpose(bands, (0, 3, 4, 1, 2))  # (B, S, S, band, C)
        shape = ops.shape(images)
        return ops.reshape(bands, (shape[0], shape[1], shape[2], len(self.BANDS) * shape[3]))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], len(self.BANDS) * input_shape[3])

    def get_config(self):
        return {
            **super().get_config(),
            "band_edges": self.band_edges,
            "offset_stddev": self.offset_stddev,
        }


@keras.saving.register_keras_serializable(package="md_csd_tf")
class F3NetFAD(DetectorModel):
    """F3-Net's FAD branch: FAD on [-1, 1] pixels, a 12-channel Xception, one sigmoid unit.

    Input: `{"rgb": (B, H, W, 3) float32 pixels 0..255}`. Output: `(B, 1)` float32 P(fake).

    Args:
        image_size: side of the square input (paper: 299; Xception needs at least 71).
        band_edges, offset_stddev: see `FrequencyAwareDecomposition`.
        dropout: dropout before the classifier (0.2, as the re-implementation).
        crop_size: side of the training crops (None = `image_size`), for predict.

    Reference: Qian et al., Thinking in Frequency, ECCV 2020, Sec. 3.1 and 4.1.
    """

    detector = "f3net_fad"
    config_keys = ("image_size", "band_edges", "offset_stddev", "dropout", "crop_size")

    def __init__(
        self,
        image_size: int = 299,
        band_edges: tuple[float, float] = (1 / 16, 1 / 8),
        offset_stddev: float = 0.1,
        dropout: float = 0.2,
        crop_size: int | None = None,
        **kwargs,
    ):
        if image_size < 71:
            raise ValueError(f"Xception needs image_size >= 71, got {image_size}.")
        rgb = keras.Input((image_size, image_size, 3), name="rgb", dtype="float32")
        # float32 even under mixed precision, up to the band images: the DC coefficient
        # reaches ~image_size, and float16 pixels would already be rounded.
        x = layers.Rescaling(1 / 127.5, offset=-1.0, name="rgb_preprocess", dtype="float32")(rgb)
        fad = FrequencyAwareDecomposition(band_edges, offset_stddev, name="fad", dtype="float32")
        x = fad(x)
        with warnings.catch_warnings():  # Keras warns about inputs of other than 1 or 3 channels
            warnings.filterwarnings("ignore", "This model usually expects", UserWarning)
            backbone = keras.applications.Xception(
                include_top=False,
                weights=None,
                input_shape=(image_size, image_size, 3 * len(FrequencyAwareDecomposition.BANDS)),
                pooling="avg",
            )
        features = backbone(x)
        if dropout:
            features = layers.Dropout(dropout, name="dropout")(features)
        output = layers.Dense(1, activation="sigmoid", dtype="float32", name="fake_probability")(
            features
        )
        super().__init__(inputs={"rgb": rgb}, outputs=output, **kwargs)
        self.image_size = image_size
        self.band_edges = tuple(band_edges)
        self.offset_stddev = offset_stddev
        self.dropout = dropout
        self.crop_size = crop_size

    @property
    def backbone(self) -> keras.Model:
        return self.get_layer(BACKBONE)

    def freeze_backbone(self, frozen: bool) -> None:
        """Freezes (or unfreezes) the Xception; FAD's offsets and the head stay trainable.
        The recipe has no head stage; this is for users."""
        self.backbone.trainable = not frozen


def copy_rgb_xception_weights(source: keras.Model, backbone: keras.Model) -> int:
    """Copies a 3-channel Keras Xception into the 12-channel one, F3-Net's way.

    Layers map in order (the two graphs are the same but for the first convolution's input
    channels; the residual shortcuts are unnamed in Keras, so names cannot be used). The first
    kernel `(3, 3, 3, 32)` is tiled over the bands and divided by their number.

    Returns:
        The number of layers copied.
    """
    sources = [layer for layer in source.layers if layer.weights]
    targets = [layer for layer in backbone.layers if layer.weights]
    if len(sources) != len(targets):
        raise ValueError(f"{len(sources)} weighted layers in the source, {len(targets)} here")
    for src, dst in zip(sources, targets, strict=True):
        weights = src.get_weights()
        if dst.name == "block1_conv1":
            repeats = dst.get_weights()[0].shape[2] // weights[0].shape[2]
            weights = [np.tile(weights[0], (1, 1, repeats, 1)) / repeats]
        dst.set_weights(weights)
    return len(targets)


def build(
    image_size: int = 299,
    weights=None,
    crop_size: int | None = None,
    band_edges: tuple[float, float] = (1 / 16, 1 / 8),
    offset_stddev: float = 0.1,
    dropout: float = 0.2,
) -> F3NetFAD:
    """Builds F3-Net's FAD branch.

    Args:
        image_size: input side (paper: 299).
        weights: None (random), "imagenet" (Keras' download, as F3-Net starts from), a path to a
            Keras Xception weights file without top, or a built 3-channel
            `keras.applications.Xception`; copied by `copy_rgb_xception_weights`.
        band_edges, offset_stddev, dropout, crop_size: see `F3NetFAD`.

    Returns:
        An uncompiled `F3NetFAD`; FAD's offsets and the head are random in every case.
    """
    model = F3NetFAD(image_size, band_edges, offset_stddev, dropout, crop_size)
    if weights is not None:
        copy_rgb_xception_weights(xception_source(weights, image_size), model.backbone)
    return model


RECIPE = Recipe(
    paper=(
        "Qian et al., Thinking in Frequency (F3-Net), ECCV 2020: Sec. 3.1 (FAD, Eq. 1) and "
        "Sec. 4.1 (299 px, Adam 2e-4, batch 128)"
    ),
    image_size=299,
    inputs=("rgb",),
    normalisation="RGB x/127.5-1, then FAD (full-image DCT, 4 bands, inverse DCT) inside",
    loss="bce",
    optimizer="adam",
    learning_rate=2e-4,
    batch_size=128,
    epochs=20,  # not in the paper; MD-CSD's budget, so the two compare at equal training
    plateau=None,
    video_aggregate="mean",
    min_image_size=71,  # Xception's minimum input
    parameters=21_223_725,
    # The MD-CSD paper cites the full F3-Net (FAD + LFS + MixBlock); this is its FAD branch.
    cited={"I": "F3-Net [40]", "II": "F3-Net [40]", "III": "F3-Net [40]"},
)

LISTING_ORDER = 50  # where `list_detectors()` puts this module's entries

register(
    "f3net_fad",
    build,
    RECIPE,
    "F3-Net's FAD branch: DCT band filters (low/middle/high/all) -> 12-channel Xception",
)
