"""What a training run is: `TrainConfig` (one field per setting, each declaring what it is to a
run folder, `training.plan`) and the checks of its values, made before any work starts.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path

from md_csd_tf.data.pipeline import PipelineConfig
from md_csd_tf.data.pseudo_fakes import parse_fakes
from md_csd_tf.errors import UserError
from md_csd_tf.models.registry import get_entry
from md_csd_tf.training.compile import LOSSES
from md_csd_tf.training.plan import DATA, FRESH, HOW, SHORTHANDS, resumable, setting


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
            weights (`md_csd_tf.mixed_precision`); False: float32.
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


# Settings that may change between a run and its resumption: how long and how it is run, not
# what is trained (declared on each TrainConfig field, `training.plan`). Everything else must
# match, or the resumed run would silently mix two setups.
RESUMABLE_CHANGES = resumable(TrainConfig)


# Numeric settings and what they accept (the CLI checks its flags with the same ranges in
# commands/_options.py; this covers configs built in Python, e.g. by the experiment scripts).
_AT_LEAST_ONE = ("epochs", "batch_size", "freq_stat_samples")
_AT_LEAST_ONE_OR_NONE = ("steps_per_epoch", "validation_steps", "max_frames_per_video")


def check_numbers(config: TrainConfig) -> None:
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


def check_config(config: TrainConfig) -> None:
    check_numbers(config)
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
