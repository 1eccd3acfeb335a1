"""The one trainer: manifest in, `best.keras` out, following the paper's recipe (Sec. II.C).

A run folder holds everything a person or a resumed run needs:

    config.json         the TrainConfig and the package/TensorFlow versions
    best.keras          the model with the best validation accuracy so far (paper: "the model
                        with the highest validation accuracy is used for testing")
    last.keras          the latest epoch's model with its optimizer state (both learning rates)
    state.json          epoch counter, plateau-callback state and best validation accuracy
    history.csv         per-epoch losses and metrics;  tensorboard/  TensorBoard logs

Killed at any point, a run started again with the same folder continues after the last
finished epoch: files are written to a unique temporary name and renamed, so none is ever
half-written. One run per folder: the chief holds an OS lock on `.md-csd.lock` for the whole run,
and a second `md-csd train` on the same folder is refused with the holder's PID.

This module is the loop and its stages; what a run is lives in `training.config` (TrainConfig
and its checks) and `training.plan` (the resolved RunPlan), the run folder's files in
`training.run_folder`.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from md_csd_tf._version import __version__
from md_csd_tf.data.clips import make_model_dataset, model_steps_per_epoch
from md_csd_tf.data.manifest import check_crops_exist, read_crop_settings, read_manifest, select
from md_csd_tf.data.pipeline import frequency_statistics
from md_csd_tf.data.pseudo_fakes import (
    make_training_dataset,
    training_steps,
    uses_dataset_fakes,
)
from md_csd_tf.errors import UserError
from md_csd_tf.files import OutputLock, atomic_write_json, check_writable
from md_csd_tf.keras_compat import apply_multi_worker_fixes
from md_csd_tf.mixed_precision import policy_name
from md_csd_tf.models.registry import Stage, get_entry, set_batchnorm_momentum
from md_csd_tf.models.saving import (
    get_metadata,
    load_model,
    read_metadata,
    set_metadata,
    write_metadata,
)
from md_csd_tf.optimizers import StepDecaySchedule
from md_csd_tf.prep.landmarks import read_landmarks
from md_csd_tf.training.callbacks import ReduceBothLROnPlateau, TimeBudget
from md_csd_tf.training.compile import compile_detector
from md_csd_tf.training.config import TrainConfig, check_config
from md_csd_tf.training.plan import RunPlan
from md_csd_tf.training.run_folder import RunCheckpoint, load_last, prepare_run_dir
from md_csd_tf.training.strategy import is_chief, make_strategy


@dataclasses.dataclass(frozen=True)
class TrainResult:
    out_dir: str
    best_model: str
    last_model: str
    epochs_done: int
    best_val_accuracy: float
    history: dict


def _load_frames(config: TrainConfig):
    table = read_manifest(config.manifest)
    common = dict(
        dataset=config.dataset,
        compression=config.compression,
        methods=config.methods,
        max_frames_per_video=config.max_frames_per_video,
    )
    train = select(table, split="train", **common)
    val = select(table, split="val", **common)
    checked = (("train", train), ("val", val))
    if not uses_dataset_fakes(config.fakes):  # pseudo-fakes only: the dataset's are not read
        train = train[train["label"] == 0].reset_index(drop=True)
        checked = checked[1:]
    for name, frames in checked:
        if frames["label"].nunique() < 2:
            raise UserError(
                f"{config.manifest}: the {name} split has only {'fake' if frames['label'].iloc[0] else 'real'} "
                "crops; training needs both classes."
            )
    return train, val


def _crop_size(frames, crops: dict | None) -> int | None:
    """Side of the training crops: predict cuts faces at this size later. From prepare's crop
    settings; a manifest without them (crops not cut by prepare) has one crop read."""
    if crops and crops.get("image_size"):
        return int(crops["image_size"])
    import cv2

    image = cv2.imread(frames["abs_path"].iloc[0], cv2.IMREAD_UNCHANGED)
    return None if image is None else int(image.shape[0])


def calibrate(path: Path, frames: pd.DataFrame, config: TrainConfig, epoch=None) -> dict:
    """Chooses the decision threshold of the model at `path` on `frames` (the validation split)
    by `config.threshold_rule` and stores it in the file's metadata (`models.saving`), where
    `md-csd predict` and `Detector` read it. Done once per best epoch: a finished run started
    again finds its threshold there.

    Returns:
        The metadata written: `threshold`, `threshold_rule` (and `threshold_fpr`),
        `threshold_split`, `threshold_frames`, `threshold_epoch`, `val_auc`.
    """
    from md_csd_tf.evaluation.evaluate import predict_frames
    from md_csd_tf.evaluation.metrics import calibrate_threshold, frame_metrics

    rule = config.threshold_rule or "eer"
    fpr = config.threshold_fpr if config.threshold_fpr is not None else 0.05
    metadata = read_metadata(path)
    wanted = {"threshold_rule": rule, "threshold_epoch": epoch}
    if rule == "fpr":
        wanted["threshold_fpr"] = fpr
    if "threshold" in metadata and all(metadata.get(k) == v for k, v in wanted.items()):
        return metadata
    model = load_model(path, compile=False)
    scored = predict_frames(model, frames, config.batch_size, verbose=0)
    metadata.update(
        threshold=calibrate_threshold(scored["label"], scored["prob"], rule, fpr),
        threshold_split="val",
        threshold_frames=len(scored),
        val_auc=frame_metrics(scored["label"], scored["prob"])["auc"],
        **wanted,
    )
    write_metadata(path, metadata)
    return metadata


def train(config: TrainConfig) -> TrainResult:
    """Trains (or resumes) one run; see the module docstring for what it writes.

    Raises:
        UserError: bad settings, an unwritable or busy run folder, or unusable data.
    """
    plan = RunPlan.resolve(config)  # recipe, profile, settings and model options, once
    config = plan.config
    check_config(config)
    if config.ensemble > 1:
        return _train_ensemble(config)
    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy_name(config.mixed_precision))
    try:
        if not is_chief():  # only the chief writes the run folder (see RunCheckpoint)
            return _train(plan)
        check_writable(config.out_dir, "folder", "--out")
        with OutputLock(config.out_dir, "md-csd train"):
            return _train(plan)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def _train_ensemble(config: TrainConfig) -> TrainResult:
    """K members, each one run of this trainer on its chunk, and their vote as best.keras.

    The published scheme (Kumar & Bhavsar): the larger class is dealt into K chunks and every
    chunk also holds all videos of the smaller one, so each member trains on balanced videos.
    """
    from md_csd_tf.training.ensemble import train_ensemble

    if not is_chief():
        raise UserError("ensembles train one member after another: run them on one machine")
    check_writable(config.out_dir, "folder", "--out")
    with OutputLock(config.out_dir, "md-csd train (ensemble)"):
        result = train_ensemble(
            dataclasses.replace(config, ensemble=1), train, k=config.ensemble, share_minority=True
        )
    members = result.members
    return TrainResult(
        out_dir=result.out_dir,
        best_model=result.best_model,
        last_model=result.best_model,
        epochs_done=min(m.epochs_done for m in members),
        best_val_accuracy=float(np.mean([m.best_val_accuracy for m in members])),
        history={},
    )


def _freeze_for(model, stage: Stage, detector: str) -> None:
    if stage.trainable != "all" and not model.can_freeze_backbone:
        raise UserError(f"{detector}: a head-only stage needs model.freeze_backbone")
    model.freeze_backbone(stage.trainable == "head")


def _compile(model, plan: RunPlan, strategy) -> None:
    """Compiles for the plan: its loss, its rates (a `StepDecay` of the recipe as a schedule)."""
    config = plan.config
    rate = config.base_lr
    if plan.lr_schedule is not None:
        schedule = plan.lr_schedule
        rate = StepDecaySchedule(rate, schedule.every_steps, schedule.factor, schedule.floor)
    with strategy.scope():
        compile_detector(model, config.loss, rate, config.stitch_lr, config.jit_compile)


def _restore_stage(model, path: Path, plan: RunPlan, epoch: int, strategy) -> None:
    """Puts a model loaded from last.keras back in the stage its epoch `epoch` trained in.

    A subclassed model's config does not hold which layers were frozen, so Keras loads it with
    every layer trainable, builds the optimizer for all of them and skips the saved state of a
    head-only stage ("Skipping variable loading for optimizer": its variable count differs);
    compiling for the head then started Adam afresh, moments and step counter. Here the stage
    is set first, the optimizer built for its layers and the file's state read into it.
    """
    done = 0
    for stage in plan.stages:
        done += stage.epochs
        if epoch <= done:
            break
    if stage.trainable == "all":
        return  # the layers Keras loaded trainable are the stage's: the state was restored
    _freeze_for(model, stage, plan.config.detector)
    _compile(model, plan, strategy)
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)
    model.load_weights(path)  # the weights again and, now that they fit, the optimizer's


def _enter_stage(model, stage: Stage, plan: RunPlan, strategy, keep: bool) -> None:
    """Sets the layers a stage trains and compiles for it (a stage change needs a new compile
    in Keras: the optimizer's variable list is fixed then). A model resumed from last.keras
    (`keep`, after `_restore_stage`) keeps its restored optimizer state when its trainable
    layers stay as they were."""
    config = plan.config
    before = len(model.trainable_weights)
    _freeze_for(model, stage, config.detector)
    changed = len(model.trainable_weights) != before
    if not keep or changed or getattr(model, "optimizer", None) is None:
        _compile(model, plan, strategy)
    model.run_eagerly = config.run_eagerly


def _train(plan: RunPlan) -> TrainResult:
    config = plan.config
    out, resumed = prepare_run_dir(plan)
    # A resumed run continues the data stream instead of replaying epoch 1's order.
    epoch_offset = resumed["epoch"] if resumed else 0
    keras.utils.set_random_seed(config.seed + epoch_offset)
    train_frames, val_frames = _load_frames(config)
    check_crops_exist(pd.concat([train_frames, val_frames]), config.manifest)
    landmarks = None
    if config.fakes != "dataset":  # read before the model is built: a missing file is one line
        reals = train_frames[train_frames["label"] == 0]
        landmarks = read_landmarks(config.manifest, reals["path"])
    write = is_chief()
    if write and resumed is None:
        atomic_write_json(
            out / "config.json",
            {
                "config": dataclasses.asdict(config),
                "run_hash": plan.digest,  # of what must match to resume (`training.plan`)
                "md_csd_tf": __version__,
                "tensorflow": tf.__version__,
                "keras": keras.__version__,
                "train_frames": len(train_frames),
                "val_frames": len(val_frames),
            },
        )

    # How prepare cut the crops travels in the model (metadata "crops"): predict cuts faces so.
    crops = read_crop_settings(config.manifest)
    strategy = make_strategy(config.strategy)
    with strategy.scope():
        if resumed is not None:
            with warnings.catch_warnings():  # a head-only stage's state: see _restore_stage
                warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
                model = load_last(out / "last.keras")
            # The stage last.keras was saved in, with the optimizer state of its layers.
            _restore_stage(model, out / "last.keras", plan, resumed["epoch"], strategy)
        else:
            model = get_entry(config.detector).build(
                image_size=config.image_size,
                weights=config.weights,
                crop_size=_crop_size(train_frames, crops),
                **plan.builder_options,
            )
            if "freq" in model.branches:
                mean, std = frequency_statistics(
                    train_frames,
                    model.image_size,
                    model.transform,
                    config.freq_stat_samples,
                    config.seed,
                )
                model.set_frequency_statistics(mean, std)
        if plan.bn_momentum is not None:  # a detector whose builder has no such option
            set_batchnorm_momentum(model, plan.bn_momentum)  # also after a resume: a
            # subclassed model's BatchNorm layers are rebuilt with their builder's default
        apply_multi_worker_fixes(model, strategy)
    if crops:  # saved with every best.keras and last.keras (`save_model`)
        set_metadata(model, {**get_metadata(model), "crops": crops})

    pipeline = dataclasses.replace(config.pipeline(model), seed=config.seed + epoch_offset)
    # A clip detector reads clips of T consecutive crops of one video (`make_model_dataset`).
    if pipeline.clip_frames and config.fakes != "dataset":
        raise UserError(f"--fakes {config.fakes}: {config.detector} reads clips; use dataset")
    val_data = make_model_dataset(val_frames, pipeline, training=False)
    if config.fakes == "dataset":
        train_data = make_model_dataset(train_frames, pipeline, training=True)
        steps = config.steps_per_epoch or model_steps_per_epoch(train_frames, pipeline)
    else:
        train_data = make_training_dataset(train_frames, pipeline, config.fakes, landmarks)
        steps = config.steps_per_epoch or training_steps(train_frames, pipeline, config.fakes)

    state = resumed or {"epoch": 0, "best_val_accuracy": -math.inf, "best_epoch": 0, "history": []}
    plateau = None
    if config.plateau_factor is not None:
        plateau = ReduceBothLROnPlateau(
            factor=config.plateau_factor, patience=config.plateau_patience, verbose=config.verbose
        )
        plateau.set_state(state.get("plateau", {}))
    budget = TimeBudget(config.time_budget) if config.time_budget else None
    callbacks = [
        *([plateau] if plateau else []),
        RunCheckpoint(out, plateau, state, write, config.selection_metric),
        *([budget] if budget else []),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=resumed is not None),
    ]
    if write:
        callbacks.append(keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False))
    if state["epoch"] >= config.epochs and config.verbose:
        print(f"{out}: already trained for {state['epoch']} epochs; nothing to do.")
    start = time.perf_counter()
    end = 0
    for stage in plan.stages:
        end += stage.epochs
        if state["epoch"] >= end:
            continue
        _enter_stage(model, stage, plan, strategy, keep=resumed is not None)
        resumed = None  # a later stage compiles for its own trainable layers
        model.fit(
            train_data,
            epochs=end,
            initial_epoch=state["epoch"],
            steps_per_epoch=steps,
            validation_data=val_data,
            validation_steps=config.validation_steps,
            shuffle=False,  # the pipeline shuffles; Keras cannot shuffle a tf.data.Dataset
            callbacks=callbacks,
            verbose=config.verbose,
        )
    if write and (out / "best.keras").is_file():
        calibration = calibrate(out / "best.keras", val_frames, config, state.get("best_epoch"))
        if config.verbose:
            print(
                f"Decision threshold {calibration['threshold']:.4f} ({calibration['threshold_rule']} "
                f"on {calibration['threshold_frames']} validation crops), stored in best.keras."
            )
    if config.verbose:
        print(
            f"Trained {state['epoch']} epochs in {time.perf_counter() - start:.0f} s; kept epoch "
            f"{state.get('best_epoch')} (best {state.get('selected_by', 'val_accuracy')} "
            f"{state.get('best_selected', state['best_val_accuracy']):.4f}; its val accuracy "
            f"{state['best_val_accuracy']:.4f}).\n"
            f"  best model: {out / 'best.keras'}\n  last state: {out / 'last.keras'}\n"
            f"  logs: {out / 'history.csv'}, {out / 'tensorboard'}"
        )
    return TrainResult(
        out_dir=str(out),
        best_model=str(out / "best.keras"),
        last_model=str(out / "last.keras"),
        epochs_done=int(state["epoch"]),
        best_val_accuracy=float(state["best_val_accuracy"]),
        history={
            k: [h.get(k) for h in state["history"]]
            for k in (state["history"][0] if state["history"] else {})
        },
    )
