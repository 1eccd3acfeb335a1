"""MesoNet (Afchar et al., WIFS 2018): the paper's facts and the published weights.

The published files are checked against an independent reference: the authors' architecture
written layer by layer as a plain Keras functional model, loaded by Keras's own legacy-HDF5
loader (which matches layers by graph order, where our loader matches them by creation order),
fed pixels / 255 as the authors' pipeline did. Our model must output 1 - its P(real).
"""

import configparser
import fnmatch
import os
from importlib import resources
from pathlib import Path

import keras
import numpy as np
import pytest
import skimage.data
from keras import layers

from md_csd_tf.errors import UserError
from md_csd_tf.models import mesonet
from md_csd_tf.models.registry import (
    StepDecay,
    build_detector,
    get_entry,
    list_detectors,
    recipe_of,
)

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = {  # name -> (detector, file)
    "mesonet-df": ("meso4", "Meso4_DF.h5"),
    "mesonet-f2f": ("meso4", "Meso4_F2F.h5"),
    "mesoinception-df": ("mesoinception4", "MesoInception_DF.h5"),
    "mesoinception-f2f": ("mesoinception4", "MesoInception_F2F.h5"),
}


def _reference(variant: str) -> keras.Model:
    """The published architecture on [0, 1] inputs (DariusAf/MesoNet, classifiers.py facts)."""
    x = inputs = keras.Input((256, 256, 3))

    def block(x, filters, kernel, pool):
        x = layers.Conv2D(filters, kernel, padding="same", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        return layers.MaxPooling2D(pool, padding="same")(x)

    def inception(x, a, b, c, d):
        branches = [layers.Conv2D(a, 1, padding="same", activation="relu")(x)]
        for width, rate in ((b, 1), (c, 2), (d, 3)):
            y = layers.Conv2D(width, 1, padding="same", activation="relu")(x)
            branches.append(
                layers.Conv2D(width, 3, dilation_rate=rate, padding="same", activation="relu")(y)
            )
        x = layers.BatchNormalization()(layers.Concatenate()(branches))
        return layers.MaxPooling2D(2, padding="same")(x)

    if variant == "meso4":
        for spec in ((8, 3, 2), (8, 5, 2), (16, 5, 2), (16, 5, 4)):
            x = block(x, *spec)
    else:
        x = inception(x, 1, 4, 4, 2)
        x = inception(x, 2, 4, 4, 2)
        x = block(x, 16, 5, 2)
        x = block(x, 16, 5, 4)
    x = layers.Dropout(0.5)(layers.Flatten()(x))
    x = layers.LeakyReLU(negative_slope=0.1)(layers.Dense(16)(x))
    x = layers.Dense(1, activation="sigmoid")(layers.Dropout(0.5)(x))
    return keras.Model(inputs, x)


def _face_batch() -> np.ndarray:
    """(4, 256, 256, 3) pixels 0..255: two crops of a real face photograph and two random
    images (smooth, mid-grey, so the published sigmoids are not all saturated)."""
    photo = skimage.data.astronaut().astype("float32")
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    smooth = np.repeat(np.repeat(noise, 8, axis=1), 8, axis=2) * 0.5 + 64
    return np.stack([photo[0:256, 128:384], photo[20:276, 140:396], *smooth])


# -- the paper's numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, trainable, total", [("meso4", 27_977, 28_073), ("mesoinception4", 28_615, 28_725)]
)
def test_trainable_parameters_are_the_papers(name, trainable, total):
    model = build_detector(name)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable
    assert model.count_params() == total == get_entry(name).recipe.parameters
    assert model.image_size == 256 and model.output_shape == (None, 1)


def test_meso4_layers_are_the_published_ones():
    model = build_detector("meso4")
    convs = [model.get_layer(f"block{i}_conv") for i in (1, 2, 3, 4)]
    assert [c.filters for c in convs] == [8, 8, 16, 16]
    assert [c.kernel_size for c in convs] == [(3, 3), (5, 5), (5, 5), (5, 5)]
    assert {c.padding for c in convs} == {"same"}
    pools = [model.get_layer(f"block{i}_pool") for i in (1, 2, 3, 4)]
    assert [p.pool_size for p in pools] == [(2, 2), (2, 2), (2, 2), (4, 4)]
    # BatchNorm reads the ReLU'd convolution (their order: Conv(relu) -> BN -> pool).
    assert model.get_layer("block1_bn").input is convs[0].output
    assert model.get_layer("hidden").units == 16
    assert model.get_layer("hidden_leaky_relu").negative_slope == pytest.approx(0.1)
    assert [model.get_layer(f"dropout{i}").rate for i in (1, 2)] == [0.5, 0.5]
    assert model.get_layer("flatten").output.shape[-1] == 8 * 8 * 16


