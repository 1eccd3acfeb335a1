"""The paper's tables (I-VI): run their cells, read finished runs into
`results/table_<n>.md|csv` (written by `evaluation.results_table`), and the cross-dataset scoring
of a given model."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path

from md_csd_tf.data.manifest import read_manifest, select
from md_csd_tf.errors import UserError
from md_csd_tf.evaluation.results_table import (
    cross_dataset_rows,
    ff_rows,
    table_iii_rows,
    table_v_rows,
    table_vi_rows,
    write_table,
)
from md_csd_tf.files import atomic_write_text
from md_csd_tf.names import COMPRESSIONS, FFPP_METHODS
from md_csd_tf.paper import TABLES
from md_csd_tf.workflows.paper_configs import (
    EXPERIMENTS,
    Experiment,
    Run,
    detector_variant,
    experiments_of,
)
from md_csd_tf.workflows.runs import cross_frames, evaluate_on, run_dir, run_experiment

STAND_IN = "Demo on stand-in data (not FF++; the paper column is real FF++): "
CROSS_MODEL_NOTE = (
    "Cross-dataset tables score the Table II c23 model (FF++ c23, all four manipulations); "
    "the paper does not say which FF++ model it used (docs/reading-the-paper.md)."
)


def _metrics(folder: Path, name: str) -> dict | None:
    path = folder / name / "metrics.json"
    model = folder / "best.keras"
    if not (model.is_file() and path.is_file()):
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _state(folder: Path) -> str:
    """What a table shows about a run: finished, training (epoch k of n) or not run."""
    if not folder.is_dir():
        return "not run"
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))["config"]
    except (OSError, ValueError, KeyError):
        return "not run"
    if state.get("epoch", 0) >= config.get("epochs", math.inf):
        return "finished" if (folder / "test" / "metrics.json").is_file() else "trained, not tested"
    return f"training (epoch {state.get('epoch', 0)} of {config.get('epochs')})"


def measured(experiment: Experiment, out: str | Path, settings: Mapping) -> dict:
    """Our numbers for one cell from its finished run: `{"acc", "auc", ...}` (None if not run).

    FF++ cells are video-level (mean frame probability, the paper's "average ... for all the
    frames in a video"); cross-dataset cells are frame-level (Celeb-DF's protocol), and so is
    Table III's FF++ Deepfakes column, from the same model and at the same level.
    """
    folder = run_dir(out, experiment.run, settings)
    found = {"run": f"{folder.name} ({_state(folder)})"}
    test = _metrics(folder, "test")
    if experiment.measure == "ff_test":
        video = (test or {}).get("video", {}).get("overall", {})
        found.update(acc=video.get("accuracy"), auc=video.get("auc"))
        return found
    cross = _metrics(folder, f"cross_{experiment.measure}")
    found["auc"] = ((cross or {}).get("frame") or {}).get("overall", {}).get("auc")
    deepfakes = ((test or {}).get("frame") or {}).get("per_manipulation", {}).get("Deepfakes")
    found["ff_deepfakes_auc"] = (deepfakes or {}).get("auc")
    return found


def _rows(table: str, out: str | Path, settings: Mapping) -> list[dict]:
    rows = []
    cells = {e.name: measured(e, out, settings) for e in experiments_of(table)}
    if table in ("I", "II"):
        for experiment in experiments_of(table):
            cell = cells[experiment.name]
            for row in ff_rows(
                experiment.run.compression, experiment.run.manipulation, cell["acc"], cell["auc"]
            ):
                rows.append({**row, "run": cell["run"]})
    elif table == "III":
        cell = cells["table3_celebdf"]
        rows = [
            {**r, "run": cell["run"]} for r in table_iii_rows(cell["ff_deepfakes_auc"], cell["auc"])
        ]
    elif table == "IV":
        cell = cells["table4_dfd"]
        rows = [{**r, "run": cell["run"]} for r in cross_dataset_rows("dfd", cell["auc"])]
    else:

        def key(run: Run) -> str:
            return detector_variant(run.detector) if table == "V" else run.transform

        aucs = {key(e.run): cells[e.name]["auc"] for e in experiments_of(table)}
        runs = [cells[e.name]["run"] for e in experiments_of(table)]
        build = table_v_rows if table == "V" else table_vi_rows
        rows = [{**r, "run": run} for r, run in zip(build(aucs), runs, strict=True)]
    return rows


def assemble_tables(
    out: str | Path, settings: Mapping, title_prefix: str = "", tables=TABLES
) -> Path:
    """Writes `results/table_<n>.md|csv` for each table and `results/tables.md` with all of them,
    from whatever runs have finished under `out` (cells of missing runs say "not run"). Trains
    nothing. Returns the path of `tables.md`."""
    results = Path(out) / "results"
    sections = []
    for table in tables:
        title = f"{title_prefix}Table {table}"
        if table in ("III", "IV"):
            title += f". {CROSS_MODEL_NOTE}"
        md, _ = write_table(_rows(table, out, settings), results / f"table_{table.lower()}", title)
        sections.append(md.read_text(encoding="utf-8"))
    path = results / "tables.md"
    atomic_write_text(path, "\n".join(sections))
    return path


def run_tables(
    tables, manifest: str, out: str | Path, settings: Mapping, title_prefix: str = ""
) -> Path:
    """Runs every experiment of `tables` (each model trained once), then assembles all tables."""
    for table in tables:
        for experiment in experiments_of(table):
            run_experiment(experiment, manifest, out, settings)
            # After every cell, so a long table shows (and keeps) its progress.
            assemble_tables(out, settings, title_prefix)
    return assemble_tables(out, settings, title_prefix)


def _with_run(experiment: Experiment, detector: str | None, transform: str | None) -> Experiment:
    """The experiment with another detector or transform trained for it, if given."""
    changes = {k: v for k, v in (("detector", detector), ("transform", transform)) if v}
    if not changes:
        return experiment
    return dataclasses.replace(experiment, run=dataclasses.replace(experiment.run, **changes))


def ff_experiment(compression: str, manipulation: str) -> Experiment:
    """The Table I cell or Table II row of a compression and manipulation."""
    if compression not in COMPRESSIONS:
        raise UserError(f"compression {compression!r}: the paper's FF++ tables use c23 or c40.")
    if manipulation == "all":
        return EXPERIMENTS[f"table2_{compression}"]
    if manipulation not in FFPP_METHODS:
        raise UserError(f"manipulation {manipulation!r}: use all or one of {FFPP_METHODS}.")
    return EXPERIMENTS[f"table1_{compression}_{manipulation}"]


def run_ff(
    manifest: str,
    out: str,
    compression: str = "c23",
    manipulation: str = "all",
    settings: Mapping | None = None,
    title_prefix: str = "",
    detector: str | None = None,
    transform: str | None = None,
) -> dict:
    """Trains on FF++ and tests on its official test split: a Table I cell or a Table II row
    (or, with `detector` / `transform`, that registered detector or MD-CSD transform on the
    same data and split). Returns the run folder, our numbers and the assembled tables."""
    settings = dict(settings or {})
    experiment = _with_run(ff_experiment(compression, manipulation), detector, transform)
    folder = run_experiment(experiment, manifest, out, settings)
    tables = assemble_tables(out, settings, title_prefix)
    return {
        "run": str(folder),
        "measured": measured(experiment, out, settings),
        "test": json.loads((folder / "test" / "metrics.json").read_text()),
        "tables": str(tables),
    }


def ablation(
    table: str, manifest: str, out: str, settings: Mapping | None = None, title_prefix: str = ""
) -> dict:
    """Table V (variants rgb ... md_csd) or Table VI (transforms dwt, fft, dct) on FF++ c23, all
    manipulations; each row's model is trained once (the md_csd/dct row is Table II's)."""
    table = table.upper()
    if table not in ("V", "VI"):
        raise UserError(f"table must be V or VI, got {table!r}")
    settings = dict(settings or {})
    path = run_tables((table,), manifest, out, settings, title_prefix)
    aucs = {e.name: measured(e, out, settings)["auc"] for e in experiments_of(table)}
    return {"aucs": aucs, "table": str(Path(out) / "results" / f"table_{table.lower()}.md"),
            "tables": str(path)}  # fmt: skip


def cross_dataset(
    manifest: str,
    dataset: str,
    out: str,
    model: str | None = None,
    settings: Mapping | None = None,
    compression: str | None = None,
    title_prefix: str = "",
    detector: str | None = None,
    transform: str | None = None,
) -> dict:
    """Tables III/IV: frame-level AUC of an FF++-trained model on Celeb-DF's test list or DFD.

    Without `model`, the Table II c23 model (or, with `detector`, that registered detector on
    the same data) is trained (or reused) from `manifest` and both columns of Table III come
    from it. With `model` (any saved .keras), it is scored on the
    target dataset and, for Table III's first column, on the FF++ c23 test Deepfakes class of
    the same manifest when that is prepared; results go to `out/cross_<dataset>/` and
    `out/results/cross_<dataset>.md`.
    """
    if dataset not in ("celebdf", "dfd"):
        raise UserError(f"dataset must be celebdf or dfd, got {dataset!r}")
    settings = dict(settings or {})
    batch, verbose = settings.get("batch_size", 32), settings.get("verbose", 1)
    max_frames = settings.get("max_frames_per_video")
    if model is None:
        experiment = EXPERIMENTS["table3_celebdf" if dataset == "celebdf" else "table4_dfd"]
        experiment = _with_run(experiment, detector, transform)
        run_experiment(experiment, manifest, out, settings)
        path = assemble_tables(out, settings, title_prefix)
        return {"measured": measured(experiment, out, settings), "tables": str(path)}
    frames = cross_frames(manifest, dataset, compression, max_frames)
    metrics = evaluate_on(model, frames, Path(out) / f"cross_{dataset}", batch, verbose)
    auc = metrics["frame"]["overall"]["auc"]
    if dataset == "celebdf":
        ff_auc = _ff_deepfakes_auc(model, manifest, out, batch, verbose, max_frames)
        rows = table_iii_rows(ff_auc, auc)
    else:
        rows = cross_dataset_rows(dataset, auc)
    md, _ = write_table(
        rows, Path(out) / "results" / f"cross_{dataset}", f"{title_prefix}FF++ -> {dataset}"
    )
    return {"test": metrics, "table": str(md)}


def _ff_deepfakes_auc(model, manifest, out, batch, verbose, max_frames) -> float | None:
    """Table III's first column for a given model: its own run's FF++ test metrics when the
    model is a run's best.keras, else scored on the manifest's FF++ c23 test (real + Deepfakes)
    when prepared; None (shown as missing) otherwise."""
    own = Path(model).parent / "test" / "metrics.json"
    if own.is_file():
        metrics = json.loads(own.read_text(encoding="utf-8"))
    else:
        try:
            frames = select(
                read_manifest(manifest), split="test", dataset="ffpp", compression="c23",
                methods=("Deepfakes",), max_frames_per_video=max_frames,
            )  # fmt: skip
        except UserError:
            return None
        metrics = evaluate_on(model, frames, Path(out) / "cross_ffpp_deepfakes", batch, verbose)
    deepfakes = metrics.get("frame", {}).get("per_manipulation", {}).get("Deepfakes", {})
    return deepfakes.get("auc")
