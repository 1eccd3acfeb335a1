"""Evaluation metrics: frame- and video-level accuracy, AUC, EER and average precision.

Pure NumPy/pandas/scikit-learn (no TensorFlow), so evaluation of a saved `predictions.csv` runs
anywhere. Convention throughout: label 1 = fake, 0 = real; `prob` is the model's probability of
*fake*.

Reference:
    Agarwal et al., FG 2021, Sec. IV-B: accuracy is the main metric, AUC for cross-dataset and
    ablations; "we report the average metric scores for all the frames in a video" (our video
    level, `how="mean"`); Celeb-DF is scored frame-level.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from md_csd_tf.data.manifest import VIDEO_KEY
from md_csd_tf.files import atomic_write

REQUIRED = ("video_id", "label", "prob")


def _check_arrays(labels, probs) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).reshape(-1)
    p = np.asarray(probs, dtype=np.float64).reshape(-1)
    if y.shape != p.shape:
        raise ValueError(f"labels and probs differ in length: {y.shape[0]} vs {p.shape[0]}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 (real) or 1 (fake); got {np.unique(y)[:10]}")
    if not np.isfinite(p).all():
        raise ValueError("probs contain NaN or inf")
    return y.astype(np.int64), p


def equal_error_rate(labels, probs) -> float:
    """Equal error rate from the ROC curve: the rate where FPR equals FNR (= 1 - TPR).

    The ROC is piecewise linear between its points; FPR - FNR increases monotonically along it, so
    the crossing lies on one segment and is interpolated linearly there (no threshold grid, no
    "closest point" bias). NaN when only one class is present.

    Args:
        labels: 0/1 ground truth, 1 = fake.
        probs: Scores, higher = more likely fake.

    Returns:
        The EER in [0, 1], or NaN.
    """
    y, p = _check_arrays(labels, probs)
    if np.unique(y).size < 2:
        return math.nan
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    diff = fpr - (1.0 - tpr)  # -1 at the (0, 0) start, +1 at the (1, 1) end
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0 or i == 0:
        return float(fpr[i])
    t = -diff[i - 1] / (diff[i] - diff[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


THRESHOLD_RULES = ("eer", "fpr")


def calibrate_threshold(labels, probs, rule: str = "eer", fpr: float = 0.05) -> float:
    """A decision threshold on fake probability chosen on held-out scores.

    Rules:
        "eer": where the false-positive rate equals the false-negative rate (the ROC crossing of
            `equal_error_rate`, on the score axis: the midpoint between the two scores it lies
            between), so real and fake errors are balanced on these samples.
        "fpr": the smallest threshold that calls at most a fraction `fpr` of the real samples
            fake: it bounds false alarms on real faces and needs no fakes at all.

    Args:
        labels: 0/1, 1 = fake ("fpr" reads only the reals).
        probs: scores, higher = more likely fake.
        rule: one of `THRESHOLD_RULES`.
        fpr: the false-positive rate of "fpr".

    Returns:
        The threshold (a verdict is "fake" when the score is strictly above it); 0.5 when the
        rule cannot be applied (one class only for "eer", no reals for "fpr").
    """
    y, p = _check_arrays(labels, probs)
    if rule == "fpr":
        reals = np.sort(p[y == 0])
        if not reals.size:
            return 0.5
        # Scores strictly above the threshold are called fake: allow floor(fpr * n) of them.
        allowed = int(math.floor(fpr * reals.size + 1e-9))
        return float(reals[reals.size - 1 - allowed])
    if rule != "eer":
        raise ValueError(f"rule must be one of {THRESHOLD_RULES}, got {rule!r}")
    if np.unique(y).size < 2:
        return 0.5
    fpr_, tpr, thresholds = skm.roc_curve(y, p, drop_intermediate=False)
    diff = fpr_ - (1.0 - tpr)
    i = int(np.argmax(diff >= 0))
    # roc_curve's thresholds[0] is +inf; between points i-1 and i the threshold goes from
    # thresholds[i-1] down to thresholds[i].
    high = thresholds[i - 1] if i > 0 and np.isfinite(thresholds[i - 1]) else thresholds[i]
    return float(np.clip((high + thresholds[i]) / 2, 0.0, 1.0))


def frame_metrics(labels, probs, threshold: float = 0.5) -> dict[str, float | int]:
    """Accuracy, AUC, EER and average precision of a set of scored samples.

    Called on frames, or on videos after `aggregate_videos`. A sample is predicted fake when
    `prob > threshold` (strictly greater, as `keras.metrics.BinaryAccuracy`, so training-time and
    evaluation accuracies agree).

    Args:
        labels: 0/1 ground truth, 1 = fake.
        probs: Probability of fake per sample.
        threshold: Decision threshold for accuracy only; AUC, EER and AP are threshold-free.

    Returns:
        Dict with accuracy (fraction, not percent), auc, eer, average_precision, n, n_real,
        n_fake. With a single class present AUC/EER/AP are undefined and returned as NaN rather
        than raising (sklearn would); with no samples accuracy is NaN too.
    """
    y, p = _check_arrays(labels, probs)
    n_fake = int(y.sum())
    out: dict[str, float | int] = {
        "accuracy": float(np.mean((p > threshold) == y)) if y.size else math.nan,
        "auc": math.nan,
        "eer": math.nan,
        "average_precision": math.nan,
        "n": int(y.size),
        "n_real": int(y.size - n_fake),
        "n_fake": n_fake,
    }
    if 0 < n_fake < y.size:
        out["auc"] = float(skm.roc_auc_score(y, p))
        out["eer"] = equal_error_rate(y, p)
        out["average_precision"] = float(skm.average_precision_score(y, p))
    return out


def _check_table(frame_table: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in frame_table.columns]
    if missing:
        raise ValueError(f"frame table lacks column(s) {missing}; has {list(frame_table.columns)}")


def video_key(frame_table: pd.DataFrame) -> list[str]:
    """The columns of `VIDEO_KEY` present in the table: what identifies one video."""
    return [c for c in VIDEO_KEY if c in frame_table.columns]


AGGREGATES = ("mean", "vote")


def video_score(scores, how: str = "mean", threshold: float = 0.5) -> float:
    """A video's score from its frame scores: the one aggregator of evaluation and predict.

    "mean": the mean frame probability (the paper's "average ... for all the frames in a video",
    Sec. III.B). "vote": the fraction of frames with probability strictly above `threshold`, so
    thresholding it at 0.5 is a strict majority vote (a tie counts as real).
    """
    if how not in AGGREGATES:
        raise ValueError(f"how must be one of {AGGREGATES}, got {how!r}")
    scores = np.asarray(scores, dtype=np.float64)
    if how == "vote":
        scores = (scores > threshold).astype(np.float64)
    return float(scores.mean())


def aggregate_videos(
    frame_table: pd.DataFrame, how: str = "mean", threshold: float = 0.5
) -> pd.DataFrame:
    """One row per video from one row per frame.

    Args:
        frame_table: Columns video_id, label, prob; optional dataset/method/compression form part
            of the video key (see `VIDEO_KEY`) and are carried over.
        how: "mean" or "vote", see `video_score`.
        threshold: Frame decision threshold, used by "vote" only.

    Returns:
        DataFrame with the key columns, label, prob (the video score), n_frames, sorted by key.

    Raises:
        ValueError: unknown `how`, missing columns, or frames of one video with different labels
            (a sign the key is incomplete, e.g. a table mixing methods without a method column).
    """
    _check_table(frame_table)
    if how not in AGGREGATES:
        raise ValueError(f"how must be one of {AGGREGATES}, got {how!r}")
    key = video_key(frame_table)
    table = frame_table[[*key, "label", "prob"]].copy()
    # dropna=False: a real video may carry NaN in `method`; it must still be a group.
    grouped = table.groupby(key, sort=True, dropna=False)
    videos = grouped.agg(
        label=("label", "first"),
        n_labels=("label", "nunique"),
        prob=("prob", lambda p: video_score(p, how, threshold)),
        n_frames=("prob", "size"),
    ).reset_index()
    mixed = videos[videos["n_labels"] > 1]
    if len(mixed):
        raise ValueError(
            f"{len(mixed)} video(s) have frames with both labels under key {key}, e.g. "
            f"{mixed.iloc[0][key].to_dict()}; add the method/dataset column to the table"
        )
    videos["label"] = videos["label"].astype(np.int64)
    return videos.drop(columns="n_labels")


def _per_manipulation(
    table: pd.DataFrame, score: Callable[[pd.DataFrame], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    if "method" not in table.columns:
        return {}
    reals = table[table["label"] == 0]
    fakes = table[table["label"] == 1]
    out = {}
    for method in sorted(fakes["method"].dropna().unique(), key=str):
        subset = pd.concat([reals, fakes[fakes["method"] == method]])
        out[str(method)] = score(subset)
    return out


def evaluate_predictions(
    frame_table: pd.DataFrame, how: str = "mean", threshold: float = 0.5
) -> dict[str, Any]:
    """Frame- and video-level metrics, overall and per manipulation.

    Per manipulation follows FF++ practice: the subset for a method is that method's fake
    frames/videos together with *all* the real ones (reals carry no method), so every
    per-manipulation AUC is "this fake type vs. real". With a `method` column absent only the
    overall metrics are computed.

    Args:
        frame_table: One row per frame; see `aggregate_videos`.
        how: Video aggregation, "mean" or "vote".
        threshold: Frame decision threshold. Video accuracy uses it for "mean" and 0.5 (majority)
            for "vote", whose video score is a fraction of fake votes.

    Returns:
        {"config": {how, threshold, video_threshold, video_key},
         "frame": {"overall": metrics, "per_manipulation": {method: metrics}},
         "video": {"overall": ..., "per_manipulation": ...}}, metrics as in `frame_metrics`.
    """
    _check_table(frame_table)
    videos = aggregate_videos(frame_table, how=how, threshold=threshold)
    video_threshold = 0.5 if how == "vote" else threshold

    def frame_score(t: pd.DataFrame) -> dict[str, Any]:
        return frame_metrics(t["label"], t["prob"], threshold)

    def video_score(t: pd.DataFrame) -> dict[str, Any]:
        return frame_metrics(t["label"], t["prob"], video_threshold)

    return {
        "config": {
            "how": how,
            "threshold": float(threshold),
            "video_threshold": float(video_threshold),
            "video_key": video_key(frame_table),
        },
        "frame": {
            "overall": frame_score(frame_table),
            "per_manipulation": _per_manipulation(frame_table, frame_score),
        },
        "video": {
            "overall": video_score(videos),
            "per_manipulation": _per_manipulation(videos, video_score),
        },
    }


def _nan_to_none(obj: Any) -> Any:
    # JSON has no NaN; json.dump would write the non-standard token `NaN` that strict parsers reject.
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def _plot_roc(result: dict[str, Any], frame_table: pd.DataFrame, path: Path) -> None:
    # The object-oriented Figure API needs no pyplot and no global backend switch: it renders with
    # Agg and is safe in headless runs and threads.
    from matplotlib.figure import Figure

    config = result["config"]
    videos = aggregate_videos(frame_table, how=config["how"], threshold=config["threshold"])
    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.add_subplot()
    for name, table in (("frame", frame_table), (f"video ({config['how']})", videos)):
        y, p = _check_arrays(table["label"], table["prob"])
        if np.unique(y).size < 2:
            ax.plot([], [], label=f"{name}: one class only, no ROC")
            continue
        fpr, tpr, _ = skm.roc_curve(y, p)
        auc = skm.roc_auc_score(y, p)
        ax.plot(fpr, tpr, lw=2, label=f"{name}, AUC = {auc:.4f} (n = {y.size})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="chance")
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="False positive rate (real called fake)",
        ylabel="True positive rate (fake detected)",
        title="ROC",
    )
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="png")


def write_evaluation(
    result: dict[str, Any], frame_table: pd.DataFrame, out_dir: str | os.PathLike
) -> dict[str, Path]:
    """Write `metrics.json`, `predictions.csv` and `roc.png` into `out_dir`, each atomically.

    Args:
        result: Output of `evaluate_predictions` on `frame_table`.
        frame_table: The per-frame predictions; written as is (plus a `pred` column with the
            frame decision). Read it back with `dtype={"video_id": str}` to keep ids like "000".
        out_dir: Created if missing.

    Returns:
        {"metrics": path, "predictions": path, "roc": path}.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics": out / "metrics.json",
        "predictions": out / "predictions.csv",
        "roc": out / "roc.png",
    }
    text = json.dumps(_nan_to_none(result), indent=2, allow_nan=False) + "\n"
    atomic_write(paths["metrics"], lambda p: p.write_text(text, encoding="utf-8"))

    table = frame_table.copy()
    table["pred"] = (table["prob"].astype(np.float64) > result["config"]["threshold"]).astype(int)
    atomic_write(paths["predictions"], lambda p: table.to_csv(p, index=False))
    atomic_write(paths["roc"], lambda p: _plot_roc(result, frame_table, p))
    return paths
