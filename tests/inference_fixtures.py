"""A tiny saved model and stand-in media (videos, images, bad files) for the inference tests.

The model is untrained, and an untrained Xception gives nearly the same pooled features for every
face: its scores would all be 0.5000 +- 1e-5, too close to tell agreement from coincidence. So the
output unit is re-scaled and centred on the stand-in faces (`sharpen_head`): scores spread over
roughly 0.3..0.7 while every layer below keeps its random weights.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import cv2
import keras
import numpy as np

from md_csd_tf.prep import synthetic

IMAGE_SIZE = 71  # Xception's minimum; builds in ~2 s with no middle-flow blocks
N_FRAMES = 8


def render_face_video(seed: int = 0, n_frames: int = N_FRAMES) -> np.ndarray:
    """uint8 RGB (T, 240, 320, 3): the astronaut's face moving over a random background."""
    rng = np.random.default_rng(seed)
    params = synthetic.sample_params(rng, n_frames=n_frames, size=(320, 240))
    return synthetic.render_video(synthetic.Identity("astronaut"), params)


def sharpen_head(model, crops: np.ndarray, spread: float = 0.5) -> None:
    """Scales and centres the output unit so scores of `crops` spread around 0.5 (see above)."""
    from md_csd_tf.data.inputs import model_inputs

    head = model.get_layer("fake_probability")
    # What the output unit reads: the concatenated branch features (after the fc layers).
    features = keras.Model(model.inputs, head.input)(model_inputs(model, crops)).numpy()
    kernel, _ = head.get_weights()
    logits = features @ kernel[:, 0]
    kernel = kernel * (spread / max(float(logits.std()), 1e-12))
    bias = -np.mean(features @ kernel[:, 0])
    head.set_weights([kernel, np.array([bias], np.float32)])


def make_model(path: Path, frames: np.ndarray) -> Path:
    """Builds, sharpens on the faces in `frames` and saves the tiny model."""
    import md_csd_tf
    from md_csd_tf.prep.faces import FaceCropper

    keras.utils.set_random_seed(0)
    model = md_csd_tf.build_model(image_size=IMAGE_SIZE, middle_blocks=0)
    cropper = FaceCropper(image_size=IMAGE_SIZE)
    crops = np.stack([c for c in (cropper.crop(f)[0] for f in frames) if c is not None])
    sharpen_head(model, crops)
    model.save(path)
    return path


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Writes RGB (or grayscale / RGBA, any depth OpenCV can write) as PNG."""
    if rgb.ndim == 3 and rgb.shape[2] == 3:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif rgb.ndim == 3 and rgb.shape[2] == 4:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), rgb), path
    return path


def make_media(root: Path, frames: np.ndarray) -> dict[str, Path]:
    """Good and bad inputs in `root/good` and `root/bad`; returns them by name."""
    good, bad = root / "good", root / "bad"
    for folder in (good / "modes", bad):
        folder.mkdir(parents=True)
    media = {}
    media["video"] = good / "clip.mp4"
    synthetic.write_video(media["video"], frames)
    face = frames[N_FRAMES // 2]
    media["image"] = write_png(good / "face.png", face)
    # Odd modes and sizes: these must be scored, not rejected.
    media["gray"] = write_png(good / "modes" / "face_gray.png", face[..., 1])
    rgba = np.dstack([face, np.full(face.shape[:2], 200, np.uint8)])
    media["rgba"] = write_png(good / "modes" / "face_rgba.png", rgba)
    media["deep"] = write_png(good / "modes" / "face_16bit.png", face.astype(np.uint16) * 257)
    media["odd"] = write_png(good / "modes" / "face_odd.png", cv2.resize(face, (333, 251)))
    # Bad inputs.
    media["text_mp4"] = bad / "notes.mp4"
    media["text_mp4"].write_text("this is not a video\n")
    media["truncated"] = bad / "truncated.mp4"
    media["truncated"].write_bytes(media["video"].read_bytes()[:1500])
    media["noise"] = write_png(
        bad / "noise.png", np.random.default_rng(1).integers(0, 256, (240, 320, 3), np.uint8)
    )
    media["flat"] = write_png(bad / "flat.png", np.full((240, 320, 3), 128, np.uint8))
    media["noface_video"] = bad / "noface.mp4"
    synthetic.write_video(media["noface_video"], np.full((6, 240, 320, 3), 90, np.uint8))
    return media


def make_bad_models(root: Path) -> dict[str, Path]:
    """A missing path, random bytes, a zip that is not a Keras archive, a foreign Keras model."""
    root.mkdir(parents=True, exist_ok=True)
    models = {"missing": root / "missing.keras"}
    models["corrupt"] = root / "corrupt.keras"
    models["corrupt"].write_bytes(np.random.default_rng(2).bytes(4096))
    models["zip"] = root / "other.keras"
    with zipfile.ZipFile(models["zip"], "w") as archive:
        archive.writestr("readme.txt", "not a model")
    models["foreign"] = root / "sequential.keras"
    foreign = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    foreign.save(models["foreign"])
    # A Lambda layer stores Python bytecode: safe mode must refuse it rather than run it.
    models["lambda"] = root / "lambda.keras"
    code = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda x: x * 2)])
    code.save(models["lambda"])
    return models
