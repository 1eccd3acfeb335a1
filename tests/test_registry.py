"""Every registered detector, one parametrized test each (timm's pattern): builds small, forward
without NaNs, a few training steps lower the loss, `.keras` round trip, SavedModel export; and
the registry's listing and recipes."""

import numpy as np
import pytest
import tensorflow as tf

from md_csd_tf.data.inputs import model_inputs
from md_csd_tf.errors import UserError
from md_csd_tf.models import registry
from md_csd_tf.models.registry import get_entry, list_detectors, recipe_of
from md_csd_tf.training.compile import compile_detector

SIZE = 71  # the smallest input every backbone takes (Xception's minimum)


def tiny_batch():
    """Four crops, two real and two fake, the fakes with a high-frequency patch."""
    rng = np.random.default_rng(0)
    crops = rng.integers(60, 200, size=(4, SIZE, SIZE, 3)).astype(np.uint8)
    checker = (np.indices((SIZE, SIZE)).sum(axis=0) % 2 * 60).astype(np.uint8)
    crops[2:, 20:50, 20:50] = np.clip(crops[2:, 20:50, 20:50] + checker[20:50, 20:50, None], 0, 255)
    return crops, np.array([0, 0, 1, 1], np.float32)


def build_small(name):
    """The detector at 71 px with its backbone cut short where a builder allows it (Xception
    without middle-flow blocks; a clip detector on clips of 2 frames with ResNet-50's first
    stage): the contract is the same, the graphs to trace are a fraction of the size."""
    entry = get_entry(name)
    options = {"image_size": SIZE, "weights": None}
    if "middle_blocks" in entry.options:
        options["middle_blocks"] = 0
    if entry.recipe.clip_frames:
        options.update(clip_frames=2, resnet_stages=1)
    return entry.build(**options)


@pytest.mark.slow
@pytest.mark.parametrize("name", list_detectors())
def test_every_detector_trains_saves_and_exports(name, tmp_path):
    from md_csd_tf.inference.export import export_saved_model
    from md_csd_tf.models.saving import load_model

    tf.keras.utils.set_random_seed(0)
    model = build_small(name)
    recipe = recipe_of(model)
    assert model.detector == name and model.image_size == SIZE
    assert tuple(model.branches) == tuple(recipe.inputs)
    crops, labels = tiny_batch()
    if recipe.clip_frames:  # a clip detector reads (4, T, ...): each crop drifting over T frames
        crops = np.stack([np.roll(crops, t, axis=2) for t in range(model.clip_frames)], axis=1)
    inputs = model_inputs(model, crops)
    probs = model(inputs, training=False).numpy()
    assert probs.shape == (4, 1) and np.all(np.isfinite(probs))
    assert np.all((probs >= 0) & (probs <= 1))  # P(fake), label 1 = fake

    compile_detector(model, recipe.loss, 1e-3, recipe.second_learning_rate and 1e-3)
    # EfficientNet-B4 trains with Keras' own train step, whose graph for B4 takes longer to trace
    # than its twelve steps take eagerly; the detectors with train steps of their own trace them.
    model.run_eagerly = name == "efficientnet_b4"
    history = model.fit(inputs, labels, batch_size=4, epochs=12, verbose=0).history["loss"]
    # Dropout and batch statistics of 4 crops make single steps noisy: compare the ends.
    assert np.mean(history[-3:]) < np.mean(history[:3]), history

    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", compile=False)
    expected = model(inputs, training=False).numpy()
    # Not a constant: a model whose every score is the same (a frozen random stem) learns nothing.
    assert np.ptp(probs) > 0 or np.ptp(expected) > 1e-4
    np.testing.assert_allclose(loaded(model_inputs(loaded, crops), training=False), expected,
                               atol=1e-5)  # fmt: skip
    assert loaded.detector == name

    served = tf.saved_model.load(str(export_saved_model(loaded, tmp_path / "served")))
    got = served.serve(tf.constant(crops))["fake_probability"].numpy()
    np.testing.assert_allclose(got, expected[:, 0], atol=1e-4)


def test_registry_lists_md_csd_and_its_variants_with_paper_recipes():
    names = list_detectors()
    assert names[:5] == ["md_csd", "md_csd_one_stitch", "md_csd_concat", "md_csd_freq",
                         "md_csd_rgb"]  # fmt: skip
    recipe = get_entry("md_csd").recipe
    assert (recipe.learning_rate, recipe.second_learning_rate, recipe.batch_size) == (
        2e-4,
        1e-3,
        32,
    )
    assert recipe.plateau == (0.2, 3) and recipe.image_size == 299
    assert get_entry("md_csd_rgb").recipe.inputs == ("rgb",)
    assert get_entry("md_csd_freq").recipe.init == "imagenet"  # its builder ignores it: no RGB
    for name in names:
        entry = get_entry(name)
        assert (
            entry.recipe.paper
            and entry.summary
            and entry.recipe.video_aggregate in ("mean", "vote")
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_detectors() if get_entry(n).recipe.parameters])
def test_recorded_parameter_counts(name):
    entry = get_entry(name)
    model = entry.build(weights=None)
    assert model.count_params() == entry.recipe.parameters


