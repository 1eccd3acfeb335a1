"""xception_metric: the semi-hard triplet loss by hand, the model's facts, the majority vote and
the chunked training of its ensemble (Kumar et al., IWBF 2020; official README)."""

import dataclasses
import itertools
import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from md_csd_tf.data.manifest import CROP_SETTINGS_FILE, read_crop_settings, read_manifest
from md_csd_tf.inference.detector import Detector
from md_csd_tf.models.ensemble import MajorityVote, VoteEnsemble, renamed
from md_csd_tf.models.registry import build_detector, get_entry, recipe_of
from md_csd_tf.models.saving import load_ensemble_folder, load_members, read_metadata
from md_csd_tf.models.xception_metric import XceptionMetric, semi_hard_triplet_loss
from md_csd_tf.training.config import TrainConfig
from md_csd_tf.training.ensemble import balanced_chunks, published_chunk_count, train_ensemble
from md_csd_tf.training.trainer import TrainResult

SIZE = 71  # Xception's smallest input


# -- the triplet loss against a hand computation -------------------------------------------------


def reference_triplet_loss(labels, embeddings, margin):
    """FaceNet semi-hard triplet loss written out with loops; also counts the fallbacks."""
    labels = np.asarray(labels).reshape(-1)
    e = np.asarray(embeddings, np.float64)
    n = len(labels)
    d = np.array([[np.sum((e[i] - e[j]) ** 2) for j in range(n)] for i in range(n)])
    total, pairs, fallbacks = 0.0, 0, 0
    costs = {}
    for a, p in itertools.permutations(range(n), 2):
        negatives = [j for j in range(n) if labels[j] != labels[a]]
        if labels[p] != labels[a] or not negatives:
            continue
        farther = [d[a, j] for j in negatives if d[a, j] > d[a, p]]
        if farther:
            chosen = min(farther)
        else:
            chosen = max(d[a, j] for j in negatives)
            fallbacks += 1
        costs[a, p] = max(0.0, d[a, p] - chosen + margin)
        total += costs[a, p]
        pairs += 1
    reference_triplet_loss.costs = costs  # per (anchor, positive), for the tests to inspect
    return (total / pairs if pairs else 0.0), pairs, fallbacks


def unit(angles_degrees):
    radians = np.radians(angles_degrees)
    return np.stack([np.cos(radians), np.sin(radians)], axis=1).astype(np.float32)


def test_triplet_loss_small_batch_by_hand():
    # e0 = (1, 0), e1 = (0, 1), e2 = (-1, 0); labels 0, 0, 1. Squared distances: d01 = 2,
    # d02 = 4, d12 = 2. Pair (0, 1): the negative e2 is farther (4 > 2): semi-hard, cost
    # max(0, 2 - 4 + m). Pair (1, 0): e2 is not farther (2 = 2): fallback to the farthest
    # negative, 2, cost max(0, 2 - 2 + m) = m. e2 has no positive.
    embeddings = unit([0, 90, 180])
    labels = [0, 0, 1]
    assert float(semi_hard_triplet_loss(labels, embeddings, margin=1.0)) == pytest.approx(0.5)
    assert float(semi_hard_triplet_loss(labels, embeddings, margin=3.0)) == pytest.approx(2.0)


