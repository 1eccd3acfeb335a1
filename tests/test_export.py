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


@pytest.mark.slow
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


@pytest.mark.slow
def test_savedmodel_resizes_other_sizes(exported):
    big = tf.image.resize(exported["crops"][:2], (142, 142), method="nearest")
    scores = exported["served"].serve(tf.cast(big, tf.uint8))["fake_probability"].numpy()
    assert scores.shape == (2,) and np.all((scores > 0) & (scores < 1))


@pytest.mark.slow
def test_export_refuses_to_overwrite(exported, capsys):
    args = ["export", "--model", str(exported["model"]), "--out", str(exported["dir"])]
    assert cli.main(args) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.slow
def test_one_crop_to_input_path_for_every_size(exported, tmp_path):
    """A 150 px and a 400 px crop score the same through predict (arrays and --no-detect image
    files), the SavedModel and evaluation on a manifest: all resize with `resize_crop`."""
    import cv2
    import pandas as pd

    from md_csd_tf.data.manifest import read_manifest
    from md_csd_tf.evaluation.evaluate import predict_frames
    from md_csd_tf.inference.detector import Detector

    detector = Detector.load(exported["model"], batch_size=4)
    face = cv2.resize(exported["crops"][0], (480, 480), interpolation=cv2.INTER_CUBIC)
    crops = {side: cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
             for side in (150, 400)}  # fmt: skip
    rows = []
    for side, crop in crops.items():
        path = tmp_path / f"crop{side}.png"
        cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        rows.append(dict(dataset="ffpp", split="test", method="real", compression="c23",
                         video_id=f"{side}", frame_index=0, path=path.name, label=0))  # fmt: skip
    pd.DataFrame(rows).to_csv(tmp_path / "manifest.csv", index=False)
    evaluated = predict_frames(detector.model, read_manifest(tmp_path / "manifest.csv"), 4, 0)
    for i, (side, crop) in enumerate(crops.items()):
        api = float(detector.predict_crops([crop])[0])
        image = detector.predict_image(tmp_path / f"crop{side}.png", detect=False).score
        served = exported["served"].serve(tf.constant(crop[None]))["fake_probability"]
        scores = [api, image, float(served.numpy()[0]), float(evaluated["prob"][i])]
        np.testing.assert_allclose(scores, api, atol=1e-4, err_msg=f"{side} px crop")
        # The test can tell resizes apart: OpenCV's area resize scores differently.
        other = cv2.resize(crop, (71, 71), interpolation=cv2.INTER_AREA)
        assert abs(float(detector.predict_crops([other])[0]) - api) > 1e-3
