"""Train and test steps for detectors that compute their own losses (recipe `loss="model"`).

attention_net (BCE + reconstruction + metric), dual_level (video + frame levels) and
xception_metric (triplet + BCE) each add several losses from one forward pass. `MultiLossSteps`
writes their Keras `train_step`/`test_step` once; a detector supplies `losses_of` and the names
of its losses.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class MultiLossSteps:
    """A mixin for a `DetectorModel` whose loss is the sum it computes in `losses_of`.

    Compile such a model with `loss=None`; every loss of `loss_names` is logged (as `loss`,
    `<name>` and `val_<name>`) beside the compiled metrics, which see P(fake) and the labels of
    `metric_labels`. Put it before the model class in the bases:
    `class Net(MultiLossSteps, DetectorModel)`, and call `self.track_losses()` at the end of
    `__init__`.

    Attributes:
        loss_names: the keys of the dict `losses_of` returns; "loss" (the total) first.
    """

    loss_names: tuple[str, ...] = ("loss",)

    def track_losses(self) -> None:
        """Creates one mean tracker per loss (in `__init__`, so Keras counts them as metrics
        and resets them each epoch; Keras' own loss tracker is never fed without a loss)."""
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in self.loss_names}

    def losses_of(self, x, y, sample_weight=None, training=False):
        """`(dict of scalar losses keyed by loss_names, P(fake) (B, 1))` of one batch."""
        raise NotImplementedError

    def metric_labels(self, y):
        """The labels the compiled metrics compare with P(fake); `y` itself by default."""
        return y

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        with tf.GradientTape() as tape:
            losses, probability = self.losses_of(x, y, sample_weight, training=True)
            # Under tf.distribute the replicas' gradients are summed: each replica's loss is
            # divided by their number, as Keras does for compiled losses.
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(losses["loss"] / replicas)  # + mixed precision's
        gradients = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        return self._logs(x, y, probability, sample_weight, losses)

    def test_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        losses, probability = self.losses_of(x, y, sample_weight, training=False)
        return self._logs(x, y, probability, sample_weight, losses)

    def _logs(self, x, y, probability, sample_weight, losses) -> dict:
        for name, value in losses.items():
            self.loss_trackers[name].update_state(value)
        labels = tf.reshape(tf.cast(self.metric_labels(y), tf.float32), [-1, 1])
        logs = self.compute_metrics(x, labels, probability, sample_weight=sample_weight)
        logs.update({name: tracker.result() for name, tracker in self.loss_trackers.items()})
        return logs
