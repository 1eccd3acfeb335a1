"""The detector contract in code (models/base.py), the multi-loss steps (models/multi_loss.py) and
the weights resolver (models/weights.py), on tiny models."""

import keras
import numpy as np
import pytest

from md_csd_tf.errors import UserError
from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.multi_loss import MultiLossSteps
from md_csd_tf.models.weights import backbone_source


@keras.saving.register_keras_serializable(package="md_csd_tf_tests")
class Mean(DetectorModel):
    """P(fake) = sigmoid(w * mean pixel + b)."""

    detector = "mean_test"
    config_keys = ("image_size", "scale", "crop_size")

    def __init__(self, image_size=8, scale=1.0, crop_size=None, **kwargs):
        rgb = keras.Input((image_size, image_size, 3), name="rgb")
        x = keras.layers.GlobalAveragePooling2D()(
            keras.layers.Rescaling(scale / 255, name="rescale")(rgb)
        )
        p = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="p")(x)
        super().__init__(inputs={"rgb": rgb}, outputs=p, **kwargs)
        self.image_size, self.scale, self.crop_size = image_size, scale, crop_size


@keras.saving.register_keras_serializable(package="md_csd_tf_tests")
class TwoLosses(MultiLossSteps, Mean):
    """`Mean` trained on BCE + 0.5 x the mean probability."""

    loss_names = ("loss", "bce_loss", "mean_loss")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.track_losses()

    def losses_of(self, x, y, sample_weight=None, training=False):
        p = self(x, training=training)
        bce = keras.ops.mean(keras.losses.binary_crossentropy(keras.ops.reshape(y, (-1, 1)), p))
        mean = keras.ops.mean(p)
        return {"loss": bce + 0.5 * mean, "bce_loss": bce, "mean_loss": mean}, p


def test_config_is_keras_base_plus_config_keys_plus_facts():
    model = Mean(image_size=8, scale=2.0, crop_size=12, name="m")
    config = model.get_config()
    assert {"name", "trainable", "dtype"} <= set(config)
    assert (config["scale"], config["crop_size"], config["detector"]) == (2.0, 12, "mean_test")
    assert Mean.from_config(config).get_config() == config


def test_from_config_drops_the_keys_older_files_listed():
    config = {**Mean(name="m").get_config(), "transform": "dct", "branches": ["rgb"]}
    assert Mean.from_config(config).scale == 1.0


def test_a_config_saved_under_mixed_precision_loads_as_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        config = Mean(name="m").get_config()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert config["dtype"]["config"]["name"] == "mixed_float16"
    model = Mean.from_config(config)  # layers follow the policy of the loading program
    assert model.get_layer("rescale").compute_dtype == "float32"


def test_contract_defaults_and_hooks():
    model = Mean()
    assert (model.branches, model.transform, model.clip_frames) == (("rgb",), "dct", None)
    assert not model.reads_clips and not model.spectrum_in_model
    assert not model.can_freeze_backbone
    model.freeze_backbone(False)  # nothing to unfreeze
    with pytest.raises(UserError, match="no backbone to freeze"):
        model.freeze_backbone(True)
    model.set_frequency_statistics([0, 0, 0], [1, 1, 1])  # no "freq" branch: nothing to set
    assert model.with_spectrum_in_model() is model

    class WithFreq(Mean):
        branches = ("rgb", "freq")

    with pytest.raises(NotImplementedError):
        WithFreq().set_frequency_statistics([0, 0, 0], [1, 1, 1])
    with pytest.raises(UserError, match="no spectrum_in_model option"):
        WithFreq().with_spectrum_in_model()


def test_multi_loss_steps_log_every_loss_and_train():
    keras.utils.set_random_seed(0)
    model = TwoLosses(name="two")
    model.compile(keras.optimizers.Adam(0.1), loss=None, metrics=["accuracy"])
    x = {"rgb": np.stack([np.full((8, 8, 3), v, np.float32) for v in (0, 255, 0, 255)])}
    y = np.array([0, 1, 0, 1], np.float32)
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0).history
    assert {"loss", "bce_loss", "mean_loss", "accuracy"} <= set(history)
    assert history["loss"][-1] < history["loss"][0]
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], logs["bce_loss"] + 0.5 * logs["mean_loss"], rtol=1e-5)


def test_backbone_source_has_one_set_of_errors(tmp_path):
    source = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert backbone_source(source, None, "Xception") is source
    with pytest.raises(FileNotFoundError, match="does not exist; pass 'imagenet'.*Xception"):
        backbone_source(tmp_path / "missing.h5", None, "Xception")
    with pytest.raises(TypeError, match="rgb_weights must be None"):
        backbone_source(3, None, "Xception", argument="rgb_weights")
    made = []
    backbone_source("imagenet", lambda w: made.append(w) or source, "Xception")
    assert made == ["imagenet"]
