"""EfficientNet-B4: pixels 0..255 into Keras' own normalisation, head, weights, saving, fit."""

import keras
import numpy as np
import pytest
from keras import layers

from md_csd_tf.models.efficientnet import EfficientNetB4Detector
from md_csd_tf.models.imagenet import IMAGENET_MEAN, IMAGENET_STD
from md_csd_tf.models.registry import build_detector, get_entry

SIZE = 64
RNG = np.random.default_rng(11)


def pixels(batch=4):
    return RNG.uniform(0, 255, size=(batch, SIZE, SIZE, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_detector("efficientnet_b4", image_size=SIZE)


def test_recipe():
    recipe = get_entry("efficientnet_b4").recipe
    assert (recipe.image_size, recipe.learning_rate, recipe.batch_size) == (224, 1e-5, 32)
    assert recipe.inputs == ("rgb",) and recipe.loss == "bce" and recipe.plateau[0] == 0.1


@pytest.mark.slow
def test_parameter_count_at_the_recipe_size():
    full = build_detector("efficientnet_b4")
    assert full.image_size == 224
    # Keras' EfficientNetB4 without top (17,673,823) + the 1792 -> 1 unit.
    assert full.count_params() == get_entry("efficientnet_b4").recipe.parameters
    assert full.count_params() == 17_673_823 + 1793


@pytest.mark.slow
def test_model_feeds_pixels_0_255_to_keras_normalisation_with_imagenet_statistics(model):
    # Nothing of ours between the input and the backbone: it gets the 0..255 pixels.
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer",
        "Functional",
        "Dropout",
        "Dense",
    ]
    norm = [layer for layer in model.backbone.layers if isinstance(layer, layers.Normalization)]
    assert len(norm) == 1
    x = pixels(2)
    normalised = keras.Model(model.backbone.input, norm[0].output)(x)
    expected = (x / 255.0 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    np.testing.assert_allclose(normalised, expected, atol=1e-5)


@pytest.mark.slow
def test_output_is_a_float32_probability_and_contract_attributes(model):
    assert isinstance(model, EfficientNetB4Detector)
    assert (model.detector, model.branches, model.image_size, model.crop_size) == (
        "efficientnet_b4",
        ("rgb",),
        SIZE,
        None,
    )
    assert model.get_layer("dropout").rate == 0.4  # B4's own top dropout
    y = np.asarray(model({"rgb": pixels()}, training=False))
    assert y.shape == (4, 1) and y.dtype == np.float32 and np.all((y > 0) & (y < 1))


@pytest.mark.slow
def test_keras_weights_are_copied_and_the_normalisation_kept(model):
    source = keras.applications.EfficientNetB4(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    copied = build_detector("efficientnet_b4", image_size=SIZE, weights=source)
    for name in ("stem_conv", "block4a_expand_conv", "top_bn"):
        for mine, theirs in zip(
            copied.backbone.get_layer(name).get_weights(),
            source.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(mine, theirs)
    norm = [layer for layer in copied.backbone.layers if isinstance(layer, layers.Normalization)]
    np.testing.assert_allclose(norm[0].get_weights()[0], IMAGENET_MEAN, atol=1e-7)


@pytest.mark.slow
def test_keras_round_trip_gives_the_same_predictions(model, tmp_path):
    x = {"rgb": pixels(2)}
    path = tmp_path / "efficientnet_b4.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert type(loaded) is EfficientNetB4Detector and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded(x), model(x), rtol=1e-5, atol=1e-6)
