"""The paper's recipe: two learning-rate groups, reported metrics, plateau cuts, distribution, saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import accuracy_score, log_loss

import md_csd_tf
from md_csd_tf import ReduceBothLROnPlateau, build_model, compile_model, load_model

SIZE = 71
RNG = np.random.default_rng(4)


def batch(n=8):
    x = {
        "rgb": RNG.uniform(0, 255, size=(n, SIZE, SIZE, 3)).astype(np.float32),
        "freq": RNG.normal(size=(n, SIZE, SIZE, 3)).astype(np.float32),
    }
    return x, np.array([0, 1] * (n // 2), np.float32)


def small_model(variant="md_csd", **compile_kwargs):
    model = build_model(variant, image_size=SIZE, middle_blocks=0)
    compile_model(model, **compile_kwargs)
    # Tracing a two-Xception train step costs ~30 s on a 2-core CPU; eager steps take ~2 s.
    model.run_eagerly = True
    return model


def test_one_adam_step_moves_alphas_by_stitch_lr_and_weights_by_base_lr():
    model = small_model()
    x, y = batch(4)
    before = {v.path: v.numpy().copy() for v in model.trainable_variables}
    model.train_on_batch(x, y)
    alpha_moves, other_moves = [], []
    for v in model.trainable_variables:
        move = np.abs(v.numpy() - before[v.path])
        (alpha_moves if "cross_stitch" in v.path else other_moves).append(move.max())
    # Adam's first step is lr * g / (|g| + eps): about lr for every parameter with a gradient.
    assert len(alpha_moves) == 4
    np.testing.assert_allclose(alpha_moves, 1e-3, rtol=1e-2)
    assert np.median(other_moves) == pytest.approx(2e-4, rel=1e-2)
    assert max(other_moves) == pytest.approx(2e-4, rel=1e-2)


@pytest.mark.slow
def test_reported_validation_metrics_match_sklearn_on_the_final_weights():
    model = small_model()
    x, y = batch(8)
    val_x, val_y = batch(8)
    history = model.fit(x, y, batch_size=4, epochs=1, validation_data=(val_x, val_y), verbose=0)
    probs = model.predict(val_x, verbose=0).ravel()
    logs = {k: v[-1] for k, v in history.history.items()}
    assert logs["val_loss"] == pytest.approx(log_loss(val_y, probs, labels=[0, 1]), rel=1e-3)
    assert logs["val_accuracy"] == pytest.approx(accuracy_score(val_y, probs > 0.5))
    # Keras' AUC bins probabilities at 500 thresholds, which cannot separate an untrained model's
    # near-equal outputs; the same binned AUC on the final predictions must match what fit logged.
    # (Reported evaluation numbers use sklearn's exact AUC: md_csd_tf.evaluation.metrics.)
    binned = keras.metrics.AUC(num_thresholds=500)
    binned.update_state(val_y, probs)
    assert logs["val_auc"] == pytest.approx(float(binned.result()), abs=1e-6)


def test_plateau_cuts_both_rates_by_point_two_after_three_stalled_epochs():
    model = small_model()
    callback = ReduceBothLROnPlateau(verbose=0)
    callback.set_model(model)
    for epoch, val_loss in enumerate([1.0, 0.9, 0.95, 0.91, 0.92]):
        callback.on_epoch_end(epoch, {"val_loss": val_loss})
        rates = (float(model.optimizer.learning_rate), float(model.optimizer.stitch_learning_rate))
        if epoch < 4:
            assert rates == pytest.approx((2e-4, 1e-3))
    assert rates == pytest.approx((2e-4 * 0.2, 1e-3 * 0.2))
    state = callback.get_state()
    resumed = ReduceBothLROnPlateau()
    resumed.set_state(state)
    assert resumed.get_state() == state == {"best": 0.9, "wait": 0}


@pytest.mark.slow
def test_training_under_mirrored_strategy_on_two_logical_cpus():
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    assert len(devices) == 2, "tests/conftest.py splits the CPU into two logical devices"
    strategy = tf.distribute.MirroredStrategy(devices)
    with strategy.scope():
        model = build_model(image_size=SIZE, middle_blocks=0)
        compile_model(model)
    x, y = batch(8)
    alphas = model.get_layer("cross_stitch_block2").alpha.numpy().copy()
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    moved = np.abs(model.get_layer("cross_stitch_block2").alpha.numpy() - alphas)
    np.testing.assert_allclose(moved, 1e-3, rtol=1e-2)
    assert int(model.optimizer.iterations.numpy()) == 1


@pytest.mark.slow
def test_keras_file_round_trip_predicts_the_same_and_keeps_training(tmp_path):
    model = small_model()
    model.set_frequency_statistics([0.5, 0.1, -0.2], [1.5, 2.0, 1.0])
    x, y = batch(4)
    model.train_on_batch(x, y)
    model.optimizer.learning_rate = 4e-5
    model.optimizer.stitch_learning_rate = 2e-4
    path = tmp_path / "model.keras"
    model.save(path)
    restored = load_model(path)
    assert isinstance(restored, md_csd_tf.models.md_csd.MDCSDNetwork)
    np.testing.assert_allclose(
        restored.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    assert float(restored.optimizer.learning_rate) == pytest.approx(4e-5)
    assert float(restored.optimizer.stitch_learning_rate) == pytest.approx(2e-4)
    assert int(restored.optimizer.iterations.numpy()) == 1
    # Both groups keep training after loading, each at its own restored rate.
    restored.run_eagerly = True
    before = restored.get_layer("cross_stitch_block2").alpha.numpy().copy()
    kernel = restored.get_layer("fake_probability").kernel.numpy().copy()
    restored.train_on_batch(x, y)
    # Adam's second step is at most its rate (the first is exactly it); a step above the base
    # rate's bound shows the alphas still train at their own, restored rate.
    moved = np.abs(restored.get_layer("cross_stitch_block2").alpha.numpy() - before).max()
    assert 4e-5 * 1.2 < moved <= 2e-4 * 1.05
    assert (
        0
        < np.abs(restored.get_layer("fake_probability").kernel.numpy() - kernel).max()
        < 4e-5 * 1.2
    )


def test_load_model_errors_name_the_file(tmp_path):
    with pytest.raises(md_csd_tf.errors.UserError, match="not found"):
        load_model(tmp_path / "missing.keras")
    junk = tmp_path / "junk.keras"
    junk.write_bytes(b"not a zip")
    with pytest.raises(md_csd_tf.errors.UserError, match="junk.keras"):
        load_model(junk)
