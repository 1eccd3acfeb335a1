"""The pretraining workflow: real faces -> pseudo-fake training -> held-out test -> model card.

`python experiments/pretrain.py` runs it with `configs.pretrain_sbi` (see that file for the
recipe). Everything lands under one folder (default `pretrain_run/`):

    data/standin/               stand-in FF++ / DFD / Celeb-DF videos (the demo's generator)
    data/crops/                 every crop, one manifest: the real-face corpus (dataset "faces":
                                real media of 61 people, and the fake families of its held-out
                                people) and the stand-in videos' crops, with landmarks
    runs/<name>/                the training run (`training.trainer`): best.keras with its
                                calibrated threshold, history, TensorBoard logs
    runs/<name>/test/<dataset>/ metrics.json, predictions.csv, roc.png per test dataset
    runs/<name>/summary.json    the held-out figures; summary.md the same as tables

Every stage resumes: a killed run started again with the same `--out` goes on where it stopped
(crops and landmarks are checked, training continues after its last epoch, a finished test is
not redone).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from importlib import resources
from pathlib import Path

from md_csd_tf.configs.pretrain_sbi import PretrainConfig
from md_csd_tf.errors import UserError
from md_csd_tf.files import OutputLock, atomic_write_json, atomic_write_text, check_writable
from md_csd_tf.models.pretrained import DEFAULT

TEST_DATASETS = ("faces", "ffpp", "dfd", "celebdf")


def _corpus_config(config: PretrainConfig, out: Path):
    from md_csd_tf.prep.real_faces import CorpusConfig

    return CorpusConfig(
        out=str(out),
        crop_size=config.crop_size,
        views=config.views,
        held_out_views=config.held_out_views,
        seed=config.data_seed,
    )


def prepare_data(config: PretrainConfig, out: str | Path, progress: bool = True) -> Path:
    """The stand-in videos' crops and the real-face corpus with its held-out fakes, all with
    landmarks, under `out/data/`; returns the manifest. Resumes whatever is there.

    Raises:
        UserError: the landmark model is missing or the crops hold another source's landmarks
            (checked before anything is fetched or rendered).
    """
    from md_csd_tf.data.pseudo_fakes import sbi_crops
    from md_csd_tf.prep.crop_folders import rebuild_manifest
    from md_csd_tf.prep.extract import ExtractConfig, extract_faces
    from md_csd_tf.prep.landmarks import add_landmarks, check_model, check_source, resolve_source
    from md_csd_tf.prep.real_faces import (
        corpus_splits,
        load_corpus_faces,
        write_corpus,
        write_corpus_fakes,
    )
    from md_csd_tf.prep.synthetic import make_demo_dataset
    from md_csd_tf.prep.synthetic.media import FaceLibrary
    from md_csd_tf.prep.synthetic.swaps import CORPUS_FAKES, corpus_fake

    out = Path(out)
    standin, crops = out / "data" / "standin", out / "data" / "crops"
    check_model(None)  # the packaged MediaPipe face mesh: a corrupt install fails here, now
    check_source(crops, resolve_source(None))
    origin = "bundled" if config.smoke else None
    say = print if progress else (lambda *a, **k: None)
    say("1/4 stand-in videos (validation and test only) ...", flush=True)
    summary = make_demo_dataset(
        standin, videos=config.standin_videos, seed=config.data_seed, workers=2, faces=origin
    )
    for dataset, splits in (("ffpp", ("val", "test")), ("celebdf", ("test",)), ("dfd", ("test",))):
        extract_faces(
            ExtractConfig(
                dataset=dataset, root=str(standin / dataset), out=str(crops),
                compression="c23", image_size=config.crop_size, frames=summary.get("frames", 25),
                sampling="uniform", splits=splits, workers=2, progress=progress, landmarks=True,
            )
        )  # fmt: skip
    say("2/4 real-face corpus: fetching media, cropping ...", flush=True)
    demo, extra = load_corpus_faces(origin)
    library = FaceLibrary(demo.faces + extra.faces, demo.origin, demo.skipped + extra.skipped)
    check_writable(crops, "folder", "--out")
    with OutputLock(crops, "md-csd pretrain"):
        splits = corpus_splits(demo, extra, config.data_seed)
        write_corpus(library, _corpus_config(config, crops), splits)
        say("3/4 landmarks, held-out fakes ...", flush=True)
        add_landmarks(crops)
        makers = {"SBI": sbi_crops}
        makers.update(
            {f: (lambda *a, f=f: corpus_fake(f, *a)) for f in CORPUS_FAKES}
        )  # fmt: skip
        write_corpus_fakes(crops, makers, seed=config.data_seed)
        manifest, _, _ = rebuild_manifest(crops)
        add_landmarks(crops)  # the consolidated landmarks.npz, now with the fakes' folders
    return Path(manifest)


def train_config(config: PretrainConfig, manifest: Path, out: Path, **changes):
    """The `TrainConfig` of a pretraining run (everything else is the detector's recipe)."""
    from md_csd_tf.training.config import TrainConfig

    return TrainConfig(
        manifest=str(manifest),
        out_dir=str(out / "runs" / config.name),
        dataset=None,  # all of them: the corpus trains, the stand-ins join validation
        compression=None,
        methods=None,
        detector=config.detector,
        model_options=dict(config.model_options),  # checked against the detector's options
        image_size=config.image_size,
        weights=None,  # no download: from random weights
        bn_momentum=config.bn_momentum,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        batch_size=config.batch_size,
        base_lr=config.base_lr,
        constant_lr=config.constant_lr or None,  # None: the recipe's schedule
        fakes=config.fakes,
        pair_augment=config.pair_augment,
        select_by=config.select_by,
        threshold_rule=config.threshold_rule,
        seed=config.seed,
        shuffle_labels=config.shuffle_labels or None,
        run_eagerly=config.smoke,
        verbose=0 if config.smoke else 2,
        **changes,
    )


def evaluate_run(model_path: Path, manifest: Path, out: Path, batch_size: int = 64) -> dict:
    """Scores the test split of every dataset with the model's own threshold; writes
    `out/test/<dataset>/` and returns the summary (also `out/summary.json` and `summary.md`)."""
    from md_csd_tf.data.manifest import read_manifest, select
    from md_csd_tf.errors import UserError
    from md_csd_tf.evaluation.evaluate import evaluate_model
    from md_csd_tf.models.saving import get_metadata, load_model

    model = load_model(model_path, compile=False)
    threshold = float(get_metadata(model).get("threshold", 0.5))
    table = read_manifest(manifest)
    summary = {"model": str(model_path), "threshold": threshold, "datasets": {}}
    for dataset in TEST_DATASETS:
        try:
            frames = select(table, split="test", dataset=dataset)
        except UserError:
            continue
        folder = out / "test" / dataset
        result = evaluate_model(model, frames, folder, batch_size, threshold=threshold, verbose=0)
        summary["datasets"][dataset] = _dataset_summary(
            result, folder / "predictions.csv", threshold
        )
    atomic_write_json(out / "summary.json", summary)
    atomic_write_text(out / "summary.md", format_summary(summary))
    return summary


def _dataset_summary(result: dict, predictions: Path, threshold: float) -> dict:
    """Per fake family: frame and video AUC; for the reals: videos, mean P(fake), false alarms."""
    import pandas as pd

    from md_csd_tf.evaluation.metrics import aggregate_videos

    scored = pd.read_csv(predictions, dtype={"video_id": str})
    videos = aggregate_videos(scored)
    reals = videos[videos["label"] == 0]
    families = {
        method: {
            "frame_auc": result["frame"]["per_manipulation"][method]["auc"],
            "video_auc": result["video"]["per_manipulation"].get(method, {}).get("auc"),
            "videos": int((videos["method"] == method).sum()),
        }
        for method in result["frame"]["per_manipulation"]
    }
    return {
        "frame_auc": result["frame"]["overall"]["auc"],
        "video_auc": result["video"]["overall"]["auc"],
        "real_videos": int(len(reals)),
        "real_mean_fake_probability": float(reals["prob"].mean()) if len(reals) else None,
        "real_false_positive_rate": float((reals["prob"] > threshold).mean())
        if len(reals)
        else None,
        "fake_videos": int((videos["label"] == 1).sum()),
        "families": families,
    }


def format_summary(summary: dict) -> str:
    """The summary as Markdown tables: one row per dataset, then one per fake family."""

    def number(x):
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"

    lines = [
        f"Held-out test of `{summary['model']}` (threshold {summary['threshold']:.3f}):",
        "",
        "| test set | frame AUC | video AUC | real videos | real mean P(fake) | real FPR | fake videos |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, d in summary["datasets"].items():
        lines.append(
            f"| {name} | {number(d['frame_auc'])} | {number(d['video_auc'])} | {d['real_videos']} "
            f"| {number(d['real_mean_fake_probability'])} | {number(d['real_false_positive_rate'])} "
            f"| {d['fake_videos']} |"
        )
    lines += [
        "",
        "| test set | fake family | videos | frame AUC | video AUC |",
        "|---|---|---|---|---|",
    ]
    for name, d in summary["datasets"].items():
        for family, f in d["families"].items():
            lines.append(
                f"| {name} | {family} | {f['videos']} | {number(f['frame_auc'])} "
                f"| {number(f['video_auc'])} |"
            )
    return "\n".join(lines) + "\n"


def pretrain(config: PretrainConfig, out: str | Path = "pretrain_run", **changes) -> dict:
    """Data, training, calibration (inside the trainer) and the held-out test; returns the
    summary, with the run's training time and the TrainConfig it used.

    Args:
        config: the recipe (`configs.pretrain_sbi.get_config()`).
        out: the output folder (see the module doc).
        **changes: `TrainConfig` fields laid over the recipe's (e.g. `time_budget`).
    """
    from md_csd_tf.training.trainer import train

    out = Path(out)
    progress = not config.smoke
    check_writable(out, "folder", "--out")
    manifest = prepare_data(config, out, progress)
    run = out / "runs" / config.name
    settings = train_config(config, manifest, out, **changes)
    if progress:
        print("4/4 training ...", flush=True)
    began = time.perf_counter()
    result = train(settings)
    seconds = time.perf_counter() - began
    summary = evaluate_run(Path(result.best_model), manifest, run)
    state = json.loads((run / "state.json").read_text(encoding="utf-8"))
    summary.update(
        name=config.name,
        config=dataclasses.asdict(config),
        train_seconds_this_process=round(seconds, 1),
        epochs=state["epoch"],
        best_epoch=state.get("best_epoch"),
        val_auc=state.get("best_selected"),
        parameters=_parameters(result.best_model),
    )
    atomic_write_json(run / "summary.json", summary)
    return summary


def model_card(run: str | Path) -> dict:
    """The card stored in a shipped model's metadata (and shown by reports): what it is, what it
    was trained on and how, when, and its held-out figures (from the run's summary.json)."""
    run = Path(run)
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    state = json.loads((run / "state.json").read_text(encoding="utf-8"))
    recipe = summary.get("config", {})
    figures = {
        name: {k: d[k] for k in ("frame_auc", "video_auc", "real_mean_fake_probability",
                                 "real_false_positive_rate", "real_videos", "fake_videos")}
        for name, d in summary["datasets"].items()
    }  # fmt: skip
    return {
        "name": "md-csd-sbi",
        "detector": recipe.get("detector"),
        "image_size": recipe.get("image_size"),
        "parameters": summary.get("parameters"),
        "trained": time.strftime("%Y-%m-%d", time.gmtime((run / "best.keras").stat().st_mtime)),
        "training_data": (
            "real faces only: 61 people's own photographs and footage from PyPI and Debian "
            "packages (prep/real_faces.py), with self-blended pseudo-fakes (SBI) made on the "
            "fly; no fake of any real manipulation method"
        ),
        "landmarks": "MediaPipe face mesh (Apache-2.0), mapped to the 68 iBUG points",
        "recipe": "python experiments/pretrain.py (md_csd_tf/configs/pretrain_sbi.py)",
        "fakes": recipe.get("fakes"),
        "epochs": state.get("epoch"),
        "best_epoch": state.get("best_epoch"),
        "selected_by": state.get("selected_by"),
        "val_auc": state.get("best_selected"),
        "seed": config["config"].get("seed"),
        "threshold": summary.get("threshold"),
        "held_out": figures,
        "detects": "blending-based swaps and re-synthesised faces pasted into a frame",
        "never_tested_on": "fully synthesised faces (GAN, diffusion), diffusion editing, lip-sync",
        "doc": "docs/pretrained-model.md",
    }


def _parameters(path: str) -> int:
    from md_csd_tf.models.saving import load_model

    return int(load_model(path, compile=False).count_params())


def real_mean(summary: dict, dataset: str = "faces") -> float:
    """The held-out real videos' mean P(fake) of one test set (NaN when absent)."""
    value = summary["datasets"].get(dataset, {}).get("real_mean_fake_probability")
    return float("nan") if value is None else float(value)


# -- shipping: the finished run's model into the package ---------------------------------------

CAP_BYTES = 25 * 2**20  # the most a file may weigh in the repository
FLOAT16_TOLERANCE = 1e-3  # float16 storage is kept only if no score moves more than this


def ship(
    run: str | os.PathLike, name: str = DEFAULT, card: dict | None = None, check_crops=None
) -> str:
    """Copies a finished run's best.keras into the package as `name`, with `card` (and the
    run's summary.json, if any) in its metadata; returns what to record in `PRETRAINED`.

    The weights are stored in float32 when the file fits the repository's 25 MB cap, else in
    float16 (`saving.store_float16`), kept only if the scores of `check_crops` (uint8 face
    crops; required then) move by at most `FLOAT16_TOLERANCE`; a model that fits neither way is
    refused with its size.
    """
    import numpy as np

    from md_csd_tf.inference.detector import Detector
    from md_csd_tf.models.saving import load_model, read_metadata, store_float16, write_metadata

    run = Path(run)
    source = run / "best.keras"
    if not source.is_file():
        raise UserError(f"{source}: not found; train the run first (experiments/pretrain.py).")
    target = Path(str(resources.files("md_csd_tf").joinpath(f"resources/pretrained/{name}.keras")))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    metadata = read_metadata(target)
    summary = run / "summary.json"
    if summary.is_file():
        metadata["test"] = json.loads(summary.read_text(encoding="utf-8"))
    if card:
        metadata["card"] = card
    metadata["name"] = name
    metadata["storage"] = "float32"
    write_metadata(target, metadata)
    if target.stat().st_size > CAP_BYTES:
        if check_crops is None:
            target.unlink()
            raise UserError(f"{name}: over 25 MB in float32; float16 storage needs check crops")
        before = Detector(load_model(source, compile=False)).predict_crops(check_crops)
        store_float16(target)
        after = Detector(load_model(target, compile=False)).predict_crops(check_crops)
        moved = float(np.max(np.abs(after - before)))
        metadata.update(storage="float16", float16_max_score_change=moved)
        write_metadata(target, metadata)
        if moved > FLOAT16_TOLERANCE:
            target.unlink()
            raise UserError(f"{name}: float16 storage moves scores by {moved:.2g} > 1e-3")
    size = target.stat().st_size
    if size > CAP_BYTES:
        target.unlink()
        raise UserError(f"{name}: {size / 2**20:.1f} MB, over the 25 MB the repository allows.")
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    return f"{target} ({size / 2**20:.2f} MB, {metadata['storage']} weights), sha256 {digest}"
