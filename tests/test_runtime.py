"""The CPU serving runtime (TFLite, XNNPACK): scores equal Keras', CLI export and predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
from inference_fixtures import make_model, render_face_video, write_png

from md_csd_tf import build_detector, cli
from md_csd_tf.data.inputs import model_inputs
from md_csd_tf.errors import UserError
from md_csd_tf.inference.detector import Detector
from md_csd_tf.inference.runtime import TFLiteRuntime, export_tflite, runtime_path
from md_csd_tf.prep.faces import FaceCropper

RNG = np.random.default_rng(0)


def keras_scores(model, crops):
    return model(model_inputs(model, crops), training=False).numpy()[:, 0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("runtime")
    frames = render_face_video(seed=2)
    model_path = make_model(root / "tiny.keras", frames)  # MD-CSD, head sharpened on faces
    out = root / "tiny.tflite"
    assert (
        cli.main(["export", "--model", str(model_path), "--runtime", "tflite", "--out", str(out)])
        == 0
    )
    cropper = FaceCropper(image_size=71)
    faces = np.stack([c for c in (cropper.crop(f)[0] for f in frames[:4]) if c is not None])
    return {
        "model": model_path,
        "keras": Detector.load(model_path).model,
        "runtime": TFLiteRuntime(out),
        "faces": faces,
        "frame": frames[0],
        "root": root,
    }


@pytest.mark.slow
def test_runtime_scores_equal_keras_on_random_crops_and_faces(exported):
    model, runtime = exported["keras"], exported["runtime"]
    random_crops = RNG.integers(0, 256, size=(3, 71, 71, 3), dtype=np.uint8)
    for crops in (random_crops, exported["faces"]):
        expected = keras_scores(model, crops)
        got = runtime(crops)
        assert got.shape == (len(crops),) and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=1e-3)
    # The faces of a sharpened head are not all scored alike: the check above is not vacuous.
    assert np.ptp(keras_scores(model, exported["faces"])) > 1e-3


@pytest.mark.slow
def test_runtime_resizes_crops_of_another_size_inside(exported):
    model, runtime = exported["keras"], exported["runtime"]
    crops = RNG.integers(0, 256, size=(2, 90, 90, 3), dtype=np.uint8)
    np.testing.assert_allclose(runtime(crops), keras_scores(model, crops), atol=1e-3)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 71, 71, 3), np.float32),  # float pixels
        np.zeros((71, 71, 3), np.uint8),  # no batch axis
        np.zeros((2, 71, 71, 4), np.uint8),  # RGBA
        np.zeros((0, 71, 71, 3), np.uint8),  # empty
    ],
)
@pytest.mark.slow
def test_runtime_refuses_malformed_input_with_a_clear_error(exported, bad):
    with pytest.raises(UserError, match=r"expected uint8 RGB crops \(batch, height, width, 3\)"):
        exported["runtime"](bad)


def test_runtime_refuses_a_file_that_is_not_a_tflite_model(tmp_path):
    path = tmp_path / "bad.tflite"
    path.write_bytes(b"not a model")
    with pytest.raises(UserError, match="bad.tflite"):
        TFLiteRuntime(path)


@pytest.mark.slow
def test_predict_with_runtime_scores_like_keras(exported, capsys):
    image = write_png(exported["root"] / "face.png", exported["frame"])
    rows = {}
    for runtime in ("keras", "tflite"):
        out = exported["root"] / f"{runtime}.json"
        argv = ["predict", "--model", str(exported["model"]), "--runtime", runtime]
        assert cli.main([*argv, "--quiet", "--output", str(out), str(image)]) == 0
        rows[runtime] = json.loads(out.read_text())
    # The runtime model is kept beside the .keras and reused.
    assert runtime_path(exported["model"]).is_file()
    (keras_row,), (tflite_row,) = rows["keras"]["results"], rows["tflite"]["results"]
    assert keras_row["frame_indices"] == tflite_row["frame_indices"] == [0]
    assert abs(keras_row["fake_probability"] - tflite_row["fake_probability"]) < 1e-3


@pytest.mark.slow
def test_a_registry_detector_without_a_spectrum_exports_too(tmp_path):
    model = build_detector("meso4", image_size=64)
    crops = RNG.integers(0, 256, size=(2, 64, 64, 3), dtype=np.uint8)
    runtime = TFLiteRuntime(export_tflite(model, tmp_path / "meso.tflite"))
    np.testing.assert_allclose(runtime(crops), keras_scores(model, crops), atol=1e-3)


def test_runtime_uses_every_core_unless_told(tmp_path, monkeypatch):
    import tensorflow as tf

    from md_csd_tf.inference import runtime as runtime_module

    # A one-op model (seconds less than a detector's export): the threads are the runtime's.
    mean = tf.function(lambda crops: tf.reduce_mean(tf.cast(crops, tf.float32), axis=[1, 2, 3]))
    spec = tf.TensorSpec((None, 8, 8, 3), tf.uint8)
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [mean.get_concrete_function(spec)], mean
    )
    path = tmp_path / "mean.tflite"
    path.write_bytes(converter.convert())
    made = []
    real = tf.lite.Interpreter

    def spy(**kwargs):
        made.append(kwargs["num_threads"])
        return real(**kwargs)

    monkeypatch.setattr(tf.lite, "Interpreter", spy)
    monkeypatch.setattr(runtime_module, "cpu_cores", lambda: 7)
    runtime = TFLiteRuntime(path)
    assert runtime.num_threads == 7 and made == [7]
    np.testing.assert_allclose(runtime(np.full((2, 8, 8, 3), 3, np.uint8)), [3.0, 3.0])
    assert TFLiteRuntime(path, num_threads=1).num_threads == 1 and made == [7, 1]
    assert runtime_module.cpu_cores() >= 1
