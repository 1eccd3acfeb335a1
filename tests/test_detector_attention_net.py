"""attention_net's own facts (RECCE, Cao et al. CVPR 2022, Sec. 3; the attention network's
README): reconstruction loss on real faces only, a trained (not redrawn) frequency filter, the
losses' weights. The registry's parametrized test covers build, fit, saving and export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from md_csd_tf.models.attention_net import (
    CrossModalityFusion,
    FrequencyFilter,
    real_compact_metric_loss,
    real_reconstruction_loss,
)
from md_csd_tf.models.registry import build_detector

RNG = np.random.default_rng(3)


def test_reconstruction_loss_ignores_fake_samples():
    target = RNG.uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    reconstruction = target + 0.1
    labels = np.array([0, 1, 0, 1], np.float32)
    base = float(real_reconstruction_loss(labels, reconstruction, target))
    assert base == pytest.approx(0.1, rel=1e-5)
    spoiled = reconstruction.copy()
    spoiled[[1, 3]] += 5.0  # fakes reconstructed badly: no change
    assert float(real_reconstruction_loss(labels, spoiled, target)) == pytest.approx(base)
    spoiled[0] += 5.0  # a real one reconstructed badly: the loss grows
    assert float(real_reconstruction_loss(labels, spoiled, target)) > base + 1.0
    assert float(real_reconstruction_loss(np.ones(4), spoiled, target)) == 0.0  # no real


def test_frequency_filter_is_a_weight_the_same_in_two_forward_passes():
    layer = FrequencyFilter(hidden=8)
    x = tf.constant(RNG.normal(size=(2, 6, 6, 4)), tf.float32)
    first, second = layer(x).numpy(), layer(x).numpy()
    np.testing.assert_array_equal(first, second)
    names = sorted(w.path.split("/")[-1] for w in layer.trainable_weights)
    assert "filter_real" in names and "filter_imag" in names
    assert layer.filter_real.shape == (6, 4, 4)  # (h, w // 2 + 1, C): rfft2d's half spectrum
    # Identity filter at initialisation: FFT then inverse FFT gives back the features.
    spatial = tf.transpose(x, [0, 3, 1, 2])
    back = tf.signal.irfft2d(tf.signal.rfft2d(spatial), fft_length=[6, 6])
    np.testing.assert_allclose(back, spatial, atol=1e-5)
    # The filter acts: zeroing it changes the output; and gradients reach it.
    with tf.GradientTape() as tape:
        out = tf.reduce_sum(layer(x) ** 2)
    grads = tape.gradient(out, [layer.filter_real, layer.filter_imag])
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    layer.filter_real.assign(tf.zeros_like(layer.filter_real))
    assert not np.allclose(layer(x).numpy(), first)


def test_fusion_attends_rgb_queries_over_frequency_positions():
    layer = CrossModalityFusion(key_dim=4)
    rgb = tf.constant(RNG.normal(size=(2, 3, 3, 6)), tf.float32)
    freq = tf.constant(RNG.normal(size=(2, 3, 3, 6)), tf.float32)
    out = layer([rgb, freq]).numpy()
    assert out.shape == rgb.shape
    # Values come from the frequency stream: permuting its positions together with the keys
    # leaves the attention output unchanged (attention is over the set of positions).
    permuted = tf.reshape(tf.reverse(tf.reshape(freq, [2, 9, 6]), axis=[1]), [2, 3, 3, 6])
    np.testing.assert_allclose(layer([rgb, permuted]).numpy(), out, atol=1e-5)
    assert not np.allclose(layer([rgb, freq * 2.0]).numpy(), out)


def test_metric_loss_pulls_reals_together_and_pushes_fakes_away():
    labels = np.array([0, 0, 1, 1], np.float32)
    good = np.array([[1, 0], [2, 0], [-1, 0], [0, 1]], np.float32)  # reals aligned, fakes apart
    bad = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)
    assert float(real_compact_metric_loss(labels, good)) == pytest.approx(0.0, abs=1e-6)
    assert float(real_compact_metric_loss(labels, bad)) == pytest.approx(1.0 + 0.5, rel=1e-5)


@pytest.mark.slow
def test_total_loss_is_bce_plus_tenth_reconstruction_plus_tenth_metric():
    tf.keras.utils.set_random_seed(0)
    model = build_detector("attention_net", image_size=71, weights=None)
    x = {"rgb": RNG.uniform(0, 255, (4, 71, 71, 3)).astype(np.float32)}
    losses, probability = model.losses_of(x, np.array([0, 1, 0, 1], np.float32))
    assert probability.shape == (4, 1)
    expected = (
        losses["bce_loss"] + 0.1 * losses["reconstruction_loss"] + 0.1 * losses["metric_loss"]
    )
    assert float(losses["loss"]) == pytest.approx(float(expected), rel=1e-6)
    assert model.decoder.compute_output_shape((None, 5, 5, 728)) == (None, 71, 71, 3)
    assert isinstance(model.get_layer("frequency_filter"), keras.layers.Layer)
