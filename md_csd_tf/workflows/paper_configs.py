"""Every experiment of the paper, the demo and the smoke settings as named, frozen configs.

One home for what each table cell trains and measures. A table cell (`Experiment`) names the
model it needs (`Run`: FF++ compression, manipulations, Table V variant, Table VI transform) and
what it reads from it (FF++ test, Celeb-DF or DFD). Cells that need the same model share one run
folder, so the model reported as 0.9929 (c23, all four methods, MD-CSD, DCT) is trained once for
Table II, Table III, Table IV, Table V row 5 and Table VI's DCT row, and reused (or resumed) by
each. `Profile`s are the training settings layered over the paper's (`TrainConfig`'s defaults):
"paper", "demo" and "smoke".

List them with `python experiments/tables.py --list`; `Experiment.doc` gives the command, the
paper's number and what it takes.

Reference: MD-CSDNetwork, Sec. III and Tables I-VI.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
from collections.abc import Mapping

from md_csd_tf.names import FFPP_METHODS

# Two-Xception training at 299 px, batch 32, 20 epochs; the paper reports ~4000 s per epoch on
# three V100s, so ~22 h there. One >= 16 GB GPU per replica.
PAPER_HARDWARE = "one >= 16 GB GPU; ~20 epochs x ~4000 s on 3 V100s (paper), ~1 day"
CROSS_HARDWARE = "scoring only (reuses the FF++ model): ~2 min on one GPU, ~40 min on 2 CPU cores"


@dataclasses.dataclass(frozen=True)
class Profile:
    """Training settings over `TrainConfig`'s defaults (which are the paper's).

    Attributes:
        name: "paper", "demo" or "smoke".
        doc: what it is for and what it costs.
        settings: `TrainConfig` fields it changes (read-only).
    """

    name: str
    doc: str
    settings: Mapping = dataclasses.field(default_factory=lambda: types.MappingProxyType({}))

    def with_overrides(self, overrides: Mapping) -> dict:
        """The settings with command-line flags laid over them (flags win)."""
        return {**self.settings, **{k: v for k, v in overrides.items() if v is not None}}


PAPER = Profile(
    "paper", "The paper's recipe (Sec. II.C): TrainConfig's defaults. " + PAPER_HARDWARE
)
DEMO = Profile(
    "demo",
    # Xception's minimum input and no middle flow keep its entry and exit flows (and all four
    # stitch points); trained from scratch for ~180 steps, BatchNorm needs momentum 0.9 so its
    # inference statistics catch up (with Xception's 0.99 held-out predictions collapsed to a
    # constant). ~45 s per epoch on 2 CPU cores.
    "The CPU demo on the stand-in data: 71 px, no middle flow, from scratch, 5 epochs; a few "
    "minutes on 2 CPU cores.",
    types.MappingProxyType(
        dict(
            image_size=71,
            middle_blocks=0,
            weights=None,
            bn_momentum=0.9,
            epochs=5,
            batch_size=16,
            freq_stat_samples=128,
            verbose=1,
        )
    ),
)
SMOKE = Profile(
    "smoke",
    # Eager steps: tracing a graph costs more than two tiny steps.
    "Seconds on a CPU (tests, --smoke): one epoch of two steps of batch 4 at 71 px, eager.",
    types.MappingProxyType(
        dict(
            image_size=71,
            middle_blocks=0,
            weights=None,
            bn_momentum=0.9,
            epochs=1,
            steps_per_epoch=2,
            validation_steps=1,
            batch_size=4,
            freq_stat_samples=16,
            run_eagerly=True,
            verbose=0,
        )
    ),
)


@dataclasses.dataclass(frozen=True)
class Run:
    """A model to train on FF++: what distinguishes the runs of the paper's tables.

    Attributes:
        compression: "c23" (HQ) or "c40" (LQ).
        manipulation: "all" (the paper's four methods) or one of them.
        detector: a registered detector: "md_csd" (the paper's model), a Table V variant
            ("md_csd_rgb", ...) or a comparator of the leaderboard.
        transform: Table VI row ("dct" is the paper's).
    """

    compression: str = "c23"
    manipulation: str = "all"
    detector: str = "md_csd"
    transform: str = "dct"

    @property
    def methods(self) -> tuple[str, ...]:
        return FFPP_METHODS if self.manipulation == "all" else (self.manipulation,)

    @property
    def uses_transform(self) -> bool:
        """Whether the detector reads the frequency transform (MD-CSD's option)."""
        from md_csd_tf.models.registry import get_entry

        return "transform" in get_entry(self.detector).options

    def label(self) -> str:
        transform = f"_{self.transform}" if self.uses_transform else ""
        return f"ff_{self.compression}_{self.manipulation}_{self.detector}{transform}"

    def train_settings(self, settings: Mapping) -> dict:
        """`TrainConfig` fields for this run: the profile's settings, then the run's own."""
        return {
            **settings,
            "compression": self.compression,
            "methods": self.methods,
            "detector": self.detector,
            # Only detectors with a transform option (MD-CSD) read it.
            **({"transform": self.transform} if self.uses_transform else {}),
        }

    def folder_name(self, settings: Mapping) -> str:
        """`<label>-<hash>`: the same model and settings always land in the same folder.

        The hash covers the resolved training config (the recipe's values filled in, so
        spelling out a default changes nothing) minus what only says how long or how a run is
        executed (epochs, strategy, verbosity...): a finished run is found again by every table
        that needs it, and runs that train something else never collide.
        """
        from md_csd_tf.training.config import TrainConfig
        from md_csd_tf.training.plan import RunPlan

        config = TrainConfig(manifest="", out_dir="", **self.train_settings(settings))
        # What initialises a fresh model changes what is trained, though a resumed run may not
        # re-read it (its weights are in last.keras). Unset fields are left out, so a field
        # added later (None by default) keeps the folders of the runs made before it
        # (`RunPlan.folder_identity`; the fields' roles say what is left out).
        digest = RunPlan.resolve(config, verbose=False).folder_digest()
        return f"{self.label()}-{digest}"


def variant_detector(variant: str) -> str:
    """Table V's variant key -> the registered detector ("rgb" -> "md_csd_rgb")."""
    return "md_csd" if variant == "md_csd" else f"md_csd_{variant}"


def detector_variant(detector: str) -> str:
    """The registered MD-CSD detector -> Table V's variant key ("md_csd_rgb" -> "rgb")."""
    return "md_csd" if detector == "md_csd" else detector.removeprefix("md_csd_")


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One cell or row of a paper table.

    Attributes:
        name: e.g. "table1_c23_FaceSwap", "table2_c40", "table5_concat".
        table: "I" ... "VI".
        run: the model it needs.
        measure: "ff_test" (the FF++ test split of the run's compression and methods; Table III
            also reads its Deepfakes class), "celebdf" or "dfd".
        paper: the paper's numbers for it, `{"acc": %, "auc": fraction}` (looked up in
            `md_csd_tf.paper`, never typed here).
    """

    name: str
    table: str
    run: Run
    measure: str
    paper: Mapping

    @property
    def doc(self) -> str:
        """The command, the paper's number and what it takes."""
        data = "--data FACES/manifest.csv"
        run = self.run
        if self.table in ("I", "II"):
            command = (
                f"python experiments/run_ff.py {data} --compression {run.compression} "
                f"--manipulation {run.manipulation}"
            )
        elif self.table in ("III", "IV"):
            command = f"python experiments/cross_dataset.py {data} --dataset {self.measure}"
        else:
            command = f"python experiments/ablation.py --table {self.table} {data}"
        numbers = ", ".join(f"{k} {v}" for k, v in self.paper.items() if v is not None)
        hardware = CROSS_HARDWARE if self.measure != "ff_test" else PAPER_HARDWARE
        return (
            f"Table {self.table} ({self.name}): paper {numbers or '-'}. Trains {run.label()} "
            f"(shared with every cell that needs it). Command: {command}. Needs: {hardware}."
        )


#: The experiment configs, one small file per paper table (big_vision's `configs/`): each
#: module's docstring gives the commands, the paper's numbers and the cost; its `get_config()`
#: lists the table's cells.
TABLE_CONFIGS = ("table1", "table2", "table3", "table4", "table5", "table6")


def _experiments() -> dict[str, Experiment]:
    found = []
    for name in TABLE_CONFIGS:
        config = importlib.import_module(f"md_csd_tf.configs.{name}")
        found += [
            Experiment(
                cell["name"], config.TABLE, Run(**cell["run"]), cell["measure"], cell["paper"]
            )
            for cell in config.get_config()
        ]
    return {e.name: e for e in found}


EXPERIMENTS: dict[str, Experiment] = _experiments()


def experiments_of(table: str) -> list[Experiment]:
    """The experiments of one paper table, in the paper's row order."""
    return [e for e in EXPERIMENTS.values() if e.table == table.upper()]
