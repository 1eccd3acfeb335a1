"""Scoring a saved model on manifest crops and writing the evaluation files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from md_csd_tf.data.clips import predict_clip_frames
from md_csd_tf.data.manifest import REQUIRED_COLUMNS, check_crops_exist
from md_csd_tf.data.pipeline import PipelineConfig, make_dataset
from md_csd_tf.evaluation.metrics import evaluate_predictions, write_evaluation


def predict_frames(
    model, frames: pd.DataFrame, batch_size: int = 32, verbose: int = 1
) -> pd.DataFrame:
    """`frames` with a `prob` column: the model's fake probability for every crop, in order
    (a clip detector's: the mean over the clips holding the crop, `predict_clip_frames`)."""
    config = PipelineConfig.for_model(model, batch_size=batch_size)
    if config.clip_frames:
        scored = predict_clip_frames(model, frames, batch_size, verbose)
    else:
        probs = model.predict(make_dataset(frames, config, training=False), verbose=verbose)
        scored = frames.copy()
        scored["prob"] = np.asarray(probs, dtype=np.float64).reshape(-1)
    if not np.isfinite(scored["prob"]).all():
        from md_csd_tf.errors import UserError

        bad = int((~np.isfinite(scored["prob"])).sum())
        raise UserError(
            f"{model.detector or 'the model'}: {bad} of {len(scored)} scores are NaN "
            "or inf (its training diverged); retrain it, e.g. with a lower --base-lr"
        )
    return scored


def evaluate_model(
    model,
    frames: pd.DataFrame,
    out_dir,
    batch_size: int = 32,
    how: str | None = None,
    threshold: float = 0.5,
    verbose: int = 1,
) -> dict:
    """Frame- and video-level metrics of `model` on `frames`; writes metrics.json,
    predictions.csv and roc.png to `out_dir` and returns the metrics.

    `how`: the video score, "mean" or "vote"; None takes the detector's recipe (the paper's
    mean for MD-CSD)."""
    if how is None:
        from md_csd_tf.models.registry import recipe_of

        how = recipe_of(model).video_aggregate
    check_crops_exist(frames, frames.attrs.get("source", "the manifest"))
    scored = predict_frames(model, frames, batch_size, verbose)
    keep = [c for c in (*REQUIRED_COLUMNS, "prob") if c in scored]
    table = scored[keep]
    result = evaluate_predictions(table, how=how, threshold=threshold)
    write_evaluation(result, table, Path(out_dir))
    return result
