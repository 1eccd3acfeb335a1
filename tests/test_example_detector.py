"""The example detector of docs/detectors.md ("Adding a detector", tests/example_detector.py):
registered, built, trained two steps, saved, loaded and exported like any registry detector;
and registering it in a test does not leak into `list_detectors()`."""

import importlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from md_csd_tf.data.inputs import model_inputs
from md_csd_tf.inference.export import export_saved_model
from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.registry import (
    build_detector,
    get_entry,
    list_detectors,
    recipe_of,
    restored_registry,
)
from md_csd_tf.models.saving import load_model
from md_csd_tf.training.compile import compile_detector

EXAMPLE = Path(__file__).with_name("example_detector.py")
DOCS = Path(__file__).parents[1] / "docs" / "detectors.md"


@pytest.fixture
def example():
    """The example module, (re-)imported inside `restored_registry` so its register line runs."""
    with restored_registry():
        if "example_detector" in sys.modules:
            yield importlib.reload(sys.modules["example_detector"])
        else:
            yield importlib.import_module("example_detector")


def test_docs_show_the_example_file_verbatim():
    section = DOCS.read_text().split("## Adding a detector", 1)[1]
    block = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert block == EXAMPLE.read_text()


def test_example_trains_saves_loads_and_exports(example, tmp_path):
    assert list_detectors()[-1] == "tiny_cnn" and get_entry("tiny_cnn").build is example.build
    tf.keras.utils.set_random_seed(0)
    model = build_detector("tiny_cnn", image_size=32, weights=None, crop_size=40)
    assert isinstance(model, DetectorModel) and recipe_of(model) is example.RECIPE
    assert (model.detector, model.branches, model.crop_size) == ("tiny_cnn", ("rgb",), 40)
    assert not model.reads_clips and not model.can_freeze_backbone

    crops = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype(np.uint8)
    inputs, labels = model_inputs(model, crops), np.array([0, 1, 0, 1], np.float32)
    compile_detector(model, example.RECIPE.loss, example.RECIPE.learning_rate)
    history = model.fit(inputs, labels, batch_size=2, epochs=1, verbose=0).history
    assert model.optimizer.iterations.numpy() == 2 and np.isfinite(history["loss"][0])

    model.save(tmp_path / "tiny.keras")
    loaded = load_model(tmp_path / "tiny.keras", compile=False)
    assert type(loaded) is example.TinyCNN and loaded.get_config() == model.get_config()
    expected = model(inputs, training=False).numpy()[:, 0]
    np.testing.assert_allclose(loaded(inputs, training=False).numpy()[:, 0], expected, atol=1e-6)

    served = tf.saved_model.load(str(export_saved_model(loaded, tmp_path / "served")))
    got = served.serve(tf.constant(crops))["fake_probability"].numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_registering_in_a_test_does_not_leak():
    assert "tiny_cnn" not in list_detectors()
    with restored_registry():
        module = sys.modules.get("example_detector")
        importlib.reload(module) if module else importlib.import_module("example_detector")
        assert "tiny_cnn" in list_detectors()
    assert "tiny_cnn" not in list_detectors()


def test_the_example_option_is_checked_against_its_declaration(example):
    from md_csd_tf.errors import UserError
    from md_csd_tf.training.plan import parse_model_options

    assert parse_model_options(["width=4"], "tiny_cnn") == {"width": 4}
    assert build_detector("tiny_cnn", image_size=32, width=4).width == 4
    with pytest.raises(UserError, match="width"):
        parse_model_options(["width=0"], "tiny_cnn")
    with pytest.raises(UserError, match="tiny_cnn has no model option 'depth'"):
        parse_model_options(["depth=2"], "tiny_cnn")
