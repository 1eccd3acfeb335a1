"""MD-CSDNetwork and its Table V ablation variants as one configurable Keras model."""

from __future__ import annotations

import functools

import keras
from keras import layers

from md_csd_tf.frequency import TRANSFORMS
from md_csd_tf.layers.cross_stitch import CrossStitch
from md_csd_tf.layers.spectrum import Spectrum
from md_csd_tf.layers.standardization import FrequencyStandardization
from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.variants import HEADS, VARIANTS
from md_csd_tf.models.weights import backbone_source
from md_csd_tf.models.xception_spec import (
    apply_block,
    copy_keras_xception_weights,
    xception_stages,
)


# Table V of the paper, one row per variant: which branches exist and after which max-pooling
# stages a cross-stitch unit joins them.
@keras.saving.register_keras_serializable(package="md_csd_tf")
class MDCSDNetwork(DetectorModel):
    """Two Xception branches (RGB pixels, frequency spectrum) joined by cross-stitch units.

    Inputs are a dict with `"rgb"`: face crops as pixels in 0..255, and `"freq"`: the same crops
    after the frequency transform named by `transform` (the pipeline computes it; see
    `md_csd_tf.frequency`). Only the variant's branches take an input. The output is the
    probability that the face is fake (label 1 = fake).

    Each branch is normalised separately (Sec. II.B): RGB to [-1, 1] as Xception expects, the
    spectrum by per-channel statistics stored in the model (`set_frequency_statistics`). A
    cross-stitch unit follows the residual add that closes each max-pooling block, so both the
    pooled path and the shortcut of the next block see the mixed maps (docs/reading-the-paper.md).
    The branches are joined by "concatenating the last fully connected layers" (Sec. II.B):
    with `head="fc"` (default) each branch's pooled 2048-d features pass a fully connected
    layer of its own (`fc_units`, ReLU) and those outputs are concatenated into one sigmoid unit;
    `head="pooled"` concatenates the pooled features directly (docs/reading-the-paper.md).

    Args:
        variant: a row of Table V: "rgb", "freq", "concat", "one_stitch" or "md_csd".
        transform: the frequency transform the "freq" input carries: "dct", "fft" or "dwt".
        image_size: side of the square face crop (Xception needs at least 71).
        middle_blocks: Xception middle-flow blocks (8 in the paper; fewer for quick tests).
        stitch_self_weight / stitch_cross_weight: initial same-/cross-branch stitch weights.
        per_channel_stitch: one 2x2 stitch matrix per channel instead of per unit.
        dropout: dropout rate on the concatenated features before the classifier (the paper
            has none).
        bn_momentum: BatchNormalization momentum (Keras' Xception: 0.99). The demo, which
            trains from scratch for ~100 steps, uses 0.9 so inference statistics catch up.
        head: "fc" (a fully connected layer per branch, then concatenation) or "pooled".
        fc_units: width of each branch's fully connected layer with `head="fc"`.
        crop_size: side of the face crops the model was trained on (data preparation's
            `--image-size`); predict cuts faces at this size and resizes them to `image_size` as
            training did. None means `image_size`.
        spectrum_in_model: compute the frequency input inside the model from the `"rgb"` pixels
            (`md_csd_tf.layers.spectrum.Spectrum`, matmuls with the transform's basis) instead of
            taking it from the input pipeline; the model then reads only `"rgb"`, and
            `crops_to_inputs` skips the spectrum for it. Same numbers within float32 rounding;
            for accelerators, where the CPU-side spectrum would starve them (README, "Speed").

    Reference: MD-CSDNetwork, Sec. II.B, Fig. 2 and Table V.
    """

    config_keys = (
        "variant", "transform", "image_size", "middle_blocks", "stitch_self_weight",
        "stitch_cross_weight", "per_channel_stitch", "dropout", "bn_momentum", "head", "fc_units",
        "crop_size", "spectrum_in_model",
    )  # fmt: skip

    def __init__(
        self,
        variant: str = "md_csd",
        transform: str = "dct",
        image_size: int = 299,
        middle_blocks: int = 8,
        stitch_self_weight: float = 0.9,
        stitch_cross_weight: float = 0.1,
        per_channel_stitch: bool = False,
        dropout: float = 0.0,
        bn_momentum: float = 0.99,
        head: str = "fc",
        fc_units: int = 2048,
        crop_size: int | None = None,
        spectrum_in_model: bool = False,
        **kwargs,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"Unknown variant {variant!r}; choose one of {list(VARIANTS)}.")
        if transform not in TRANSFORMS:
            raise ValueError(f"Unknown transform {transform!r}; choose one of {list(TRANSFORMS)}.")
        if image_size < 71:
            raise ValueError(f"Xception needs image_size >= 71, got {image_size}.")
        if head not in HEADS:
            raise ValueError(f"Unknown head {head!r}; choose one of {list(HEADS)}.")
        branches = VARIANTS[variant]["branches"]
        stitches = VARIANTS[variant]["stitches"]

        # With the spectrum in the model, the pixels are its only input, whatever its branches.
        input_names = ("rgb",) if spectrum_in_model else branches
        inputs = {
            name: keras.Input((image_size, image_size, 3), name=name, dtype="float32")
            for name in input_names
        }
        streams = {}
        if "rgb" in branches:  # keras.applications.xception.preprocess_input, inside the model
            streams["rgb"] = layers.Rescaling(1 / 127.5, offset=-1.0, name="rgb_preprocess")(
                inputs["rgb"]
            )
        if "freq" in branches:
            spectrum = (
                Spectrum(transform, name="spectrum")(inputs["rgb"])
                if spectrum_in_model
                else inputs["freq"]
            )
            streams["freq"] = FrequencyStandardization(3, name="freq_standardization")(spectrum)

        for spec in xception_stages(middle_blocks):
            streams = {name: apply_block(spec, x, name, bn_momentum) for name, x in streams.items()}
            if spec.name in stitches:
                streams["rgb"], streams["freq"] = CrossStitch(
                    stitch_self_weight,
                    stitch_cross_weight,
                    per_channel=per_channel_stitch,
                    name=f"cross_stitch_{spec.name}",
                )([streams["rgb"], streams["freq"]])

        pooled = [
            layers.GlobalAveragePooling2D(name=f"{name}_avg_pool")(x) for name, x in streams.items()
        ]
        if head == "fc":
            pooled = [
                layers.Dense(fc_units, activation="relu", name=f"{name}_fc")(x)
                for name, x in zip(streams, pooled, strict=True)
            ]
        features = pooled[0] if len(pooled) == 1 else layers.Concatenate(name="features")(pooled)
        if dropout:
            features = layers.Dropout(dropout, name="dropout")(features)
        # float32 output even under mixed precision, for a stable loss.
        output = layers.Dense(1, activation="sigmoid", dtype="float32", name="fake_probability")(
            features
        )
        super().__init__(inputs=inputs, outputs=output, **kwargs)

        self.variant = variant
        self.transform = transform
        self.image_size = image_size
        self.middle_blocks = middle_blocks
        self.stitch_self_weight = stitch_self_weight
        self.stitch_cross_weight = stitch_cross_weight
        self.per_channel_stitch = per_channel_stitch
        self.dropout = dropout
        self.bn_momentum = bn_momentum
        self.head = head
        self.fc_units = fc_units
        self.crop_size = crop_size
        self.spectrum_in_model = bool(spectrum_in_model)

    @property
    def detector(self) -> str:
        """The registry name: "md_csd", or "md_csd_<variant>" for a Table V ablation."""
        return "md_csd" if self.variant == "md_csd" else f"md_csd_{self.variant}"

    @property
    def branches(self) -> tuple[str, ...]:
        return VARIANTS[self.variant]["branches"]

    def set_frequency_statistics(self, mean, std) -> None:
        """Per-channel statistics of the frequency input, measured on training crops."""
        if "freq" in self.branches:
            self.get_layer("freq_standardization").set_statistics(mean, std)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # Models saved before the head option existed concatenated the pooled features.
        return super().from_config({"head": "pooled", **config}, custom_objects)


