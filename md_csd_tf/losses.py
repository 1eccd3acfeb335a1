"""Losses a recipe or `--loss` can name beyond Keras' own (see `training/compile.py`'s `LOSSES`).

`AUCLoss` is the class-imbalance loss of Pu et al., "Learning a deep dual-level network for robust
DeepFake detection", Pattern Recognition 2022 (Sec. 3, its AUC loss): a convex mix of binary cross-entropy and
a pairwise squared-hinge surrogate of the ROC AUC, so the gradient does not vanish when real faces
are few (the AUC term weighs every (fake, real) pair alike, whatever the class ratio).
"""

from __future__ import annotations

import keras
import tensorflow as tf


def pairwise_auc_hinge(labels, probabilities, gamma: float = 0.15, p: float = 2.0) -> tf.Tensor:
    """Mean over (fake, real) pairs of `max(0, gamma - (s_fake - s_real)) ** p`.

    Zero when every fake outscores every real by at least `gamma`; 0 for a batch that lacks one
    of the classes (no pair to rank). float32 whatever the input dtype (mixed precision).

    Args:
        labels: `(B,)` or `(B, 1)`, 1 = fake, 0 = real.
        probabilities: `(B,)` or `(B, 1)` scores, P(fake).
        gamma: the margin by which a fake should outscore a real.
        p: the power of the hinge (2: squared hinge, the paper's).

    Reference:
        Pu et al., Pattern Recognition 2022, Sec. 3 (the AUC loss). Sign chosen so fakes
        rank above reals, the same direction as the BCE on label 1 = fake; the authors'
        published `utils/aucloss.py` ranks the other way relative to its BCE, which makes the
        two terms pull apart.
    """
    labels = tf.reshape(tf.cast(labels, tf.float32), [-1])
    scores = tf.reshape(tf.cast(probabilities, tf.float32), [-1])
    fake = tf.cast(labels > 0.5, tf.float32)
    real = 1.0 - fake
    margins = scores[:, None] - scores[None, :]  # (i, j): s_i - s_j
    pairs = fake[:, None] * real[None, :]  # i fake, j real
    hinge = tf.pow(tf.maximum(gamma - margins, 0.0), p) * pairs
    return tf.math.divide_no_nan(tf.reduce_sum(hinge), tf.reduce_sum(pairs))


@keras.saving.register_keras_serializable(package="md_csd_tf")
class AUCLoss(keras.losses.Loss):
    """`alpha * BCE + (1 - alpha) * pairwise_auc_hinge(gamma, p)` on P(fake), label 1 = fake.

    A batch-level loss: the ranking term couples the samples, so it is computed over the whole
    batch (or replica batch under `tf.distribute`). Call it on `(labels, probabilities)`.

    Args:
        alpha: weight of the cross-entropy (0.5, the paper's).
        gamma: ranking margin (0.15, the paper's).
        p: hinge power (2, the paper's).
        name: Keras' (the trainer logs it as "loss").

    Reference:
        Pu et al., Pattern Recognition 2022, Sec. 3 (the loss) and its experiments (alpha, gamma, p).
    """

    def __init__(
        self, alpha: float = 0.5, gamma: float = 0.15, p: float = 2.0, name: str = "auc_loss"
    ):
        super().__init__(name=name)
        self.alpha = alpha
        self.gamma = gamma
        self.p = p

    def call(self, y_true, y_pred):
        labels = tf.reshape(tf.cast(y_true, tf.float32), [-1, 1])
        probabilities = tf.reshape(tf.cast(y_pred, tf.float32), [-1, 1])
        bce = tf.reduce_mean(keras.losses.binary_crossentropy(labels, probabilities))
        ranking = pairwise_auc_hinge(labels, probabilities, self.gamma, self.p)
        return self.alpha * bce + (1.0 - self.alpha) * ranking

    def get_config(self):
        return {"name": self.name, "alpha": self.alpha, "gamma": self.gamma, "p": self.p}
