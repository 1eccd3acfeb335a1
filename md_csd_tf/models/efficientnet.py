"""EfficientNet-B4 (Tan & Le, ICML 2019) with a binary head: the comparator of Tables II/III.

The deepfake-detection use we follow is Bonettini et al., "Video Face Manipulation Detection
Through Ensemble of CNNs", ICPR 2020 (Sec. III-IV and their published training script
`scripts/train_all.sh`): ImageNet EfficientNet-B4, its 1000-way classifier replaced by one unit
after global average pooling and the network's own dropout (0.4 for B4), trained end to end with
binary cross-entropy, Adam at 1e-5, batch 32, on 224x224 face crops normalised with the ImageNet
mean and standard deviation; the learning rate drops by 10x when the validation loss stalls for
10 validations, and the model of lowest validation loss is kept (`train_binclass.py`).

Where we chose (docs/detectors.md):
- The project's one trainer keeps the epoch of best validation accuracy for every detector, not
  the lowest validation loss: one model-selection rule across the leaderboard.
- 224 px, not B4's native 380: the size the FF++ comparison we follow trained at, and closer to
  the 299 px of the other detectors of the tables. `image_size` is an option (EfficientNet is
  fully convolutional up to its pooling, so the parameter count does not depend on it).
- Their schedule is in iterations (up to 30k iterations of 32, validation every 500, patience of
  10 validations); our trainer counts epochs, so the recipe keeps Adam 1e-5 / batch 32 / x0.1 on
  plateau and uses 20 epochs with a patience of 2 epochs.
- Normalisation: Keras' EfficientNet starts with its own Rescaling(1/255) and Normalization
  layers and expects pixels 0..255, which is what the "rgb" input carries, so the model feeds
  them straight in. Keras stores the ImageNet statistics only in its weight file (and a built-in
  random model has mean 0, variance 1), so we set the Normalization layer to the ImageNet mean and
  variance = std^2 ourselves, in every model: the same (x/255 - mean)/std whether or not
  ImageNet weights are loaded, and the same graph when a saved model is rebuilt.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from md_csd_tf.models.base import DetectorModel

# ImageNet statistics of 0..1 pixels (torchvision's, which Bonettini et al. use, and Keras').
from md_csd_tf.models.imagenet import IMAGENET_MEAN, IMAGENET_STD
from md_csd_tf.models.registry import Recipe, register
from md_csd_tf.models.weights import backbone_source

BACKBONE = "efficientnetb4"  # the name keras.applications gives the nested backbone model


@keras.saving.register_keras_serializable(package="md_csd_tf")
class EfficientNetB4Detector(DetectorModel):
    """Keras' EfficientNet-B4 with global average pooling, dropout and one sigmoid unit.

    Input: `{"rgb": (B, H, W, 3) float32 pixels 0..255}`, fed as is to the backbone, whose first
    layers compute (x/255 - ImageNet mean) / ImageNet std. Output: `(B, 1)` float32 P(fake).

    Args:
        image_size: side of the square input (recipe: 224; B4's native size is 380).
        dropout: dropout before the classifier (0.4, B4's own top dropout).
        crop_size: side of the training crops (None = `image_size`), for predict.

    Reference: Tan & Le, EfficientNet, ICML 2019 (B4: Table 1 scaling); Bonettini et al.,
    ICPR 2020, Sec. III ("EfficientNetB4").
    """

    detector = "efficientnet_b4"
    config_keys = ("image_size", "dropout", "crop_size")

    def __init__(
        self,
        image_size: int = 224,
        dropout: float = 0.4,
        crop_size: int | None = None,
        **kwargs,
    ):
        if image_size < 32:
            raise ValueError(f"EfficientNet needs image_size >= 32, got {image_size}.")
        rgb = keras.Input((image_size, image_size, 3), name="rgb", dtype="float32")
        # Random here; ImageNet weights arrive through `build`, so that reloading
        # a saved model never reaches for the download.
        backbone = keras.applications.EfficientNetB4(
            include_top=False,
            weights=None,
            input_shape=(image_size, image_size, 3),
            pooling="avg",
        )
        _set_imagenet_normalization(backbone)
        features = backbone(rgb)  # pixels 0..255: the backbone rescales and normalises them
        if dropout:
            features = layers.Dropout(dropout, name="dropout")(features)
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
        """Freezes (or unfreezes) EfficientNet-B4, leaving the head trainable (BatchNorm layers
        then run in inference mode). The recipe has no head stage; this is for users."""
        self.backbone.trainable = not frozen


def _normalization_layer(backbone: keras.Model) -> layers.Normalization:
    found = [layer for layer in backbone.layers if isinstance(layer, layers.Normalization)]
    if len(found) != 1:  # a Keras upgrade changed the preprocessing of EfficientNet
        raise ValueError(f"expected one Normalization layer in {backbone.name}, found {found}")
    return found[0]


def _set_imagenet_normalization(backbone: keras.Model) -> None:
    norm = _normalization_layer(backbone)
    mean = np.asarray(IMAGENET_MEAN, "float32")
    variance = np.square(np.asarray(IMAGENET_STD, "float32"))
    norm.set_weights([mean, variance, np.asarray(0, norm.get_weights()[2].dtype)])
    norm.finalize_state()  # recompute the broadcast mean/variance the layer applies


def copy_efficientnet_weights(source: keras.Model, backbone: keras.Model) -> int:
    """Copies a `keras.applications.EfficientNetB4` (include_top=False) into `backbone`.

    Layers map by name; the source's Normalization layer is skipped (Keras' ImageNet file stores
    the standard deviation where the variance belongs and compensates with an extra Rescaling
    layer that our graph does not have; ours already holds the ImageNet statistics).

    Returns:
        The number of layers copied.
    """
    copied = 0
    for layer in backbone.layers:
        if not layer.weights or isinstance(layer, layers.Normalization):
            continue
        layer.set_weights(source.get_layer(layer.name).get_weights())
        copied += 1
    return copied


def build(
    image_size: int = 224, weights=None, crop_size: int | None = None, dropout: float = 0.4
) -> EfficientNetB4Detector:
    """Builds the EfficientNet-B4 detector.

    Args:
        image_size: input side (recipe: 224).
        weights: None (random), "imagenet" (Keras' download), a path to a Keras EfficientNetB4
            weights file without top, or a built `keras.applications.EfficientNetB4`.
        dropout, crop_size: see `EfficientNetB4Detector`.

    Returns:
        An uncompiled `EfficientNetB4Detector`; its head is random in every case.
    """
    model = EfficientNetB4Detector(image_size=image_size, dropout=dropout, crop_size=crop_size)
    if weights is None:
        return model
    source = backbone_source(
        weights,
        lambda w: keras.applications.EfficientNetB4(
            include_top=False, weights=w, input_shape=(image_size, image_size, 3)
        ),
        "EfficientNetB4",
    )
    copy_efficientnet_weights(source, model.backbone)
    return model


RECIPE = Recipe(
    paper=(
        "Tan & Le, EfficientNet, ICML 2019 (B4); as a deepfake detector: Bonettini et al., "
        "ICPR 2020, Sec. III-IV, scripts/train_all.sh and train_binclass.py (224 px, Adam 1e-5, "
        "batch 32, x0.1 on a validation-loss plateau)"
    ),
    image_size=224,
    inputs=("rgb",),
    normalisation="RGB (x/255 - ImageNet mean) / ImageNet std (Keras' EfficientNet layers)",
    loss="bce",
    optimizer="adam",
    learning_rate=1e-5,
    batch_size=32,
    epochs=20,  # their budget is 30k iterations; see the module docstring
    plateau=(0.1, 2),
    video_aggregate="mean",
    parameters=17_675_616,
    cited={"II": "EfficientNet-B4 [45]", "III": "EfficientNet-B4 [45]"},  # in the MD-CSD paper
)

LISTING_ORDER = 40  # where `list_detectors()` puts this module's entries

register(
    "efficientnet_b4",
    build,
    RECIPE,
    "ImageNet EfficientNet-B4, dropout 0.4 and a sigmoid unit (Bonettini et al.'s recipe)",
)
