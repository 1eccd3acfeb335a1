"""Frequency transforms against independent references, eagerly and inside tf.data."""

import numpy as np
import pytest
import pywt
import scipy.fft
import tensorflow as tf

from md_csd_tf import frequency

RNG = np.random.default_rng(0)
# An odd side (71, Xception's minimum) and an even one, to exercise the DWT's odd-size rule.
BATCH = RNG.uniform(0, 255, size=(2, 71, 64, 3)).astype(np.float32)


def reference_log_dct(x, eps=frequency.DEFAULT_EPSILON):
    return np.log(
        np.abs(scipy.fft.dctn(x.astype(np.float64), type=2, norm="ortho", axes=(-3, -2))) + eps
    )


def reference_log_fft(x, eps=frequency.DEFAULT_EPSILON):
    spectrum = np.fft.fftshift(np.fft.fft2(x.astype(np.float64), axes=(-3, -2)), axes=(-3, -2))
    return np.log(np.abs(spectrum) + eps)


def reference_haar(image):
    out = np.empty(image.shape, np.float64)
    for c in range(image.shape[-1]):
        ca, (ch, cv, cd) = pywt.dwt2(image[..., c].astype(np.float64), "haar", mode="symmetric")
        out[..., c] = np.block([[ca, ch], [cv, cd]])[: image.shape[0], : image.shape[1]]
    return out


def reference(name, x):
    if name == "dwt":
        return (
            np.stack([reference_haar(image) for image in x]) if x.ndim == 4 else reference_haar(x)
        )
    return {"dct": reference_log_dct, "fft": reference_log_fft}[name](x)


def run_in_dataset(fn, x):
    """The same op inside tf.data.Dataset.map (graph mode, parallel), as the pipeline runs it."""
    dataset = tf.data.Dataset.from_tensor_slices(x).map(fn, num_parallel_calls=2)
    return np.stack([element.numpy() for element in dataset])


def test_dct_equals_scipy_orthonormal_dct_ii():
    ours = frequency.dct2(BATCH).numpy()
    expected = scipy.fft.dctn(BATCH.astype(np.float64), type=2, norm="ortho", axes=(1, 2))
    # float32 round-off relative to the largest (DC) coefficient.
    np.testing.assert_allclose(ours, expected, atol=1e-5 * np.abs(expected).max())


def test_dct_matrix_is_scipys_orthonormal_dct_ii():
    for size in (8, 71):
        d = frequency.dct_matrix(size)
        np.testing.assert_allclose(d, scipy.fft.dct(np.eye(size), axis=0, norm="ortho"), atol=1e-12)
        np.testing.assert_allclose(d @ d.T, np.eye(size), atol=1e-12)


def test_dct_is_full_image_not_blockwise():
    # A single pixel's impulse spreads over every coefficient of the whole crop, never only
    # over the 8x8 block it sits in.
    image = np.zeros((32, 32, 1), np.float32)
    image[3, 3, 0] = 1.0
    coefficients = frequency.dct2(image).numpy()[..., 0]
    assert np.count_nonzero(np.abs(coefficients[8:, 8:]) > 1e-6) > 0


@pytest.mark.parametrize("name", ["dct", "fft", "dwt"])
@pytest.mark.parametrize("mode", ["eager", "dataset"])
def test_transform_matches_reference(name, mode):
    fn = frequency.get_transform(name)
    ours = fn(BATCH).numpy() if mode == "eager" else run_in_dataset(fn, BATCH)
    expected = reference(name, BATCH)
    assert ours.shape == BATCH.shape
    assert np.all(np.isfinite(ours))
    if name == "dwt":
        np.testing.assert_allclose(ours, expected, atol=1e-3)
    else:
        # The log amplifies float32 round-off only where coefficients are tiny; compare where
        # the magnitude is well above that round-off.
        magnitude = np.exp(expected)
        mask = magnitude > 1e-1
        assert mask.mean() > 0.95
        np.testing.assert_allclose(ours[mask], expected[mask], atol=2e-3)


@pytest.mark.parametrize("name", ["dct", "fft", "dwt"])
def test_single_image_equals_batch_element(name):
    fn = frequency.get_transform(name)
    np.testing.assert_allclose(fn(BATCH[1]).numpy(), fn(BATCH).numpy()[1], atol=1e-5)


def test_uint8_input_is_accepted_and_flat_image_stays_finite():
    flat = np.full((71, 71, 3), 128, np.uint8)
    out = frequency.log_dct(flat).numpy()
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    # Only the DC term carries energy: log(128 * 71) there, log(eps)-ish elsewhere.
    np.testing.assert_allclose(out[0, 0], np.log(128 * 71), rtol=1e-4)
    assert out[5, 5, 0] < -5


def test_unknown_transform_is_a_clear_error():
    with pytest.raises(ValueError, match="choose one of"):
        frequency.get_transform("wavelet")
