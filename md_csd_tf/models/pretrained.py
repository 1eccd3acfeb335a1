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
