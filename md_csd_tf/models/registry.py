"""The registry of detectors: one name per published system, its builder and its recipe.

A detector is one module in `md_csd_tf/models/` (the architecture, a frozen `Recipe` beside it and
one `register(...)` line). Nothing outside `models/` branches on a detector's name: the trainer,
the pipeline, predict and export read the recipe and the model's own attributes.

Every built model is a `md_csd_tf.models.base.DetectorModel`: the contract (the input dict,
P(fake) out, the attributes `detector`, `image_size`, `crop_size`, `branches`, `transform`,
`clip_frames`, `spectrum_in_model` and the hooks the trainer calls) lives in that class, not in
prose, and its `get_config`/`from_config` follow from each detector's `config_keys`. A builder
has one signature: `build(image_size=..., weights=None, crop_size=None, **options)`.

Detector modules are found, not listed: `md_csd_tf.models.import_all` imports every module of
the package; a module's `LISTING_ORDER` places its entries in `list_detectors()`. docs/detectors.md, "Adding
a detector", shows a whole detector in one file.

Example:
    >>> from md_csd_tf import build_detector, list_detectors
    >>> list_detectors()
    ['md_csd', 'md_csd_concat', ...]
    >>> model = build_detector("md_csd_one_stitch", image_size=71, middle_blocks=0)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import sys
from collections.abc import Callable, Mapping

from md_csd_tf.errors import UserError
from md_csd_tf.models import import_all

# Detector modules are found, not listed: every module of `md_csd_tf.models` is imported once
# (`models.import_all`) and those with a `register(...)` line add their entries. A module's
# `LISTING_ORDER` (an int) places its entries in `list_detectors()`; MD-CSD's family first.


@dataclasses.dataclass(frozen=True)
class Stage:
    """A part of a training schedule: `epochs` epochs with `trainable` layers ("all" or "head").

    The FF++ Xception baseline trains its new head alone for 3 epochs, then everything for 15.
    """

    epochs: int
    trainable: str = "all"


@dataclasses.dataclass(frozen=True)
class StepDecay:
    """A learning-rate schedule as data: the rate times `factor` every `every_steps` optimizer
    steps (iterations, not epochs), never below `floor` (0: no floor).

    MesoNet's (Afchar et al., Sec. 3): 1e-3 divided by 10 every 1000 iterations down to 1e-6,
    `StepDecay(1000, 0.1, 1e-6)`. The trainer turns it into a Keras schedule
    (`optimizers.StepDecaySchedule`); a plateau cut cannot be combined with it.
    """

    every_steps: int
    factor: float
    floor: float = 0.0

    def __post_init__(self):
        if self.every_steps < 1 or not 0.0 < self.factor < 1.0 or self.floor < 0.0:
            raise ValueError(f"{self}: expected every_steps >= 1, 0 < factor < 1, floor >= 0")

    def rate(self, initial: float, step: int) -> float:
        """The rate at optimizer step `step` (0-based) when it starts at `initial`."""
        return max(initial * self.factor ** (step // self.every_steps), self.floor)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How a detector is trained and scored, as its publication gives it.

    Attributes:
        paper: the source, with the section or page the numbers come from.
        image_size: input side in pixels.
        inputs: what the model reads: ("rgb",), ("freq",) or ("rgb", "freq").
        normalisation: the pixel normalisation the model applies inside (for the listing).
        loss: "bce" (binary cross-entropy on P(fake)), "mse" (MesoNet's), "auc"
            (`md_csd_tf.losses.AUCLoss`), or "model" (the model adds its own losses).
        optimizer: "adam", the only one a recipe uses so far (the trainer's `GroupedAdam`, which
            is plain Adam unless a second group, MD-CSD's cross-stitches, has its own rate).
        learning_rate / second_learning_rate: the rates.
        batch_size: global batch.
        epochs: total epochs; with `stages`, their sum.
        stages: the schedule, when not one stage of `epochs` on every layer.
        plateau: (factor, patience) of the learning-rate cut on a val-loss plateau, or None.
        lr_schedule: a `StepDecay` of the learning rate over optimizer steps, or None (the
            rate stays, but for `plateau` cuts).
        video_aggregate: how frame scores become a video score: "mean" or "vote".
        clip_frames: T, for detectors that read clips of T consecutive crops of one video
            (`dual_level`): the trainer feeds `md_csd_tf.data.clips` batches, evaluation and
            predict score every run of T crops. None: single frames.
        ensemble: models trained on disjoint chunks and combined by vote (1 = one model).
        parameters: trainable + non-trainable parameters at `image_size` with the default
            options (a test builds the model and checks it); None if not recorded.
        init: the backbone initialisation the publication trains from: "imagenet" or None
            (random); what `weights="published"` means for the trainer.
        cited: where the MD-CSD paper's Tables I-IV cite this system: table -> row name in
            `md_csd_tf.paper` (the leaderboard prints that number beside ours).
        min_image_size: the smallest input the architecture takes (Xception: 71).
    """

    paper: str
    image_size: int
    inputs: tuple[str, ...]
    normalisation: str
    loss: str = "bce"
    optimizer: str = "adam"
    learning_rate: float = 2e-4
    second_learning_rate: float | None = None
    batch_size: int = 32
    epochs: int = 20
    stages: tuple[Stage, ...] = ()
    plateau: tuple[float, int] | None = None
    lr_schedule: StepDecay | None = None
    video_aggregate: str = "mean"
    clip_frames: int | None = None  # read by the trainer, evaluation, predict and export
    ensemble: int = 1
    parameters: int | None = None
    init: str | None = "imagenet"
    cited: Mapping[str, str] = dataclasses.field(default_factory=dict)
    min_image_size: int = 32

    def schedule(self, epochs: int | None = None) -> tuple[Stage, ...]:
        """The stages for `epochs` in total (default: the recipe's).

        Without stages: one stage on every layer. With stages, they run in order and are cut
        at `epochs` (a short run still starts with the head-only stage); a longer run extends
        the last stage.
        """
        if not self.stages:
            return (Stage(epochs or self.epochs),)
        total = sum(s.epochs for s in self.stages) if epochs is None else epochs
        stages, left = [], total
        for stage in self.stages:
            if left <= 0:
                break
            stages.append(dataclasses.replace(stage, epochs=min(stage.epochs, left)))
            left -= stages[-1].epochs
        if left > 0:
            stages[-1] = dataclasses.replace(stages[-1], epochs=stages[-1].epochs + left)
        return tuple(stages)


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclasses.dataclass(frozen=True)
class Option:
    """A builder option of a detector, declared once beside its `register(...)` line: the
    trainer's `model_options`, `md-csd train --model-option NAME=VALUE` and the listing read it.

    Attributes:
        name: the builder's keyword argument.
        type: bool, int, float or str; a command-line value is parsed with it.
        default: the builder's default (documentation; the builder applies it).
        allowed: for int/float, a `(low, high)` range (a bound may be None: open); for str,
            the tuple of choices; None: any value of `type`.
        help: one line for `--help` and error messages.
        high_open: the range excludes `high` (BatchNorm momentum: [0, 1)).
    """

    name: str
    type: type
    default: object = None
    allowed: tuple | None = None
    help: str = ""
    high_open: bool = False

    def describe(self) -> str:
        """What the option accepts: "an integer from 0 to 8", "one of dct, fft, dwt", ..."""
        if self.type is bool:
            return "true or false"
        if self.type is str:
            return f"one of {', '.join(self.allowed)}" if self.allowed else "a string"
        low, high = self.allowed or (None, None)
        kind = "an integer" if self.type is int else "a number"
        if self.type is float:  # interval notation, as `commands/_options.float_range` writes
            right = ")" if self.high_open or high is None else "]"
            return f"{kind} in [{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        if low is not None and high is not None:
            return f"{kind} from {low} to {high}"
        return f"{kind} >= {low}" if low is not None else f"{kind} <= {high}"

    def parse(self, text: str):
        """`text` (a command-line value) as `type`, checked; `UserError` naming the range."""
        try:
            if self.type is bool:
                if text.strip().lower() not in (*_TRUE, *_FALSE):
                    raise ValueError(text)
                value = text.strip().lower() in _TRUE
            else:
                value = self.type(text)
        except ValueError:
            raise UserError(
                f"model option {self.name}={text}: expected {self.describe()}"
            ) from None
        return self.check(value)

    def check(self, value):
        """`value` if this option accepts it (an int is taken for a float); `UserError` with
        the accepted range or choices otherwise."""
        ok = isinstance(value, self.type) and not (self.type is int and isinstance(value, bool))
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if ok and self.type is float:
            ok = math.isfinite(value)
        if ok and self.allowed is not None:
            if self.type is str:
                ok = value in self.allowed
            elif self.type is not bool:
                low, high = self.allowed
                ok = (low is None or value >= low) and (
                    high is None or (value < high if self.high_open else value <= high)
                )
        if not ok:
            raise UserError(f"model option {self.name}={value!r}: expected {self.describe()}")
        return value


