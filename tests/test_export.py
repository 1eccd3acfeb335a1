"""The serving SavedModel: signature, and scores equal to the Keras model's and the CLI's."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from inference_fixtures import make_model, render_face_video

from md_csd_tf import cli
from md_csd_tf.data.inputs import model_inputs
from md_csd_tf.inference.detector import Detector
from md_csd_tf.prep.faces import FaceCropper


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    frames = render_face_video(seed=1)
    model_path = make_model(root / "tiny.keras", frames)
    assert cli.main(["export", "--model", str(model_path), "--out", str(root / "served")]) == 0
    cropper = FaceCropper(image_size=71)
    crops = np.stack([c for c in (cropper.crop(f)[0] for f in frames[:5]) if c is not None])
    # Loading a SavedModel costs seconds (it restores the traced graphs): once per module.
    served = tf.saved_model.load(str(root / "served"))
    return {"model": model_path, "dir": root / "served", "crops": crops, "served": served}


def test_savedmodel_matches_keras_and_api(exported):
    crops = exported["crops"]
    signature = exported["served"].signatures["serving_default"]
    spec = signature.structured_input_signature[1]["crops"]
    assert spec.dtype == tf.uint8 and spec.shape.as_list() == [None, None, None, 3]
    got = signature(crops=tf.constant(crops))["fake_probability"].numpy()
    detector = Detector.load(exported["model"], batch_size=8)
    # The Keras model called eagerly (model.predict would trace a predict function: seconds).
    keras_scores = detector.model(model_inputs(detector.model, crops), training=False)
    keras_scores = keras_scores.numpy()[:, 0]
    assert got.shape == (len(crops),)
    np.testing.assert_allclose(got, keras_scores, atol=1e-5)
    np.testing.assert_allclose(detector.predict_crops(crops), keras_scores, atol=1e-5)
    assert got.std() > 0.01  # the scores differ, so the agreement means something


def test_savedmodel_resizes_other_sizes(exported):
    big = tf.image.resize(exported["crops"][:2], (142, 142), method="nearest")
    scores = exported["served"].serve(tf.cast(big, tf.uint8))["fake_probability"].numpy()
    assert scores.shape == (2,) and np.all((scores > 0) & (scores < 1))


def test_export_refuses_to_overwrite(exported, capsys):
    args = ["export", "--model", str(exported["model"]), "--out", str(exported["dir"])]
    assert cli.main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
