"""The run plan and model options: `--model-option` checked against the detector's declared
options, the former flags as shorthands, what a resume may change declared per field, folder
names and old run folders kept, a recipe's step decay as data. No training: seconds."""

import argparse
import dataclasses
import json

import pytest

from md_csd_tf.commands import train as train_command
from md_csd_tf.errors import UserError
from md_csd_tf.models import registry
from md_csd_tf.training.config import RESUMABLE_CHANGES, TrainConfig
from md_csd_tf.training.plan import RunPlan, parse_model_options


def _train_args(*flags):
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    return parser.parse_args(["--data", "m.csv", "--out", "run", *flags])


def test_model_option_flag_is_checked_against_the_detector():
    config = train_command.config_from_args(
        _train_args("--model-option", "middle_blocks=0", "--model-option", "head=pooled")
    )
    assert config.model_options == {"middle_blocks": 0, "head": "pooled"}
    # The former flags are shorthands: the same options, the same config.
    short = train_command.config_from_args(_train_args("--middle-blocks", "0", "--head", "pooled"))
    assert short == config
    assert train_command.config_from_args(_train_args("--spectrum-in-model")).model_options == {
        "spectrum_in_model": True
    }
    with pytest.raises(UserError, match=r"md_csd has no model option 'depth'; its options: tran"):
        train_command.config_from_args(_train_args("--model-option", "depth=3"))
    with pytest.raises(UserError, match=r"middle_blocks=9: expected an integer from 0 to 8"):
        train_command.config_from_args(_train_args("--model-option", "middle_blocks=9"))
    with pytest.raises(UserError, match=r"clip_frames=1: expected an integer >= 2"):
        train_command.config_from_args(
            _train_args("--detector", "dual_level", "--model-option", "clip_frames=1")
        )
    with pytest.raises(UserError, match="expected NAME=VALUE"):
        train_command.config_from_args(_train_args("--model-option", "middle_blocks"))
    with pytest.raises(UserError, match="also given as 0"):
        train_command.config_from_args(
            _train_args("--middle-blocks", "0", "--model-option", "middle_blocks=2")
        )
    # An experiment script running several detectors parses by the detector that declares it.
    assert parse_model_options(["clip_frames=4"]) == {"clip_frames": 4}


def test_the_former_fields_are_keyword_shorthands_for_model_options():
    config = TrainConfig("m.csv", "run", middle_blocks=0, bn_momentum=0.9)
    assert config.model_options == {"middle_blocks": 0, "bn_momentum": 0.9}
    assert "middle_blocks" not in {f.name for f in dataclasses.fields(TrainConfig)}
    assert dataclasses.replace(config, middle_blocks=2).model_options == {
        "middle_blocks": 2, "bn_momentum": 0.9
    }  # fmt: skip
    assert dataclasses.replace(config, epochs=3).model_options == config.model_options


def test_the_plan_resolves_the_recipe_and_splits_builder_and_common_options(capsys):
    plan = RunPlan.resolve(TrainConfig("m.csv", "run", middle_blocks=0, bn_momentum=0.9))
    assert plan.config.base_lr == 2e-4 and plan.config.epochs == 20  # MD-CSD's recipe
    assert plan.builder_options == {"middle_blocks": 0, "bn_momentum": 0.9}
    assert plan.bn_momentum is None  # MD-CSD's builder takes it
    xception = RunPlan.resolve(
        TrainConfig("m.csv", "run", detector="xception", middle_blocks=0, bn_momentum=0.9)
    )
    assert "has no option middle_blocks; ignored" in capsys.readouterr().out  # as before
    assert xception.builder_options == {} and xception.bn_momentum == 0.9
    assert [s.trainable for s in xception.stages] == ["head", "all"]
    with pytest.raises(UserError, match="xception has no model option depth"):
        RunPlan.resolve(
            TrainConfig("m.csv", "run", detector="xception", model_options={"depth": 1})
        )
    with pytest.raises(UserError, match=r"bn_momentum=1.5: expected a number in \[0.0, 1.0\)"):
        RunPlan.resolve(TrainConfig("m.csv", "run", bn_momentum=1.5))


