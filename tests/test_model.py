"""MD-CSD model: variants of Table V, inputs/outputs, weight transfer from Keras' Xception."""

import keras
import numpy as np
import pytest

from md_csd_tf import VARIANTS, build_model, feature_model
from md_csd_tf.models.xception_spec import POOL_STAGES

SIZE = 71  # Xception's minimum input
RNG = np.random.default_rng(2)


def inputs_for(model, batch=2):
    pixels = RNG.uniform(0, 255, size=(batch, SIZE, SIZE, 3)).astype(np.float32)
    spectrum = RNG.normal(size=(batch, SIZE, SIZE, 3)).astype(np.float32)
    data = {"rgb": pixels, "freq": spectrum}
    return {name: data[name] for name in model.branches}


@pytest.fixture(scope="module")
def md_csd():
    return build_model("md_csd", image_size=SIZE, middle_blocks=1)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.slow
def test_every_variant_predicts_a_probability_and_backpropagates(variant):
    import tensorflow as tf

    model = build_model(variant, image_size=SIZE, middle_blocks=1)
    x = inputs_for(model)
    assert set(model.input) == set(VARIANTS[variant]["branches"])
    with tf.GradientTape() as tape:
        y = model(x, training=True)
        loss = tf.reduce_mean(keras.losses.binary_crossentropy(tf.ones_like(y), y))
    grads = tape.gradient(loss, model.trainable_variables)
    assert y.shape == (2, 1)
    assert np.all((y.numpy() > 0) & (y.numpy() < 1))
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in grads)
    stitches = [layer.name for layer in model.layers if layer.name.startswith("cross_stitch")]
    assert stitches == [f"cross_stitch_{s}" for s in VARIANTS[variant]["stitches"]]


def test_stitches_sit_after_the_residual_add_of_each_pooling_block(md_csd):
    for stage in POOL_STAGES:
        stitch = md_csd.get_layer(f"cross_stitch_{stage}")
        sources = {tensor._keras_history.operation.name for tensor in stitch.input}
        assert sources == {f"rgb_{stage}_add", f"freq_{stage}_add"}


def test_feature_model_gives_pooled_2048_features_per_branch(md_csd):
    features = feature_model(md_csd)(inputs_for(md_csd, batch=3))
    assert set(features) == {"rgb", "freq"}
    assert all(f.shape == (3, 2048) for f in features.values())
    rgb_only = build_model("rgb", image_size=SIZE, middle_blocks=0)
    assert set(feature_model(rgb_only)(inputs_for(rgb_only))) == {"rgb"}


def test_frequency_statistics_live_in_the_model(md_csd, tmp_path):
    x = inputs_for(md_csd)
    layer = md_csd.get_layer("freq_standardization")
    md_csd.set_frequency_statistics([1.0, 2.0, 3.0], [2.0, 4.0, 0.5])
    standardised = layer(x["freq"]).numpy()
    np.testing.assert_allclose(
        standardised, (x["freq"] - [1.0, 2.0, 3.0]) / [2.0, 4.0, 0.5], rtol=1e-5, atol=1e-5
    )
    with pytest.raises(ValueError, match="std > 0"):
        md_csd.set_frequency_statistics([0, 0, 0], [1, 0, 1])


def test_rgb_branch_is_normalised_to_minus_one_one(md_csd):
    layer = md_csd.get_layer("rgb_preprocess")
    out = layer(np.array([[0.0, 127.5, 255.0]], np.float32)).numpy()
    np.testing.assert_allclose(out, [[-1.0, 0.0, 1.0]], atol=1e-6)


def test_config_round_trip_rebuilds_the_same_architecture(md_csd):
    clone = md_csd.__class__.from_config(md_csd.get_config())
    assert clone.get_config() == md_csd.get_config()
    assert [layer.name for layer in clone.layers] == [layer.name for layer in md_csd.layers]
    assert clone.count_params() == md_csd.count_params()


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="variant"):
        build_model("two_stitches", image_size=SIZE, middle_blocks=0)
    with pytest.raises(ValueError, match="71"):
        build_model(image_size=64, middle_blocks=0)
    with pytest.raises(ValueError, match="no RGB branch"):
        build_model("freq", image_size=SIZE, middle_blocks=0, rgb_weights=keras.Model())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_model(image_size=SIZE, middle_blocks=0, rgb_weights="/nonexistent/xception.h5")


