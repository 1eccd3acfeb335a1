"""The run plan: every value of one training run, resolved once before anything is built.

Settings come from four places: the detector's recipe (`models.registry.Recipe`), a profile
(`workflows.paper_configs`: PAPER, DEMO, SMOKE), what the user gave (command line or Python) and
the detector's model options (`registry.Option`). `RunPlan.resolve` lays them over each other
once; the trainer, the run folder's resume check (config.json's "run_hash" is the plan's
`digest`) and the paper runs' folder names (`paper_configs.Run.folder_name`) read the plan,
never the layers.

Each `TrainConfig` field says what it is to a run folder (`setting(..., role=...)`), so what a
resume may change is declared beside the field rather than kept in a separate list:

    DEFINES  what is trained: must match to resume; part of the folder hash (the default).
    DATA     where the data is (the manifest): must match to resume; not in the folder hash,
             which lives beside the data.
    FRESH    shapes a fresh model only (initial weights, samples for frequency statistics): a
             resumed run reads its model from last.keras, so it may change; in the folder hash.
    HOW      how long or how a run is executed (epochs, strategy, verbosity): may change.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from md_csd_tf.errors import UserError

ROLE = "run_role"  # the dataclasses.field metadata keys
BEFORE = "run_before"
DEFINES, DATA, FRESH, HOW = "defines", "data", "fresh", "how"

#: Model options that were `TrainConfig` fields before `model_options`: still accepted as
#: keyword arguments (and the CLI's flags), and a detector without one ignores it with a note,
#: as before; any other unknown option is an error.
SHORTHANDS = ("transform", "middle_blocks", "head", "bn_momentum", "spectrum_in_model",
              "clip_frames")  # fmt: skip


def parse_model_options(
    pairs: Sequence[str], detector: str | None = None, given: Mapping | None = None
) -> dict:
    """`--model-option NAME=VALUE` pairs as model options, each parsed and checked against the
    detector's declared options (`registry.Entry.accepted`), laid over `given` (the shorthand
    flags' values: `--middle-blocks 0` is `middle_blocks=0`).

    Without a detector (an experiment script running several), a name is parsed by the first
    detector that declares it; each run's plan still checks its own (`RunPlan.resolve`).

    Raises:
        UserError: not NAME=VALUE; a name the detector (or, without one, every detector) does
            not have, listing the options it has; a value outside the option's range; an
            option given twice with two values.
    """
    from md_csd_tf.models.registry import get_entry, list_detectors

    options = dict(given or {})
    if detector is not None:
        accepted = get_entry(detector).accepted()
    else:
        accepted = {}
        for name in list_detectors():
            accepted = {**get_entry(name).accepted(), **accepted}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise UserError(f"--model-option {pair}: expected NAME=VALUE, e.g. middle_blocks=0")
        if name not in accepted:
            owner = f"{detector} has no" if detector else "no detector has a"
            raise UserError(
                f"--model-option {pair}: {owner} model option {name!r}; "
                f"{'its' if detector else 'the'} options: {', '.join(accepted) or 'none'}"
            )
        value = accepted[name].parse(text.strip())
        if name in options and options[name] != value:
            raise UserError(f"--model-option {pair}: {name} is also given as {options[name]!r}")
        options[name] = value
    return options


def setting(default=None, role: str = DEFINES, before=dataclasses.MISSING, **kwargs):
    """A `TrainConfig` field with its role for the run folder (see the module docstring).

    `before`: what the code did before the field existed, read for a run folder whose
    config.json lacks it (default: the field's default)."""
    if role not in (DEFINES, DATA, FRESH, HOW):
        raise ValueError(f"unknown role {role!r}")
    metadata = {ROLE: role} if before is dataclasses.MISSING else {ROLE: role, BEFORE: before}
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def roles(config_type) -> dict[str, str]:
    """Field name -> role of a settings dataclass (`TrainConfig`)."""
    return {f.name: f.metadata.get(ROLE, DEFINES) for f in dataclasses.fields(config_type)}


def resumable(config_type) -> frozenset[str]:
    """The fields a resumed run may change (roles FRESH and HOW)."""
    return frozenset(k for k, r in roles(config_type).items() if r in (FRESH, HOW))


def _comparable(config: Mapping) -> dict:
    """A stored or current config in one form: JSON types, the manifest as a resolved file."""
    config = json.loads(json.dumps(dict(config), default=str))
    manifest = Path(config.get("manifest") or ".")
    if manifest.is_dir():
        manifest = manifest / "manifest.csv"
    config["manifest"] = str(manifest.resolve())
    if config.get("methods"):
        config["methods"] = sorted(config["methods"])
    return config


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """One training run with every value concrete. Make it with `RunPlan.resolve(config)`.

    Attributes:
        config: the `TrainConfig` with the recipe's values filled in for every None
            (`TrainConfig.resolved`) and `model_options` as given, checked.
        builder_options: the options passed to the detector's builder (its own `Option`s).
        bn_momentum: set on every BatchNorm layer of the built (or resumed) model, for a
            detector whose builder has no such option; None: nothing to set.
        stages: the schedule of trainable layers (`Recipe.schedule(config.epochs)`).
        lr_schedule: the recipe's `StepDecay` of the learning rate, or None (none in the
            recipe, or `config.constant_lr`).
    """

    config: object
    builder_options: Mapping
    bn_momentum: float | None
    stages: tuple
    lr_schedule: object = None

    @classmethod
    def resolve(cls, config, verbose: bool | None = None) -> RunPlan:
        """The plan of `config` (a `TrainConfig`): recipe values filled in, model options
        checked against the detector's declared `Option`s.

        Raises:
            UserError: an unknown detector, a model option the detector does not have (the
                former `TrainConfig` fields among them are ignored with a note instead), or
                a value outside its option's range.
        """
        from md_csd_tf.models.registry import get_entry

        config = config.resolved()
        entry = get_entry(config.detector)
        given = {k: v for k, v in config.model_options.items() if v is not None}
        accepted = entry.accepted()
        ignored = sorted(k for k in given if k not in accepted and k in SHORTHANDS)
        if ignored and (config.verbose if verbose is None else verbose):
            print(f"note: {config.detector} has no option {', '.join(ignored)}; ignored.")
        checked = entry.check_options({k: v for k, v in given.items() if k not in ignored})
        recipe = entry.recipe
        schedule = None if config.constant_lr else recipe.lr_schedule
        if schedule is not None and config.plateau_factor is not None:
            raise UserError(
                f"{config.detector}: its recipe decays the learning rate by steps; a plateau cut "
                "(plateau_factor) cannot be combined with it"
            )
        return cls(
            config=config,
            builder_options={k: v for k, v in checked.items() if k in entry.options},
            bn_momentum=None if "bn_momentum" in entry.options else checked.get("bn_momentum"),
            stages=recipe.schedule(config.epochs),
            lr_schedule=schedule,
        )

    def identity(self) -> dict:
        """What must match for a run folder to be resumed with this plan: every field but
        those a resume may change (`resumable`), in JSON form."""
        current = _comparable(dataclasses.asdict(self.config))
        keep = resumable(type(self.config))
        return {k: v for k, v in sorted(current.items()) if k not in keep}

    @property
    def digest(self) -> str:
        """A short hash of `identity()`, written to the run folder's config.json."""
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:12]

    def changed_from(self, stored: Mapping) -> list[str]:
        """The identity fields in which the run stored as `stored` (config.json's "config",
        from this version or an earlier one) differs from this plan; [] when it may resume."""
        stored = dict(stored)
        config_type = type(self.config)
        accepted = {f.name for f in dataclasses.fields(config_type)} | set(SHORTHANDS)
        if "detector" in stored and set(stored) <= accepted:  # recipe values as the run used
            # them; a field added after the run was made is missing: what the code did then
            # (`setting(before=...)`), else its default. Former fields (`SHORTHANDS`) become
            # model options.
            for f in dataclasses.fields(config_type):
                if f.name not in stored and BEFORE in f.metadata:
                    stored[f.name] = f.metadata[BEFORE]
            stored = dataclasses.asdict(config_type(**stored).resolved())
        previous = _comparable(stored)
        return sorted(k for k, v in self.identity().items() if previous.get(k) != v)

    def folder_identity(self) -> dict:
        """What names an experiment's run folder (`workflows.paper_configs.Run.folder_name`):
        the identity and the FRESH fields, without the manifest and unset (None) values, model
        options flattened as the former fields were, so folders made before `model_options`
        keep their names."""
        role = roles(type(self.config))
        settings = dataclasses.asdict(self.config)
        options = settings.pop("model_options", {}) or {}
        settings.update(options)
        return {
            k: v for k, v in sorted(settings.items())
            if role.get(k, DEFINES) in (DEFINES, FRESH) and v is not None
        }  # fmt: skip

    def folder_digest(self) -> str:
        """6 hex digits of `folder_identity()`."""
        text = json.dumps(self.folder_identity(), default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:6]
