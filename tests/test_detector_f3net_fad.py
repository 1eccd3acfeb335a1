"""F3-Net's FAD branch: the DCT against scipy, the band masks, the filters by hand, the model."""

import keras
import numpy as np
import pytest
import scipy.fft

from md_csd_tf.models.f3net import (
    F3NetFAD,
    FrequencyAwareDecomposition,
    band_cutoffs,
    band_masks,
)
from md_csd_tf.models.registry import build_detector, get_entry

SIZE = 71  # Xception's minimum input
RNG = np.random.default_rng(7)


def images(batch=2, size=SIZE, channels=3):
    return RNG.uniform(-1, 1, size=(batch, size, size, channels)).astype(np.float32)


def fad_bands(layer, x):
    """FAD output `(B, S, S, 12)` split into `(B, S, S, band, channel)`."""
    out = np.asarray(layer(x))
    return out.reshape(*out.shape[:3], len(layer.BANDS), x.shape[-1])


@pytest.fixture(scope="module")
def exact_fad():
    """FAD with zero offsets: the filters are the binary masks exactly."""
    layer = FrequencyAwareDecomposition(offset_stddev=0.0)
    layer.build((None, SIZE, SIZE, 3))
    return layer


def test_each_band_is_the_masked_2d_dct_of_each_channel(exact_fad):
    x = images()
    bands = fad_bands(exact_fad, x)
    masks = band_masks(SIZE)
    for b in range(2):
        for c in range(3):
            spectrum = scipy.fft.dctn(x[b, :, :, c].astype(np.float64), norm="ortho")
            for band in range(4):
                got = scipy.fft.dctn(bands[b, :, :, band, c].astype(np.float64), norm="ortho")
                np.testing.assert_allclose(got, masks[band] * spectrum, atol=2e-4)


def test_low_middle_high_tile_the_spectrum_and_all_is_the_image(exact_fad):
    x = images()
    bands = fad_bands(exact_fad, x)
    np.testing.assert_allclose(bands[..., :3, :].sum(axis=3), x, atol=1e-4)
    np.testing.assert_allclose(bands[..., 3, :], x, atol=1e-4)
    # A smooth image lives in the low band; its high band is almost empty.
    ramp = np.broadcast_to(np.linspace(-1, 1, SIZE)[None, :, None, None], (1, SIZE, SIZE, 3))
    smooth = fad_bands(exact_fad, np.ascontiguousarray(ramp, np.float32))
    assert np.abs(smooth[..., 2, :]).max() < 0.05 * np.abs(smooth[..., 0, :]).max()


def test_filters_are_mask_plus_2_sigmoid_minus_1_of_the_offsets():
    layer = FrequencyAwareDecomposition(offset_stddev=0.0)
    layer.build((None, SIZE, SIZE, 3))
    layer.offsets.assign(np.full((4, SIZE, SIZE), 0.7, np.float32))
    offset = 2 / (1 + np.exp(-0.7)) - 1  # = (1 - e^-w) / (1 + e^-w), the paper's sigma
    np.testing.assert_allclose(np.asarray(layer.filters()), band_masks(SIZE) + offset, atol=1e-6)
    # The all-pass filter is then 1 + offset everywhere: the image times that.
    x = images()
    np.testing.assert_allclose(fad_bands(layer, x)[..., 3, :], (1 + offset) * x, atol=1e-4)


def test_band_boundaries_at_the_papers_size():
    # 1/16 and 1/8 of the spectrum's area from the DC corner: i + j < 299 * sqrt(2 f).
    assert band_cutoffs(299) == (106, 150)
    masks = band_masks(299)
    assert masks.shape == (4, 299, 299)
    np.testing.assert_array_equal(masks[:3].sum(axis=0), 1.0)  # a partition
    np.testing.assert_array_equal(masks[3], 1.0)
    low, middle, high = (masks[i] for i in range(3))
    assert low[0, 0] == low[105, 0] == low[52, 53] == 1 and low[106, 0] == 0
    assert middle[106, 0] == middle[149, 0] == middle[0, 149] == 1 and middle[150, 0] == 0
    assert high[150, 0] == high[298, 298] == 1 and high[149, 0] == 0
    assert abs(low.mean() - 1 / 16) < 0.002
    assert abs(low.mean() + middle.mean() - 1 / 8) < 0.002
    assert abs(high.mean() - 7 / 8) < 0.002


def test_recipe_follows_the_paper():
    recipe = get_entry("f3net_fad").recipe
    assert (recipe.image_size, recipe.optimizer, recipe.learning_rate) == (299, "adam", 2e-4)
    assert recipe.batch_size == 128 and recipe.inputs == ("rgb",) and recipe.loss == "bce"


