"""Loading saved models safely, with one-line errors for files that are not ours; the metadata
md-csd-tf keeps inside a `.keras` file.

Metadata (`METADATA_FILE`, a JSON entry of the `.keras` zip beside Keras' own `config.json`,
`metadata.json` and weights, which Keras' loader ignores): what a model needs beyond its
architecture and weights, whatever the detector:

    {"threshold": 0.43, "threshold_rule": "eer", "threshold_split": "val", ...,
     "crops": {"image_size": 299, "scale": 1.3, "pick": "largest", "crops": "ffpp", ...},
     "card": {...}}          # the model card of a shipped model (`models.pretrained`)

"crops" is how `md-csd prepare` cut the training crops (its `crop_settings.json`, stored by the
trainer; absent when the crops were not cut by prepare): predict cuts faces the same way
(`inference.crops.make_cropper`, which reads it without Keras under the name `METADATA_FILE`).

`load_model` puts it on the model as `model.md_csd_metadata` (an empty dict when absent).
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import keras

# Importing registers every custom object a saved model refers to: layers and the optimizer
# (`GroupedAdam`, saved with a compiled model) here, the vote ensemble, and (at load time,
# `models.import_all`) every detector's module. All of them live at or below `models/`; the training
# callbacks are never saved in a model.
from md_csd_tf import optimizers  # noqa: F401
from md_csd_tf.errors import UserError
from md_csd_tf.files import atomic_write
from md_csd_tf.layers import cross_stitch, standardization  # noqa: F401
from md_csd_tf.models import ensemble, import_all  # noqa: F401
from md_csd_tf.models.base import DetectorModel


def load_model(path, compile: bool = True) -> keras.Model:
    """Loads a `.keras` file with safe mode on: no Python code in the file is ever run.

    Raises:
        UserError: with a one-line message naming the file when it is missing, not a `.keras`
            archive, or holds something other than a model this package can rebuild.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: model file not found; pass the best.keras of a training run.")
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"{path}: not a Keras 3 .keras archive (corrupt or another format); "
            "re-export it with model.save('model.keras')."
        )
    import_all()  # imports every detector module, registering its classes for loading
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # Keras raises many types for a foreign or damaged archive
        text = " ".join(str(error).split())
        if "safe_mode" in text or "arbitrary code execution" in text:
            # Keras' own refusal is long and invites safe_mode=False; ours never needs code.
            raise UserError(
                f"{path}: holds Python code (e.g. a Lambda layer) that safe loading refuses to "
                "run; md-csd-tf models contain none, so use a model saved by md-csd-tf."
            ) from error
        raise UserError(
            f"{path}: cannot be loaded as an md-csd-tf model ({_first_sentence(text, error)}); "
            "use a model saved by md-csd-tf."
        ) from error
    set_metadata(model, read_metadata(path))
    return model


METADATA_FILE = "md_csd_tf.json"


def read_metadata(path) -> dict:
    """The md-csd-tf metadata inside a `.keras` file ({} when it has none or is unreadable)."""
    try:
        with zipfile.ZipFile(path) as archive:
            if METADATA_FILE not in archive.namelist():
                return {}
            return json.loads(archive.read(METADATA_FILE))
    except (OSError, ValueError, zipfile.BadZipFile):
        return {}


def write_metadata(path, metadata: dict) -> None:
    """Replaces the metadata inside the `.keras` file at `path`, atomically (the file is
    rewritten under a temporary name and renamed: a reader sees the old file or the new one)."""

    def rewrite(temp) -> None:
        with zipfile.ZipFile(path) as old, zipfile.ZipFile(temp, "w") as new:
            for item in old.infolist():
                if item.filename != METADATA_FILE:
                    with old.open(item) as source, new.open(item, "w") as target:
                        shutil.copyfileobj(source, target)
            new.writestr(METADATA_FILE, json.dumps(metadata, indent=1, default=str))

    atomic_write(path, rewrite, suffix=".keras")


def save_model(model: keras.Model, path) -> None:
    """`model.save(path)` atomically, keeping the model's md-csd-tf metadata in the file."""

    def save(temp) -> None:
        model.save(temp)
        metadata = get_metadata(model)
        if metadata:
            with zipfile.ZipFile(temp, "a") as archive:
                archive.writestr(METADATA_FILE, json.dumps(metadata, indent=1, default=str))

    atomic_write(path, save, suffix=".keras")  # Keras picks the format by the suffix