def build_model(
    variant: str = "md_csd",
    transform: str = "dct",
    image_size: int = 299,
    middle_blocks: int = 8,
    rgb_weights=None,
    **kwargs,
) -> MDCSDNetwork:
    """Builds an MD-CSD model (or a Table V ablation) and initialises its RGB branch.

    Args:
        variant, transform, image_size, middle_blocks, **kwargs: see `MDCSDNetwork`.
        rgb_weights: None (random), "imagenet" (Keras' download, as in the paper, Sec. II.C),
            a path to a Keras Xception weights file (`.h5`/`.weights.h5`, without top), or a
            built `keras.applications.Xception` to copy from. The frequency branch always starts
            random: ImageNet filters describe pixels, not spectra.

    Returns:
        An uncompiled `MDCSDNetwork`; compile it with `md_csd_tf.compile_model`.
    """
    model = MDCSDNetwork(variant, transform, image_size, middle_blocks, **kwargs)
    if rgb_weights is not None:
        if "rgb" not in model.branches:
            raise ValueError(f"Variant {variant!r} has no RGB branch to take rgb_weights.")
        copy_keras_xception_weights(_xception_source(rgb_weights, image_size), model, "rgb")
    return model


def _xception_source(rgb_weights, image_size: int) -> keras.Model:
    return backbone_source(
        rgb_weights,
        lambda w: keras.applications.Xception(
            include_top=False, weights=w, input_shape=(image_size, image_size, 3)
        ),
        "Xception",
        argument="rgb_weights",
    )