def test_semi_hard_negative_is_the_closest_farther_one_not_the_hardest():
    # Anchor at 0 deg, positive at 60 deg (d = 1); negatives at 30 deg (d = 0.268: hard, closer
    # than the positive) and 90 deg (d = 2: semi-hard). Semi-hard mining takes 90 deg:
    # cost max(0, 1 - 2 + 1.5) = 0.5 for that pair; hard mining would give 2.23.
    embeddings = unit([0, 60, 30, 90])
    labels = np.array([0, 0, 1, 1])
    expected, pairs, _ = reference_triplet_loss(labels, embeddings, 1.5)
    assert pairs == 4
    assert reference_triplet_loss.costs[0, 1] == pytest.approx(1.0 - 2.0 + 1.5, abs=1e-6)
    got = float(semi_hard_triplet_loss(labels, embeddings, margin=1.5))
    assert got == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_triplet_loss_matches_loops_on_random_batches(seed, margin):
    rng = np.random.default_rng(seed)
    embeddings = rng.normal(size=(10, 5)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    labels = rng.integers(0, 2, 10)
    labels[:2] = [0, 1]  # both classes present
    expected, pairs, _ = reference_triplet_loss(labels, embeddings, margin)
    assert pairs > 0
    got = float(semi_hard_triplet_loss(labels.astype(np.float32), embeddings, margin))
    assert got == pytest.approx(expected, abs=1e-5)


def test_triplet_loss_exercises_both_semi_hard_and_fallback_in_one_batch():
    rng = np.random.default_rng(7)
    embeddings = rng.normal(size=(12, 3)).astype(np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    labels = np.array([0, 1] * 6)
    expected, pairs, fallbacks = reference_triplet_loss(labels, embeddings, 1.0)
    assert 0 < fallbacks < pairs  # some pairs mined semi-hard, some fell back
    assert float(semi_hard_triplet_loss(labels, embeddings, 1.0)) == pytest.approx(
        expected, abs=1e-5
    )


def test_triplet_loss_is_zero_without_pairs_or_negatives():
    embeddings = unit([0, 45, 90, 135])
    assert float(semi_hard_triplet_loss([1, 1, 1, 1], embeddings)) == 0.0  # no negative
    assert float(semi_hard_triplet_loss([0, 1], embeddings[:2])) == 0.0  # no positive pair


# -- the model ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_detector("xception_metric", image_size=SIZE)


def _batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    x = {"rgb": rng.uniform(0, 255, (n, SIZE, SIZE, 3)).astype(np.float32)}
    y = np.array([0, 1] * (n // 2), np.float32)
    return x, y


@pytest.mark.slow
def test_contract_attributes_and_output(model):
    assert isinstance(model, XceptionMetric)
    assert model.detector == "xception_metric"
    assert model.branches == ("rgb",)
    assert model.image_size == SIZE and model.crop_size is None
    assert recipe_of(model).loss == "model"
    config = model.get_config()
    assert config["detector"] == "xception_metric" and config["branches"] == ("rgb",)
    assert XceptionMetric.from_config(config).get_config() == config
    x, _ = _batch()
    p = model.predict(x, verbose=0)
    assert p.shape == (4, 1) and p.dtype == np.float32
    assert np.all((p >= 0) & (p <= 1))
    e = model.embedding_model().predict(x, verbose=0)
    assert e.shape == (4, 512)
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


def test_parameter_count_matches_recipe_and_readme(model):
    # Xception without top 20,861,480 + Dense 2048->512 (1,049,088) + Dense 512->1 (513); the
    # README's "Training whole network (22M params)". Dense/conv counts do not depend on size.
    recipe = get_entry("xception_metric").recipe
    assert model.count_params() == recipe.parameters == 21_911_081
    backbone = keras.applications.Xception(
        include_top=False, weights=None, input_shape=(SIZE, SIZE, 3), pooling="avg"
    )
    assert model.get_layer("xception").count_params() == backbone.count_params()


@pytest.mark.slow
def test_parameter_count_at_recipe_size():
    assert build_detector("xception_metric").count_params() == 21_911_081


def test_recipe_follows_the_readme():
    recipe = get_entry("xception_metric").recipe
    assert recipe.image_size == 160 and recipe.inputs == ("rgb",)  # README: -im_size 160
    assert recipe.learning_rate == 3e-4 and recipe.batch_size == 32  # the triplet script's
    assert recipe.epochs == 50 and recipe.video_aggregate == "vote"
    assert recipe.ensemble == 4  # FF++'s 2880 fake / 720 real videos, the README's rule
    assert "2003.08645" in recipe.paper


def test_defaults_follow_the_official_code(model):
    assert model.margin == 1.0  # train_triplets_semi_hard.py: margin = 1.
    assert model.embedding_dim == 512 and model.classifier_gradient is False
    pixels = model.get_layer("xception_pixels")
    assert (pixels.scale, pixels.offset) == (1 / 127.5, -1.0)
    unit = XceptionMetric(image_size=SIZE, pixels="unit").get_layer("xception_pixels")
    assert (unit.scale, unit.offset) == (1 / 255, 0.0)
    with pytest.raises(ValueError, match="pixels"):
        XceptionMetric(image_size=SIZE, pixels="caffe")


@pytest.mark.slow
def test_evaluate_reports_the_losses_by_hand(model):
    x, y = _batch(6, seed=1)
    model.compile(keras.optimizers.Adam(1e-4), loss=None)
    logs = model.evaluate(x, y, batch_size=6, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)[:, 0]
    e = model.embedding_model().predict(x, verbose=0)
    bce = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    triplet, _, _ = reference_triplet_loss(y, e, model.margin)
    assert logs["bce_loss"] == pytest.approx(bce, rel=1e-4)
    assert logs["triplet_loss"] == pytest.approx(triplet, abs=1e-4)
    assert logs["loss"] == pytest.approx(bce + triplet, rel=1e-4, abs=1e-4)


@pytest.mark.slow
def test_fit_with_loss_none_lowers_the_loss():
    keras.utils.set_random_seed(1)
    model = build_detector("xception_metric", image_size=SIZE)
    x, y = _batch(4, seed=2)
    model.compile(keras.optimizers.Adam(1e-3), loss=None, metrics=["accuracy"])
    history = model.fit(x, y, batch_size=4, epochs=4, verbose=0).history
    assert {"loss", "triplet_loss", "bce_loss", "accuracy"} <= set(history)
    assert history["loss"][-1] < history["loss"][0]
    assert history["bce_loss"][-1] < history["bce_loss"][0]


@pytest.mark.slow
def test_detached_classifier_keeps_bce_out_of_the_embedding():
    keras.utils.set_random_seed(2)
    x, y = _batch()
    for joint in (True, False):
        model = XceptionMetric(image_size=SIZE, classifier_gradient=joint, triplet_weight=0.0)
        kernel = model.get_layer("embedding").kernel
        with tf.GradientTape() as tape:
            total = model.losses_of(x, y, training=False)[0]["loss"]
        gradient = tape.gradient(total, kernel)
        reaches = gradient is not None and float(tf.reduce_max(tf.abs(gradient))) > 0
        assert reaches == joint


@pytest.mark.slow
def test_keras_round_trip_same_predictions(model, tmp_path):
    x, _ = _batch()
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, XceptionMetric)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


# -- the vote ----------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="md_csd_tf_tests")
class TinyMember(keras.Model):
    """P(fake) = sigmoid(slope * (mean pixel / 255) + bias): outputs we choose by hand."""

    detector = "xception_metric"
    branches = ("rgb",)
    transform = "dct"

    def __init__(self, slope=0.0, bias=0.0, image_size=8, crop_size=None, name="tiny", **kw):
        inputs = {"rgb": keras.Input((image_size, image_size, 3), name="rgb")}
        mean = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs["rgb"]))
        mean = keras.layers.Dense(1, use_bias=False, trainable=False, kernel_initializer="ones")(
            mean
        )
        out = keras.layers.Dense(
            1,
            activation="sigmoid",
            kernel_initializer=keras.initializers.Constant(slope / 3.0),
            bias_initializer=keras.initializers.Constant(bias),
        )(mean)
        super().__init__(inputs, out, name=name, **kw)
        self.slope, self.bias, self.image_size, self.crop_size = slope, bias, image_size, crop_size

    def get_config(self):
        return {
            "slope": self.slope,
            "bias": self.bias,
            "image_size": self.image_size,
            "crop_size": self.crop_size,
            "name": self.name,
        }


def _logit(p):
    return float(np.log(p / (1 - p)))


def test_vote_of_fixed_outputs_by_hand():
    # Members always answering 0.9, 0.6, 0.5, 0.2: fake votes 1, 1, 0 (0.5 is not > 0.5), 0.
    probabilities = [0.9, 0.6, 0.5, 0.2]
    members = [TinyMember(bias=_logit(p), name=f"m{i}") for i, p in enumerate(probabilities)]
    vote = VoteEnsemble(members)
    x = {"rgb": np.zeros((3, 8, 8, 3), np.float32)}
    np.testing.assert_allclose(vote.predict(x, verbose=0), np.full((3, 1), 0.5))  # a tie: real
    three = VoteEnsemble(members[:3], name="three")
    np.testing.assert_allclose(three.predict(x, verbose=0), np.full((3, 1), 2 / 3), rtol=1e-6)
    assert three.ensemble == 3 and three.detector == "xception_metric"
    assert float(MajorityVote()([tf.constant([[0.51]]), tf.constant([[0.49]])])[0, 0]) == 0.5


def test_vote_per_sample_by_hand():
    # P(fake) = sigmoid(slope * brightness + bias); brightness 0, 0.5, 1 per sample.
    params = [(8.0, -2.0), (8.0, -6.0), (-8.0, 5.0)]
    members = [TinyMember(s, b, name=f"m{i}") for i, (s, b) in enumerate(params)]
    brightness = np.array([0.0, 0.5, 1.0])
    x = {"rgb": np.ones((3, 8, 8, 3), np.float32) * 255 * brightness[:, None, None, None]}
    member_p = np.stack([1 / (1 + np.exp(-(s * brightness + b))) for s, b in params])
    expected = (member_p > 0.5).mean(axis=0)  # [1/3, 2/3, 2/3]
    np.testing.assert_allclose(expected, [1 / 3, 2 / 3, 2 / 3])
    got = VoteEnsemble(members).predict(x, verbose=0)[:, 0]
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_vote_round_trip_and_detector_scores_it(tmp_path):
    params = [(8.0, -2.0), (8.0, -6.0), (-8.0, 5.0)]
    members = [TinyMember(s, b, name=f"m{i}") for i, (s, b) in enumerate(params)]
    vote = VoteEnsemble(members)
    path = tmp_path / "vote.keras"
    vote.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, VoteEnsemble) and loaded.ensemble == 3
    assert loaded.get_config()["ensemble"] == 3 and loaded.get_config()["image_size"] == 8
    assert [m.bias for m in loaded.members] == [b for _, b in params]
    crops = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (0, 128, 255)])
    expected = vote.predict({"rgb": crops.astype(np.float32)}, verbose=0)[:, 0]
    detector = Detector(loaded, batch_size=2)
    np.testing.assert_allclose(detector.predict_crops(crops), expected, rtol=1e-6)


