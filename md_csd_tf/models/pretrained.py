"""The models md-csd-tf ships, trained by the project itself (`experiments/pretrain.py`).

Each is a whole `.keras` file inside the package (architecture, weights, the decision threshold
calibrated on its validation split and its model card, in the file's metadata:
`models.saving`), known by a weights name of the registry: `md-csd predict` with no `--model`
scores with `DEFAULT`, `Detector.pretrained()` returns it, and `build_detector(detector,
weights=NAME)` loads it (to score, or to start a training run from it).

A file is checked against its recorded SHA-256 before it is loaded: a damaged install says so in
one line instead of scoring with damaged weights. The model card: docs/pretrained-model.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from importlib import resources
from pathlib import Path

from md_csd_tf.errors import UserError


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A shipped model.

    Attributes:
        name: its weights name (`--weights NAME`).
        detector: the registry detector it is an instance of.
        file: its path inside the package (an absolute path: a file elsewhere, for tests).
        sha256: the file's SHA-256.
        summary: one line for `md-csd detectors` and predict's output.
    """

    name: str
    detector: str
    file: str
    sha256: str
    summary: str


DEFAULT = "md-csd-sbi"
PRETRAINED: dict[str, Pretrained] = {}


def register(model: Pretrained) -> None:
    PRETRAINED[model.name] = model


# `python experiments/pretrain.py`, then `--ship`: the hash it prints goes here.
register(
    Pretrained(
        name=DEFAULT,
        detector="meso4",
        file="resources/pretrained/md-csd-sbi.keras",
        sha256="764864e9168a01266a322d5312fbf29b14c2a57db3be504c2691191671aff3a8",
        summary="Meso-4 at 128 px trained by md-csd-tf on real faces only with SBI pseudo-fakes "
        "(docs/pretrained-model.md)",
    )
)


def names_for(detector: str) -> list[str]:
    """The shipped models of one registry detector."""
    return [p.name for p in PRETRAINED.values() if p.detector == detector]


def path_of(name: str = DEFAULT, check: bool = True) -> Path:
    """The verified file of a shipped model.

    Raises:
        UserError: an unknown name, or a file that is missing or has another hash.
    """
    if name not in PRETRAINED:
        known = ", ".join(PRETRAINED) or "none"
        raise UserError(f"{name}: no such shipped model (shipped: {known})")
    entry = PRETRAINED[name]
    path = Path(entry.file)  # a path inside the package (or, for tests, an absolute one)
    if not path.is_absolute():
        path = Path(str(resources.files("md_csd_tf").joinpath(entry.file)))
    if check:
        if not path.is_file():
            raise UserError(f"{path}: the shipped model {name} is missing; reinstall md-csd-tf.")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry.sha256:
            raise UserError(
                f"{path}: SHA-256 {digest[:12]}... is not the shipped {name}'s "
                f"{entry.sha256[:12]}...; the install is damaged: reinstall md-csd-tf."
            )
    return path


def load_pretrained(name: str = DEFAULT):
    """The shipped model `name`, loaded (safe mode) with its threshold and card."""
    from md_csd_tf.models.saving import load_model

    return load_model(path_of(name), compile=False)


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
    import json

    import numpy as np

    from md_csd_tf.models.saving import read_metadata, store_float16, write_metadata

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
        from md_csd_tf.inference.detector import Detector
        from md_csd_tf.models.saving import load_model

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
