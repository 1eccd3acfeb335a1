"""CrossStitch: Eq. 1 forward, Eq. 3 gradients, initialisation, per-channel mode, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from md_csd_tf import CrossStitch

RNG = np.random.default_rng(1)
X_RGB = RNG.normal(size=(2, 5, 5, 4)).astype(np.float32)
X_FREQ = RNG.normal(size=(2, 5, 5, 4)).astype(np.float32)


def built_stitch(**kwargs):
    stitch = CrossStitch(**kwargs)
    stitch([X_RGB, X_FREQ])
    return stitch


def test_initialised_point_nine_same_branch_point_one_cross():
    stitch = built_stitch()
    np.testing.assert_allclose(stitch.alpha.numpy(), [[0.9, 0.1], [0.1, 0.9]], atol=1e-7)
    assert stitch.alpha.trainable


def test_forward_is_equation_one_with_both_cross_terms():
    stitch = built_stitch()
    stitch.alpha.assign([[0.7, 0.2], [0.4, 0.6]])
    out_rgb, out_freq = (t.numpy() for t in stitch([X_RGB, X_FREQ]))
    np.testing.assert_allclose(out_rgb, 0.7 * X_RGB + 0.2 * X_FREQ, atol=1e-6)
    np.testing.assert_allclose(out_freq, 0.4 * X_RGB + 0.6 * X_FREQ, atol=1e-6)


def test_branches_exchange_information_both_ways():
    # The authors' code skipped the cross terms; here changing only one input changes both outputs.
    stitch = built_stitch()
    rgb_a, freq_a = stitch([X_RGB, X_FREQ])
    rgb_b, freq_b = stitch([X_RGB, X_FREQ + 1.0])
    assert not np.allclose(rgb_a.numpy(), rgb_b.numpy())
    rgb_c, freq_c = stitch([X_RGB + 1.0, X_FREQ])
    assert not np.allclose(freq_a.numpy(), freq_c.numpy())


def test_alpha_gradients_follow_equation_three():
    stitch = built_stitch()
    upstream_rgb = RNG.normal(size=X_RGB.shape).astype(np.float32)
    upstream_freq = RNG.normal(size=X_RGB.shape).astype(np.float32)
    with tf.GradientTape() as tape:
        out_rgb, out_freq = stitch([X_RGB, X_FREQ])
        loss = tf.reduce_sum(out_rgb * upstream_rgb) + tf.reduce_sum(out_freq * upstream_freq)
    grad = tape.gradient(loss, stitch.alpha).numpy()
    # dL/da_RD = sum(x_freq * dL/dx_rgb'), dL/da_RR = sum(x_rgb * dL/dx_rgb'), etc.
    expected = [
        [np.sum(X_RGB * upstream_rgb), np.sum(X_FREQ * upstream_rgb)],
        [np.sum(X_RGB * upstream_freq), np.sum(X_FREQ * upstream_freq)],
    ]
    np.testing.assert_allclose(grad, expected, rtol=1e-4)


def test_per_channel_stitch_has_one_matrix_per_channel():
    stitch = built_stitch(per_channel=True, self_weight=0.8, cross_weight=0.2)
    assert stitch.alpha.shape == (2, 2, 4)
    alpha = np.tile(np.array([[0.8, 0.2], [0.2, 0.8]])[..., None], (1, 1, 4)).astype(np.float32)
    alpha[0, 1, 2] = 0.5  # channel 2 takes more from the frequency branch
    stitch.alpha.assign(alpha)
    out_rgb, _ = stitch([X_RGB, X_FREQ])
    expected = alpha[0, 0] * X_RGB + alpha[0, 1] * X_FREQ
    np.testing.assert_allclose(out_rgb.numpy(), expected, atol=1e-6)


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="one shape"):
        CrossStitch()([X_RGB, X_FREQ[..., :2]])


def test_config_and_keras_file_round_trip(tmp_path):
    rgb = keras.Input((5, 5, 4))
    freq = keras.Input((5, 5, 4))
    outputs = CrossStitch(0.8, 0.3, per_channel=True, name="stitch")([rgb, freq])
    model = keras.Model([rgb, freq], outputs)
    model.get_layer("stitch").alpha.assign(RNG.normal(size=(2, 2, 4)).astype(np.float32))
    path = tmp_path / "stitch.keras"
    model.save(path)
    restored = keras.saving.load_model(path, safe_mode=True)
    layer = restored.get_layer("stitch")
    assert (layer.self_weight, layer.cross_weight, layer.per_channel) == (0.8, 0.3, True)
    for a, b in zip(model([X_RGB, X_FREQ]), restored([X_RGB, X_FREQ]), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