def test_unknown_detector_is_one_line():
    from md_csd_tf.errors import UserError

    with pytest.raises(UserError, match="unknown detector 'nope'; choose one of md_csd"):
        get_entry("nope")


def test_listing_and_pretrained_mesonet_from_the_command_line(tmp_path, capsys):
    import cv2
    from skimage import data

    from md_csd_tf import cli

    assert cli.main(["detectors"]) == 0
    listing = capsys.readouterr().out
    assert "meso4" in listing and "mesonet-df" in listing and "50,119,783" in listing
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    code = cli.main(["predict", "--detector", "meso4", "--weights", "mesonet-df", str(image),
                     "--output", str(tmp_path / "scores.csv")])  # fmt: skip
    assert code == 0
    import pandas as pd

    (row,) = pd.read_csv(tmp_path / "scores.csv").to_dict("records")
    assert 0 <= row["fake_probability"] <= 1 and row["verdict"] in ("real", "fake")
    # --detector without --weights (or the reverse) is a one-line error; no model at all is the
    # shipped detector (tests/test_pretrained.py).
    assert cli.main(["predict", "--detector", "meso4", str(image)]) == 2
    assert "--detector NAME with --weights" in capsys.readouterr().err


@pytest.mark.slow
def test_bn_momentum_reaches_every_batchnorm_and_the_traced_train_step():
    """A detector without a `bn_momentum` builder option gets it on every BatchNorm layer, nested
    ones included, and the traced train step uses it: after one step from zero moving means,
    momentum 0 leaves the batch mean and Keras' 0.99 a hundredth of it."""

    from md_csd_tf.models.registry import set_batchnorm_momentum

    nested = get_entry("dual_level").build(
        image_size=32, weights=None, clip_frames=2, resnet_stages=1
    )
    count = set_batchnorm_momentum(nested, 0.5)
    walked = list(_batchnorms(nested))  # through `.layers`, model by nested model
    assert count == len(walked) > 0 and {layer.momentum for layer in walked} == {0.5}

    crops, labels = tiny_batch()
    means = {}
    for momentum in (0.0, None):
        tf.keras.utils.set_random_seed(0)
        model = build_small("meso4")
        if momentum is not None:
            set_batchnorm_momentum(model, momentum)
        compile_detector(model, "bce", 1e-3)
        model.fit(model_inputs(model, crops), labels, batch_size=4, epochs=1, verbose=0)
        first = next(_batchnorms(model))
        means[momentum] = first.moving_mean.numpy()
    assert np.abs(means[0.0]).max() > 1e-3
    np.testing.assert_allclose(means[None], (1 - 0.99) * means[0.0], rtol=1e-3, atol=1e-7)


def _batchnorms(layer):
    import keras

    if isinstance(layer, keras.layers.BatchNormalization):
        yield layer
    wrapped = [layer.layer] if hasattr(layer, "layer") else []  # TimeDistributed and the like
    for sub in [*getattr(layer, "layers", []), *wrapped]:
        yield from _batchnorms(sub)


def test_model_options_are_declared_once_with_their_type_and_range():
    """Each entry declares its builder options (`registry.Option`); a value is checked against
    the declaration and an error names the range or the detector's options."""
    md_csd = registry.get_entry("md_csd")
    assert list(md_csd.options) == [
        "transform", "middle_blocks", "head", "bn_momentum", "spectrum_in_model"
    ]  # fmt: skip
    assert md_csd.options["middle_blocks"].parse("0") == 0
    assert md_csd.options["spectrum_in_model"].parse("true") is True
    assert md_csd.check_options({"bn_momentum": 0.9, "head": "pooled"}) == {
        "bn_momentum": 0.9, "head": "pooled"
    }  # fmt: skip
    with pytest.raises(UserError, match=r"middle_blocks=9: expected an integer from 0 to 8"):
        md_csd.check_options({"middle_blocks": 9})
    with pytest.raises(UserError, match=r"transform='x': expected one of dct, fft, dwt"):
        md_csd.check_options({"transform": "x"})
    with pytest.raises(UserError, match=r"bn_momentum=1.0: expected a number in \[0.0, 1.0\)"):
        md_csd.check_options({"bn_momentum": 1.0})
    with pytest.raises(UserError, match=r"has no model option depth; its options: transform, "):
        md_csd.check_options({"depth": 3})
    # Every detector takes the common bn_momentum (set on its BatchNorm layers after building).
    assert list(registry.get_entry("xception").accepted()) == ["bn_momentum"]
    clip = registry.get_entry("dual_level").options["clip_frames"]
    with pytest.raises(UserError, match=r"clip_frames=1: expected an integer >= 2"):
        clip.parse("1")
    with pytest.raises(TypeError, match="registry.Option"):
        registry.register("x", None, None, "", options=("depth",))
