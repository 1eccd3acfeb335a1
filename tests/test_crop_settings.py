"""Prepare's crop settings travel: crop_settings.json -> the trainer -> the saved model's metadata
("crops") -> `Detector` / `md-csd predict`'s face cropper; models without them keep the defaults."""

import json

import pytest
from data_fixtures import tiny_train_config, write_crop_manifest

from md_csd_tf.data.manifest import CROP_SETTINGS_FILE, read_crop_settings, read_manifest
from md_csd_tf.inference.crops import make_cropper, saved_crop_settings
from md_csd_tf.prep.extract import ExtractConfig, _crop_settings
from md_csd_tf.prep.faces import FaceCropper

SIZE = 71  # the tiny manifest's crop side


def _fast_settings(tmp_path) -> dict:
    """What `md-csd prepare --crops fast --pick best --scale 1.25 --detect-max-side 320` records."""
    config = ExtractConfig(dataset="ffpp", root=str(tmp_path), out=str(tmp_path), image_size=SIZE,
                           scale=1.25, crops="fast", pick="best", detect_max_side=320)  # fmt: skip
    return _crop_settings(config)


def test_settings_become_the_cropper_and_a_given_side_overrides_them_with_a_note(tmp_path):
    settings = _fast_settings(tmp_path)
    cropper, note = make_cropper(SIZE, settings)
    assert note is None
    assert cropper == FaceCropper(image_size=SIZE, scale=1.25, detect_max_side=320, pick="best",
                                  exact=False)  # fmt: skip
    cropper, note = make_cropper(SIZE, settings, detect_max_side=None)
    assert cropper.detect_max_side is None and "320 px" in note and "--crops fast" in note
    # In "ffpp" mode the downscale only sizes a first look: the boxes do not change, no note.
    ffpp = {**settings, "crops": "ffpp"}
    cropper, note = make_cropper(SIZE, ffpp, detect_max_side=480)
    assert cropper.exact and cropper.detect_max_side == 480 and note is None
    # No settings (older models, the shipped md-csd-sbi): today's cropper, data prep's defaults.
    assert make_cropper(299, None) == (FaceCropper(image_size=299, detect_max_side=640), None)
    assert make_cropper(299, None, detect_max_side=None)[0] == FaceCropper(
        image_size=299, detect_max_side=None
    )


def test_a_folder_from_before_the_crop_modes_reads_as_fast_crops(tmp_path):
    assert read_crop_settings(tmp_path) is None
    legacy = {"image_size": SIZE, "scale": 1.3, "format": "png", "pick": "largest"}
    (tmp_path / CROP_SETTINGS_FILE).write_text(json.dumps(legacy))
    settings = read_crop_settings(tmp_path / "manifest.csv")
    assert settings["crops"] == "fast" and settings["detect_max_side"] == 640
    assert make_cropper(SIZE, settings)[0].exact is False


def test_the_shipped_model_has_no_crop_settings_and_keeps_the_default_cropper():
    from md_csd_tf.inference.detector import Detector
    from md_csd_tf.models.pretrained import path_of

    assert saved_crop_settings(path_of()) is None
    detector = Detector.pretrained()  # real-face corpus crops: FaceCropper's defaults at 299 px
    assert detector.crop_settings is None and detector.crop_note is None
    assert detector.cropper == FaceCropper(image_size=299)


@pytest.mark.slow
def test_prepare_settings_reach_the_saved_model_and_the_detector(tmp_path, capsys):
    from md_csd_tf import cli
    from md_csd_tf.inference.detector import Detector
    from md_csd_tf.models.saving import read_metadata
    from md_csd_tf.training.trainer import train

    manifest = write_crop_manifest(tmp_path / "crops", size=SIZE)
    settings = _fast_settings(tmp_path)
    (manifest.parent / CROP_SETTINGS_FILE).write_text(json.dumps(settings))
    run = tmp_path / "run"
    train(tiny_train_config(manifest, run, steps_per_epoch=1, validation_steps=1))
    for name in ("best.keras", "last.keras"):
        assert read_metadata(run / name)["crops"] == settings, name
    assert "threshold" in read_metadata(run / "best.keras")  # calibration kept them
    assert saved_crop_settings(run / "best.keras") == settings

    detector = Detector.load(run / "best.keras")
    assert detector.crop_settings == settings and detector.crop_note is None
    expected = FaceCropper(image_size=SIZE, scale=1.25, detect_max_side=320, pick="best",
                           exact=False)  # fmt: skip
    assert detector.cropper == expected
    # What predict starts cropping before the model is loaded is the same cropper.
    assert make_cropper(SIZE, saved_crop_settings(run / "best.keras"))[0] == expected
    # A user's --detect-max-side wins, with a note; so does a given cropper.
    full = Detector(detector.model, detect_max_side=None)
    assert full.cropper.detect_max_side is None and "320 px" in full.crop_note
    given = Detector(detector.model, cropper=FaceCropper(image_size=SIZE))
    assert given.cropper == FaceCropper(image_size=SIZE) and "pick best" in given.crop_note

    # md-csd predict says when --detect-max-side changes the model's boxes, and only then.
    crop = str(manifest.parent / read_manifest(manifest)["path"].iloc[0])
    best = str(run / "best.keras")
    assert cli.main(["predict", "--model", best, "--no-detect", "--quiet", crop]) == 0
    assert "note: --detect-max-side" not in capsys.readouterr().out
    assert cli.main(["predict", "--model", best, "--no-detect", "--quiet", crop,
                     "--detect-max-side", "0"]) == 0  # fmt: skip
    assert "note: --detect-max-side 0 replaces the 320 px" in capsys.readouterr().out
