"""Atomic writes, the per-folder lock (with a second real process) and the writability check."""

import os
import subprocess
import sys
import time

import pytest

from md_csd_tf.errors import UserError
from md_csd_tf.files import (
    LOCK_NAME,
    OutputLock,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    check_writable,
    temporary_sibling,
)


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "table.csv"
    atomic_write_text(target, "a\n")
    atomic_write_text(target, "b\n")
    assert target.read_text() == "b\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["table.csv"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_json(target, {"auc": 0.9})
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        temp.write_text("{half")
        raise RuntimeError("killed mid-write")
    assert target.read_text().startswith('{\n  "auc": 0.9')
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_atomic_folder_replaces_an_existing_folder(tmp_path):
    target = tmp_path / "saved_model"
    target.mkdir()
    (target / "old.pb").write_text("old")
    with atomic_path(target) as temp:
        temp.mkdir()
        (temp / "new.pb").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.pb"]


def test_temporary_names_are_unique_and_hidden(tmp_path):
    names = {temporary_sibling(tmp_path / "manifest.csv").name for _ in range(50)}
    assert len(names) == 50
    assert all(n.startswith(".manifest.csv.") and str(os.getpid()) in n for n in names)


def test_second_process_is_refused_with_the_holders_pid(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from md_csd_tf.files import OutputLock\n"
            f"lock = OutputLock({str(tmp_path)!r}, 'md-csd prepare').acquire()\n"
            "print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError) as refused:
            OutputLock(tmp_path, "md-csd prepare").acquire()
        message = str(refused.value)
        assert f"PID {holder.pid}" in message and "md-csd prepare" in message
        assert "\n" not in message
    finally:
        holder.kill()
        holder.wait()
    # The OS dropped the lock with the killed process: no stale lock to clean up by hand.
    deadline = time.monotonic() + 5
    while True:
        try:
            with OutputLock(tmp_path, "md-csd prepare"):
                assert (tmp_path / LOCK_NAME).is_file()
            break
        except UserError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_lock_is_released_on_exit_and_reusable(tmp_path):
    with OutputLock(tmp_path, "a"):
        pass
    with OutputLock(tmp_path, "b"), pytest.raises(UserError, match="in use by b"):
        OutputLock(tmp_path, "c").acquire()


def test_check_writable_refuses_a_path_under_a_file(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(UserError, match="is a file") as error:
        check_writable(blocker / "out", flag="--out")
    assert "--out" in str(error.value)
    with pytest.raises(UserError, match="is a folder"):
        check_writable(tmp_path, kind="file", flag="--output")
    assert check_writable(tmp_path / "new" / "deeper").is_dir()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_check_writable_refuses_a_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(UserError, match="cannot write there"):
            check_writable(folder / "out")
    finally:
        folder.chmod(0o700)
