"""Accelerator run options on tiny models: mixed precision (float16, bfloat16), XLA, spectrum in
the model. Each trains two steps, saves, and the loaded model scores like a float32 copy."""

import keras
import numpy as np
import pytest
from data_fixtures import tiny_train_config, write_crop_manifest

from md_csd_tf import load_model
from md_csd_tf.data.inputs import model_inputs
from md_csd_tf.errors import UserError
from md_csd_tf.mixed_precision import policy_name
from md_csd_tf.training.trainer import train

pytestmark = pytest.mark.slow
CROPS = np.random.default_rng(0).integers(0, 256, size=(4, 71, 71, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return str(write_crop_manifest(tmp_path_factory.mktemp("crops")))


def tiny(manifest, out, **changes):
    return tiny_train_config(manifest, out, validation_steps=1, **changes)


@pytest.mark.parametrize(
    "options, tolerance",
    [
        # float16 keeps ~3 decimal digits, bfloat16 ~2: the score of a tiny model moves by
        # about that much through the network's ~30 rounded layers.
        (dict(mixed_precision="float16"), 1e-2),
        (dict(mixed_precision="bfloat16"), 5e-2),
        # XLA with the spectrum in the model: the accelerator recipe's graph compiles.
        (dict(jit_compile=True, run_eagerly=False, spectrum_in_model=True), 1e-5),
    ],
)
def test_option_trains_two_steps_and_round_trips(manifest, tmp_path, options, tolerance):
    result = train(tiny(manifest, tmp_path, **options))
    assert np.isfinite(result.history["loss"][0])
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after the run
    # The policy is a run option, not part of the model: the saved weights are float32 and
    # the file loads as a float32 model, or under a mixed policy when one is set.
    reference = load_model(result.last_model)
    assert reference.get_layer("rgb_block1_conv1").compute_dtype == "float32"
    policy = policy_name(options.get("mixed_precision"))
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = load_model(result.last_model)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert (
        model.get_layer("rgb_block1_conv1").compute_dtype == keras.DTypePolicy(policy).compute_dtype
    )
    assert model.get_layer("fake_probability").compute_dtype == "float32"
    if options.get("spectrum_in_model"):
        assert model.spectrum_in_model and set(model_inputs(model, CROPS)) == {"rgb"}
    got = model(model_inputs(model, CROPS), training=False).numpy()
    expected = reference(model_inputs(reference, CROPS), training=False).numpy()
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, atol=tolerance)


def test_policy_names():
    assert policy_name(False) == "float32"
    assert policy_name(True) == policy_name("float16") == "mixed_float16"
    assert policy_name("bfloat16") == "mixed_bfloat16"
    with pytest.raises(UserError, match="--mixed-precision float8: choose one of"):
        policy_name("float8")
