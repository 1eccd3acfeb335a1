"""`md_csd_tf.losses.AUCLoss` (Pu et al., Pattern Recognition 2022, Sec. 3.3) against a hand
computation, and its zero when fakes outscore reals by the margin."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from md_csd_tf.losses import AUCLoss
from md_csd_tf.training.compile import LOSSES


def hand_auc_loss(labels, scores, alpha=0.5, gamma=0.15, p=2):
    bce = -np.mean(labels * np.log(scores) + (1 - labels) * np.log(1 - scores))
    pairs = [
        max(0.0, gamma - (scores[i] - scores[j])) ** p
        for i in range(len(labels))
        for j in range(len(labels))
        if labels[i] == 1 and labels[j] == 0
    ]
    return alpha * bce + (1 - alpha) * np.mean(pairs)


def test_auc_loss_equals_a_hand_computation():
    labels = np.array([1, 0, 1, 0, 0], np.float32)
    scores = np.array([0.7, 0.6, 0.3, 0.2, 0.65], np.float32)
    expected = hand_auc_loss(labels.astype(float), scores.astype(float))
    got = float(AUCLoss()(labels[:, None], scores[:, None]))
    assert got == pytest.approx(expected, rel=1e-5)
    # Its ranking term is not the BCE alone: a reversed ranking costs more.
    assert expected > 0.5 * -np.mean(labels * np.log(scores) + (1 - labels) * np.log(1 - scores))


def test_ranking_term_is_zero_when_every_fake_outscores_every_real_by_gamma():
    labels = np.array([[1], [1], [0], [0]], np.float32)
    scores = np.array([[0.8], [0.66], [0.5], [0.1]], np.float32)  # 0.66 - 0.5 = 0.16 > 0.15
    ranking_only = AUCLoss(alpha=0.0)
    assert float(ranking_only(labels, scores)) == 0.0
    # Swapping one fake below a real makes it positive: fakes must rank above reals.
    assert float(ranking_only(labels, scores[[2, 1, 0, 3]])) > 0.0
    # One class only: no pair, no ranking term (and no NaN).
    assert float(ranking_only(labels[:2], scores[:2])) == 0.0


@pytest.mark.slow
def test_auc_loss_is_a_recipe_loss_that_trains_and_round_trips():
    assert isinstance(LOSSES["auc"](), AUCLoss)
    config = AUCLoss(alpha=0.3, gamma=0.2, p=1).get_config()
    assert AUCLoss.from_config(config).get_config() == config
    tf.keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(keras.optimizers.Adam(0.1), loss=LOSSES["auc"]())
    losses = model.fit(x, y, batch_size=16, epochs=20, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
