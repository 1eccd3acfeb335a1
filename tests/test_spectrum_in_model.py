"""The in-model spectrum (matmuls with the transform basis) against the tf.data spectrum."""

import keras
import numpy as np
import pytest
import scipy.fft
import tensorflow as tf

from md_csd_tf import frequency
from md_csd_tf.data.inputs import crops_to_inputs, model_inputs
from md_csd_tf.data.pipeline import PipelineConfig, make_dataset
from md_csd_tf.layers.spectrum import Spectrum
from md_csd_tf.models.md_csd import build_model

RNG = np.random.default_rng(1)
# uint8 crops as the pipeline has them; an odd and an even side (the DWT's odd-size rule).
CROPS = RNG.integers(0, 256, size=(2, 71, 64, 3), dtype=np.uint8)
TRANSFORMS = sorted(frequency.TRANSFORMS)


def assert_same_spectrum(name, ours, expected):
    """Equal within float32 rounding of the coefficients (not of their log).

    The log of a coefficient near 0 amplifies its ~1e-3 absolute round-off without bound, so
    the log-magnitude transforms are compared as magnitudes, relative to the largest one.
    """
    ours, expected = np.asarray(ours, np.float64), np.asarray(expected, np.float64)
    assert ours.shape == expected.shape
    assert np.all(np.isfinite(ours))
    if name == "dwt":
        np.testing.assert_allclose(ours, expected, atol=1e-5 * np.abs(expected).max())
    else:
        ours, expected = np.exp(ours), np.exp(expected)
        np.testing.assert_allclose(ours, expected, rtol=0, atol=2e-6 * expected.max())


@pytest.mark.parametrize("name", TRANSFORMS)
def test_matmul_spectrum_equals_tf_signal_path_eagerly(name):
    pixels = tf.cast(CROPS, tf.float32)
    expected = frequency.get_transform(name)(pixels)
    assert_same_spectrum(name, frequency.matmul_spectrum(pixels, name), expected)
    # A single image too (the tf.data map sees one crop at a time).
    assert_same_spectrum(name, frequency.matmul_spectrum(pixels[0], name), expected[0])


def test_matmul_dct_is_the_orthonormal_dct_ii_basis():
    # D X D^T with our basis is scipy's orthonormal DCT-II, independently of tf.signal.
    basis = frequency.transform_basis("dct", 9).astype(np.float64)
    x = RNG.normal(size=(9, 9))
    np.testing.assert_allclose(
        basis @ x @ basis.T, scipy.fft.dctn(x, type=2, norm="ortho"), atol=1e-5
    )


@pytest.mark.parametrize("name", TRANSFORMS)
def test_spectrum_layer_in_a_model_call_equals_the_tf_data_spectrum(name):
    inputs = keras.Input((71, 64, 3))
    model = keras.Model(inputs, Spectrum(name)(inputs))
    # In a (graph-compiled) model call, against the spectrum as tf.data.Dataset.map makes it.
    dataset = tf.data.Dataset.from_tensor_slices(CROPS).map(
        lambda c: crops_to_inputs(c, name)["freq"], num_parallel_calls=2
    )
    expected = np.stack([x.numpy() for x in dataset])
    assert_same_spectrum(name, model.predict(CROPS.astype(np.float32), verbose=0), expected)


def test_spectrum_layer_stays_float32_under_mixed_precision():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = Spectrum("dct")
        out = layer(tf.cast(CROPS, tf.float16))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert out.dtype == tf.float32
    assert_same_spectrum("dct", out, frequency.log_dct(tf.cast(CROPS, tf.float16)))


@pytest.mark.parametrize("variant", ["md_csd", "freq"])
@pytest.mark.slow
def test_model_option_scores_like_the_pipeline_spectrum(variant, tmp_path):
    crops = RNG.integers(0, 256, size=(2, 71, 71, 3), dtype=np.uint8)
    options = dict(image_size=71, middle_blocks=0, fc_units=8)
    plain = build_model(variant, **options)
    inside = build_model(variant, spectrum_in_model=True, **options)
    inside.set_weights(plain.get_weights())  # the Spectrum layer adds no weights
    # crops_to_inputs skips the spectrum for the in-model option and ships only pixels.
    assert set(model_inputs(inside, crops)) == {"rgb"}
    assert set(model_inputs(plain, crops)) == set(plain.branches)
    expected = plain(model_inputs(plain, crops), training=False).numpy()
    got = inside(model_inputs(inside, crops), training=False).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # Detector (predict's path) feeds it the same way.
    from md_csd_tf.inference.detector import Detector

    scores = Detector(inside, batch_size=2).predict_crops(crops)
    np.testing.assert_allclose(scores, expected[:, 0], atol=1e-5)
    # The option is recorded in the saved model.
    path = tmp_path / "m.keras"
    inside.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.spectrum_in_model is True
    np.testing.assert_allclose(loaded(model_inputs(loaded, crops)).numpy(), got, atol=1e-6)


def test_pipeline_ships_only_pixels_for_the_in_model_option(tmp_path):
    import pandas as pd
    from PIL import Image

    paths = []
    for i, crop in enumerate(RNG.integers(0, 256, size=(2, 71, 71, 3), dtype=np.uint8)):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(crop).save(paths[-1])
    frames = pd.DataFrame({"abs_path": paths, "label": [0, 1]})
    config = PipelineConfig(image_size=71, batch_size=2, spectrum_in_model=True)
    inputs, _ = next(iter(make_dataset(frames, config, training=False)))
    assert set(inputs) == {"rgb"}
