"""Capsule-Forensics v2 (Nguyen et al., arXiv:1910.12467): the facts of the paper and its code."""

import keras
import numpy as np
import pytest

from md_csd_tf.models import registry
from md_csd_tf.models.capsule import (
    RECIPE,
    DynamicRouting,
    StatisticalPooling,
    class_probability_model,
    copy_vgg19_weights,
    published_capsule_loss,
    squash,
)
from md_csd_tf.models.capsule import (
    build as build_capsule,
)

SIZE = 64


def _pixels(batch=2, size=SIZE, seed=0):
    return {
        "rgb": np.random.RandomState(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")
    }


def _np_squash(s, axis=-1):
    n2 = np.sum(s**2, axis=axis, keepdims=True)
    return n2 / (1 + n2) * s / np.sqrt(n2)


def _np_softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_routing(x, w, iterations):
    """Routing as in the authors' v2 code, in NumPy: per-dimension logits, elementwise agreement."""
    priors = np.einsum("jidk,bik->bjid", w, x)
    logits = np.zeros_like(priors)
    for it in range(iterations):
        c = _np_softmax(logits, axis=2)
        v = _np_squash((c * priors).sum(axis=2), axis=-1)
        if it < iterations - 1:
            logits = logits + priors * v[:, :, None, :]
    return v


@pytest.mark.slow
def test_output_is_fake_probability_in_range():
    model = build_capsule(image_size=SIZE, seed=1)
    out = model.predict(_pixels(3), verbose=0)
    assert out.shape == (3, 1) and out.dtype == np.float32
    assert np.all((out >= 0) & (out <= 1))
    train_out = np.asarray(model(_pixels(3), training=True))
    # Squashed components lie in (-1, 1), so each dimension's softmax over the two classes, and
    # their mean, stay within (sigmoid(-2), sigmoid(2)) = (0.119, 0.881) by construction.
    low, high = 1 / (1 + np.exp(2)), 1 / (1 + np.exp(-2))
    assert np.all((train_out > low) & (train_out < high))
    assert model.detector == "capsule" and model.branches == ("rgb",)
    assert model.image_size == SIZE and model.crop_size is None


@pytest.mark.slow
def test_class_probabilities_sum_to_one_and_fake_is_class_one():
    model = build_capsule(image_size=SIZE, noise_stddev=0.0, prior_dropout=0.0, seed=2)
    both = class_probability_model(model)
    # Training mode: BatchNorm on batch statistics, so the capsules are far from zero and the
    # probabilities far from 1/2 (at initialisation, inference-mode BN keeps them near 1/2).
    probs = np.asarray(both(_pixels(4), training=True))
    fake = np.asarray(model(_pixels(4), training=True))
    assert probs.shape == (4, 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(fake[:, 0], probs[:, 1], atol=1e-6)
    assert np.abs(probs[:, 1] - 0.5).max() > 1e-4


def test_squash_by_hand_keeps_direction_and_shrinks_norm():
    s = np.random.RandomState(3).normal(size=(5, 8)).astype("float32") * [
        [0.1],
        [0.5],
        [1],
        [3],
        [30],
    ]
    v = np.asarray(squash(keras.ops.convert_to_tensor(s)))
    norms, v_norms = np.linalg.norm(s, axis=1), np.linalg.norm(v, axis=1)
    assert np.all(v_norms < 1)
    np.testing.assert_allclose(v_norms, norms**2 / (1 + norms**2), rtol=1e-5)
    cosine = np.sum(s * v, axis=1) / (norms * v_norms)
    np.testing.assert_allclose(cosine, 1.0, atol=1e-6)
    # Along another axis: each column is squashed on its own.
    v0 = np.asarray(squash(keras.ops.convert_to_tensor(s), axis=0))
    np.testing.assert_allclose(v0, _np_squash(s, axis=0), rtol=1e-5, atol=1e-7)


def test_statistical_pooling_is_mean_and_unbiased_std():
    x = np.random.RandomState(4).normal(size=(2, 5, 7, 3)).astype("float32")
    out = np.asarray(StatisticalPooling()(x))
    flat = x.reshape(2, 35, 3)
    assert out.shape == (2, 3, 2)
    np.testing.assert_allclose(out[..., 0], flat.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(out[..., 1], flat.std(axis=1, ddof=1), atol=1e-5)


@pytest.mark.parametrize("iterations", [1, 2, 3])
def test_routing_matches_numpy(iterations):
    rng = np.random.RandomState(5)
    x = rng.normal(size=(2, 3, 4)).astype("float32")  # 2 samples, 3 input capsules of 4-D
    layer = DynamicRouting(num_capsules=2, capsule_dim=3, iterations=iterations)
    layer.build(x.shape)
    w = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    layer.route_weights.assign(w)
    out = np.asarray(layer(x, training=False))
    assert out.shape == (2, 2, 3)
    np.testing.assert_allclose(out, _np_routing(x, w, iterations), rtol=1e-5, atol=1e-6)
    if iterations == 2:  # the second iteration changes the result: the routing is not a no-op
        assert np.abs(out - _np_routing(x, w, 1)).max() > 1e-3


def test_routing_noise_only_in_training():
    x = np.random.RandomState(6).normal(size=(2, 10, 8)).astype("float32")
    layer = DynamicRouting(noise_stddev=0.01, prior_dropout=0.05, seed=7)
    a, b = np.asarray(layer(x)), np.asarray(layer(x))
    np.testing.assert_array_equal(a, b)
    t1, t2 = np.asarray(layer(x, training=True)), np.asarray(layer(x, training=True))
    assert np.abs(t1 - t2).max() > 1e-6
    quiet = DynamicRouting(noise_stddev=0.0, prior_dropout=0.0, seed=7)
    quiet.build(x.shape)
    quiet.route_weights.assign(layer.route_weights)
    np.testing.assert_allclose(np.asarray(quiet(x, training=True)), a, atol=1e-6)


@pytest.mark.slow
def test_predict_is_deterministic():
    model = build_capsule(image_size=SIZE, seed=8)
    x = _pixels(2)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.slow
def test_vgg_stem_is_keras_vgg19_and_frozen():
    model = build_capsule(image_size=SIZE, train_stem=False)  # as with pretrained weights
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    copy_vgg19_weights(vgg, model)
    x = _pixels(2)
    ours = keras.Model(model.inputs, model.get_layer("block3_pool").output)(x)
    reference = keras.Model(vgg.input, vgg.get_layer("block3_pool").output)(
        keras.applications.vgg19.preprocess_input(x["rgb"].copy())
    )
    np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), rtol=1e-4, atol=1e-3)
    trainable = {w.path.split("/")[0] for w in model.trainable_weights}
    assert not any(name.startswith("block") for name in trainable)
    assert "routing" in trainable and "primary9_conv1" in trainable
    # Without pretrained weights the random stem trains (a frozen one would only pass noise).
    random_stem = build_capsule(image_size=SIZE)
    assert any(w.path.startswith("block1_conv1") for w in random_stem.trainable_weights)


def test_torch_normalisation_option():
    model = build_capsule(image_size=SIZE, pixel_normalisation="torch")
    x = _pixels(1)
    pre = np.asarray(keras.Model(model.inputs, model.get_layer("rgb_preprocess").output)(x))
    expected = (x["rgb"] / 255 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(pre, expected, atol=1e-4)


@pytest.mark.slow
def test_keras_round_trip(tmp_path):
    model = build_capsule(image_size=SIZE, noise_stddev=0.0, prior_dropout=0.0, seed=9)
    x = _pixels(2)
    path = tmp_path / "capsule.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(loaded(x, training=True)), np.asarray(model(x, training=True)), atol=1e-5
    )


@pytest.mark.slow
def test_parameter_count_at_300():
    model = build_capsule(image_size=300, train_stem=False)  # the published frozen stem
    assert model.count_params() == RECIPE.parameters == 3_898_418
    # VGG19 to block3_pool: 2,325,568 frozen; 10 capsules x 157,221 (178 of them BN moving
    # statistics each); routing 2 x 10 x 4 x 8 = 640.
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == 10 * (157_221 - 178) + 640 == 1_571_070
    assert model.get_layer("block3_pool").output.shape == (None, 37, 37, 256)


def test_recipe_and_registry():
    assert "capsule" in registry.list_detectors()
    assert RECIPE.image_size == 300 and RECIPE.batch_size == 32 and RECIPE.epochs == 25
    assert RECIPE.optimizer == "adam" and RECIPE.learning_rate == 5e-4
    assert RECIPE.inputs == ("rgb",) and RECIPE.video_aggregate == "mean"
    model = registry.build_detector("capsule", image_size=SIZE)
    assert registry.recipe_of(model) is RECIPE


def test_published_loss_by_hand():
    capsules = np.random.RandomState(10).normal(size=(3, 2, 4)).astype("float32")
    labels = np.array([0, 1, 1])
    p = _np_softmax(capsules, axis=1)
    log_p = np.log(_np_softmax(p, axis=1))  # nn.CrossEntropyLoss on probabilities
    expected = np.mean([-log_p[b, labels[b], :].sum() for b in range(3)])
    got = float(published_capsule_loss(keras.ops.convert_to_tensor(capsules), labels))
    np.testing.assert_allclose(got, expected, rtol=1e-5)
