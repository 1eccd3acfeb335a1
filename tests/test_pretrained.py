"""The detector md-csd-tf ships (models/pretrained.py, docs/pretrained-model.md): it loads on a
fresh install with no network, its hash is checked, it is the default of `md-csd predict` and
`Detector.pretrained()`, and it calls a real face real."""

import dataclasses
import json
import os
import subprocess
import sys

import cv2
import pytest
from skimage import data

from md_csd_tf.errors import UserError
from md_csd_tf.inference.detector import Detector
from md_csd_tf.models import pretrained
from md_csd_tf.models.saving import read_metadata


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory):
    path = tmp_path_factory.mktemp("shipped") / "astronaut.png"
    cv2.imwrite(str(path), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    return path


def test_the_shipped_model_is_registered_checked_and_carries_its_card():
    entry = pretrained.PRETRAINED[pretrained.DEFAULT]
    path = pretrained.path_of()  # checks the SHA-256
    assert path.stat().st_size <= 25 * 2**20  # the repository's cap
    metadata = read_metadata(path)
    assert 0 < metadata["threshold"] < 1 and metadata["threshold_rule"] in ("eer", "fpr")
    assert metadata["card"]["name"] == pretrained.DEFAULT
    assert metadata["card"]["training_data"] and metadata["card"]["trained"]
    from md_csd_tf.models.registry import published_weights

    assert pretrained.DEFAULT in published_weights(entry.detector)


def test_a_damaged_copy_is_refused_in_one_line(tmp_path, monkeypatch):
    damaged = tmp_path / "damaged.keras"
    raw = bytearray(pretrained.path_of().read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    entry = dataclasses.replace(pretrained.PRETRAINED[pretrained.DEFAULT], file=str(damaged))
    monkeypatch.setitem(pretrained.PRETRAINED, pretrained.DEFAULT, entry)
    with pytest.raises(UserError, match="damaged: reinstall"):
        pretrained.load_pretrained()
    damaged.unlink()
    with pytest.raises(UserError, match="missing; reinstall"):
        pretrained.load_pretrained()


def test_it_calls_a_bundled_real_face_real_with_its_calibrated_threshold(astronaut):
    detector = Detector.pretrained()
    assert detector.threshold_source.startswith("calibrated")
    result = detector.predict_image(astronaut)
    assert result.score < detector.threshold and result.verdict == "real"
    # The same model by its registry weights name.
    entry = pretrained.PRETRAINED[pretrained.DEFAULT]
    named = Detector.pretrained(entry.detector, pretrained.DEFAULT)
    assert named.predict_image(astronaut).score == pytest.approx(result.score, abs=1e-6)


@pytest.mark.slow
def test_predict_without_a_model_works_in_a_fresh_process_without_network(astronaut, tmp_path):
    out = tmp_path / "scores.json"
    # Nothing may be fetched: proxies that refuse everything, an empty cache.
    env = {**os.environ, "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
           "MD_CSD_CACHE": str(tmp_path / "empty-cache")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "md_csd_tf.cli", "predict", str(astronaut), "--output", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "md-csd-sbi" in done.stdout and "calibrated" in done.stdout
    written = json.loads(out.read_text())
    assert written["settings"]["model"].startswith(pretrained.DEFAULT)
    assert written["results"][0]["verdict"] == "real"
    assert not (tmp_path / "empty-cache").exists()


def test_every_record_of_the_shipped_file_gives_its_registered_hash():
    # The hash is written in the registry, the resource folder's README and the model card: a
    # re-shipped model with one of them left stale would mislead whoever checks the file.
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    digest = pretrained.PRETRAINED[pretrained.DEFAULT].sha256
    for record in ("md_csd_tf/resources/pretrained/README.md", "docs/pretrained-model.md"):
        assert digest in (root / record).read_text(encoding="utf-8"), record