#: Options every detector takes: a builder without its own `bn_momentum` gets it set on every
#: BatchNorm layer of the built model (`set_batchnorm_momentum`).
COMMON_OPTIONS = (
    Option(
        "bn_momentum", float, None, (0.0, 1.0),
        "BatchNorm momentum (short runs from scratch need 0.9; Keras' default is 0.99)",
        high_open=True,
    ),
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Entry:
    """A registered detector.

    `options` maps each builder option's name to its `Option` (what its builder takes besides
    image_size, weights and crop_size); `"middle_blocks" in entry.options` asks whether the
    builder has one. `accepted()` adds the `COMMON_OPTIONS` every detector takes."""

    name: str
    build: Callable
    recipe: Recipe
    summary: str
    weights: Mapping[str, str] = dataclasses.field(default_factory=dict)
    options: Mapping[str, Option] = dataclasses.field(default_factory=dict)

    def accepted(self) -> dict[str, Option]:
        """Every model option this detector takes: its builder's, then the common ones."""
        common = {o.name: o for o in COMMON_OPTIONS if o.name not in self.options}
        return {**self.options, **common}

    def check_options(self, options: Mapping) -> dict:
        """`options` checked against this detector's: a one-line `UserError` naming the
        detector's options for an unknown name, or the accepted range for a bad value."""
        accepted = self.accepted()
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise UserError(
                f"{self.name} has no model option {', '.join(unknown)}; its options: "
                f"{', '.join(accepted)}"
            )
        return {name: accepted[name].check(value) for name, value in options.items()}


_REGISTRY: dict[str, Entry] = {}


def register(
    name: str,
    build: Callable,
    recipe: Recipe,
    summary: str,
    weights: Mapping | None = None,
    options: tuple[Option, ...] = (),
) -> Entry:
    """Adds a detector: `build(**options)` returns a model honouring the contract above;
    `weights` names published weight files (name -> package resource path); `options` declares
    the builder options the trainer may pass from `TrainConfig.model_options` (beyond
    image_size, weights and crop_size, which every builder takes), each once, as an `Option`."""
    if name in _REGISTRY:
        raise ValueError(f"detector {name!r} is registered twice")
    if any(not isinstance(o, Option) for o in options):
        raise TypeError(f"{name}: declare each option as registry.Option(name, type, ...)")
    declared = {o.name: o for o in options}
    entry = Entry(name, build, recipe, summary, dict(weights or {}), declared)
    _REGISTRY[name] = entry
    return entry


def _module_of(build: Callable) -> str:
    if isinstance(build, functools.partial):  # a builder with the variant bound (md_csd, meso4)
        build = build.func
    return getattr(build, "__module__", "")


def _order(entry: Entry) -> tuple[float, str]:
    module = _module_of(entry.build)
    order = getattr(sys.modules.get(module), "LISTING_ORDER", math.inf)
    return (order, module)


def list_detectors() -> list[str]:
    """Every registered detector's name: by its module's `LISTING_ORDER` (modules without one
    last, by name), then in registration order within a module."""
    import_all()
    return [e.name for e in sorted(_REGISTRY.values(), key=_order)]  # sorted() is stable


@contextlib.contextmanager
def restored_registry():
    """Restores the registry as it was on entry when the block ends: a test registers its own
    detector inside without leaking it into `list_detectors()` for the tests that follow.

    Example:
        >>> with restored_registry():
        ...     importlib.reload(example_detector)  # its register(...) line runs again
        ...     build_detector("example", image_size=32)
    """
    import_all()  # so the detectors imported inside are not the ones dropped at the end
    saved = dict(_REGISTRY)
    try:
        yield
    finally:
        _REGISTRY.clear()
        _REGISTRY.update(saved)


def get_entry(name: str) -> Entry:
    """The registry entry of `name`; a one-line `UserError` listing the names otherwise."""
    import_all()
    if name not in _REGISTRY:
        raise UserError(f"unknown detector {name!r}; choose one of {', '.join(list_detectors())}")
    return _REGISTRY[name]


def published_weights(name: str) -> list[str]:
    """The weights names `name` accepts: its publication's (`Entry.weights`) and the models
    md-csd-tf ships of it (`models.pretrained`)."""
    from md_csd_tf.models.pretrained import names_for

    return [*get_entry(name).weights, *names_for(name)]


def build_detector(name: str, **options):
    """Builds the registered detector `name` with its builder's options (image_size, weights,
    ...); the model's `detector` attribute is `name`. `weights` naming a model md-csd-tf ships
    (`models.pretrained`) loads that model, whose size and options are its own."""
    from md_csd_tf.models import pretrained

    weights = options.get("weights")
    if isinstance(weights, str) and weights in pretrained.PRETRAINED:
        shipped = pretrained.PRETRAINED[weights]
        if shipped.detector != name:
            raise UserError(f"--weights {weights}: a {shipped.detector} model, not {name}")
        model = pretrained.load_pretrained(weights)
        size = options.get("image_size")
        if size is not None and int(size) != int(model.image_size):
            raise UserError(
                f"--weights {weights}: trained at {model.image_size} px, not {size}; drop "
                "--image-size or pass the model's"
            )
        return model
    return get_entry(name).build(**options)


def load_published(name: str | None = None, weights: str | None = None):
    """A model that scores with no training and no download: with no arguments the model
    md-csd-tf ships (`models.pretrained.DEFAULT`), otherwise the registered detector `name` with
    published or shipped `weights` (a name `published_weights(name)` lists, or a file of them).

    Raises:
        UserError: weights without a detector, an unknown detector, or weights it does not
            publish; one line saying what to pass instead.
    """
    import os

    from md_csd_tf.models import pretrained

    if name is None and weights is None:
        return pretrained.load_pretrained()
    if name is None:
        raise UserError(f"--weights {weights}: name the detector too (--detector NAME)")
    get_entry(name)  # an unknown detector: one line listing the registered ones
    published = published_weights(name)
    if weights not in published and not (published and weights and os.path.isfile(weights)):
        raise UserError(
            f"--weights {weights}: {name} has no such published weights (published: "
            f"{', '.join(published) or 'none'}); score a model you trained with --model "
            "RUN/best.keras"
        )
    return build_detector(name, weights=weights)


def set_batchnorm_momentum(model, momentum: float) -> int:
    """Sets the momentum of every BatchNormalization layer inside `model` (nested models and
    layers included) and returns how many there are: `bn_momentum` for a detector whose builder
    has no such option. Short runs from scratch need it (the demo's 0.9: with Keras' 0.99 the
    inference statistics stay near their start and held-out scores collapse to a constant). The
    value is read when the train step is traced, so set it before training; BatchNorm layers
    kept in inference mode (frozen stems) are unaffected."""
    import keras

    # Keras 3's walk over every tracked sub-layer; `model.layers` lists only the top level.
    found = [
        layer
        for layer in model._flatten_layers(include_self=False, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    for layer in found:
        layer.momentum = float(momentum)
    return len(found)


def recipe_of(model) -> Recipe:
    """The recipe of a built or loaded model (from its `detector` attribute)."""
    name = getattr(model, "detector", None)
    if name is None:
        raise UserError(
            f"{type(model).__name__} is not an md-csd-tf detector (no `detector` attribute)"
        )
    return get_entry(name).recipe
