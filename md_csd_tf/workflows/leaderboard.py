"""The leaderboard: every registered detector trained with its own recipe on the same FF++
split, crops and metrics, in one table (`results/leaderboard.md|csv`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from md_csd_tf.data.manifest import read_manifest
from md_csd_tf.errors import UserError
from md_csd_tf.evaluation.results_table import markdown_table, score_cell
from md_csd_tf.files import atomic_write, atomic_write_text
from md_csd_tf.workflows.paper_configs import Run
from md_csd_tf.workflows.runs import cross_frames, evaluate_on, ff_test_frames, train_run
from md_csd_tf.workflows.tables import ff_experiment


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
    test = evaluate_on(model, ff_test_frames(manifest, run, settings), folder / "test", batch,
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
        atomic_write(path.with_suffix(".csv"), lambda p, t=table: t.to_csv(p, index=False))
        title = (
            f"## {title_prefix}Leaderboard: FF++ {compression}, {manipulation} "
            "(accuracy %, AUC; video level = each detector's own video score, `video_score`; "
            "Celeb-DF, DFD and FF++ Deepfakes (Table III) frame level)"
            + (f"; trained on {settings['fakes']} fakes" if settings.get("fakes") else "")
        )
        note = (
            "paper_*: the number the MD-CSD paper cites for that system (Tables I-IV, from other "
            "papers' own protocols); '-' where it cites none. Ours: this run, our protocol."
        )
        body = markdown_table(rows, list(table.columns), cell=score_cell)
        atomic_write_text(path.with_suffix(".md"), f"{title}\n\n{body}\n{note}\n")
    return path.with_suffix(".md")