def test_vote_refuses_mismatched_or_same_named_members():
    with pytest.raises(ValueError, match="same inputs"):
        VoteEnsemble([TinyMember(name="a"), TinyMember(image_size=16, name="b")])
    with pytest.raises(ValueError, match="distinct names"):
        VoteEnsemble([TinyMember(name="a"), TinyMember(name="a")])


@pytest.mark.slow
def test_vote_of_xception_metric_members_round_trips(tmp_path):
    keras.utils.set_random_seed(3)
    members = [
        renamed(build_detector("xception_metric", image_size=SIZE), f"member_{i}") for i in range(2)
    ]
    vote = VoteEnsemble(members)
    x, _ = _batch()
    member_p = np.stack([m.predict(x, verbose=0)[:, 0] for m in members])
    np.testing.assert_allclose(vote.predict(x, verbose=0)[:, 0], (member_p > 0.5).mean(axis=0))
    vote.save(tmp_path / "v.keras")
    loaded = keras.saving.load_model(tmp_path / "v.keras", safe_mode=True)
    for a, b in zip(loaded.members, members, strict=True):
        np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), atol=1e-6)


# -- chunks and the ensemble's training --------------------------------------------------------


def _frames(real=7, fake=17, per_video=3, split="train"):
    rows = []
    for label, count, method in ((0, real, "real"), (1, fake, "Deepfakes")):
        for v in range(count):
            for f in range(per_video):
                rows.append(
                    dict(
                        dataset="ffpp",
                        split=split,
                        method=method,
                        compression="c23",
                        video_id=f"{v:03d}",
                        frame_index=f,
                        path=f"crops/{split}/{method}/{v:03d}_{f}.png",
                        label=label,
                    )
                )
    return pd.DataFrame(rows)