def test_mesoinception4_modules_have_the_published_widths_and_dilations():
    model = build_detector("mesoinception4")
    for i, widths in ((1, (1, 4, 4, 2)), (2, (2, 4, 4, 2))):
        assert model.get_layer(f"inception{i}_a_1x1").filters == widths[0]
        for branch, width, rate in zip("bcd", widths[1:], (1, 2, 3), strict=True):
            conv = model.get_layer(f"inception{i}_{branch}_3x3")
            assert (conv.filters, conv.kernel_size, conv.dilation_rate) == (
                width,
                (3, 3),
                (rate,) * 2,
            )
        assert model.get_layer(f"inception{i}_concat").output.shape[-1] == sum(widths)
    assert model.get_layer("block3_conv").kernel_size == (5, 5)
    assert model.get_layer("block4_pool").pool_size == (4, 4)


def test_pixels_are_divided_by_255_inside_the_model():
    model = build_detector("meso4", image_size=64)
    rescale = model.get_layer("rgb_preprocess")
    assert rescale.input is model.inputs[0]
    probe = keras.Model(model.inputs, rescale.output)
    pixels = np.full((1, 64, 64, 3), 255.0, "float32")
    pixels[0, 0, 0] = [0.0, 51.0, 127.5]
    out = probe.predict({"rgb": pixels}, verbose=0)
    np.testing.assert_allclose(out[0, 0, 0], [0.0, 0.2, 0.5], atol=1e-7)
    np.testing.assert_allclose(out[0, 1:, 1:], 1.0, atol=1e-7)


def test_recipe_is_the_papers():
    for name in ("meso4", "mesoinception4"):
        recipe = get_entry(name).recipe
        assert (recipe.image_size, recipe.inputs) == (256, ("rgb",))
        assert (recipe.loss, recipe.optimizer, recipe.learning_rate) == ("mse", "adam", 1e-3)
        assert recipe.batch_size == 75
        # Sec. 3: divided by 10 every 1000 iterations down to 1e-6.
        assert recipe.lr_schedule == StepDecay(1000, 0.1, 1e-6)
        assert recipe.video_aggregate == "mean"
        assert "x/255" in recipe.normalisation and "WIFS 2018" in recipe.paper
    assert {"meso4", "mesoinception4"} <= set(list_detectors())


# -- the published weights ------------------------------------------------------------------------


@pytest.mark.parametrize("weights", list(WEIGHTS))
@pytest.mark.slow
def test_published_weights_give_one_minus_the_published_output(weights):
    detector, filename = WEIGHTS[weights]
    model = build_detector(detector, weights=weights)
    reference = _reference(detector)
    reference.load_weights(mesonet.published_weights_path(weights))  # Keras's own H5 loader
    assert Path(mesonet.published_weights_path(weights)).name == filename

    pixels = _face_batch()
    p_real = reference.predict(pixels / 255.0, verbose=0)
    p_fake = model.predict({"rgb": pixels}, verbose=0)
    assert p_fake.shape == (4, 1) and p_fake.dtype == np.float32
    np.testing.assert_allclose(p_fake, 1.0 - p_real, atol=1e-5)
    # Some published sigmoids saturate on these images, so the 16 features that feed the last
    # Dense are compared too: every layer before it is loaded exactly.
    ours = keras.Model(model.inputs, model.get_layer("dropout2").output)
    theirs = keras.Model(reference.inputs, reference.layers[-2].output)
    features = ours.predict({"rgb": pixels}, verbose=0)
    np.testing.assert_allclose(features, theirs.predict(pixels / 255.0, verbose=0), atol=1e-4)
    assert np.ptp(features) > 0.1  # not a degenerate all-zero comparison


@pytest.mark.slow
def test_label_flip_negates_only_the_last_dense():
    flipped = build_detector("meso4", weights="mesonet-df")
    as_published = mesonet.MesoNet("meso4")
    mesonet.load_published_weights(
        as_published, mesonet.published_weights_path("mesonet-df"), flip_to_fake=False
    )
    for a, b in zip(flipped.weights, as_published.weights, strict=True):
        sign = -1.0 if a.path.startswith("fake_probability/") else 1.0
        np.testing.assert_array_equal(np.asarray(a), sign * np.asarray(b))
    pixels = _face_batch()
    np.testing.assert_allclose(
        flipped.predict({"rgb": pixels}, verbose=0),
        1.0 - as_published.predict({"rgb": pixels}, verbose=0),
        atol=2e-6,
    )


def test_meso4_df_scores_a_real_face_photograph_as_real():
    model = build_detector("meso4", weights="mesonet-df")
    face = skimage.data.astronaut()[0:256, 128:384].astype("float32")[None]
    p_fake = model.predict({"rgb": face}, verbose=0)
    assert np.all(np.isfinite(p_fake)) and 0.0 <= p_fake[0, 0] <= 1.0
    assert p_fake[0, 0] < 0.5  # measured 0.05: the published model calls the photograph real


