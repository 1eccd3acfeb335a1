"""The `md-csd` entry point: help, version, sub-command discovery, one-line user errors."""

import os
import subprocess
import sys

import pytest

from md_csd_tf import __version__, cli

COMMANDS = {"demo", "evaluate", "explain", "export", "make-demo-data", "predict", "prepare",
            "spectrum", "train", "tsne"}  # fmt: skip


def test_version_and_help_answer_without_importing_tensorflow():
    # A fresh interpreter: `md-csd --help` must stay instant, so TensorFlow is imported lazily.
    code = (
        "import sys; from md_csd_tf import cli\n"
        "try:\n    cli.main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert f"md-csd-tf {__version__}" in out.stdout
    assert out.stdout.strip().endswith("False")


@pytest.mark.slow
def test_prepare_parses_without_tensorflow_and_others_start_quietly(tmp_path):
    # `md-csd prepare` needs no TensorFlow; a command that does must not print its C++ start-up
    # lines (oneDNN, cpu_feature_guard, absl::InitializeLog) unless asked to be verbose.
    code = (
        "import sys; from md_csd_tf import cli\n"
        "try:\n    cli.main(['prepare', '--help'])\nexcept SystemExit:\n    pass\n"
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--dataset" in out.stdout and out.stdout.strip().endswith("False")
    command = ["evaluate", "--model", str(tmp_path / "none.keras"), "--data", str(tmp_path),
               "--out", str(tmp_path)]  # fmt: skip
    run = [sys.executable, "-m", "md_csd_tf.cli"]
    quiet = subprocess.run([*run, *command], capture_output=True, text=True)
    assert quiet.returncode == 2
    assert quiet.stderr.strip().splitlines() == [quiet.stderr.strip()]  # the error line only
    assert "manifest.csv" in quiet.stderr
    # As a user's shell runs it: without the TF_CPP_MIN_LOG_LEVEL conftest sets for the tests
    # (at level 2 some CPUs' TensorFlow prints nothing at start-up to be shown).
    user = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    loud = subprocess.run([*run, "--verbose", *command], capture_output=True, text=True, env=user)
    assert loud.returncode == 2 and len(loud.stderr.strip().splitlines()) > 1


def test_every_sub_command_is_listed_in_help(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    printed = capsys.readouterr().out
    assert all(name in printed for name in COMMANDS)
    assert {
        action.dest for action in cli.build_parser()._subparsers._group_actions[0]._choices_actions
    } >= COMMANDS


def test_a_user_error_is_one_line_on_stderr_with_status_two(tmp_path, capsys):
    code = cli.main(
        [
            "evaluate",
            "--model",
            str(tmp_path / "none.keras"),
            "--data",
            str(tmp_path),
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    # The manifest is checked before the (missing) model is loaded: it is named first.
    assert (
        len(err) == 1 and str(tmp_path) in err[0] and err[0].startswith("md-csd evaluate: error:")
    )
