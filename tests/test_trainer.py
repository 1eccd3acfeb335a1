"""Trainer: files written, resume with epoch counter and both learning rates, MirroredStrategy."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from data_fixtures import tiny_train_config, write_crop_manifest

import md_csd_tf
from md_csd_tf import load_model
from md_csd_tf.data.manifest import read_manifest, select
from md_csd_tf.errors import UserError
from md_csd_tf.evaluation.evaluate import predict_frames
from md_csd_tf.files import OutputLock
from md_csd_tf.training.trainer import train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return str(write_crop_manifest(tmp_path_factory.mktemp("crops")))


tiny = tiny_train_config


def test_a_run_writes_its_files_and_resumes_where_it_was_killed(manifest, tmp_path):
    run = tmp_path / "run"
    first = train(tiny(manifest, run))
    for name in ("best.keras", "last.keras", "state.json", "history.csv", "config.json"):
        assert (run / name).is_file(), name
    assert (run / "tensorboard").is_dir()
    assert first.epochs_done == 1
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["detector"] == "md_csd" and config["md_csd_tf"]
    # The recipe's numbers are written down as used (the paper's for MD-CSD).
    assert config["config"]["base_lr"] == 2e-4 and config["config"]["stitch_lr"] == 1e-3
    assert (config["config"]["plateau_factor"], config["config"]["plateau_patience"]) == (0.2, 3)
    assert config["config"]["loss"] == "bce"

    # The frequency statistics were measured on training crops and saved in the model.
    model = load_model(run / "last.keras")
    assert not np.allclose(model.get_layer("freq_standardization").std.numpy(), 1.0)

    # Simulate a plateau cut in epoch 1 that the resumed run must keep.
    model.optimizer.learning_rate = 4e-5
    model.optimizer.stitch_learning_rate = 2e-4
    model.save(run / "last.keras")
    state = json.loads((run / "state.json").read_text())
    state["plateau"]["wait"] = 1
    (run / "state.json").write_text(json.dumps(state))
    iterations = int(model.optimizer.iterations.numpy())

    # Resume naming the manifest by its folder: the same manifest, so the run continues.
    second = train(tiny(str(Path(manifest).parent), run, epochs=2))
    assert second.epochs_done == 2
    state = json.loads((run / "state.json").read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    assert state["learning_rate"] == pytest.approx(4e-5)
    assert state["stitch_learning_rate"] == pytest.approx(2e-4)
    # The plateau callback kept counting from its saved state: one stalled epoch before the
    # kill, and epoch 2 either improved (wait 0) or stalled again (wait 2), never restarted at 1.
    assert state["plateau"]["wait"] in (0, 2)
    resumed = load_model(run / "last.keras")
    assert int(resumed.optimizer.iterations.numpy()) == iterations + 2
    assert len(pd.read_csv(run / "history.csv")) == 2

    # Asking for no more epochs than done trains nothing.
    assert train(tiny(manifest, run, epochs=2)).epochs_done == 2


def test_resuming_with_another_architecture_is_refused(manifest, tmp_path):
    train(tiny(manifest, tmp_path))
    with pytest.raises(UserError, match="different"):
        train(tiny(manifest, tmp_path, detector="md_csd_concat"))


def test_one_epoch_under_mirrored_strategy_on_two_logical_cpus(manifest, tmp_path):
    # Graph mode, as on GPUs; the first step's trace is the slow part (~30 s on 2 cores).
    result = train(
        tiny(manifest, tmp_path, strategy="mirrored", run_eagerly=False, steps_per_epoch=1)
    )
    assert result.epochs_done == 1 and np.isfinite(result.history["loss"][0])


def test_predictions_line_up_with_manifest_rows(manifest, tmp_path):
    result = train(tiny(manifest, tmp_path, detector="md_csd_rgb"))
    model = load_model(result.best_model, compile=False)
    frames = select(read_manifest(manifest), split="test")
    scored = predict_frames(model, frames, batch_size=4, verbose=0)
    assert len(scored) == len(frames) and scored["prob"].between(0, 1).all()
    # Scoring one row alone gives that row's probability: nothing is shuffled at evaluation.
    single = predict_frames(model, frames.iloc[[5]], batch_size=4, verbose=0)
    assert single["prob"].iloc[0] == pytest.approx(scored["prob"].iloc[5], abs=1e-5)


def test_mixed_precision_trains_both_groups_and_restores_the_policy(manifest, tmp_path):
    import keras

    result = train(tiny(manifest, tmp_path, mixed_precision=True, steps_per_epoch=1))
    assert result.epochs_done == 1 and np.isfinite(result.history["loss"][0])
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["stitch_learning_rate"] == pytest.approx(1e-3)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_bad_options_and_missing_crops_are_one_line_errors(manifest, tmp_path):
    with pytest.raises(UserError, match="at least 71"):
        train(tiny(manifest, tmp_path, image_size=64))
    with pytest.raises(UserError, match="weights file not found"):
        train(tiny(manifest, tmp_path, weights=str(tmp_path / "xception.h5")))
    table = pd.read_csv(manifest, dtype={"video_id": str})
    moved = tmp_path / "moved.csv"
    table.to_csv(moved, index=False)  # crop paths are relative to the manifest: now missing
    with pytest.raises(UserError, match="missing on disk"):
        train(tiny(str(moved), tmp_path / "run"))


def test_numbers_out_of_range_are_refused_with_the_accepted_range(manifest, tmp_path):
    with pytest.raises(UserError, match=r"epochs = -1: expected a positive integer"):
        train(tiny(manifest, tmp_path / "run", epochs=-1))
    with pytest.raises(UserError, match=r"base_lr = 0.0: expected a number in \(0, inf\)"):
        train(tiny(manifest, tmp_path / "run", base_lr=0.0))
    with pytest.raises(UserError, match=r"MIN <= MAX, both from 1 to 100"):
        train(tiny(manifest, tmp_path / "run", jpeg_quality=(90, 50)))
    assert not (tmp_path / "run").exists()  # refused before the run folder is made


def test_run_folder_busy_or_unwritable_is_refused_before_work(manifest, tmp_path):
    run = tmp_path / "run"
    # flock conflicts between two opens even in one process, so this stands for a second run.
    with OutputLock(run, "md-csd train"), pytest.raises(UserError) as refused:
        train(tiny(manifest, run))
    assert f"in use by md-csd train (PID {os.getpid()})" in str(refused.value)
    assert not (run / "config.json").exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"--out .*a-file/run: cannot be created, .* is a file"):
        train(tiny(manifest, blocker / "run"))


def test_md_csd_train_process_on_a_busy_run_folder_exits_2_naming_the_holder(manifest, tmp_path):
    run = tmp_path / "run"
    repo = str(Path(md_csd_tf.__file__).resolve().parent.parent)
    argv = [sys.executable, "-m", "md_csd_tf.cli", "train", "--data", manifest, "--out", str(run)]
    with OutputLock(run, "md-csd train"):
        done = subprocess.run(
            argv, env={**os.environ, "PYTHONPATH": repo}, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[-1] == (
        f"md-csd train: error: {run}: in use by md-csd train (PID {os.getpid()}); wait for it "
        "to finish or use another output folder"
    )
    assert not (run / "config.json").exists()


def test_a_corrupt_last_keras_says_how_to_go_on(manifest, tmp_path):
    run = tmp_path / "run"
    config = tiny(manifest, run, epochs=2)
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": dataclasses.asdict(config)}))
    (run / "state.json").write_text(json.dumps({"epoch": 1, "best_val_accuracy": 0.5}))
    (run / "last.keras").write_bytes(b"cut short by a full disk")
    with pytest.raises(UserError, match=r"delete last.keras and state.json .* copy best.keras"):
        train(config)


def test_a_split_with_one_class_is_a_clear_error(manifest, tmp_path):
    table = pd.read_csv(manifest, dtype={"video_id": str})
    one_class = tmp_path / "one.csv"
    table[(table["split"] != "val") | (table["label"] == 1)].to_csv(one_class, index=False)
    # The class check comes before any crop is read, so the crops need not be beside this file.
    with pytest.raises(UserError, match="only fake"):
        train(tiny(str(one_class), tmp_path / "run"))


def test_two_worker_multi_worker_mirrored_run_on_loopback():
    """Two processes, a TF_CONFIG cluster on 127.0.0.1, one short epoch; bounded by a timeout."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments" / "multiworker_smoke.py"
    spec = importlib.util.spec_from_file_location("multiworker_smoke", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--steps", "1", "--timeout", "600"]) == 0


def test_a_head_only_stage_leaves_the_backbone_and_the_next_stage_trains_it(
    manifest, tmp_path, monkeypatch
):
    from md_csd_tf.models import registry

    entry = registry.get_entry("xception")
    assert entry.recipe.schedule(1) == (registry.Stage(1, "head"),)
    assert entry.recipe.schedule(5) == (registry.Stage(3, "head"), registry.Stage(2, "all"))
    assert sum(s.epochs for s in entry.recipe.schedule()) == 18  # FF++: 3 head + 15 all
    short = dataclasses.replace(
        entry.recipe, stages=(registry.Stage(1, "head"), registry.Stage(1, "all"))
    )
    monkeypatch.setitem(registry._REGISTRY, "xception", dataclasses.replace(entry, recipe=short))
    run = tmp_path / "run"
    config = tiny(manifest, run, detector="xception", epochs=None, middle_blocks=None)

    def backbone(path):
        return [w.copy() for w in load_model(path).get_layer("xception").get_weights()]

    keras.utils.set_random_seed(config.seed)
    initial = entry.build(image_size=71, weights=None).get_layer("xception").get_weights()
    train(dataclasses.replace(config, epochs=1))  # the head-only stage
    after_head = backbone(run / "last.keras")
    assert all(np.array_equal(a, b) for a, b in zip(initial, after_head, strict=True))
    train(config)  # resumes into the second stage: everything trains
    after_all = backbone(run / "last.keras")
    assert not all(np.array_equal(a, b) for a, b in zip(after_head, after_all, strict=True))


def test_resuming_a_head_only_stage_keeps_adams_moments(manifest, tmp_path, monkeypatch):
    """A run killed inside the head-only stage resumes that stage with the optimizer state it
    saved (step counter, rates and Adam's moments of the head), not a fresh Adam. (Keras loads
    the subclassed model with every layer trainable and skips the head-only state.)"""
    from md_csd_tf.models import registry

    entry = registry.get_entry("xception")
    head_only = dataclasses.replace(entry.recipe, stages=(registry.Stage(2, "head"),))
    monkeypatch.setitem(
        registry._REGISTRY, "xception", dataclasses.replace(entry, recipe=head_only)
    )
    run = tmp_path / "run"
    config = tiny(manifest, run, detector="xception", epochs=1, middle_blocks=None)
    seen = []
    real_fit = keras.Model.fit

    def fit(model, *args, **kwargs):  # the optimizer's variables as fit starts and ends
        seen.append([v.numpy().copy() for v in model.optimizer.variables])
        history = real_fit(model, *args, **kwargs)
        seen.append([v.numpy().copy() for v in model.optimizer.variables])
        return history

    monkeypatch.setattr(keras.Model, "fit", fit)
    train(config)
    train(dataclasses.replace(config, epochs=2))  # resumes the same head-only stage
    after_first, resumed = seen[1], seen[2]
    assert int(resumed[0]) == 2  # the step counter: epoch 1's two steps, not 0
    assert len(resumed) == len(after_first)  # built for the head's variables, as saved
    assert any(np.abs(v).sum() > 0 for v in resumed[2:])  # moments, not fresh zeros
    for saved, restored in zip(after_first, resumed, strict=True):
        np.testing.assert_array_equal(saved, restored)
    assert int(seen[3][0]) == 4


def test_a_run_folder_from_before_model_options_resumes(manifest, tmp_path):
    """config.json written before `model_options` (MD-CSD's options as TrainConfig fields, the
    format below) resumes; changing one of those options is still refused."""
    run = tmp_path / "run"
    config = tiny(manifest, run)
    train(config)
    stored = json.loads((run / "config.json").read_text())
    assert stored["config"]["model_options"] == {"middle_blocks": 0}
    old = {k: v for k, v in stored["config"].items() if k != "model_options"}
    old.update(transform=None, middle_blocks=0, head=None, bn_momentum=None,
               spectrum_in_model=None, clip_frames=None)  # fmt: skip
    stored["config"] = old
    stored.pop("run_hash")
    (run / "config.json").write_text(json.dumps(stored))
    with pytest.raises(UserError, match="different model_options"):
        train(dataclasses.replace(config, epochs=2, middle_blocks=1))
    assert train(dataclasses.replace(config, epochs=2)).epochs_done == 2


def test_a_recipe_step_decay_trains_saves_and_resumes(manifest, tmp_path, monkeypatch):
    """A recipe's `StepDecay` (MesoNet's) compiles as a Keras schedule that last.keras keeps."""
    from md_csd_tf.models import registry

    entry = registry.get_entry("meso4")
    fast = dataclasses.replace(entry.recipe, lr_schedule=registry.StepDecay(1, 0.5, 1e-4))
    monkeypatch.setitem(registry._REGISTRY, "meso4", dataclasses.replace(entry, recipe=fast))
    run = tmp_path / "run"
    config = tiny(manifest, run, detector="meso4", image_size=32, middle_blocks=None)
    train(config)
    state = json.loads((run / "state.json").read_text())
    assert state["learning_rate"] == pytest.approx(1e-3 * 0.5**2)  # after two steps
    train(dataclasses.replace(config, epochs=2))
    state = json.loads((run / "state.json").read_text())
    assert state["learning_rate"] == pytest.approx(1e-4)  # the floor, after four steps