def test_what_a_resume_may_change_is_declared_on_the_fields():
    before = {  # the hand-kept set this declaration replaced
        "epochs", "verbose", "run_eagerly", "strategy", "out_dir", "steps_per_epoch",
        "validation_steps", "weights", "freq_stat_samples", "jit_compile", "time_budget",
    }  # fmt: skip
    assert before == RESUMABLE_CHANGES
    plan = RunPlan.resolve(TrainConfig("m.csv", "run", middle_blocks=0), verbose=False)
    assert "epochs" not in plan.identity() and "model_options" in plan.identity()
    longer = RunPlan.resolve(TrainConfig("m.csv", "run2", middle_blocks=0, epochs=40))
    assert longer.digest == plan.digest
    other = RunPlan.resolve(TrainConfig("m.csv", "run", middle_blocks=1), verbose=False)
    assert other.digest != plan.digest


def test_a_config_json_from_before_model_options_is_read_as_the_same_run(tmp_path):
    """config.json as the code before `model_options` wrote it (options as fields)."""
    manifest = tmp_path / "manifest.csv"
    old = {
        "manifest": str(manifest), "out_dir": str(tmp_path / "run"), "dataset": "ffpp",
        "compression": "c23", "methods": None, "detector": "md_csd", "transform": None,
        "image_size": 71, "middle_blocks": 0, "head": None, "weights": None,
        "bn_momentum": None, "spectrum_in_model": None, "clip_frames": None, "epochs": 1,
        "batch_size": 4, "base_lr": 0.0002, "stitch_lr": 0.001, "loss": "bce", "ensemble": 1,
        "plateau_factor": 0.2, "plateau_patience": 3, "steps_per_epoch": 1,
        "validation_steps": None, "max_frames_per_video": None, "freq_stat_samples": 8,
        "flip": False, "jpeg_quality": None, "blur_probability": 0.0, "balance": True,
        "strategy": "auto", "mixed_precision": False, "jit_compile": False,
        "run_eagerly": True, "seed": 0, "verbose": 0, "fakes": "dataset", "pair_augment": None,
        "select_by": None, "threshold_rule": None, "threshold_fpr": None, "time_budget": None,
        "shuffle_labels": None,
    }  # fmt: skip
    stored = json.loads(json.dumps(old))
    now = TrainConfig(str(manifest), str(tmp_path / "run"), image_size=71, weights=None,
                      batch_size=4, epochs=3, run_eagerly=True, middle_blocks=0)  # fmt: skip
    assert RunPlan.resolve(now).changed_from(stored) == []
    changed = dataclasses.replace(now, head="pooled")
    assert RunPlan.resolve(changed).changed_from(stored) == ["model_options"]


def test_folder_names_of_the_paper_runs_are_unchanged():
    """`Run.folder_name` hashes the plan's folder identity, model options flattened as the
    former fields were: these names are what the code before `model_options` gave."""
    from md_csd_tf.workflows import paper_configs as configs

    assert configs.Run().folder_name(configs.PAPER.settings) == "ff_c23_all_md_csd_dct-7da605"
    assert configs.Run(detector="xception").folder_name(
        {**configs.SMOKE.settings, "head": "pooled", "clip_frames": 4}
    ) == "ff_c23_all_xception-1755ea"  # fmt: skip
    demo = configs.Run("c40", "Deepfakes", "md_csd_rgb").folder_name(configs.DEMO.settings)
    assert demo == "ff_c40_Deepfakes_md_csd_rgb_dct-2ddc67"


def test_a_recipe_step_decay_is_data_and_compiles_as_a_keras_schedule():
    from md_csd_tf.optimizers import StepDecaySchedule

    decay = registry.StepDecay(1000, 0.1, 1e-6)
    assert [decay.rate(1e-3, s) for s in (0, 999, 1000, 2500, 10_000)] == pytest.approx(
        [1e-3, 1e-3, 1e-4, 1e-5, 1e-6]
    )
    schedule = StepDecaySchedule(1e-3, 1000, 0.1, 1e-6)
    assert [float(schedule(s)) for s in (0, 1000, 2500, 10_000)] == pytest.approx(
        [1e-3, 1e-4, 1e-5, 1e-6]
    )
    assert StepDecaySchedule.from_config(schedule.get_config()).get_config() == (
        schedule.get_config()
    )
    with pytest.raises(ValueError):
        registry.StepDecay(1000, 1.5)