def feature_model(model: MDCSDNetwork) -> keras.Model:
    """A model from the same inputs to each present branch's pooled features, `(B, 2048)`.

    For t-SNE plots, Grad-CAM and checks against a plain Xception.

    Raises:
        UserError: the model has no pooled branch features by these names (a comparator of the
            registry rather than an MD-CSD model).
    """
    names = {layer.name for layer in model.layers}
    if any(f"{name}_avg_pool" not in names for name in model.branches):
        from md_csd_tf.errors import UserError

        raise UserError(
            f"{getattr(model, 'detector', type(model).__name__)}: has no MD-CSD branch features "
            "(rgb_avg_pool/freq_avg_pool); t-SNE of pooled features needs an md_csd* model"
        )
    outputs = {name: model.get_layer(f"{name}_avg_pool").output for name in model.branches}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")


# -- registry entries: MD-CSD and its Table V variants --------------------------------------------

from md_csd_tf.models.registry import Option, Recipe, register  # noqa: E402
from md_csd_tf.paper import OURS  # noqa: E402

_PAPER = "Agarwal et al., MD-CSDNetwork, FG 2021: Sec. II.B-C, Table V"
_OPTIONS = (
    Option("transform", str, "dct", tuple(TRANSFORMS), "the frequency transform (Table VI)"),
    Option("middle_blocks", int, 8, (0, 8), "Xception middle-flow blocks (the paper's 8)"),
    Option(
        "head", str, "fc", HEADS,
        "fc (the paper's 'last fully connected layers are concatenated') or pooled",
    ),
    Option("bn_momentum", float, 0.99, (0.0, 1.0), "BatchNorm momentum", high_open=True),
    Option(
        "spectrum_in_model", bool, False, None,
        "compute the frequency input inside the model (GPU/TPU) instead of in tf.data",
    ),
)  # fmt: skip


def build(
    image_size: int = 299,
    weights=None,
    crop_size: int | None = None,
    variant: str = "md_csd",
    **options,
) -> MDCSDNetwork:
    """The registry's builder of MD-CSD and its variants: `build_model` with the registry's
    signature. `weights` initialises the RGB branch (see `build_model`'s `rgb_weights`); a
    variant without one ignores it."""
    rgb_weights = weights if "rgb" in VARIANTS[variant]["branches"] else None
    options.setdefault("rgb_weights", rgb_weights)
    return build_model(variant, image_size=image_size, crop_size=crop_size, **options)


def _register_variant(variant: str, parameters: int, summary: str) -> None:
    name = "md_csd" if variant == "md_csd" else f"md_csd_{variant}"
    branches = VARIANTS[variant]["branches"]
    normalisation = {
        "rgb": "RGB x/127.5-1 (Xception)",
        "freq": "log-DCT standardised per channel (statistics of training crops)",
    }
    recipe = Recipe(
        paper=_PAPER,
        image_size=299,
        inputs=branches,
        normalisation="; ".join(normalisation[b] for b in branches),
        loss="bce",
        optimizer="adam",
        learning_rate=2e-4,  # Sec. II.C
        second_learning_rate=1e-3 if VARIANTS[variant]["stitches"] else None,  # the stitches
        batch_size=32,
        epochs=20,  # not in the paper; see docs/reading-the-paper.md
        plateau=(0.2, 3),  # x0.2 after 3 epochs without val-loss improvement
        video_aggregate="mean",
        min_image_size=71,  # Xception's minimum input
        parameters=parameters,
        cited={t: OURS for t in ("I", "II", "III", "IV")} if variant == "md_csd" else {},
    )

    register(name, functools.partial(build, variant=variant), recipe, summary, options=_OPTIONS)


LISTING_ORDER = 0  # where `list_detectors()` puts this module's entries

_register_variant(
    "md_csd", 50_119_783, "MD-CSDNetwork: RGB + log-DCT Xceptions, four cross-stitches"
)
_register_variant("one_stitch", 50_119_771, "Table V row 4: one cross-stitch after block2")
_register_variant("concat", 50_119_767, "Table V row 3: both branches, no stitches")
_register_variant("freq", 25_059_887, "Table V row 2: Xception on the log-DCT spectrum")
_register_variant("rgb", 25_059_881, "Table V row 1: Xception on pixels, MD-CSD's recipe")
