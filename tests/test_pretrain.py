"""The real-faces-only recipe (configs/pretrain_sbi.py, pretraining.py) and what it relies on:
selection by validation AUC, the calibrated threshold in the saved model and in predict's
verdict, the time budget, pairs degraded alike."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import tensorflow as tf
from inference_fixtures import make_media, make_model, render_face_video

from md_csd_tf import cli
from md_csd_tf.data import blend
from md_csd_tf.evaluation.metrics import calibrate_threshold
from md_csd_tf.inference.detector import Detector
from md_csd_tf.models.saving import get_metadata, load_model, read_metadata, write_metadata


def test_calibrated_thresholds_follow_their_rules():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(400), np.ones(600)]
    probs = np.r_[rng.beta(2, 5, 400), rng.beta(5, 2, 600)]
    t = calibrate_threshold(labels, probs, "eer")
    fpr, fnr = (probs[labels == 0] > t).mean(), (probs[labels == 1] <= t).mean()
    assert abs(fpr - fnr) < 0.01  # the equal-error point
    # No threshold on a grid does better on the larger of the two error rates.
    grid = np.linspace(0, 1, 2001)
    worst = [max((probs[labels == 0] > g).mean(), (probs[labels == 1] <= g).mean()) for g in grid]
    assert max(fpr, fnr) <= min(worst) + 0.01
    t = calibrate_threshold(labels, probs, "fpr", fpr=0.05)
    assert (probs[labels == 0] > t).sum() == int(0.05 * 400)  # exactly 5 % of the reals
    assert calibrate_threshold(labels, probs, "fpr", fpr=0.0) == probs[labels == 0].max()
    assert calibrate_threshold(np.ones(5), np.linspace(0, 1, 5), "eer") == 0.5  # one class
    with pytest.raises(ValueError, match="rule"):
        calibrate_threshold(labels, probs, "best")


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    frames = render_face_video()
    return {"model": make_model(root / "tiny.keras", frames), **make_media(root / "m", frames)}


@pytest.mark.slow
def test_threshold_round_trips_and_reaches_the_verdict(media, tmp_path, capsys):
    path = tmp_path / "calibrated.keras"
    path.write_bytes(media["model"].read_bytes())
    score = Detector.load(path).predict_image(media["image"], detect=False).score
    # A threshold just above the face's score: real; the file keeps loading and scoring alike.
    write_metadata(path, {"threshold": score + 1e-3, "threshold_rule": "eer"})
    assert read_metadata(path)["threshold"] == pytest.approx(score + 1e-3)
    model = load_model(path, compile=False)
    assert get_metadata(model)["threshold_rule"] == "eer"
    detector = Detector(model)
    assert detector.threshold_source == "calibrated: eer on val"
    result = detector.predict_image(media["image"], detect=False)
    assert result.score == pytest.approx(score, abs=1e-6) and result.verdict == "real"
    assert (
        Detector(model, threshold=score - 1e-3).predict_image(media["image"], detect=False).verdict
        == "fake"
    )
    # Through the CLI: the stored threshold, unless --threshold is given; both in the JSON.
    out = tmp_path / "r.json"
    for extra, verdict, source in (
        ([], "real", "calibrated"),
        (["--threshold", "0.0"], "fake", "given"),
    ):
        code = cli.main(["predict", "--model", str(path), "--no-detect", str(media["image"]),
                         "--output", str(out), "--quiet", *extra])  # fmt: skip
        assert code == 0
        written = json.loads(out.read_text())
        assert written["results"][0]["verdict"] == verdict
        assert written["settings"]["threshold_source"].startswith(source)
    assert "threshold" in capsys.readouterr().out
    # A model saved again keeps its metadata (models.saving.save_model).
    from md_csd_tf.models.saving import save_model

    save_model(model, tmp_path / "again.keras")
    assert read_metadata(tmp_path / "again.keras")["threshold"] == pytest.approx(score + 1e-3)


def test_selection_by_auc_keeps_the_best_auc_epoch(tmp_path):
    from md_csd_tf.models.registry import build_detector
    from md_csd_tf.training.compile import compile_detector
    from md_csd_tf.training.run_folder import RunCheckpoint

    model = compile_detector(build_detector("meso4", image_size=32), "bce", 1e-3)
    state = {"epoch": 0, "best_val_accuracy": -np.inf, "best_epoch": 0, "history": []}
    checkpoint = RunCheckpoint(tmp_path, None, state, write=False, metric="val_auc")
    checkpoint.set_model(model)
    # Epoch 1 calls everything fake on a fake-heavy split: high accuracy, chance AUC.
    for logs in ({"val_accuracy": 0.8, "val_auc": 0.5}, {"val_accuracy": 0.6, "val_auc": 0.9},
                 {"val_accuracy": 0.7, "val_auc": 0.85}):  # fmt: skip
        checkpoint.on_epoch_end(state["epoch"], logs)
    assert state["best_epoch"] == 2 and state["selected_by"] == "val_auc"
    assert state["best_selected"] == 0.9 and state["best_val_accuracy"] == 0.6


def test_time_budget_counts_training_cpu_time_only():
    from md_csd_tf.training.callbacks import TimeBudget

    class Model:
        stop_training = False

    budget = TimeBudget(0.05)
    model = Model()
    budget.set_model(model)
    budget.on_epoch_begin(0)
    budget.on_test_begin()
    time.sleep(0.1)  # validation and waiting cost no budget
    budget.on_epoch_end(0)
    assert not model.stop_training
    budget.on_epoch_begin(1)
    began = time.process_time()
    while time.process_time() - began < 0.06:
        pass
    budget.on_epoch_end(1)
    assert model.stop_training and budget.spent >= 0.05


def test_pairs_are_degraded_alike_eagerly_and_in_tf_data():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    fake = real.copy()
    fake[16:32, 16:32] = 255 - fake[16:32, 16:32]
    seeds = [tf.constant([s, 7]) for s in range(12)]
    changed = 0
    for seed in seeds:
        a, b = blend.degrade_pair(tf.constant(real), tf.constant(real), seed)
        np.testing.assert_array_equal(a.numpy(), b.numpy())  # the same draws for both
        r, f = blend.degrade_pair(tf.constant(real), tf.constant(fake), seed)
        np.testing.assert_array_equal(r.numpy(), a.numpy())
        changed += int(np.any(r.numpy() != real))
        assert np.any(r.numpy() != f.numpy())  # the blend survives
    assert changed >= 8  # most seeds degrade something
    mapped = tf.data.Dataset.from_tensor_slices(tf.stack(seeds)).map(
        lambda s: blend.degrade_pair(tf.constant(real), tf.constant(fake), s)
    )
    for (r, f), seed in zip(mapped, seeds, strict=True):
        er, ef = blend.degrade_pair(tf.constant(real), tf.constant(fake), seed)
        np.testing.assert_array_equal(r.numpy(), er.numpy())
        np.testing.assert_array_equal(f.numpy(), ef.numpy())


@pytest.mark.slow
def test_smoke_recipe_trains_selects_calibrates_and_predict_loads_it(tmp_path):
    from md_csd_tf.configs.pretrain_sbi import get_config
    from md_csd_tf.pretraining import format_summary, pretrain

    config = get_config(smoke=True)
    summary = pretrain(config, tmp_path)
    run = tmp_path / "runs" / config.name
    metadata = read_metadata(run / "best.keras")
    assert 0 < metadata["threshold"] < 1 and metadata["threshold_rule"] == "eer"
    assert metadata["threshold_frames"] > 0  # scored on the validation split
    state = json.loads((run / "state.json").read_text())
    assert state["selected_by"] == "val_auc"
    # Held-out figures per test set and fake family, also as Markdown.
    assert set(summary["datasets"]) >= {"faces", "ffpp"}
    families = summary["datasets"]["faces"]["families"]
    assert {"SBI", "Swap-Poisson", "Swap-Alpha", "LowRes", "Expression"} <= set(families)
    assert "| faces |" in format_summary(summary)
    # The model it wrote is one predict loads and scores with its own threshold.
    crop = next((tmp_path / "data" / "crops" / "faces" / "raw" / "real").glob("*/*.png"))
    out = tmp_path / "p.json"
    assert cli.main(["predict", "--model", str(run / "best.keras"), "--no-detect", str(crop),
                     "--output", str(out), "--quiet"]) == 0  # fmt: skip
    written = json.loads(out.read_text())
    assert written["settings"]["threshold"] == pytest.approx(metadata["threshold"])
    # Started again, it resumes: nothing retrained, the same threshold.
    again = pretrain(config, tmp_path)
    assert again["threshold"] == pytest.approx(summary["threshold"])


@pytest.mark.slow
def test_float16_storage_halves_the_file_and_keeps_scores_within_1e_3(media, tmp_path):
    from md_csd_tf.models.saving import store_float16

    path = tmp_path / "f16.keras"
    path.write_bytes(media["model"].read_bytes())
    write_metadata(path, {"threshold": 0.4})
    before = Detector.load(path).predict_image(media["image"], detect=False).score
    size = path.stat().st_size
    store_float16(path)
    assert path.stat().st_size < 0.7 * size
    model = load_model(path, compile=False)
    assert all(w.dtype == "float32" for w in model.weights)  # loaded back into float32
    assert get_metadata(model)["threshold"] == 0.4
    after = Detector(model).predict_image(media["image"], detect=False).score
    assert abs(after - before) < 1e-3


def test_candidates_reuse_a_finished_candidate_instead_of_training_it_again(tmp_path, monkeypatch):
    import importlib.util
    from pathlib import Path

    import md_csd_tf.pretraining as pretraining

    script = Path(__file__).resolve().parents[1] / "experiments" / "pretrain_candidates.py"
    spec = importlib.util.spec_from_file_location("pretrain_candidates", script)
    candidates = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(candidates)
    finished = tmp_path / "runs" / "candidate-meso4-32"
    finished.mkdir(parents=True)
    summary = {
        "parameters": 11945, "train_seconds_this_process": 4.2, "epochs": 1, "val_auc": 0.61,
        "best_epoch": 1, "threshold": 0.5,
        "datasets": {"faces": {"video_auc": 0.7, "frame_auc": 0.65, "real_videos": 1,
                               "real_mean_fake_probability": 0.3, "families": {}}},
    }  # fmt: skip
    (finished / "summary.json").write_text(json.dumps(summary))

    def no_training(*args, **kwargs):
        raise AssertionError("a finished candidate was trained again")

    monkeypatch.setattr(pretraining, "pretrain", no_training)
    assert candidates.main(["--smoke", "--out", str(tmp_path), "--only", "meso4@32"]) == 0
    table = (tmp_path / "candidates.csv").read_text()
    assert "meso4@32" in table and "0.61" in table and "0.7" in table
