"""Keras internals in one place: the strategy choice, the multi-worker fixes' gate, the optimizer
internals GroupedAdam needs (this test fails first, and clearly, after a breaking upgrade)."""

import json

import keras
import pytest
import tensorflow as tf

from md_csd_tf import keras_compat
from md_csd_tf.training.strategy import is_chief, make_strategy


def test_the_optimizer_internals_grouped_adam_uses_exist():
    keras_compat.check_optimizer_internals()  # raises a message naming GroupedAdam otherwise
    optimizer = keras.optimizers.Adam()
    weights = [keras.Variable(1.0), keras.Variable(2.0)]
    optimizer.build(weights)
    assert [keras_compat.variable_index(optimizer, w) for w in weights] == [0, 1]


def test_missing_internals_are_a_clear_error(monkeypatch):
    # As if an upgrade had renamed one of them.
    monkeypatch.setattr(keras_compat, "_OPTIMIZER_INTERNALS", ("_get_variable_index", "_gone"))
    with pytest.raises(RuntimeError, match="GroupedAdam"):
        keras_compat.check_optimizer_internals()


def test_multi_worker_fixes_only_where_needed():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert not keras_compat.apply_multi_worker_fixes(model, tf.distribute.get_strategy())
    assert "train_step" not in vars(model)  # the class's own method, untouched
    low, high = keras_compat.MULTI_WORKER_FIX_VERSIONS
    if low <= keras_compat.keras_version() < high:
        # The upstream private method the fix replaces must still exist where it is applied.
        from keras.src.backend.tensorflow.trainer import TensorFlowTrainer

        assert hasattr(TensorFlowTrainer, "_maybe_symbolic_build")


def test_strategy_choice(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert make_strategy("auto") is tf.distribute.get_strategy()  # no GPU, no cluster: default
    mirrored = make_strategy("mirrored")
    assert isinstance(mirrored, tf.distribute.MirroredStrategy)
    assert mirrored.num_replicas_in_sync == len(tf.config.list_logical_devices("CPU"))
    with pytest.raises(ValueError, match="Unknown strategy"):
        make_strategy("tpu")
    cluster = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    from md_csd_tf.training.strategy import _cluster_configured

    assert _cluster_configured() and not is_chief()
    cluster["task"]["index"] = 0
    monkeypatch.setenv("TF_CONFIG", json.dumps(cluster))
    assert is_chief()
    chief = {
        "cluster": {"chief": ["c:0"], "worker": ["a:1"]},
        "task": {"type": "worker", "index": 0},
    }
    monkeypatch.setenv("TF_CONFIG", json.dumps(chief))
    assert not is_chief()
