"""Every use of Keras internals (`_private` names) in one place, gated on the versions that need it.

Two kinds:

1. Multi-worker training (`MultiWorkerMirroredStrategy`) with Keras 3.0 to 3.15 (checked on
   3.15.1), two upstream behaviours of `keras.src.backend.tensorflow.trainer.TensorFlowTrainer`
   break `fit` for a model with several inputs:
   - `_maybe_symbolic_build` averages the first batch across replicas with ONE
     `strategy.reduce("MEAN", batch, axis=None)` over the whole nested batch; the collective
     reduce of `MultiWorkerMirroredStrategy` takes tensors, not a dict of inputs, so `fit` fails
     before its first step. Our fix reduces leaf by leaf (same order on every worker).
   - the step's logs are averaged with `strategy.reduce("MEAN", value, axis=0)` (its
     `reduce_per_replica` in multi-worker mode), which has no axis 0 for a scalar loss or
     metric. Our fix gives each log a length-1 axis.
   `apply_multi_worker_fixes` binds both fixes to one model instance, and only when the
   strategy is multi-worker and the Keras version is in `MULTI_WORKER_FIX_VERSIONS`. When Keras
   moves past that range, `tests/test_trainer.py`'s two-worker loopback run says whether the
   fixes are still needed (it fails without them).
2. `GroupedAdam` (one Adam, two learning rates) finds a variable's slot with
   `Optimizer._get_variable_index` and tracks its second rate with `Optimizer._track_variable`.
   `check_optimizer_internals` fails with a clear message if an upgrade removes them (a test
   calls it), instead of a confusing error deep inside a training step.
"""

from __future__ import annotations

import types

import keras
import tensorflow as tf

#: Keras versions (major, minor), lower bound included, upper excluded, that need the
#: multi-worker fixes. 3.15.1 is the newest checked.
MULTI_WORKER_FIX_VERSIONS = ((3, 0), (3, 16))
_OPTIMIZER_INTERNALS = ("_get_variable_index", "_track_variable")


def keras_version() -> tuple[int, int]:
    major, minor = keras.version().split(".")[:2]
    return int(major), int(minor)


def _multi_worker(strategy) -> bool:
    return (
        isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.extended._in_multi_worker_mode()
    )


def needs_multi_worker_fixes(strategy) -> bool:
    low, high = MULTI_WORKER_FIX_VERSIONS
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        low <= keras_version() < high
    )


def apply_multi_worker_fixes(model: keras.Model, strategy) -> bool:
    """Binds the two multi-worker fixes to `model` when `strategy` and Keras need them.

    Returns:
        True when the fixes were applied.
    """
    if not needs_multi_worker_fixes(strategy):
        return False
    cls = type(model)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is None:
            return cls._maybe_symbolic_build(self, iterator=iterator, data_batch=data_batch)
        for _, _, batches in iterator:
            batch = next(batches)
            data_batch = tf.nest.map_structure(
                lambda value: (
                    strategy.reduce("MEAN", value, axis=None)
                    if isinstance(value, tf.distribute.DistributedValues)
                    else value
                ),
                batch,
            )
            break
        return cls._maybe_symbolic_build(self, data_batch=data_batch)

    def as_worker_vectors(logs):
        if not _multi_worker(strategy):
            return logs
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}

    def train_step(self, data):
        return as_worker_vectors(cls.train_step(self, data))

    def test_step(self, data):
        return as_worker_vectors(cls.test_step(self, data))

    model._maybe_symbolic_build = types.MethodType(maybe_symbolic_build, model)
    model.train_step = types.MethodType(train_step, model)
    model.test_step = types.MethodType(test_step, model)
    return True


def check_optimizer_internals() -> None:
    """Raises a clear error if Keras no longer has the optimizer internals GroupedAdam uses."""
    missing = [n for n in _OPTIMIZER_INTERNALS if not hasattr(keras.optimizers.Optimizer, n)]
    if missing:
        raise RuntimeError(
            f"Keras {keras.version()} has no Optimizer.{', '.join(missing)}; GroupedAdam "
            "(md_csd_tf/optimizers.py) must be updated for this Keras version."
        )


def variable_index(optimizer, variable) -> int:
    """The optimizer's slot index of `variable` (Keras' `Optimizer._get_variable_index`)."""
    return optimizer._get_variable_index(variable)


def track_variable(optimizer, variable) -> None:
    """Makes `variable` part of the optimizer's saved state (`Optimizer._track_variable`)."""
    optimizer._track_variable(variable)