@pytest.mark.slow
def test_parameter_count_at_the_recipe_size():
    full = build_detector("f3net_fad")
    # 12-channel Keras Xception without top + four 299x299 offset maps + 2048 -> 1.
    xception_12 = 20_861_480 + 3 * 3 * 9 * 32
    assert full.get_layer("fad").count_params() == 4 * 299 * 299
    assert full.count_params() == get_entry("f3net_fad").recipe.parameters
    assert full.count_params() == xception_12 + 4 * 299 * 299 + 2049


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_detector("f3net_fad", image_size=SIZE)


@pytest.mark.slow
def test_model_reads_pixels_feeds_12_channels_and_outputs_a_probability(model):
    assert isinstance(model, F3NetFAD)
    assert (model.detector, model.branches, model.image_size) == ("f3net_fad", ("rgb",), SIZE)
    assert model.get_layer("fad").output.shape[1:] == (SIZE, SIZE, 12)
    assert model.backbone.get_layer("block1_conv1").kernel.shape == (3, 3, 12, 32)
    x = {"rgb": RNG.uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)}
    y = model.predict(x, verbose=0)
    assert y.shape == (3, 1) and y.dtype == np.float32 and np.all((y > 0) & (y < 1))
    # The DCT sees [-1, 1] pixels.
    pre = np.asarray(model.get_layer("rgb_preprocess")(np.float32([[[[0, 255, 127.5]]]])))
    np.testing.assert_allclose(pre.ravel(), [-1, 1, 0], atol=1e-6)


@pytest.mark.slow
def test_rgb_xception_weights_enter_the_12_channel_backbone_f3nets_way():
    source = keras.applications.Xception(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3)
    )
    model = build_detector("f3net_fad", image_size=SIZE, weights=source)
    kernel = source.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_allclose(
        model.backbone.get_layer("block1_conv1").get_weights()[0], np.tile(kernel, (1, 1, 4, 1)) / 4
    )
    for mine, theirs in zip(
        model.backbone.get_weights()[1:], source.get_weights()[1:], strict=True
    ):
        np.testing.assert_array_equal(mine, theirs)
    # Four identical bands give the RGB network's first feature maps.
    z = images(1)
    first = keras.Model(source.input, source.get_layer("block1_conv1").output)
    mine = keras.Model(model.backbone.input, model.backbone.get_layer("block1_conv1").output)
    np.testing.assert_allclose(mine(np.tile(z, (1, 1, 1, 4))), first(z), atol=1e-5)


@pytest.mark.slow
def test_keras_round_trip_gives_the_same_predictions(model, tmp_path):
    x = {"rgb": RNG.uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)}
    path = tmp_path / "f3net.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    assert type(loaded) is F3NetFAD and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(
        loaded.get_layer("fad").get_weights()[0], model.get_layer("fad").get_weights()[0]
    )
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


@pytest.mark.slow
def test_a_few_steps_lower_the_loss_and_train_the_band_offsets():
    keras.utils.set_random_seed(1)
    model = build_detector("f3net_fad", image_size=SIZE, dropout=0.0)
    offsets = model.get_layer("fad").get_weights()[0].copy()
    model.compile(keras.optimizers.Adam(2e-4), loss="binary_crossentropy")
    x = {"rgb": RNG.uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)}
    y = np.array([0, 1, 0, 1], np.float32)  # label 1 = fake
    losses = model.fit(x, y, batch_size=4, epochs=6, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    assert not np.allclose(model.get_layer("fad").get_weights()[0], offsets)


@pytest.mark.slow
def test_package_loader_finds_the_class_in_a_fresh_process(model, tmp_path):
    """`load_model` imports every detector module, not only MD-CSD's, before loading."""
    import os
    import subprocess
    import sys

    path = tmp_path / "f3net.keras"
    model.save(path)
    code = (
        "from md_csd_tf.models.saving import load_model; "
        f"print(type(load_model({str(path)!r}, compile=False)).__name__)"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "F3NetFAD"


@pytest.mark.slow
def test_mixed_precision_keeps_the_dct_and_the_output_in_float32():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = build_detector("f3net_fad", image_size=SIZE)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert mixed.get_layer("fad").compute_dtype == "float32"
    assert mixed.get_layer("rgb_preprocess").compute_dtype == "float32"
    assert mixed.backbone.get_layer("block1_conv1").compute_dtype == "float16"
    y = mixed({"rgb": RNG.uniform(0, 255, (2, SIZE, SIZE, 3)).astype(np.float32)})
    assert y.dtype == "float32" and np.all(np.isfinite(np.asarray(y)))
