"""68-point face landmarks for prepared crops, for the pseudo-fake generators (`data.blend`).

Layout, beside the crops that `extract.py` writes::

    OUT/<dataset>/<compression>/<method>/<video_id>/landmarks.npy   (N, 68, 2) float32
    OUT/landmarks.npz                                               path (N,), points (N, 68, 2)

Points are (x, y) divided by the crop side (0..1), in the row order of the folder's
`frames.csv`, so they stay right whatever size the pipeline resizes crops to. The consolidated
`landmarks.npz` is keyed by the manifest's `path` column.

Resumable like the crops: a finished video folder without a `landmarks.npy` matching its
`frames.csv` gets one on the next run; folders that have it are skipped. Each file is written
atomically.

Model: dlib's 68-point shape predictor (`shape_predictor_68_face_landmarks.dat`, ~100 MB), found
in the `face-recognition-models` PyPI package (MIT-licensed code) or given as a file. The model
was trained on iBUG 300-W, whose terms restrict use to non-commercial research. It runs on the
crop with the face box the crop geometry gives: `extract.py` crops 1.3x the dlib face box, so
the box is the central 1/1.3 of the crop (up to FF++'s clamping at frame edges).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from md_csd_tf.errors import UserError
from md_csd_tf.files import atomic_write

POINTS = 68
MODEL_FILE = "shape_predictor_68_face_landmarks.dat"
HINT = (
    "dlib's 68-point landmark model not found; `pip install face-recognition-models` "
    "(non-commercial licence: iBUG 300-W) or pass --landmark-model FILE"
)

# A predictor maps an RGB uint8 crop to (68, 2) points in crop pixels.
Predictor = Callable[[np.ndarray], np.ndarray]


def find_model(path: str | os.PathLike | None = None) -> Path:
    """The shape-predictor file: `path`, or the one inside `face_recognition_models`.

    Raises:
        UserError: one line saying how to get the model.
    """
    if path is not None:
        if not Path(path).is_file():
            raise UserError(f"--landmark-model {path}: file not found; {HINT}.")
        return Path(path)
    try:
        import face_recognition_models
    except ImportError as error:
        raise UserError(f"{HINT}.") from error
    found = Path(face_recognition_models.pose_predictor_model_location())
    if not found.is_file():
        raise UserError(f"{found}: missing; {HINT}.")
    return found


def dlib_predictor(model: str | os.PathLike | None = None, scale: float = 1.3) -> Predictor:
    """A predictor running dlib's shape predictor with the face box = central 1/`scale` of the
    crop (the crop rule of `prep.faces`)."""
    import dlib

    shape_predictor = dlib.shape_predictor(str(find_model(model)))

    def predict(crop: np.ndarray) -> np.ndarray:
        side = crop.shape[0]
        face = side / scale
        start = int(round((side - face) / 2))
        end = int(round(start + face))
        shape = shape_predictor(np.ascontiguousarray(crop), dlib.rectangle(start, start, end, end))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)

    return predict


def _frame_paths(folder: Path) -> list[str]:
    with open(folder / "frames.csv", newline="", encoding="utf-8") as handle:
        return [row["path"] for row in csv.DictReader(handle)]


def has_landmarks(folder: Path) -> bool:
    """True when the folder's `landmarks.npy` has one entry per `frames.csv` row."""
    try:
        points = np.load(folder / "landmarks.npy", mmap_mode="r")
        return points.shape == (len(_frame_paths(folder)), POINTS, 2)
    except (OSError, ValueError):
        return False


def video_landmarks(folder: Path, predictor: Predictor) -> np.ndarray:
    """Normalised landmarks `(N, 68, 2)` for the crops of one finished video folder."""
    import cv2

    rows = []
    for path in _frame_paths(folder):
        image = cv2.imread(str(folder / path.rsplit("/", 1)[-1]), cv2.IMREAD_COLOR)
        if image is None:
            raise UserError(f"{folder}: crop {path} unreadable; run `md-csd prepare` again.")
        crop = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        rows.append(np.asarray(predictor(crop), np.float32) / crop.shape[0])
    return np.stack(rows) if rows else np.zeros((0, POINTS, 2), np.float32)


def add_landmarks(
    out: str | os.PathLike, predictor: Predictor | None = None, model: str | None = None
) -> dict:
    """Landmarks for every finished video folder under `out` that lacks them, then the
    consolidated `OUT/landmarks.npz`.

    Args:
        out: the `md-csd prepare` output folder.
        predictor: crop -> (68, 2) pixels; None: `dlib_predictor(model)`, built only when a
            folder needs it (so a complete output folder needs no model).
        model: the shape-predictor file (None: the packaged one, see `find_model`).

    Returns:
        `{"videos": folders with landmarks, "computed": folders done now, "path": npz file}`.
    """
    from md_csd_tf.prep.extract import _finished_folders

    out = Path(out)
    folders = _finished_folders(out)
    computed = 0
    for folder in folders:
        if has_landmarks(folder):
            continue
        if predictor is None:
            predictor = dlib_predictor(model)
        points = video_landmarks(folder, predictor)
        atomic_write(folder / "landmarks.npy", lambda t, p=points: np.save(t, p), suffix=".npy")
        computed += 1
    paths, points = [], []
    for folder in folders:
        names = _frame_paths(folder)
        paths += names
        points.append(np.load(folder / "landmarks.npy"))
    stacked = np.concatenate(points) if points else np.zeros((0, POINTS, 2), np.float32)
    npz = atomic_write(
        out / "landmarks.npz",
        lambda t: np.savez(t, path=np.array(paths, dtype=str), points=stacked),
        suffix=".npz",
    )
    return {"videos": len(folders), "computed": computed, "path": str(npz)}


def read_landmarks(manifest: str | os.PathLike, paths) -> np.ndarray:
    """Normalised landmarks `(N, 68, 2)` for manifest `paths`, from `landmarks.npz` beside it.

    Raises:
        UserError: the file or some crops' landmarks are missing, with the command to run.
    """
    manifest = Path(manifest)
    folder = manifest if manifest.is_dir() else manifest.parent
    file = folder / "landmarks.npz"
    hint = (
        "run `md-csd prepare ... --landmarks` with the same --out (it adds only what is "
        "missing; it needs `pip install face-recognition-models`)"
    )
    if not file.is_file():
        raise UserError(f"{file}: not found; pseudo-fakes need face landmarks: {hint}.")
    with np.load(file) as data:
        index = {p: i for i, p in enumerate(data["path"].tolist())}
        points = data["points"]
    missing = [p for p in paths if p not in index]
    if missing:
        raise UserError(
            f"{file}: no landmarks for {len(missing)} crops (e.g. {missing[0]}); {hint}."
        )
    return points[[index[p] for p in paths]].astype(np.float32)
