"""Evaluation metrics against scikit-learn and hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, average_precision_score, roc_auc_score

from md_csd_tf.evaluation.metrics import (
    aggregate_videos,
    equal_error_rate,
    evaluate_predictions,
    frame_metrics,
    write_evaluation,
)


@pytest.fixture
def frame_table() -> pd.DataFrame:
    """Two real videos and the fake "000" under two methods: the same id, three different videos."""
    rows = [
        # video_id, method, label, prob
        ("000", None, 0, 0.1),
        ("000", None, 0, 0.3),
        ("001", None, 0, 0.6),
        ("001", None, 0, 0.7),
        ("001", None, 0, 0.2),
        ("000", "Deepfakes", 1, 0.8),
        ("000", "Deepfakes", 1, 0.4),
        ("000", "FaceSwap", 1, 0.9),
        ("000", "FaceSwap", 1, 0.6),
        ("000", "FaceSwap", 1, 0.2),
    ]
    table = pd.DataFrame(rows, columns=["video_id", "method", "label", "prob"])
    table["compression"] = "c23"
    return table


def test_frame_metrics_equal_sklearn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=200)
    probs = np.clip(0.3 * labels + 0.7 * rng.random(200), 0, 1)
    m = frame_metrics(labels, probs, threshold=0.5)
    assert m["accuracy"] == pytest.approx(accuracy_score(labels, probs > 0.5))
    assert m["auc"] == pytest.approx(roc_auc_score(labels, probs))
    assert m["average_precision"] == pytest.approx(average_precision_score(labels, probs))
    assert (m["n"], m["n_fake"], m["n_real"]) == (200, labels.sum(), 200 - labels.sum())
    assert frame_metrics(labels, probs, threshold=0.7)["accuracy"] == pytest.approx(
        accuracy_score(labels, probs > 0.7)
    )


@pytest.mark.parametrize(
    ("labels", "probs", "eer"),
    [
        ([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], 0.5),  # crossing exactly at ROC point (0.5, 0.5)
        ([0, 1], [0.2, 0.8], 0.0),  # separable
        ([0, 0, 0, 1], [0.1, 0.2, 0.7, 0.5], 1 / 3),  # vertical segment at FPR = 1/3
        # ROC (0,0) -> (0.5,1): FPR = t/2, FNR = 1 - t, equal at t = 2/3, EER = 1/3
        ([0, 0, 1], [0.3, 0.6, 0.6], 1 / 3),
        ([0, 1], [0.8, 0.2], 1.0),  # perfectly inverted
    ],
)
def test_eer_hand_made(labels, probs, eer):
    assert equal_error_rate(labels, probs) == pytest.approx(eer)
    assert frame_metrics(labels, probs)["eer"] == pytest.approx(eer)


def test_one_class_gives_nan_not_exception():
    m = frame_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert all(math.isnan(m[k]) for k in ("auc", "eer", "average_precision"))
    assert (m["n_real"], m["n_fake"]) == (0, 3)
    assert math.isnan(frame_metrics([], [])["accuracy"])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="0 \\(real\\) or 1"):
        frame_metrics([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        frame_metrics([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError, match="differ in length"):
        frame_metrics([0, 1], [0.1])


def test_aggregate_mean_keeps_same_id_under_two_methods_apart(frame_table):
    videos = aggregate_videos(frame_table, how="mean")
    assert len(videos) == 4
    assert list(videos.columns) == [
        "method",
        "compression",
        "video_id",
        "label",
        "prob",
        "n_frames",
    ]
    by = {
        (m if isinstance(m, str) else "real", v): r
        for m, v, r in zip(videos["method"], videos["video_id"], videos.itertuples(), strict=True)
    }
    assert by["Deepfakes", "000"].prob == pytest.approx(0.6)
    assert by["FaceSwap", "000"].prob == pytest.approx((0.9 + 0.6 + 0.2) / 3)
    assert by["real", "000"].prob == pytest.approx(0.2)
    assert by["real", "001"].prob == pytest.approx(0.5)
    assert (by["real", "001"].n_frames, by["real", "001"].label) == (3, 0)
    assert (by["FaceSwap", "000"].n_frames, by["FaceSwap", "000"].label) == (3, 1)


def test_aggregate_vote(frame_table):
    videos = aggregate_videos(frame_table, how="vote", threshold=0.5)
    probs = dict(
        zip(videos["method"].fillna("real") + "/" + videos["video_id"], videos["prob"], strict=True)
    )
    assert probs == pytest.approx(
        {"Deepfakes/000": 0.5, "FaceSwap/000": 2 / 3, "real/000": 0.0, "real/001": 2 / 3}
    )
    result = evaluate_predictions(frame_table, how="vote")
    # majority: a tie (Deepfakes 1 of 2) is real -> wrong; real/001 (2 of 3) is fake -> wrong
    assert result["video"]["overall"]["accuracy"] == pytest.approx(0.5)
    assert result["config"]["video_threshold"] == 0.5


def test_mixed_labels_in_one_video_raise(frame_table):
    with pytest.raises(ValueError, match="both labels"):
        aggregate_videos(frame_table.drop(columns="method"))
    with pytest.raises(ValueError, match="how must be"):
        aggregate_videos(frame_table, how="median")


def test_evaluate_overall_and_per_manipulation_include_all_reals(frame_table):
    result = evaluate_predictions(frame_table, how="mean", threshold=0.5)
    frame = result["frame"]
    assert frame["overall"]["auc"] == pytest.approx(
        roc_auc_score(frame_table["label"], frame_table["prob"])
    )
    assert set(frame["per_manipulation"]) == {"Deepfakes", "FaceSwap"}
    fs = frame["per_manipulation"]["FaceSwap"]
    assert (fs["n_real"], fs["n_fake"]) == (5, 3)  # every real frame, only FaceSwap fakes
    subset = frame_table[(frame_table["label"] == 0) | (frame_table["method"] == "FaceSwap")]
    assert fs["auc"] == pytest.approx(roc_auc_score(subset["label"], subset["prob"]))
    assert fs["accuracy"] == pytest.approx(accuracy_score(subset["label"], subset["prob"] > 0.5))

    video = result["video"]
    assert video["overall"]["n"] == 4
    df = video["per_manipulation"]["Deepfakes"]
    assert (df["n_real"], df["n_fake"]) == (2, 1)
    # video scores: reals 0.2, 0.5; Deepfakes 0.6 -> separable
    assert df["auc"] == pytest.approx(1.0)
    assert df["accuracy"] == pytest.approx(1.0)  # 0.5 is not > 0.5, so real/001 is correct
    assert result["config"]["video_key"] == ["method", "compression", "video_id"]


def test_write_evaluation_files(frame_table, tmp_path):
    result = evaluate_predictions(frame_table)
    paths = write_evaluation(result, frame_table, tmp_path / "eval")
    assert set(paths) == {"metrics", "predictions", "roc"}

    loaded = json.loads(paths["metrics"].read_text())
    assert loaded["video"]["overall"]["auc"] == pytest.approx(result["video"]["overall"]["auc"])
    assert loaded["frame"]["per_manipulation"]["FaceSwap"]["n"] == 8

    back = pd.read_csv(paths["predictions"], dtype={"video_id": str, "method": "object"})
    assert list(back.columns) == [*frame_table.columns, "pred"]
    pd.testing.assert_series_equal(back["video_id"], frame_table["video_id"], check_dtype=False)
    np.testing.assert_allclose(back["prob"], frame_table["prob"])
    np.testing.assert_array_equal(back["label"], frame_table["label"])
    np.testing.assert_array_equal(back["pred"], (frame_table["prob"] > 0.5).astype(int))

    png = paths["roc"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 10_000
    assert not list(paths["roc"].parent.glob("*.tmp"))  # temp files replaced, none left over


def test_write_evaluation_one_class_writes_null(tmp_path):
    table = pd.DataFrame({"video_id": ["a", "a", "b"], "label": [1, 1, 1], "prob": [0.9, 0.8, 0.1]})
    paths = write_evaluation(evaluate_predictions(table), table, tmp_path)
    loaded = json.loads(paths["metrics"].read_text())  # strict JSON: NaN written as null
    assert loaded["frame"]["overall"]["auc"] is None
    assert loaded["frame"]["per_manipulation"] == {}
    assert paths["roc"].stat().st_size > 1000
