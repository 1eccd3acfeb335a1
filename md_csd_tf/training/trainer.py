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
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from md_csd_tf._version import __version__
from md_csd_tf.data.clips import make_model_dataset, model_steps_per_epoch
from md_csd_tf.data.manifest import check_crops_exist, read_crop_settings, read_manifest, select
from md_csd_tf.data.pipeline import PipelineConfig, frequency_statistics
from md_csd_tf.data.pseudo_fakes import (
    make_training_dataset,
    parse_fakes,
    training_steps,
    uses_dataset_fakes,
)
from md_csd_tf.errors import UserError
from md_csd_tf.files import OutputLock, atomic_write_json, check_writable
from md_csd_tf.keras_compat import apply_multi_worker_fixes
from md_csd_tf.models.registry import Stage, get_entry, set_batchnorm_momentum
from md_csd_tf.models.saving import (
    get_metadata,
    load_model,
    read_metadata,
    save_model,
    set_metadata,
    write_metadata,
)
from md_csd_tf.optimizers import StepDecaySchedule, unwrap_optimizer
from md_csd_tf.prep.landmarks import read_landmarks
from md_csd_tf.training.callbacks import ReduceBothLROnPlateau
from md_csd_tf.training.compile import LOSSES, compile_detector
from md_csd_tf.training.plan import DATA, FRESH, HOW, SHORTHANDS, RunPlan, resumable, setting
from md_csd_tf.training.precision import policy_name
from md_csd_tf.training.strategy import is_chief, make_strategy


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run of one registered detector. Change with `replace`.

    Fields left at None take the detector's published recipe (`md_csd_tf.models.registry`):
    for MD-CSD, the paper's (Sec. II.C, III.A).

    Attributes:
        manifest: manifest.csv written by `md-csd prepare`.
        out_dir: the run folder (created; an existing one is resumed).
        dataset / compression / methods: which crops to train on; `methods=None` takes every
            manipulation in the manifest plus all reals. The paper's "all" is FF++'s four
            methods, which `workflows.tables.run_ff` passes explicitly (newer FF++ adds FaceShifter).
        detector: a registered detector (`md-csd detectors`): "md_csd" or a Table V variant
            ("md_csd_rgb", ...), or a comparator.
        model_options: the detector's own builder options, as its registry entry declares
            them (`registry.Option`, listed by `md-csd detectors`; `--model-option k=v`):
            MD-CSD's transform, middle_blocks, head, bn_momentum and spectrum_in_model,
            dual_level's clip_frames. Unset ones take the builder's defaults. `bn_momentum` is
            taken by every detector: without a builder option, it is set on every BatchNorm
            layer of the built model (`set_batchnorm_momentum`). The former fields
            transform / middle_blocks / head / bn_momentum / spectrum_in_model / clip_frames
            are still accepted as keyword arguments (shorthands that land here); a detector
            without such an option ignores it with a note.
        image_size: input side (None: the recipe's).
        weights: backbone initialisation: "published" (what the detector's publication trains
            from: ImageNet for MD-CSD's RGB branch and the Xception/VGG/EfficientNet
            comparators, random for MesoNet), "imagenet", None (random), a file, or a
            published weights name of the detector.
        epochs: epochs in total (None: the recipe's; MD-CSD's 20 is ours, the paper gives
            none). A recipe's stages (head only, then all) are cut or extended to it, the
            head-only stage first (`Recipe.schedule`).
        batch_size: global batch (None: the recipe's; 32 in the paper).
        base_lr / stitch_lr: the recipe's learning rate and second rate (MD-CSD's stitches).
        loss: None (the recipe's) or a loss name to train with instead ("bce", "mse", "auc").
        ensemble: K models on K balanced chunks of the training videos, scored by their vote
            (`training.ensemble`); None: the recipe's (1 for all but `xception_metric`).
        plateau_factor / plateau_patience: the learning-rate cut on a val-loss plateau (None:
            the recipe's; MD-CSD: x0.2 after 3 epochs).
        constant_lr: True: keep `base_lr` for the whole run, without the recipe's step decay
            (`Recipe.lr_schedule`, MesoNet's); how md-csd-tf trained MesoNet before recipes had
            schedules, and how the shipped md-csd-sbi was trained. None: the recipe's.
        steps_per_epoch / validation_steps: cap batches per epoch (None: a full pass).
        max_frames_per_video: use only the first N frames of each video (quick runs).
        freq_stat_samples: crops sampled to measure the frequency-input statistics.
        flip / jpeg_quality / blur_probability / balance: see `PipelineConfig`. The paper
            describes no augmentation, so all are off by default (`balance` is its frame
            balancing, on).
        strategy: "auto", "default", "mirrored" or "multi_worker" (`make_strategy`).
        mixed_precision: compute dtype policy, "float16" (or True) or "bfloat16", with float32
            weights (`md_csd_tf.training.precision`); False: float32.
        jit_compile: compile the train and predict steps with XLA (GPUs/TPUs; slow to compile
            on a CPU).
        run_eagerly: skip graph tracing (useful on CPU for tiny runs and debugging).
        seed: seeds Python, NumPy, TensorFlow and the pipeline.
        fakes: where training fakes come from (`data.pseudo_fakes`): "dataset" (the paper),
            "sbi", "fwa" or "xray" (pseudo-fakes made on the fly from the real training frames;
            the dataset's fakes are not read), or a mix such as "dataset+sbi". Validation keeps
            the dataset's fakes.
        pair_augment: with pseudo-fakes, degrade each (real, pseudo-fake) pair alike (blur,
            down-and-up scaling, sensor noise, JPEG; `data.blend.degrade_pair`) so image quality
            carries no label (None: off; the generators' papers use JPEG only).
        select_by: the validation metric that picks `best.keras`: "accuracy" (None, the
            paper's "highest validation accuracy") or "auc" (frame-level ROC AUC: no threshold,
            so a first epoch that calls everything fake cannot win on a validation set with
            more fakes than reals).
        threshold_rule: how the decision threshold stored in `best.keras` is chosen on the
            validation split after training (`metrics.calibrate_threshold`): "eer" (None, the
            equal-error point) or "fpr" (at most `threshold_fpr` of real validation frames
            called fake).
        threshold_fpr: the false-positive rate of the "fpr" rule (None: 0.05).
        shuffle_labels: the shuffled-label control of pseudo-fake training (`PipelineConfig`);
            None: off.
        time_budget: stop after the first epoch that brings this process's training time
            (CPU seconds of all its threads, pipeline included, validation excluded) to this
            many seconds (None: no limit); for comparing candidates at equal cost, whatever
            else the machine runs. How long, not what: a resumed run may change it.
    """

    # Each field's `role` says what it is to a run folder (`training.plan`): DEFINES (the
    # default) must match to resume; FRESH only shapes a fresh model; HOW only says how long or
    # how a run is executed. Both of the latter may change when a run is resumed.
    manifest: str = setting(dataclasses.MISSING, role=DATA)
    out_dir: str = setting(dataclasses.MISSING, role=HOW)
    dataset: str = "ffpp"
    compression: str | None = "c23"
    methods: tuple[str, ...] | None = None
    detector: str = "md_csd"
    model_options: Mapping = dataclasses.field(default_factory=dict)
    transform: dataclasses.InitVar[str | None] = None
    middle_blocks: dataclasses.InitVar[int | None] = None
    head: dataclasses.InitVar[str | None] = None
    bn_momentum: dataclasses.InitVar[float | None] = None
    spectrum_in_model: dataclasses.InitVar[bool | None] = None
    clip_frames: dataclasses.InitVar[int | None] = None
    image_size: int | None = None
    weights: str | None = setting("published", role=FRESH)  # a resumed model is last.keras
    epochs: int | None = setting(role=HOW)
    batch_size: int | None = None
    base_lr: float | None = None
    stitch_lr: float | None = None
    loss: str | None = None
    ensemble: int | None = None
    plateau_factor: float | None = None
    plateau_patience: int | None = None
    constant_lr: bool | None = setting(None, before=True)  # older runs kept the rate
    steps_per_epoch: int | None = setting(role=HOW)
    validation_steps: int | None = setting(role=HOW)
    max_frames_per_video: int | None = None
    freq_stat_samples: int = setting(512, role=FRESH)
    flip: bool = False
    jpeg_quality: tuple[int, int] | None = None
    blur_probability: float = 0.0
    balance: bool = True
    strategy: str = setting("auto", role=HOW)
    mixed_precision: bool | str = False
    jit_compile: bool = setting(False, role=HOW)
    run_eagerly: bool = setting(False, role=HOW)
    seed: int = 0
    verbose: int = setting(1, role=HOW)
    fakes: str = "dataset"
    pair_augment: bool | None = None
    select_by: str | None = None
    threshold_rule: str | None = None
    threshold_fpr: float | None = None
    time_budget: float | None = setting(role=HOW)
    shuffle_labels: bool | None = None

    def __post_init__(
        self, transform, middle_blocks, head, bn_momentum, spectrum_in_model, clip_frames
    ):
        # The shorthands win over `model_options`: `replace(config, middle_blocks=2)` changes it.
        shorthands = dict(
            transform=transform, middle_blocks=middle_blocks, head=head,
            bn_momentum=bn_momentum, spectrum_in_model=spectrum_in_model, clip_frames=clip_frames,
        )  # fmt: skip
        given = {k: v for k, v in shorthands.items() if v is not None}
        options = {**dict(self.model_options or {}), **given}
        options = {k: v for k, v in options.items() if v is not None}
        object.__setattr__(self, "model_options", options)

    def resolved(self) -> TrainConfig:
        """The config with every None the recipe decides filled in from the recipe."""
        recipe = get_entry(self.detector).recipe
        factor, patience = recipe.plateau or (None, None)
        filled = dict(
            image_size=recipe.image_size,
            epochs=sum(s.epochs for s in recipe.stages) if recipe.stages else recipe.epochs,
            batch_size=recipe.batch_size,
            base_lr=recipe.learning_rate,
            stitch_lr=recipe.second_learning_rate or recipe.learning_rate,
            loss=recipe.loss,
            ensemble=recipe.ensemble,
            plateau_factor=factor,
            plateau_patience=patience,
        )
        changes = {k: v for k, v in filled.items() if getattr(self, k) is None}
        if self.weights == "published":
            changes["weights"] = recipe.init
        # Only a recipe with a schedule has a rate to keep constant (or not).
        changes["constant_lr"] = None if recipe.lr_schedule is None else bool(self.constant_lr)
        return dataclasses.replace(self, **changes)

    @property
    def selection_metric(self) -> str:
        """The Keras log that picks best.keras: "val_accuracy" (the paper) or "val_auc"."""
        return f"val_{self.select_by or 'accuracy'}"

    def pipeline(self, model) -> PipelineConfig:
        return PipelineConfig.for_model(
            model,
            batch_size=self.batch_size,
            flip=self.flip,
            jpeg_quality=self.jpeg_quality,
            blur_probability=self.blur_probability,
            balance=self.balance,
            seed=self.seed,
            pair_augment=bool(self.pair_augment),
            shuffle_labels=bool(self.shuffle_labels),
        )

    def __getattr__(self, name):
        # The former fields (`config.middle_blocks`...) read their model option, not None.
        if name in SHORTHANDS:
            return self.model_options.get(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


# The shorthands are init-only: without their class attributes (None, the init defaults the
# generated __init__ keeps), reading one goes through `__getattr__` to `model_options`.
for _name in SHORTHANDS:
    delattr(TrainConfig, _name)


@dataclasses.dataclass(frozen=True)
class TrainResult:
    out_dir: str
    best_model: str
    last_model: str
    epochs_done: int
    best_val_accuracy: float
    history: dict


def _as_float(value) -> float:
    # Optimizer variables are MirroredVariables under tf.distribute; read them through Keras.
    return float(keras.ops.convert_to_numpy(value))


class RunCheckpoint(keras.callbacks.Callback):
    """Writes last.keras + state.json every epoch and best.keras on a new best val accuracy."""

    def __init__(
        self,
        out_dir: Path,
        plateau: ReduceBothLROnPlateau,
        state: dict,
        write: bool,
        metric: str = "val_accuracy",
    ):
        super().__init__()
        self.out_dir = out_dir
        self.plateau = plateau
        self.state = state
        self.write = write
        self.metric = metric

    def on_epoch_end(self, epoch, logs=None):
        # np.mean: a multi-worker run logs length-1 vectors (see MDCSDNetwork.train_step).
        logs = {k: float(np.mean(v)) for k, v in (logs or {}).items()}
        self.state["history"].append({"epoch": epoch + 1, **logs})
        accuracy = logs.get("val_accuracy", -math.inf)
        value = logs.get(self.metric, -math.inf)
        best = self.state.get("best_selected", self.state["best_val_accuracy"])
        improved = value > best
        if improved:
            self.state["best_val_accuracy"] = accuracy
            self.state["best_selected"] = value
            self.state["selected_by"] = self.metric
            self.state["best_epoch"] = epoch + 1
        self.state["epoch"] = epoch + 1
        self.state["plateau"] = self.plateau.get_state() if self.plateau else {}
        optimizer = unwrap_optimizer(self.model.optimizer)
        self.state["learning_rate"] = _as_float(optimizer.learning_rate)
        self.state["stitch_learning_rate"] = _as_float(optimizer.stitch_learning_rate)
        if not self.write:
            return
        if improved:
            save_model(self.model, self.out_dir / "best.keras")
        save_model(self.model, self.out_dir / "last.keras")
        atomic_write_json(self.out_dir / "state.json", self.state)  # last: vouches for last.keras


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the epoch in which the training time (the batches, not the
    validation that follows them) reaches `seconds`; `spent` is the training time so far.

    Time is the process's CPU time (`time.process_time`, every thread: the model's and the input
    pipeline's), not wall time: candidates trained one after another on a shared machine get the
    same compute whatever else runs beside them. On an idle 2-core machine it is ~2x wall time.
    """

    def __init__(self, seconds: float):
        super().__init__()
        self.seconds = float(seconds)
        self.spent = 0.0
        self._began = None

    def on_epoch_begin(self, epoch, logs=None):
        self._began = time.process_time()

    def on_test_begin(self, logs=None):
        if self._began is not None:  # validation of `fit`, not a separate evaluate()
            self.spent += time.process_time() - self._began
            self._began = None

    def on_epoch_end(self, epoch, logs=None):
        self.on_test_begin()  # an epoch without validation
        if self.spent >= self.seconds:
            self.model.stop_training = True


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


# Settings that may change between a run and its resumption: how long and how it is run, not
# what is trained (declared on each TrainConfig field, `training.plan`). Everything else must
# match, or the resumed run would silently mix two setups.
RESUMABLE_CHANGES = resumable(TrainConfig)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(
            f"{path}: unreadable ({error}); delete the run folder's state.json to start afresh, "
            "or use a new --out."
        ) from error


def _prepare_run_dir(plan: RunPlan) -> tuple[Path, dict | None]:
    out = Path(plan.config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    if not (state_path.is_file() and (out / "last.keras").is_file()):
        return out, None
    state = _read_json(state_path)
    changed = plan.changed_from(_read_json(out / "config.json").get("config", {}))
    if changed:
        hint = " (--constant-lr: it trained without the recipe's decay)"
        raise UserError(
            f"{out}: holds a run with different {', '.join(changed)}; resume with the same "
            f"settings{hint if 'constant_lr' in changed else ''}, or use a new --out to start "
            "afresh."
        )
    return out, state


# Numeric settings and what they accept (the CLI checks its flags with the same ranges in
# commands/_options.py; this covers configs built in Python, e.g. by the experiment scripts).
_AT_LEAST_ONE = ("epochs", "batch_size", "freq_stat_samples")
_AT_LEAST_ONE_OR_NONE = ("steps_per_epoch", "validation_steps", "max_frames_per_video")


def _check_numbers(config: TrainConfig) -> None:
    for name in _AT_LEAST_ONE + _AT_LEAST_ONE_OR_NONE:
        value = getattr(config, name)
        if value is None and name in _AT_LEAST_ONE_OR_NONE:
            continue
        if not isinstance(value, int) or value < 1:
            raise UserError(f"{name} = {value!r}: expected a positive integer.")
    for name in ("base_lr", "stitch_lr"):
        value = getattr(config, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UserError(f"{name} = {value!r}: expected a number in (0, inf).")
    ranges = {"plateau_factor": (0.0, 1.0, "(0, 1)")}  # model options: `registry.Option`
    for name, (low, high, text) in ranges.items():
        value = getattr(config, name)
        if value is None:
            continue
        low_ok = value > low if text.startswith("(") else value >= low
        if not (math.isfinite(value) and low_ok and value < high):
            raise UserError(f"{name} = {value!r}: expected a number in {text}.")
    if not 0.0 <= config.blur_probability <= 1.0:
        raise UserError(f"blur_probability = {config.blur_probability!r}: expected [0, 1].")
    for name in ("plateau_patience", "seed"):
        if (getattr(config, name) or 0) < 0:
            raise UserError(f"{name} = {getattr(config, name)!r}: expected an integer >= 0.")
    if config.jpeg_quality is not None:
        low, high = config.jpeg_quality
        if not 1 <= low <= high <= 100:
            raise UserError(
                f"jpeg_quality = {config.jpeg_quality!r}: expected MIN <= MAX, both from 1 to 100."
            )


def _check_config(config: TrainConfig) -> None:
    _check_numbers(config)
    parse_fakes(config.fakes)
    from md_csd_tf.evaluation.metrics import THRESHOLD_RULES

    choices = {"select_by": ("accuracy", "auc"), "threshold_rule": THRESHOLD_RULES}
    for name, allowed in choices.items():
        if getattr(config, name) not in (None, *allowed):
            raise UserError(
                f"{name} = {getattr(config, name)!r}: choose one of {', '.join(allowed)}."
            )
    if config.threshold_fpr is not None and not 0.0 <= config.threshold_fpr < 1.0:
        raise UserError(f"threshold_fpr = {config.threshold_fpr!r}: expected a number in [0, 1).")
    if config.time_budget is not None and not config.time_budget > 0:
        raise UserError(f"time_budget = {config.time_budget!r}: expected seconds > 0.")
    entry = get_entry(config.detector)  # a one-line error naming the registered detectors
    if config.image_size < entry.recipe.min_image_size:
        raise UserError(
            f"--image-size {config.image_size}: {config.detector} needs at least "
            f"{entry.recipe.min_image_size} px."
        )
    if config.loss not in LOSSES and config.loss != "model":
        raise UserError(f"--loss {config.loss}: choose one of {', '.join(LOSSES)}.")
    weights = config.weights
    resuming = (Path(config.out_dir) / "state.json").is_file()  # weights are in last.keras then
    published = weights in entry.weights
    if (
        not resuming
        and weights not in (None, "imagenet")
        and not published
        and not Path(weights).is_file()
    ):
        raise UserError(
            f"{weights}: weights file not found; pass 'imagenet', 'none', a weights file"
            f"{' or one of ' + ', '.join(entry.weights) if entry.weights else ''}."
        )


def _load_last(path: Path) -> keras.Model:
    try:
        return load_model(path)
    except UserError as error:
        raise UserError(
            f"{error} To go on: delete {path.name} and state.json in {path.parent} to start "
            f"afresh, or copy best.keras over {path.name} to resume from the best epoch."
        ) from error


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
    _check_config(config)
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
    out, resumed = _prepare_run_dir(plan)
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
                model = _load_last(out / "last.keras")
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