def _video_ids(frame_table):
    return set(zip(frame_table["method"], frame_table["video_id"], strict=True))


def test_balanced_chunks_every_video_in_exactly_one_chunk():
    frames = _frames(real=7, fake=17)
    chunks = balanced_chunks(frames, 3, seed=0)
    assert sum(len(c) for c in chunks) == len(frames)
    ids = [_video_ids(c) for c in chunks]
    assert set.union(*ids) == _video_ids(frames)
    assert all(not (a & b) for a, b in itertools.combinations(ids, 2))
    for chunk in chunks:
        assert (chunk.groupby(["method", "video_id"]).size() == 3).all()  # frames stay together
        reals = chunk[chunk.label == 0]["video_id"].nunique()
        fakes = chunk[chunk.label == 1]["video_id"].nunique()
        assert reals in (2, 3) and fakes in (5, 6)  # floor/ceil of 7/3 and 17/3
    again = balanced_chunks(frames, 3, seed=0)
    assert all(a.equals(b) for a, b in zip(chunks, again, strict=True))
    other = balanced_chunks(frames, 3, seed=1)
    assert [_video_ids(c) for c in other] != ids


def test_balanced_chunks_published_scheme_shares_the_minority():
    frames = _frames(real=5, fake=21)
    chunks = balanced_chunks(frames, 4, seed=0, share_minority=True)
    fake_ids = [_video_ids(c[c.label == 1]) for c in chunks]
    assert all(not (a & b) for a, b in itertools.combinations(fake_ids, 2))
    assert set.union(*fake_ids) == _video_ids(frames[frames.label == 1])
    for chunk in chunks:
        assert _video_ids(chunk[chunk.label == 0]) == _video_ids(frames[frames.label == 0])
        assert chunk[chunk.label == 1]["video_id"].nunique() in (5, 6)