def test_a_pretraining_candidates_model_options_reach_its_train_config(tmp_path):
    from md_csd_tf.configs.pretrain_sbi import get_config
    from md_csd_tf.pretraining import train_config

    pretrain = get_config(detector="md_csd_rgb", model_options={"middle_blocks": 0})
    config = train_config(pretrain, tmp_path / "manifest.csv", tmp_path)
    assert config.model_options == {"middle_blocks": 0, "bn_momentum": 0.9}


def test_mesonets_step_decay_is_in_its_recipe_and_old_runs_keep_their_constant_rate(tmp_path):
    """MesoNet's paper divides 1e-3 by 10 every 1000 iterations down to 1e-6 (Sec. 3): its
    recipe says so; a run folder from before recipes had schedules trained at a constant rate,
    so it resumes only as such (`constant_lr`, which the shipped model's config keeps)."""
    assert registry.get_entry("meso4").recipe.lr_schedule == registry.StepDecay(1000, 0.1, 1e-6)
    config = TrainConfig(str(tmp_path / "m.csv"), str(tmp_path / "run"), detector="meso4")
    assert RunPlan.resolve(config).lr_schedule == registry.StepDecay(1000, 0.1, 1e-6)
    constant = dataclasses.replace(config, constant_lr=True)
    assert RunPlan.resolve(constant).lr_schedule is None
    # Every other recipe has no schedule: the field stays unset, folder names unchanged.
    assert RunPlan.resolve(TrainConfig("m.csv", "run")).config.constant_lr is None
    old = {k: v for k, v in dataclasses.asdict(config).items() if k != "constant_lr"}
    assert RunPlan.resolve(config).changed_from(old) == ["constant_lr"]
    assert RunPlan.resolve(constant).changed_from(old) == []
    from md_csd_tf.configs.pretrain_sbi import get_config
    from md_csd_tf.pretraining import train_config

    assert train_config(get_config(), tmp_path / "m.csv", tmp_path).constant_lr is True


def test_each_paper_table_is_one_config_file_quoting_the_papers_numbers():
    """configs/table1.py ... table6.py: the docstring gives the command and the paper's numbers
    (checked against `md_csd_tf.paper`); the tables workflow reads the cells from them."""
    import importlib

    from md_csd_tf.workflows import paper_configs

    names = []
    for name in paper_configs.TABLE_CONFIGS:
        config = importlib.import_module(f"md_csd_tf.configs.{name}")
        assert "python experiments/" in config.__doc__
        for cell in config.get_config():
            names.append(cell["name"])
            for value in cell["paper"].values():
                assert str(value) in config.__doc__, (name, cell["name"], value)
    assert names == list(paper_configs.EXPERIMENTS)  # every experiment, in the paper's order
    assert len(names) == 20 and names[0] == "table1_c23_Deepfakes" and names[-1] == "table6_dct"
    cell = paper_configs.EXPERIMENTS["table5_concat"]
    assert cell.run == paper_configs.Run("c23", detector="md_csd_concat")
    assert dict(cell.paper) == {"auc": 0.9789} and cell.table == "V"
    assert paper_configs.EXPERIMENTS["table6_fft"].run.transform == "fft"


def test_md_csd_train_reports_a_bad_model_option_in_one_line(tmp_path, capsys):
    from md_csd_tf import cli

    argv = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "run")]
    assert cli.main([*argv, "--model-option", "depth=3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("md-csd train: error: --model-option depth=3:")
    assert "its options: transform, middle_blocks, head, bn_momentum, spectrum_in_model" in err[0]
    assert cli.main([*argv, "--detector", "xception", "--model-option", "bn_momentum=2"]) == 2
    assert "expected a number in [0.0, 1.0)" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before any work
