"""End-to-end experiments of the paper (Tables I-VI) and the built-in demo.

The scripts in `experiments/` only parse arguments and call these functions, so every table is
produced by the same trainer and evaluator from the named configs of `md_csd_tf.experiments`:

    out/runs/<run>-<hash>/          one folder per trained model, shared by every table cell
                                    that needs it (`Run.folder_name`); test/ holds its FF++ test
                                    metrics, cross_celebdf/ and cross_dfd/ its cross-dataset ones
    out/results/table_<n>.md|csv    each paper table, assembled from whatever runs have finished
    out/results/tables.md           all six, the paper's numbers beside ours

A finished run is never trained again: training resumes it (or does nothing), and evaluation
files newer than the model are read instead of recomputed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

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
from md_csd_tf.experiments import (
    DEMO,
    EXPERIMENTS,
    PAPER,
    SMOKE,
    Experiment,
    Profile,
    Run,
    detector_variant,
    experiments_of,
)
from md_csd_tf.files import atomic_write_json, atomic_write_text
from md_csd_tf.names import COMPRESSIONS, FFPP_METHODS
from md_csd_tf.paper import TABLES

STAND_IN = "Demo on stand-in data (not FF++; the paper column is real FF++): "
CROSS_MODEL_NOTE = (
    "Cross-dataset tables score the Table II c23 model (FF++ c23, all four manipulations); "
    "the paper does not say which FF++ model it used (docs/reading-the-paper.md)."
)


def run_dir(out: str | Path, run: Run, settings: Mapping) -> Path:
    return Path(out) / "runs" / run.folder_name(settings)


def train_run(run: Run, manifest: str, out: str | Path, settings: Mapping) -> Path:
    """Trains `run` (or resumes it, or finds it finished); returns its folder."""
    from md_csd_tf.training.trainer import TrainConfig, train

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


def _ff_test_frames(manifest: str, run: Run, settings: Mapping) -> pd.DataFrame:
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
        model, _ff_test_frames(manifest, experiment.run, settings), folder / "test", batch, verbose
    )
    if experiment.measure != "ff_test":
        frames = cross_frames(
            manifest, experiment.measure, max_frames=settings.get("max_frames_per_video")
        )
        evaluate_on(model, frames, folder / f"cross_{experiment.measure}", batch, verbose)
    return folder


# -- reading finished runs into tables ----------------------------------------------------------


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


# -- the demo -----------------------------------------------------------------------------------


def prepare_demo_data(
    out: str,
    image_size: int,
    videos: int = 20,
    workers: int = 2,
    progress: bool = True,
    landmarks: bool = False,
    landmark_source: str | None = None,
) -> str:
    """Writes the stand-in datasets and their FF++ c23 face crops (and, with `landmarks`, their
    68-point landmarks for the pseudo-fake modes, from `landmark_source`: see
    `prep.landmarks.resolve_source`); returns the manifest path.

    Raises:
        UserError: with `landmarks`, a missing landmark model or crops holding another
            source's landmarks, before anything is rendered.
    """
    from md_csd_tf.prep.extract import ExtractConfig, extract_faces
    from md_csd_tf.prep.synthetic import make_demo_dataset

    raw, faces = Path(out) / "data", Path(out) / "faces"
    if landmarks:
        from md_csd_tf.prep.landmarks import check_model, check_source, resolve_source

        # `extract_faces` checks both too, but only after the stand-in videos are rendered.
        check_model(landmark_source)
        check_source(faces, resolve_source(landmark_source))
    summary = make_demo_dataset(raw, videos=videos, workers=workers)
    frames = summary.get("frames", 25)
    for dataset in ("ffpp", "celebdf", "dfd"):
        extract_faces(
            ExtractConfig(
                dataset=dataset,
                root=str(raw / dataset),
                out=str(faces),
                compression="c23",
                image_size=image_size,
                frames=frames,
                sampling="uniform",
                splits=("train", "val", "test"),
                workers=workers,
                progress=progress,
                landmarks=landmarks,
                landmark_source=landmark_source,
            )
        )
    return str(faces / "manifest.csv")


def profile_settings(demo: bool, smoke: bool, given: Mapping) -> tuple[Profile, dict]:
    """The profile a script runs with (`--smoke` wins over `--demo`) and its settings with the
    command-line flags laid over them."""
    profile = SMOKE if smoke else DEMO if demo else PAPER
    return profile, profile.with_overrides(given)


def demo_setup(out: str | None, smoke: bool, given: Mapping) -> tuple[str, str, dict]:
    """`--demo`/`--smoke` without `--data`: the stand-in data, made (or found) under `out`.

    Returns `(out, manifest, settings)`. A smoke run never shares its folder with the real
    demo, so neither is resumed (or reported) as the other.
    """
    _, settings = profile_settings(True, smoke, given)
    out = out or "demo_run"
    if smoke:
        out = str(Path(out) / "smoke")
    from md_csd_tf.data.pseudo_fakes import parse_fakes

    manifest = prepare_demo_data(
        out, settings["image_size"], videos=4 if smoke else 20,
        progress=settings.get("verbose", 1) > 0,
        landmarks=parse_fakes(settings.get("fakes", "dataset")) != ("dataset",),
    )  # fmt: skip
    return out, manifest, settings


def real_video_scores(predictions: str | Path) -> pd.Series:
    """Mean fake probability of each real video in a predictions.csv (label 0 rows)."""
    table = pd.read_csv(predictions, dtype={"video_id": str})
    reals = table[table["label"] == 0]
    return reals.groupby(["dataset", "video_id"])["prob"].mean()


def demo(out: str = "demo_run", smoke: bool = False, **given) -> dict:
    """`md-csd demo`: stand-in data -> face crops -> training -> held-out test -> tables.

    Reports the video-level accuracy and AUC on held-out stand-in test videos beside the paper's
    FF++ c23 numbers (real data: the comparison shows the format, not a reproduction),
    cross-dataset AUC on the Celeb-DF and DFD stand-ins, and the mean fake probability of the
    held-out real videos: a model that learned who is in the training videos instead of how
    faces are manipulated scores unseen real people as fake, which AUC alone can hide.
    """
    start = time.perf_counter()
    out, manifest, settings = demo_setup(out, smoke, given)
    experiment = EXPERIMENTS["table2_c23"]
    folder = run_experiment(experiment, manifest, out, settings)
    for name in ("table3_celebdf", "table4_dfd"):
        run_experiment(EXPERIMENTS[name], manifest, out, settings)
    tables = assemble_tables(out, settings, STAND_IN)
    test = json.loads((folder / "test" / "metrics.json").read_text(encoding="utf-8"))
    reals = real_video_scores(folder / "test" / "predictions.csv")
    summary = {
        "held_out_video_auc": test["video"]["overall"]["auc"],
        "held_out_video_accuracy": test["video"]["overall"]["accuracy"],
        "held_out_frame_auc": test["frame"]["overall"]["auc"],
        "held_out_real_videos": int(len(reals)),
        "held_out_real_mean_fake_probability": float(np.mean(reals)) if len(reals) else None,
        "celebdf_frame_auc": measured(EXPERIMENTS["table3_celebdf"], out, settings)["auc"],
        "dfd_frame_auc": measured(EXPERIMENTS["table4_dfd"], out, settings)["auc"],
        "seconds": round(time.perf_counter() - start, 1),
        "tables": str(tables),
        "model": str(folder / "best.keras"),
    }
    summary["fakes"] = settings.get("fakes", "dataset")
    summary["per_family_frame_auc"] = {
        method: metrics["auc"] for method, metrics in test["frame"]["per_manipulation"].items()
    }
    # One summary per training mode, so the paper-way demo and a pseudo-fake one sit side by side.
    suffix = "" if summary["fakes"] == "dataset" else "_" + summary["fakes"].replace("+", "_")
    atomic_write_json(Path(out) / f"demo_summary{suffix}.json", summary)
    return summary


def format_summary(summary: dict) -> str:
    def number(x):
        return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"

    real_mean = summary.get("held_out_real_mean_fake_probability")
    lines = [
        "Demo on held-out stand-in test videos (not FF++; the paper's numbers are for real data):",
        f"  video-level AUC {number(summary['held_out_video_auc'])}, "
        f"accuracy {number(summary['held_out_video_accuracy'])}; "
        f"frame-level AUC {number(summary['held_out_frame_auc'])}",
        f"  real videos of unseen people: mean fake probability {number(real_mean)} "
        f"over {summary.get('held_out_real_videos', 0)} videos",
        f"  cross-dataset frame AUC: Celeb-DF stand-in {number(summary['celebdf_frame_auc'])}, "
        f"DFD stand-in {number(summary['dfd_frame_auc'])}",
    ]
    if summary.get("per_family_frame_auc"):
        lines.insert(1, f"  training fakes: {summary.get('fakes', 'dataset')}")
        lines.append(
            "  frame AUC per fake family: "
            + ", ".join(
                f"{k} {number(v)}" for k, v in sorted(summary["per_family_frame_auc"].items())
            )
        )
    if real_mean is not None and real_mean > 0.5:
        lines.append(
            "  WARNING: real videos of people the model never saw score as fake on average "
            f"({real_mean:.2f} > 0.5): it may have learned who is in the training videos, not "
            "how faces are manipulated; AUC alone does not show this."
        )
    lines += [
        f"  finished in {summary['seconds']:.0f} s",
        "Written:",
        f"  {summary['tables']}",
        f"  {summary['model']}",
    ]
    return "\n".join(lines)


# -- the leaderboard: every detector on the same split, crops and metrics -----------------------


def _paper_cell(table: str, row: str | None, *path: str) -> float | None:
    from md_csd_tf.paper import paper_value

    if row is None:
        return None
    try:
        return paper_value(table, row, *path)
    except (KeyError, TypeError):
        return None


def leaderboard_row(
    detector: str, run: Run, manifest: str, out: str | Path, settings: Mapping
) -> dict:
    """Trains (or reuses) one detector's run and measures it: FF++ test (frame and video,
    overall and per manipulation), Celeb-DF and DFD when the manifest has them."""
    from md_csd_tf.models.registry import get_entry

    folder = train_run(run, manifest, out, settings)
    batch, verbose = settings.get("batch_size") or 32, settings.get("verbose", 1)
    max_frames = settings.get("max_frames_per_video")
    model = folder / "best.keras"
    test = evaluate_on(model, _ff_test_frames(manifest, run, settings), folder / "test", batch,
                       verbose)  # fmt: skip
    present = set(read_manifest(manifest)["dataset"])
    cross = {}
    for dataset in ("celebdf", "dfd"):
        if dataset in present:
            metrics = evaluate_on(model, cross_frames(manifest, dataset, max_frames=max_frames),
                                  folder / f"cross_{dataset}", batch, verbose)  # fmt: skip
            cross[dataset] = metrics["frame"]["overall"]["auc"]
    cited = get_entry(detector).recipe.cited
    video, frame = test["video"]["overall"], test["frame"]["overall"]
    if run.manipulation == "all":
        paper_acc = _paper_cell("II", cited.get("II"), run.compression, "acc")
        paper_auc = _paper_cell("II", cited.get("II"), run.compression, "auc")
    else:
        paper_acc = _paper_cell("I", cited.get("I"), run.manipulation, run.compression)
        paper_auc = None
    row = {
        "detector": detector,
        "video_acc": 100 * video["accuracy"],
        "paper_acc": paper_acc,
        "video_auc": video["auc"],
        "paper_auc": paper_auc,
        "frame_acc": 100 * frame["accuracy"],
        "frame_auc": frame["auc"],
    }
    for level in ("frame", "video"):
        for method, metrics in sorted(test[level]["per_manipulation"].items()):
            row[f"{method}_{level}_acc"] = 100 * metrics["accuracy"]
            row[f"{method}_{level}_auc"] = metrics["auc"]
    deepfakes = test["frame"]["per_manipulation"].get("Deepfakes", {})
    row["ff_deepfakes_frame_auc"] = deepfakes.get("auc")  # Table III's first column
    row["paper_ff_deepfakes_auc"] = _paper_cell("III", cited.get("III"), "ff++")
    row["celebdf_auc"] = cross.get("celebdf")
    row["paper_celebdf_auc"] = _paper_cell("III", cited.get("III"), "celebdf")
    row["dfd_auc"] = cross.get("dfd")
    row["paper_dfd_auc"] = _paper_cell("IV", cited.get("IV"), "dfd")
    row["video_score"] = get_entry(detector).recipe.video_aggregate
    row["run"] = folder.name
    return row


def _format_cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return (
        f"{value:.4f}"
        if isinstance(value, float) and value <= 1
        else (f"{value:.2f}" if isinstance(value, float) else str(value))
    )


def leaderboard(
    manifest: str,
    out: str | Path,
    detectors: list[str],
    compression: str = "c23",
    manipulation: str = "all",
    settings: Mapping | None = None,
    title_prefix: str = "",
) -> Path:
    """Trains each detector with its own recipe on the same FF++ split and writes one table,
    `results/leaderboard.md|csv`, with the paper-cited numbers beside ours where the MD-CSD
    paper's Tables I-IV cite the system. Rewritten after every detector (progress is kept);
    finished runs are reused."""
    settings = dict(settings or {})
    experiment = ff_experiment(compression, manipulation)
    rows = []
    path = Path(out) / "results" / "leaderboard"
    for detector in detectors:
        run = dataclasses.replace(experiment.run, detector=detector)
        start = time.perf_counter()
        try:
            rows.append(leaderboard_row(detector, run, manifest, out, settings))
        except UserError as error:  # one detector's failure must not cost the others' rows
            print(f"leaderboard: {detector}: {error}")
            rows.append({"detector": detector, "error": str(error)})
        rows[-1]["seconds"] = round(time.perf_counter() - start, 1)
        table = pd.DataFrame(rows)
        from md_csd_tf.files import atomic_write

        atomic_write(path.with_suffix(".csv"), lambda p, t=table: t.to_csv(p, index=False))
        columns = list(table.columns)
        lines = [
            f"## {title_prefix}Leaderboard: FF++ {compression}, {manipulation} "
            "(accuracy %, AUC; video level = each detector's own video score, `video_score`; "
            "Celeb-DF, DFD and FF++ Deepfakes (Table III) frame level)"
            + (f"; trained on {settings['fakes']} fakes" if settings.get("fakes") else ""),
            "",
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * len(columns),
            *("| " + " | ".join(_format_cell(r.get(c)) for c in columns) + " |" for r in rows),
            "",
            "paper_*: the number the MD-CSD paper cites for that system (Tables I-IV, from other "
            "papers' own protocols); '-' where it cites none. Ours: this run, our protocol.",
        ]
        atomic_write_text(path.with_suffix(".md"), "\n".join(lines) + "\n")
    return path.with_suffix(".md")
