"""`md-csd demo`: the whole pipeline on the built-in stand-in data, in minutes on a CPU."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from md_csd_tf.files import atomic_write_json
from md_csd_tf.workflows.paper_configs import EXPERIMENTS
from md_csd_tf.workflows.runs import profile_settings, run_experiment
from md_csd_tf.workflows.tables import STAND_IN, assemble_tables, measured


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