def get_metadata(model) -> dict:
    """The metadata a loaded (or calibrated) model carries; {} for a fresh one."""
    return dict(getattr(model, "md_csd_metadata", None) or {})


def set_metadata(model, metadata: dict) -> None:
    # object.__setattr__: Keras would track a plain dict attribute as model state.
    object.__setattr__(model, "md_csd_metadata", dict(metadata))


def _first_sentence(text: str, error: BaseException, limit: int = 200) -> str:
    """The error's first sentence, shortened at a word (never cut mid-word) when too long."""
    sentence = text.split(". ")[0].rstrip(".") or type(error).__name__
    if len(sentence) <= limit:
        return sentence
    return sentence[:limit].rsplit(" ", 1)[0] + " ..."


def store_float16(path) -> None:
    """Rewrites the weights inside a `.keras` file as float16, atomically: half the size; they
    load back into the float32 model (Keras casts on assignment), rounded to float16's 11
    significant bits. Check the scores after (`pretraining.ship` does)."""
    import io

    import h5py
    import numpy as np

    def rewrite(temp) -> None:
        with zipfile.ZipFile(path) as old, zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as new:
            for item in old.infolist():
                raw = old.read(item)
                if item.filename == "model.weights.h5":
                    raw = _float16_h5(raw, h5py, np, io)
                new.writestr(item, raw)

    atomic_write(path, rewrite, suffix=".keras")


def _float16_h5(raw: bytes, h5py, np, io) -> bytes:
    out = io.BytesIO()
    with h5py.File(io.BytesIO(raw), "r") as source, h5py.File(out, "w") as target:
        target.attrs.update(source.attrs)

        def copy(name, item):
            if isinstance(item, h5py.Dataset):
                values = item[()]
                if getattr(values, "dtype", None) == np.float32:
                    values = values.astype(np.float16)
                target.create_dataset(name, data=values)
            else:
                target.require_group(name)
            target[name].attrs.update(item.attrs)

        source.visititems(copy)
    return out.getvalue()


# -- detectors: a `.keras` file or an ensemble run's folder ------------------------------------


def load_detector(path) -> keras.Model:
    """The detector saved at `path`, loaded for scoring (safe mode, not compiled): a `.keras`
    file saved by md-csd-tf, or the folder of an ensemble run (its members' vote). Every
    command and `inference.Detector` load models through this.

    Raises:
        UserError: missing, corrupt or foreign file, or a Keras model that is not an md-csd-tf
            detector, with a one-line message naming it.
    """
    if os.path.isdir(path):
        return load_ensemble_folder(path)
    model = load_model(path, compile=False)
    if not isinstance(model, DetectorModel):
        raise UserError(
            f"{os.fspath(path)}: a Keras model, but not an md-csd-tf detector (not a "
            "DetectorModel); pass the best.keras of an md-csd-tf training run."
        )
    return model


def load_members(paths) -> list[keras.Model]:
    """Loads saved detectors (safe mode) and names them `member_0`, `member_1`, ..."""
    return [
        ensemble.renamed(load_model(path, compile=False), f"member_{i}")
        for i, path in enumerate(paths)
    ]


def member_paths(folder: str | os.PathLike) -> list[Path]:
    """`member_<i>/best.keras` of an ensemble run folder, in member order."""
    found = [p for p in Path(folder).glob("member_*/best.keras") if p.parent.name[7:].isdigit()]
    return sorted(found, key=lambda p: int(p.parent.name[7:]))


def load_ensemble_folder(folder: str | os.PathLike) -> keras.Model:
    """The model of an ensemble run folder (`md_csd_tf.training.ensemble.train_ensemble`).

    `<folder>/best.keras` (the saved `VoteEnsemble`) when present; otherwise a `VoteEnsemble`
    of the members' `member_<i>/best.keras` found so far (e.g. while the last member trains).

    Raises:
        UserError: the folder holds neither.
    """
    folder = Path(folder)
    if (folder / "best.keras").is_file():
        return load_model(folder / "best.keras", compile=False)
    paths = member_paths(folder)
    if not paths:
        raise UserError(
            f"{folder}: no best.keras and no member_<i>/best.keras; pass the --out folder of an "
            "ensemble training or a .keras file."
        )
    return ensemble.VoteEnsemble(load_members(paths))