def test_balanced_chunks_refuses_more_chunks_than_videos():
    with pytest.raises(ValueError, match="cannot fill"):
        balanced_chunks(_frames(real=2, fake=9), 3)
    with pytest.raises(ValueError):
        balanced_chunks(_frames(), 0)


def test_published_chunk_count():
    assert published_chunk_count(_frames(real=712, fake=5299, per_video=1)) == 7  # Celeb-DF
    assert published_chunk_count(_frames(real=720, fake=2880, per_video=1)) == 4  # FF++, 4 methods
    assert published_chunk_count(_frames(real=720, fake=720, per_video=1)) == 1


@pytest.mark.slow
def test_train_ensemble_writes_chunk_manifests_and_the_vote(tmp_path):
    table = pd.concat([_frames(real=6, fake=12), _frames(real=2, fake=2, split="val")])
    (tmp_path / "data").mkdir()
    manifest = tmp_path / "data" / "manifest.csv"
    table.to_csv(manifest, index=False)
    crops = {"image_size": 8, "scale": 1.3, "format": "png", "pick": "best", "crops": "ffpp"}
    (tmp_path / "data" / CROP_SETTINGS_FILE).write_text(json.dumps(crops))
    seen = []

    def fake_train(config):
        rows = read_manifest(config.manifest)
        seen.append((config, rows))
        out = Path(config.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        bias = 2.0 if len(seen) != 2 else -2.0  # member 1 says real, the others fake
        TinyMember(bias=bias).save(out / "best.keras")
        return TrainResult(str(out), str(out / "best.keras"), str(out / "last.keras"), 1, 1.0, {})

    config = TrainConfig(manifest=str(manifest), out_dir=str(tmp_path / "run"), seed=5)
    result = train_ensemble(config, fake_train, k=3, share_minority=False)  # disjoint members

    assert [c.seed for c, _ in seen] == [5, 6, 7]
    assert [c.out_dir for c, _ in seen] == [str(tmp_path / "run" / f"member_{i}") for i in range(3)]
    train_ids = []
    for config_i, rows in seen:
        assert dataclasses.replace(
            config_i, manifest="", out_dir="", seed=0
        ) == dataclasses.replace(config, manifest="", out_dir="", seed=0)
        train = rows[rows.split == "train"]
        assert len(train[train.label == 0]) == 2 * 3 and len(train[train.label == 1]) == 4 * 3
        assert len(rows[rows.split == "val"]) == len(table[table.split == "val"])
        originals = {str((tmp_path / "data" / p).resolve()) for p in table["path"]}
        assert set(rows["path"]) <= originals  # absolute paths to the same crops
        assert list(rows["abs_path"]) == list(rows["path"])
        train_ids.append(_video_ids(train))
        assert read_crop_settings(config_i.manifest) == crops  # each member stores them
    assert all(not (a & b) for a, b in itertools.combinations(train_ids, 2))

    summary = json.loads((tmp_path / "run" / "ensemble.json").read_text())
    assert summary["k"] == 3 and len(summary["chunks"]) == 3
    vote = load_ensemble_folder(tmp_path / "run")
    assert isinstance(vote, VoteEnsemble) and vote.ensemble == 3
    assert result.best_model == str(tmp_path / "run" / "best.keras")
    assert read_metadata(result.best_model)["crops"] == crops  # predict cuts faces by them
    x = {"rgb": np.zeros((2, 8, 8, 3), np.float32)}
    np.testing.assert_allclose(vote.predict(x, verbose=0), np.full((2, 1), 2 / 3), rtol=1e-6)


def test_load_ensemble_folder_from_members_only(tmp_path):
    for i, bias in enumerate([3.0, -3.0]):
        (tmp_path / f"member_{i}").mkdir()
        TinyMember(bias=bias).save(tmp_path / f"member_{i}" / "best.keras")
    vote = load_ensemble_folder(tmp_path)
    assert [m.name for m in vote.members] == ["member_0", "member_1"]
    x = {"rgb": np.zeros((1, 8, 8, 3), np.float32)}
    assert float(vote.predict(x, verbose=0)[0, 0]) == 0.5
    assert len(load_members([tmp_path / "member_0" / "best.keras"])) == 1
    with pytest.raises(Exception, match="no best.keras"):
        load_ensemble_folder(tmp_path / "member_0" / "nothing")
