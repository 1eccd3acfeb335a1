"""Grad-CAM maps and figures, the explain command, DCT spectra (Fig. 1) and the t-SNE plot."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pytest
from inference_fixtures import IMAGE_SIZE, make_model, render_face_video, write_png

from md_csd_tf import cli
from md_csd_tf.inference.detector import Detector
from md_csd_tf.inference.gradcam import GradCamExplainer
from md_csd_tf.prep import synthetic
from md_csd_tf.prep.faces import FaceCropper

METHODS = ("Face2Face", "NeuralTextures")  # the two Fig. 1 shows; neither needs a source face


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    rng = np.random.default_rng(3)
    params = synthetic.sample_params(rng, n_frames=5, size=(320, 240))
    real = synthetic.render_video(synthetic.Identity("astronaut"), params)
    boxes = synthetic.face_boxes(params)
    cropper = FaceCropper(image_size=IMAGE_SIZE)
    rows = []
    for method, frames in [("real", real)] + [
        (m, synthetic.apply_manipulation(m, real, None, boxes, np.random.default_rng(4)))
        for m in METHODS
    ]:
        for t, frame in enumerate(frames):
            crop, _ = cropper.crop_box(frame, tuple(int(v) for v in boxes[t]))
            rel = f"crops/{method}/{t:03d}.png"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            write_png(root / rel, crop)
            rows.append({"dataset": "ffpp", "split": "test",
                         "method": None if method == "real" else method, "compression": "c23",
                         "video_id": "000", "frame_index": t, "path": rel,
                         "label": int(method != "real")})  # fmt: skip
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)
    model_path = make_model(root / "tiny.keras", render_face_video())
    return {"root": root, "model": model_path, "manifest": root / "manifest.csv",
            "crop": cv2.cvtColor(cv2.imread(str(root / rows[0]["path"])), cv2.COLOR_BGR2RGB)}  # fmt: skip


@pytest.mark.slow
def test_gradcam_maps_have_crop_size_and_structure(setup):
    model = Detector.load(setup["model"]).model
    explainer = GradCamExplainer(model)
    crop = setup["crop"]
    results = {t: explainer.explain(crop, target=t) for t in ("fake", "real")}
    assert results["fake"].probability == pytest.approx(results["real"].probability)
    for branch in model.branches:
        maps = [results[t].maps[branch] for t in ("fake", "real")]
        for heat in maps:
            assert heat.shape == crop.shape[:2] and heat.dtype == np.float32
            assert heat.min() >= 0 and heat.max() <= 1
        # ReLU(sum alpha A) for "real" is ReLU(-sum alpha A) for "fake" (A >= 0): the two maps
        # are complementary, so at least one of them shows structure for each branch.
        assert max(h.std() for h in maps) > 0.01, branch
        assert any(h.max() == pytest.approx(1.0) for h in maps)
    # A larger crop gives maps at its own size.
    big = cv2.resize(crop, (100, 100))
    assert explainer.explain(big).maps["rgb"].shape == (100, 100)


@pytest.mark.slow
def test_explain_command_writes_pngs(setup, capsys):
    out = setup["root"] / "explained"
    crop_path = setup["root"] / "crops" / "real" / "000.png"
    status = cli.main(
        ["explain", "--model", str(setup["model"]), str(crop_path), "--no-detect", "--out", str(out)]
    )  # fmt: skip
    assert status == 0
    for name in ("000_crop.png", "000_gradcam_rgb.png", "000_gradcam_freq.png", "000_gradcam.png"):
        image = cv2.imread(str(out / name))
        assert image is not None and image.shape[2] == 3, name
    assert cv2.imread(str(out / "000_gradcam_rgb.png")).shape[:2] == (IMAGE_SIZE, IMAGE_SIZE)
    assert "p(fake)=" in capsys.readouterr().out


@pytest.mark.slow
def test_explain_on_a_crop_without_no_detect_suggests_it(setup, capsys):
    flat = setup["root"] / "flat.png"
    write_png(flat, np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 90, np.uint8))  # nothing to detect
    argv = ["explain", "--model", str(setup["model"]), str(flat), "--out", str(setup["root"])]
    assert cli.main(argv) == 1
    assert f"{flat}: no face found (dlib); pass --no-detect" in capsys.readouterr().err


@pytest.mark.slow
def test_spectrum_command(setup, capsys):
    out = setup["root"] / "spectrum"
    assert cli.main(["spectrum", "--data", str(setup["manifest"]), "--out", str(out)]) == 0
    summary = json.loads((out / "spectrum.json").read_text())
    assert summary["groups"] == ["real", *METHODS]
    assert summary["crops"] == {"real": 5, "Face2Face": 5, "NeuralTextures": 5}
    means = np.load(out / "spectrum_means.npy")
    assert means.shape == (3, IMAGE_SIZE, IMAGE_SIZE) and np.isfinite(means).all()
    # The DC coefficient (top-left) dominates a natural image's spectrum.
    assert (means[:, 0, 0] > means[:, -10:, -10:].mean(axis=(1, 2))).all()
    assert not np.allclose(means[0], means[2])  # NeuralTextures changes the spectrum
    for name in ("spectrum.png", "spectrum_real.png", "spectrum_diff_NeuralTextures.png"):
        assert cv2.imread(str(out / name)) is not None, name
    assert "real 5" in capsys.readouterr().out


@pytest.mark.slow
def test_tsne_command(setup):
    out = setup["root"] / "tsne"
    args = ["tsne", "--model", str(setup["model"]), "--data", str(setup["manifest"]),
            "--out", str(out), "--max-samples", "12", "--batch-size", "8"]  # fmt: skip
    assert cli.main(args) == 0
    points = pd.read_csv(out / "tsne.csv")
    assert len(points) == 12 and set(points["group"]) == {"real", *METHODS}
    assert np.isfinite(points[["x", "y"]].to_numpy()).all()
    assert cv2.imread(str(out / "tsne.png")) is not None


def test_spectrum_missing_manifest(setup, capsys):
    missing = setup["root"] / "nothere.csv"
    assert cli.main(["spectrum", "--data", str(missing), "--out", str(setup["root"])]) == 2
    assert str(missing) in capsys.readouterr().err