@pytest.fixture(scope="module")
def keras_xception():
    """The reference backbone, randomly initialised (tests never download ImageNet weights)."""
    keras.utils.set_random_seed(3)
    return keras.applications.Xception(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3), pooling="avg"
    )


@pytest.mark.slow
def test_rgb_branch_with_keras_xception_weights_gives_the_same_features(keras_xception):
    # Perturb BN statistics so that a mis-mapped layer cannot pass by accident.
    for layer in keras_xception.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights(
                [
                    gamma * RNG.uniform(0.5, 1.5, gamma.shape),
                    beta + RNG.normal(0, 0.1, beta.shape),
                    mean + RNG.normal(0, 0.1, mean.shape),
                    var * RNG.uniform(0.5, 1.5, var.shape),
                ]
            )
    model = build_model("concat", image_size=SIZE, middle_blocks=8, rgb_weights=keras_xception)
    x = inputs_for(model)
    ours = feature_model(model)(x)["rgb"].numpy()
    theirs = keras_xception(keras.applications.xception.preprocess_input(x["rgb"].copy())).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)
    # The frequency branch stays random: ImageNet filters are for pixels.
    ours_freq = model.get_layer("freq_block1_conv1").get_weights()[0]
    assert not np.allclose(ours_freq, keras_xception.get_layer("block1_conv1").get_weights()[0])


@pytest.mark.slow
def test_rgb_weights_from_a_keras_weights_file(keras_xception, tmp_path):
    path = tmp_path / "xception_notop.weights.h5"
    keras_xception.save_weights(path)
    model = build_model("rgb", image_size=SIZE, middle_blocks=2, rgb_weights=path)
    np.testing.assert_array_equal(
        model.get_layer("rgb_block5_sepconv1").get_weights()[0],
        keras_xception.get_layer("block5_sepconv1").get_weights()[0],
    )
    np.testing.assert_array_equal(
        model.get_layer("rgb_block13_residual_conv").get_weights()[0],
        [
            layer
            for layer in keras_xception.layers
            if isinstance(layer, keras.layers.Conv2D) and not layer.name.startswith("block")
        ][3].get_weights()[0],
    )


@pytest.mark.slow
def test_every_named_keras_xception_layer_has_a_namesake_in_the_rgb_branch(keras_xception):
    model = build_model("rgb", image_size=SIZE, middle_blocks=8)
    ours = {layer.name for layer in model.layers}
    theirs = [layer.name for layer in keras_xception.layers if layer.name.startswith("block")]
    assert theirs and all(f"rgb_{name}" in ours for name in theirs)


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("transform", ["dct", "fft", "dwt"])
@pytest.mark.slow
def test_keras_round_trip_of_every_variant_and_transform(variant, transform, tmp_path):
    from md_csd_tf.data.inputs import model_inputs
    from md_csd_tf.models.saving import load_model

    model = build_model(variant, transform=transform, image_size=SIZE, middle_blocks=0)
    crops = RNG.integers(0, 255, size=(2, SIZE, SIZE, 3)).astype(np.uint8)
    before = model(model_inputs(model, crops), training=False).numpy()
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", compile=False)
    assert (loaded.variant, loaded.transform, loaded.head) == (variant, transform, "fc")
    np.testing.assert_allclose(loaded(model_inputs(loaded, crops), training=False), before,
                               atol=1e-6)  # fmt: skip


@pytest.mark.slow
def test_heads_follow_the_paper_by_default_and_old_models_still_load():
    from md_csd_tf.models.md_csd import MDCSDNetwork
    from md_csd_tf.models.variants import VARIANTS as LIGHT_VARIANTS

    assert {k: tuple(v["stitches"]) for k, v in LIGHT_VARIANTS.items()}["md_csd"] == POOL_STAGES
    fc = build_model("concat", image_size=SIZE, middle_blocks=0)
    assert fc.get_layer("rgb_fc").units == 2048 and fc.get_layer("freq_fc").units == 2048
    pooled = build_model("concat", image_size=SIZE, middle_blocks=0, head="pooled")
    assert pooled.get_layer("fake_probability").input.shape[-1] == 4096
    assert not any(layer.name.endswith("_fc") for layer in pooled.layers)
    config = fc.get_config()
    del config["head"]  # saved before the option existed: the pooled features were joined
    assert MDCSDNetwork.from_config(config).head == "pooled"
