"""Models saved by older code keep loading and scoring as they did (tests/data/legacy/README.md).

The files were written at commit 02d044e, before `models/base.py`: their configs carry the keys of
that time (`transform` on every MesoNet, `detector`/`branches`/`transform` listed by the clip
detector, the ensemble's derived keys), which `DetectorModel.from_config` must still accept.
"""

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from md_csd_tf.data.inputs import model_inputs
from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.registry import get_entry, list_detectors
from md_csd_tf.models.saving import load_model

LEGACY = Path(__file__).parent / "data" / "legacy"
EXPECTED = json.loads((LEGACY / "expected.json").read_text())
CONFIGS = json.loads((LEGACY / "configs.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_legacy_file_loads_and_scores_as_recorded(name):
    record = EXPECTED[name]
    model = load_model(LEGACY / f"{name}.keras", compile=False)
    assert isinstance(model, DetectorModel) and model.detector == record["detector"]
    crops = np.random.default_rng(record["seed"]).integers(0, 256, size=record["input_shape"])
    scores = model(model_inputs(model, crops.astype(np.uint8)), training=False).numpy()[:, 0]
    np.testing.assert_allclose(scores, record["fake_probability"], rtol=1e-5, atol=1e-6)


def test_legacy_meso4_keeps_its_crop_size_and_contract():
    model = load_model(LEGACY / "meso4_32.keras", compile=False)
    assert (model.image_size, model.crop_size, model.branches) == (32, 40, ("rgb",))
    assert model.transform == "dct" and not model.spectrum_in_model and not model.reads_clips
    clips = load_model(LEGACY / "dual_level_32.keras", compile=False)
    assert clips.reads_clips and clips.clip_frames == 2


def test_every_detector_is_recorded():
    assert sorted(CONFIGS) == sorted(list_detectors())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_legacy_config_rebuilds_the_same_model(name):
    """Each detector's config as the old code wrote it (no weights) rebuilds with today's code:
    same options, and today's config of the rebuilt model rebuilds it again."""
    get_entry(name)  # imports the detector's module, registering its classes
    model = keras.saving.deserialize_keras_object(CONFIGS[name])
    assert model.detector == name and model.image_size == 71
    old = CONFIGS[name]["config"]
    new = model.get_config()
    for key in type(model).config_keys:
        if key in old:
            assert json.loads(json.dumps(new[key], default=list)) == old[key], key
    again = type(model).from_config(new)
    assert again.get_config() == new


@pytest.mark.slow
def test_a_run_folder_of_the_older_code_resumes(tmp_path):
    """run_meso4/ (make_legacy_run.py): one epoch of Meso-4 trained by the code at 02d044e, its
    config.json from before `model_options` and the run plan, its last.keras compiled with the
    optimizer of that time. It resumes to a second epoch with the optimizer state it saved; it
    trained at a constant rate, so it resumes only as such (--constant-lr), and says so."""
    import shutil

    from data_fixtures import tiny_train_config, write_crop_manifest

    from md_csd_tf.errors import UserError
    from md_csd_tf.training.trainer import train

    run = tmp_path / "run_meso4"
    shutil.copytree(LEGACY / "run_meso4", run)
    manifest = write_crop_manifest(tmp_path / "crops", size=32)  # the crops it was trained on
    stored = json.loads((run / "config.json").read_text())
    stored["config"]["manifest"] = str(manifest)  # the data moved with the folder
    (run / "config.json").write_text(json.dumps(stored))
    settings = dict(detector="meso4", image_size=32, middle_blocks=None, epochs=2)

    with pytest.raises(UserError, match="constant_lr.*--constant-lr"):
        train(tiny_train_config(manifest, run, **settings))
    result = train(tiny_train_config(manifest, run, constant_lr=True, **settings))
    assert result.epochs_done == 2
    resumed = load_model(run / "last.keras")
    assert int(resumed.optimizer.iterations.numpy()) == 4  # epoch 1's two steps, then two
    state = json.loads((run / "state.json").read_text())
    assert [row["epoch"] for row in state["history"]] == [1, 2]
