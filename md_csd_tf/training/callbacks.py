"""The paper's learning-rate schedule: cut every learning rate when validation loss stalls."""

from __future__ import annotations

import math
import time

import keras
import numpy as np

from md_csd_tf.optimizers import unwrap_optimizer


@keras.saving.register_keras_serializable(package="md_csd_tf")
class ReduceBothLROnPlateau(keras.callbacks.Callback):
    """Multiplies the base and the stitch learning rate by `factor` when `monitor` stalls.

    "The learning rate is reduced by a factor of 0.2 every time when the validation loss does not
    decrease for three consecutive epochs" (Sec. II.C). Keras' own `ReduceLROnPlateau` knows one
    rate only; this one cuts `learning_rate` and, when the optimizer has one,
    `stitch_learning_rate`, keeping their ratio. Its state (`get_state`/`set_state`) is part of
    a training checkpoint so that a resumed run waits exactly as long as an uninterrupted one.

    Args:
        monitor: the logged quantity to watch (lower is better).
        factor: the multiplier applied to both rates (0.2 in the paper).
        patience: epochs without improvement before a cut (3 in the paper).
        min_delta: the smallest decrease that counts as an improvement.
        min_lr: floor for the base rate; the stitch rate keeps its ratio to it.
    """

    def __init__(
        self, monitor="val_loss", factor=0.2, patience=3, min_delta=0.0, min_lr=0.0, verbose=1
    ):
        super().__init__()
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}.")
        self.monitor = monitor
        self.factor = factor
        self.patience = patience
        self.min_delta = min_delta
        self.min_lr = min_lr
        self.verbose = verbose
        self.best = math.inf
        self.wait = 0

    def get_state(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def set_state(self, state: dict) -> None:
        self.best = float(state.get("best", math.inf))
        self.wait = int(state.get("wait", 0))

    def on_epoch_end(self, epoch, logs=None):
        current = (logs or {}).get(self.monitor)
        if current is None:
            return
        current = float(np.mean(current))  # a multi-worker run logs length-1 vectors
        if current < self.best - self.min_delta:
            self.best = float(current)
            self.wait = 0
            return
        self.wait += 1
        if self.wait < self.patience:
            return
        self.wait = 0
        optimizer = unwrap_optimizer(self.model.optimizer)
        old = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        new = max(old * self.factor, self.min_lr)
        if new >= old:
            return
        optimizer.learning_rate = new
        if hasattr(optimizer, "stitch_learning_rate"):
            stitch = float(keras.ops.convert_to_numpy(optimizer.stitch_learning_rate))
            optimizer.stitch_learning_rate = stitch * new / old
        if self.verbose:
            print(
                f"\nEpoch {epoch + 1}: {self.monitor} has not improved for {self.patience} "
                f"epochs; learning rates x{new / old:.3g} (base {new:.3g})."
            )

    def get_config(self):
        return {
            "monitor": self.monitor,
            "factor": self.factor,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "min_lr": self.min_lr,
            "verbose": self.verbose,
        }


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the epoch in which the training time (the batches, not the
    validation that follows them) reaches `seconds`; `spent` is the training time so far.

    Time is the process's CPU time (`time.process_time`, every thread: the model's and the input
    pipeline's), not wall time: candidates trained one after another on a shared machine get the
    same compute whatever else runs beside them. On an idle 2-core machine it is ~2x wall time.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = float(seconds)
        self.spent = 0.0
        self._began = None

    def on_epoch_begin(self, epoch, logs=None):
        self._began = time.process_time()

    def on_test_begin(self, logs=None):
        if self._began is not None:  # validation of `fit`, not a separate evaluate()
            self.spent += time.process_time() - self._began
            self._began = None

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()  # an epoch without validation
        if self.spent >= self.seconds:
            self.model.stop_training = True
