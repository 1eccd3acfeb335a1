"""Compiling a detector for training: its recipe's loss, optimizer and rates, our metrics."""

from __future__ import annotations

import keras

from md_csd_tf.losses import AUCLoss
from md_csd_tf.optimizers import GroupedAdam

#: Losses a recipe (or `--loss`) may name, on P(fake) with label 1 = fake. "model": the model
#: computes its own (`compute_loss`/`train_step`), e.g. a triplet term on embeddings.
LOSSES = {
    "bce": lambda: keras.losses.BinaryCrossentropy(name="loss"),  # the paper's cross-entropy
    "mse": lambda: keras.losses.MeanSquaredError(name="loss"),  # MesoNet's, as published
    "auc": lambda: AUCLoss(name="loss"),  # Pu et al. 2022's BCE + AUC surrogate (imbalance)
}


def metrics() -> list:
    """Accuracy at 0.5 and ROC AUC, reported for every detector alike."""
    return [
        keras.metrics.BinaryAccuracy(name="accuracy"),
        keras.metrics.AUC(name="auc", num_thresholds=500),
    ]


def compile_detector(
    model: keras.Model,
    loss: str = "bce",
    learning_rate: float = 2e-4,
    second_learning_rate: float | None = None,
    jit_compile=False,
) -> keras.Model:
    """Compiles `model` with `loss` and one Adam at `learning_rate`, whose cross-stitch alphas
    (if any) train at `second_learning_rate` (`GroupedAdam`; without stitches it is Adam).

    Call it inside `strategy.scope()` when training under `tf.distribute`, as for any Keras
    optimizer: its variables must be created under the strategy.
    """
    if loss != "model" and loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)} or 'model'")
    model.compile(
        optimizer=GroupedAdam(
            learning_rate=learning_rate,
            stitch_learning_rate=second_learning_rate or learning_rate,
        ),
        loss=None if loss == "model" else LOSSES[loss](),
        metrics=metrics(),
        jit_compile=jit_compile,
    )
    return model


def compile_model(
    model: keras.Model,
    base_lr: float = 2e-4,
    stitch_lr: float = 1e-3,
    jit_compile="auto",
) -> keras.Model:
    """Compiles an MD-CSD model as the paper does (Sec. II.C): binary cross-entropy on the fake
    probability (its two-class cross-entropy, written for one sigmoid output), Adam at
    `base_lr` for every weight but the cross-stitch alphas, which train at `stitch_lr`."""
    return compile_detector(model, "bce", base_lr, stitch_lr, jit_compile)
