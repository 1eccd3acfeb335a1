"""One run of a workflow: train it (or resume it, or find it finished) and score it on a split.

Every workflow (`tables`, `demo`, `leaderboard`) trains and measures through these, so a run
folder is shared by every table cell that needs its model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from md_csd_tf.data.manifest import read_manifest, select
from md_csd_tf.errors import UserError
from md_csd_tf.workflows.paper_configs import DEMO, PAPER, SMOKE, Experiment, Profile, Run


def run_dir(out: str | Path, run: Run, settings: Mapping) -> Path:
    return Path(out) / "runs" / run.folder_name(settings)


def train_run(run: Run, manifest: str, out: str | Path, settings: Mapping) -> Path:
    """Trains `run` (or resumes it, or finds it finished); returns its folder."""
    from md_csd_tf.training.config import TrainConfig
    from md_csd_tf.training.trainer import train

    folder = run_dir(out, run, settings)
    train(TrainConfig(manifest=manifest, out_dir=str(folder), **run.train_settings(settings)))
    return folder


def _fresh(metrics: Path, model: Path) -> bool:
    # Evaluation files written after the model they score are reused, never recomputed.
    return metrics.is_file() and metrics.stat().st_mtime >= model.stat().st_mtime


def evaluate_on(
    model_path: str | Path,
    frames: pd.DataFrame,
    out_dir: Path,
    batch_size: int = 32,
    verbose: int = 1,
) -> dict:
    """Metrics of a saved model on `frames`, written to `out_dir` (reused when fresh)."""
    from md_csd_tf.evaluation.evaluate import evaluate_model
    from md_csd_tf.models.saving import load_model

    metrics = out_dir / "metrics.json"
    if _fresh(metrics, Path(model_path)):
        return json.loads(metrics.read_text(encoding="utf-8"))
    model = load_model(model_path, compile=False)
    return evaluate_model(model, frames, out_dir, batch_size=batch_size, verbose=verbose)


def ff_test_frames(manifest: str, run: Run, settings: Mapping) -> pd.DataFrame:
    return select(
        read_manifest(manifest),
        split="test",
        dataset="ffpp",
        compression=run.compression,
        methods=run.methods,
        max_frames_per_video=settings.get("max_frames_per_video"),
    )


def cross_frames(
    manifest: str, dataset: str, compression: str | None = None, max_frames: int | None = None
) -> pd.DataFrame:
    """Celeb-DF's listed test videos or DFD, at one quality level (ask when several)."""
    table = read_manifest(manifest)
    levels = sorted(table.loc[table["dataset"] == dataset, "compression"].dropna().unique())
    if compression is None and len(levels) > 1:
        raise UserError(
            f"{manifest}: {dataset} was prepared at {levels}; pick one with --compression"
        )
    return select(
        table, split="test", dataset=dataset, compression=compression,
        max_frames_per_video=max_frames,
    )  # fmt: skip


def run_experiment(
    experiment: Experiment, manifest: str, out: str | Path, settings: Mapping
) -> Path:
    """Trains (or reuses) the experiment's run and writes what its table cell reads."""
    folder = train_run(experiment.run, manifest, out, settings)
    batch, verbose = settings.get("batch_size", 32), settings.get("verbose", 1)
    model = folder / "best.keras"
    evaluate_on(
        model, ff_test_frames(manifest, experiment.run, settings), folder / "test", batch, verbose
    )
    if experiment.measure != "ff_test":
        frames = cross_frames(
            manifest, experiment.measure, max_frames=settings.get("max_frames_per_video")
        )
        evaluate_on(model, frames, folder / f"cross_{experiment.measure}", batch, verbose)
    return folder


def profile_settings(demo: bool, smoke: bool, given: Mapping) -> tuple[Profile, dict]:
    """The profile a script runs with (`--smoke` wins over `--demo`) and its settings with the
    command-line flags laid over them."""
    profile = SMOKE if smoke else DEMO if demo else PAPER
    return profile, profile.with_overrides(given)
