"""The FF++ Xception baseline: recipe of the paper, head, normalisation, freezing, saving."""

import keras
import numpy as np
import pytest

from md_csd_tf.models.registry import Stage, build_detector, get_entry, recipe_of
from md_csd_tf.models.xception import BACKBONE, XceptionDetector

SIZE = 71  # Xception's minimum input
RNG = np.random.default_rng(5)


def pixels(batch=4, size=SIZE):
    return RNG.uniform(0, 255, size=(batch, size, size, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_detector("xception", image_size=SIZE)


def test_recipe_is_the_ff_plus_plus_schedule():
    recipe = get_entry("xception").recipe
    assert recipe.stages == (Stage(3, "head"), Stage(15, "all"))
    assert recipe.epochs == 18 == sum(stage.epochs for stage in recipe.stages)
    assert (recipe.optimizer, recipe.learning_rate, recipe.batch_size) == ("adam", 2e-4, 32)
    assert recipe.image_size == 299 and recipe.inputs == ("rgb",) and recipe.loss == "bce"


@pytest.mark.slow
def test_parameter_count_at_the_recipe_size():
    full = build_detector("xception")
    assert full.image_size == 299
    # Keras' Xception without top (20,861,480) + the new 2048 -> 1 unit.
    assert full.count_params() == get_entry("xception").recipe.parameters == 20_861_480 + 2049


@pytest.mark.slow
def test_contract_attributes_and_output_is_a_float32_probability(model):
    assert isinstance(model, XceptionDetector)
    assert (model.detector, model.branches, model.image_size, model.crop_size) == (
        "xception",
        ("rgb",),
        SIZE,
        None,
    )
    assert recipe_of(model).stages[0].trainable == "head"
    y = model.predict({"rgb": pixels()}, verbose=0)
    assert y.shape == (4, 1) and y.dtype == np.float32
    assert np.all((y > 0) & (y < 1))


def test_pixels_are_scaled_to_minus_one_one_inside_the_model(model):
    preprocess = model.get_layer("rgb_preprocess")
    out = np.asarray(preprocess(np.array([[[[0.0, 127.5, 255.0]]]], np.float32)))
    np.testing.assert_allclose(out.ravel(), [-1.0, 0.0, 1.0], atol=1e-6)
    assert model.get_layer(BACKBONE).input.shape[1:] == (SIZE, SIZE, 3)


@pytest.mark.slow
def test_imagenet_style_weights_are_copied_into_the_backbone():
    source = keras.applications.Xception(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    model = build_detector("xception", image_size=SIZE, weights=source)
    for mine, theirs in zip(model.backbone.get_weights(), source.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    with pytest.raises(FileNotFoundError):
        build_detector("xception", image_size=SIZE, weights="/no/such/file.weights.h5")


@pytest.mark.slow
def test_frozen_backbone_keeps_weights_and_batchnorm_statistics(model):
    model.freeze_backbone(True)
    try:
        assert [v.path for v in model.trainable_variables] == [
            "fake_probability/kernel",
            "fake_probability/bias",
        ]
        before = [w.copy() for w in model.backbone.get_weights()]  # moving stats included
        head = model.get_layer("fake_probability").get_weights()[0].copy()
        model.compile(keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
        model.fit({"rgb": pixels()}, np.array([0, 1, 0, 1.0]), epochs=2, verbose=0)
        for w, b in zip(model.backbone.get_weights(), before, strict=True):
            np.testing.assert_array_equal(w, b)
        assert not np.allclose(model.get_layer("fake_probability").get_weights()[0], head)
    finally:
        model.freeze_backbone(False)
    assert len(model.trainable_variables) == len(model.backbone.trainable_variables) + 2


@pytest.mark.slow
def test_keras_round_trip_gives_the_same_predictions(model, tmp_path):
    x = {"rgb": pixels()}
    path = tmp_path / "xception.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert type(loaded) is XceptionDetector and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
