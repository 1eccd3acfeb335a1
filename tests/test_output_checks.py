"""Bad outputs and missing crops are refused in one line, before a model is loaded or run.

The model paths here do not exist on purpose: a command that reached the model would report
that instead, so these tests also pin the order of the checks.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from data_fixtures import write_crop_manifest

from md_csd_tf import cli


@pytest.fixture
def blocked(tmp_path):
    """A path under a regular file: unwritable even for root (permissions would not stop root)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    return blocker / "out"


def _one_error_line(capsys, command: str) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"md-csd {command}: error:"), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        ("evaluate", ["--model", "never-loaded.keras", "--data", "manifest.csv"]),
        ("export", ["--model", "never-loaded.keras"]),
        ("explain", ["--model", "never-loaded.keras", "face.png"]),
        ("tsne", ["--model", "never-loaded.keras", "--data", "manifest.csv"]),
        ("spectrum", ["--data", "manifest.csv"]),
    ],
)
def test_an_unwritable_out_is_refused_first(command, extra, blocked, capsys):
    assert cli.main([command, "--out", str(blocked), *extra]) == 2
    assert f"--out {blocked}: cannot be created" in _one_error_line(capsys, command)


def test_evaluate_on_missing_crops_is_one_line(tmp_path, capsys):
    manifest = write_crop_manifest(tmp_path / "crops", size=32)
    shutil.rmtree(tmp_path / "crops" / pd.read_csv(manifest).path[0].split("/")[0])
    argv = ["evaluate", "--model", str(tmp_path / "never-loaded.keras"), "--data", str(manifest),
            "--out", str(tmp_path / "eval")]  # fmt: skip
    assert cli.main(argv) == 2
    line = _one_error_line(capsys, "evaluate")
    assert "listed crops are missing on disk" in line and "md-csd prepare" in line


@pytest.mark.parametrize(
    ("argv", "accepted"),
    [
        (["train", "--data", "m.csv", "--out", "r", "--epochs", "-1"], "a positive integer"),
        (["train", "--data", "m.csv", "--out", "r", "--base-lr", "0"], "a number in (0.0, inf)"),
        (
            ["prepare", "--dataset", "dfd", "--root", "r", "--out", "o", "--workers", "0"],
            "a positive integer",
        ),  # fmt: skip
        (
            ["prepare", "--dataset", "dfd", "--root", "r", "--out", "o", "--jpeg-quality", "101"],
            "an integer from 1 to 100",
        ),  # fmt: skip
        (
            ["evaluate", "--model", "m", "--data", "d", "--out", "o", "--threshold", "1.5"],
            "a number in [0.0, 1.0]",
        ),  # fmt: skip
        (["predict", "--model", "m", "x.mp4", "--frames", "0"], "a positive integer"),
    ],
)
def test_numeric_options_out_of_range_exit_2_with_the_accepted_range(argv, accepted, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(argv)
    assert stopped.value.code == 2
    assert f"expected {accepted}, got" in capsys.readouterr().err
