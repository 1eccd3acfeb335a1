"""A whole detector in one file: the example of docs/detectors.md, "Adding a detector"."""

import keras

from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.registry import Option, Recipe, register


@keras.saving.register_keras_serializable(package="md_csd_tf_example")
class TinyCNN(DetectorModel):
    """Two strided convolutions and a sigmoid unit on pixels scaled to [0, 1]."""

    detector = "tiny_cnn"  # its registry name; branches ("rgb",) is the default
    config_keys = ("image_size", "width", "crop_size")  # get_config/from_config follow

    def __init__(self, image_size: int = 64, width: int = 8, crop_size=None, **kwargs):
        rgb = keras.Input((image_size, image_size, 3), name="rgb")  # pixels 0..255
        x = keras.layers.Rescaling(1 / 255)(rgb)  # the model normalises its own pixels
        for i in range(2):
            x = keras.layers.Conv2D(width * 2**i, 3, strides=2, activation="relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        p = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="fake_probability")
        super().__init__(inputs={"rgb": rgb}, outputs=p(x), **kwargs)
        self.image_size, self.width, self.crop_size = image_size, width, crop_size


def build(image_size: int = 64, weights=None, crop_size=None, **options) -> TinyCNN:
    """The registry's builder: one signature for every detector."""
    if weights is not None:
        raise ValueError("tiny_cnn has no pretrained weights; pass weights=None")
    return TinyCNN(image_size=image_size, crop_size=crop_size, **options)


RECIPE = Recipe(
    paper="none: the example of docs/detectors.md",
    image_size=64,
    inputs=("rgb",),
    normalisation="RGB x/255",
    learning_rate=1e-3,
    init=None,  # trained from scratch: no pretrained backbone
)

WIDTH = Option("width", int, 8, (1, 64), "filters of the first convolution")
register("tiny_cnn", build, RECIPE, "Example: two convolutions", options=(WIDTH,))
