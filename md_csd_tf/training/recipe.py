"""Compiling a model with the paper's loss, metrics and optimizer (Sec. II.C)."""

from __future__ import annotations

import keras

from md_csd_tf.training.grouped_adam import GroupedAdam


def compile_model(
    model: keras.Model,
    base_lr: float = 2e-4,
    stitch_lr: float = 1e-3,
    jit_compile="auto",
) -> keras.Model:
    """Compiles `model` for training as the paper does.

    Binary cross-entropy on the fake probability (the paper's two-class cross-entropy, written
    for one sigmoid output), accuracy at 0.5 and ROC AUC as metrics, and Adam at `base_lr` for
    every weight but the cross-stitch alphas, which train at `stitch_lr`.

    Call it inside `strategy.scope()` when training under `tf.distribute`, as for any Keras
    optimizer: its variables must be created under the strategy.

    Returns:
        The same model, compiled.
    """
    model.compile(
        optimizer=GroupedAdam(learning_rate=base_lr, stitch_learning_rate=stitch_lr),
        loss=keras.losses.BinaryCrossentropy(name="loss"),
        metrics=[
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.AUC(name="auc", num_thresholds=500),
        ],
        jit_compile=jit_compile,
    )
    return model