def test_weights_by_path_equal_weights_by_name():
    path = mesonet.published_weights_path("mesoinception-f2f")
    by_name = build_detector("mesoinception4", weights="mesoinception-f2f")
    by_path = build_detector("mesoinception4", weights=Path(path))
    for a, b in zip(by_name.weights, by_path.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_keras3_weights_file_of_this_model_loads_as_is(tmp_path):
    model = build_detector("meso4", image_size=64)
    path = tmp_path / "meso4.weights.h5"
    model.save_weights(path)
    again = build_detector("meso4", image_size=64, weights=str(path))
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(
        model.predict({"rgb": pixels}, verbose=0), again.predict({"rgb": pixels}, verbose=0)
    )


@pytest.mark.parametrize(
    "detector, options, message",
    [
        ("meso4", {"weights": "mesoinception-df"}, "are for mesoinception4"),
        ("meso4", {"weights": "mesonet-celebdf"}, "neither a file nor a published name"),
        ("meso4", {"weights": "imagenet"}, "no ImageNet weights"),
        ("meso4", {"weights": "mesonet-df", "image_size": 128}, "does not fit meso4 at 128 px"),
    ],
)
def test_weights_that_do_not_fit_fail_in_one_line(detector, options, message):
    with pytest.raises(UserError, match=message) as err:
        build_detector(detector, **options)
    assert "\n" not in str(err.value)


def test_a_file_of_the_other_architecture_fails_in_one_line():
    path = mesonet.published_weights_path("mesoinception-df")
    with pytest.raises(UserError, match="does not fit meso4") as err:
        build_detector("meso4", weights=path)
    assert "\n" not in str(err.value)


def test_weights_ship_as_package_data_with_license_and_notice():
    folder = resources.files("md_csd_tf").joinpath("resources/mesonet")
    shipped = {"LICENSE", "NOTICE", "README.md", *(f for _, f in WEIGHTS.values())}
    assert shipped <= {p.name for p in folder.iterdir()}
    assert "Apache License" in folder.joinpath("LICENSE").read_text("utf-8")
    assert "Afchar" in folder.joinpath("NOTICE").read_text("utf-8")
    # setup.cfg's package_data patterns take every one of them into a wheel / sdist.
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = config["options.package_data"]["md_csd_tf"].replace(",", " ").split()
    for name in shipped:
        assert any(fnmatch.fnmatch(f"resources/mesonet/{name}", p) for p in patterns), name
    for detector in ("meso4", "mesoinception4"):
        for name, resource in get_entry(detector).weights.items():
            assert WEIGHTS[name][0] == detector
            assert os.path.isfile(resources.files("md_csd_tf").joinpath(resource))


# -- the registry contract ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["meso4", "mesoinception4"])
@pytest.mark.slow
def test_keras_round_trip_keeps_predictions_and_attributes(name, tmp_path):
    model = build_detector(name, image_size=64, crop_size=80)
    assert (model.detector, model.branches, model.crop_size) == (name, ("rgb",), 80)
    assert recipe_of(model) is get_entry(name).recipe
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe mode
    assert type(loaded) is mesonet.MesoNet
    assert (loaded.detector, loaded.image_size, loaded.crop_size) == (name, 64, 80)
    assert (loaded.branches, loaded.transform) == (("rgb",), "dct")
    pixels = np.random.default_rng(2).uniform(0, 255, (3, 64, 64, 3)).astype("float32")
    out = model.predict({"rgb": pixels}, verbose=0)
    np.testing.assert_allclose(loaded.predict({"rgb": pixels}, verbose=0), out, atol=1e-6)
    assert out.shape == (3, 1) and np.all((out >= 0) & (out <= 1))


@pytest.mark.slow
def test_a_few_adam_mse_steps_lower_the_loss():
    keras.utils.set_random_seed(0)
    model = build_detector("meso4", image_size=64, dropout=0.0)
    rng = np.random.default_rng(3)
    x = {"rgb": rng.uniform(0, 255, (4, 64, 64, 3)).astype("float32")}
    y = np.array([[0.0], [1.0], [0.0], [1.0]], "float32")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    history = model.fit(x, y, batch_size=4, epochs=15, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]


def test_the_predict_detector_runs_the_published_model_on_a_face_photograph():
    from md_csd_tf.inference.detector import Detector

    detector = Detector(build_detector("meso4", weights="mesonet-df"), batch_size=2)
    assert detector.image_size == 256
    scores = detector.predict_crops([skimage.data.astronaut()[0:300, 100:400]])
    assert scores.shape == (1,) and np.isfinite(scores[0]) and scores[0] < 0.5
