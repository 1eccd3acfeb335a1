"""The FaceForensics++ XceptionNet baseline (Rössler et al., ICCV 2019) as a registry detector.

FF++ takes an ImageNet Xception, replaces its last fully connected layer by a new 2-way one
and fine-tunes it on face crops (Sec. 4/5 and the supplementary "XceptionNet" paragraph):
first the new layer alone for 3 epochs, then the whole network for 15 more, Adam at 2e-4,
batch 32, keeping the model with the best validation accuracy. Inputs are 299x299 crops scaled
to [-1, 1] (their normalisation: mean 0.5, std 0.5 on 0..1 pixels).

Where we chose (docs/detectors.md):
- One sigmoid unit = P(fake) instead of their 2-way softmax. A 2-way softmax over logits
  (a, b) gives P(fake) = sigmoid(b - a), so the two parametrise the same family of classifiers
  (one redundant degree of freedom fewer here); binary cross-entropy on the sigmoid equals their
  cross-entropy on the softmax.
- No dropout by default: their `TransferModel` only adds dropout before the new layer when asked
  (`dropout=0.0` default). `dropout` is an option.
- The backbone is `keras.applications.Xception` (not `xception_spec.py`): it is the reference
  the ImageNet weights belong to, so `weights="imagenet"` needs no name mapping, and nothing
  here needs to cut the network between blocks as MD-CSD's cross-stitches do.
"""

from __future__ import annotations

import keras
from keras import layers

from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.registry import Recipe, Stage, register
from md_csd_tf.models.weights import backbone_source

BACKBONE = "xception"  # the name keras.applications gives the nested backbone model


@keras.saving.register_keras_serializable(package="md_csd_tf")
class XceptionDetector(DetectorModel):
    """ImageNet Xception with a new one-unit sigmoid head: the FF++ baseline.

    Input: `{"rgb": (B, H, W, 3) float32 pixels 0..255}`; scaled to [-1, 1] inside the model
    (`keras.applications.xception.preprocess_input`). Output: `(B, 1)` float32 P(fake).

    Args:
        image_size: side of the square input (Xception needs at least 71; FF++ uses 299).
        dropout: dropout rate before the new classifier (FF++ default: none).
        crop_size: side of the training crops (None = `image_size`), for predict.

    Reference: Rössler et al., FaceForensics++, ICCV 2019, Sec. 5 and supplementary material
    ("XceptionNet").
    """

    detector = "xception"
    config_keys = ("image_size", "dropout", "crop_size")

    def __init__(
        self,
        image_size: int = 299,
        dropout: float = 0.0,
        crop_size: int | None = None,
        **kwargs,
    ):
        if image_size < 71:
            raise ValueError(f"Xception needs image_size >= 71, got {image_size}.")
        rgb = keras.Input((image_size, image_size, 3), name="rgb", dtype="float32")
        x = layers.Rescaling(1 / 127.5, offset=-1.0, name="rgb_preprocess")(rgb)
        # Always built random: weights arrive through `build`, so that reloading a saved
        # model never reaches for the ImageNet download.
        backbone = keras.applications.Xception(
            include_top=False,
            weights=None,
            input_shape=(image_size, image_size, 3),
            pooling="avg",
        )
        features = backbone(x)
        if dropout:
            features = layers.Dropout(dropout, name="dropout")(features)
        # float32 output even under mixed precision, for a stable loss.
        output = layers.Dense(1, activation="sigmoid", dtype="float32", name="fake_probability")(
            features
        )
        super().__init__(inputs={"rgb": rgb}, outputs=output, **kwargs)
        self.image_size = image_size
        self.dropout = dropout
        self.crop_size = crop_size

    @property
    def backbone(self) -> keras.Model:
        return self.get_layer(BACKBONE)

    def freeze_backbone(self, frozen: bool) -> None:
        """Freezes (or unfreezes) the ImageNet Xception, leaving the new head trainable.

        A frozen backbone's BatchNormalization layers run in inference mode (Keras 3 does this
        for layers with `trainable=False`), so the head-only stage does not move their moving
        statistics. Recompile after calling this; the trainer does.
        """
        self.backbone.trainable = not frozen


def xception_source(weights, image_size: int) -> keras.Model:
    """The RGB `keras.applications.Xception` (include_top=False) whose weights a detector copies.

    Args:
        weights: "imagenet" (Keras' download), a path to a Keras Xception weights file without
            top, or a built `keras.applications.Xception` (returned as is); see
            `models.weights.backbone_source`.
        image_size: input side to build the source at.
    """
    return backbone_source(
        weights,
        lambda w: keras.applications.Xception(
            include_top=False, weights=w, input_shape=(image_size, image_size, 3)
        ),
        "Xception",
    )


def build(
    image_size: int = 299, weights=None, crop_size: int | None = None, dropout: float = 0.0
) -> XceptionDetector:
    """Builds the FF++ Xception baseline.

    Args:
        image_size: input side (recipe: 299).
        weights: None (random), "imagenet" (Keras' download, as FF++ starts from), a path to a
            Keras Xception weights file without top, or a built `keras.applications.Xception`.
        dropout, crop_size: see `XceptionDetector`.

    Returns:
        An uncompiled `XceptionDetector`; its head is random in every case.
    """
    model = XceptionDetector(image_size=image_size, dropout=dropout, crop_size=crop_size)
    if weights is not None:
        model.backbone.set_weights(xception_source(weights, image_size).get_weights())
    return model


RECIPE = Recipe(
    paper=(
        "Rössler et al., FaceForensics++, ICCV 2019: Sec. 5 and supplementary 'XceptionNet' "
        "(head 3 epochs, then all 15; Adam 2e-4; batch 32; best validation accuracy)"
    ),
    image_size=299,  # Xception's ImageNet size, used by FF++
    inputs=("rgb",),
    normalisation="RGB x/127.5-1 (Xception)",
    loss="bce",  # = their 2-way cross-entropy, see the module docstring
    optimizer="adam",
    learning_rate=2e-4,
    batch_size=32,
    epochs=18,
    stages=(Stage(3, "head"), Stage(15, "all")),
    plateau=None,  # FF++ keeps a constant rate
    video_aggregate="mean",
    min_image_size=71,  # Xception's minimum input
    parameters=20_863_529,
    # Where the MD-CSD paper cites the FF++ Xception (numbers from other papers).
    cited={"I": "FF++ [42]", "II": "FF++ [42]", "III": "Xception-c23 [42]", "IV": "Xception [14]"},
)

LISTING_ORDER = 10  # where `list_detectors()` puts this module's entries

register(
    "xception",
    build,
    RECIPE,
    "FF++ baseline: ImageNet Xception, new sigmoid head; head 3 epochs, then all 15",
)
