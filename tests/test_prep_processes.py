"""`md-csd prepare` as real processes: two runs on one --out, kill -9 with workers, bad --out.

These start the CLI in subprocesses (the code under test, via PYTHONPATH) on tiny stand-in
videos, because locks, orphaned workers and exit statuses only exist between processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from prep_fixtures import make_celebdf

import md_csd_tf
from md_csd_tf.files import LOCK_NAME

REPO = str(Path(md_csd_tf.__file__).resolve().parent.parent)
ENV = {**os.environ, "PYTHONPATH": REPO}


def _prepare(root, out, *extra, **popen) -> subprocess.Popen:
    argv = [sys.executable, "-m", "md_csd_tf.cli", "prepare", "--dataset", "celebdf",
            "--root", str(root), "--out", str(out), "--image-size", "32", "--quiet",
            "--splits", "train,test", *extra]  # every video, not only Celeb-DF's test list  # fmt: skip
    return subprocess.Popen(
        argv, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )


def _wait_for(condition, seconds: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _lock_holder(out: Path) -> int | None:
    try:
        return json.loads((out / LOCK_NAME).read_text() or "{}").get("pid")
    except (OSError, ValueError):
        return None


def _alive_children(pid: int) -> list[int]:
    """PIDs whose parent is `pid` and that have not exited (zombies count as exited)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_two_concurrent_prepares_one_is_refused_and_the_output_stays_whole(tmp_path):
    root = make_celebdf(tmp_path / "celeb", n=3)
    out = tmp_path / "out"
    first = _prepare(root, out, "--workers", "1")
    try:
        # Freeze the first run while it holds the lock, so the second one meets it for sure.
        _wait_for(lambda: _lock_holder(out) == first.pid, what="the first run's lock")
        first.send_signal(signal.SIGSTOP)
        second = _prepare(root, out, "--workers", "1")
        _, error = second.communicate(timeout=60)
        assert second.returncode == 2
        assert error.count("\n") == 1 and f"in use by md-csd prepare (PID {first.pid})" in error
    finally:
        first.send_signal(signal.SIGCONT)
    printed, error = first.communicate(timeout=120)
    assert first.returncode == 0, error
    assert "7 extracted" in printed
    table = pd.read_csv(out / "manifest.csv")
    assert len(table) == 7 * 3
    assert all((out / path).stat().st_size > 0 for path in table.path)
    assert not list(out.rglob("*.tmp")) and not list(out.rglob(".partial-*"))


@pytest.mark.slow
def test_kill_9_of_prepare_leaves_no_worker_behind(tmp_path):
    root = make_celebdf(tmp_path / "celeb", n=12)
    out = tmp_path / "out"
    parent = _prepare(root, out, "--workers", "2")
    try:
        # Two pool workers (the resource tracker may be a third child): wait until spawned.
        children = _wait_for(
            lambda: (c := _alive_children(parent.pid)) and len(c) >= 2 and c,
            what="the pool's workers",
        )
        time.sleep(0.5)  # let the workers' initializers start their watchers
        children = set(children) | set(_alive_children(parent.pid))
        parent.kill()
        parent.wait(timeout=10)
        _wait_for(
            lambda: not any(_alive(pid) for pid in children),
            seconds=15,
            what=f"workers {sorted(children)} to exit after their parent was killed",
        )
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    # The killed run resumes: the next run redoes what was missing and completes.
    again = _prepare(root, out, "--workers", "1")
    printed, error = again.communicate(timeout=120)
    assert again.returncode == 0, error
    assert len(pd.read_csv(out / "manifest.csv")) == 7 * 12


def test_unwritable_out_is_one_line_before_any_work(tmp_path):
    root = make_celebdf(tmp_path / "celeb", n=2)
    if os.geteuid() == 0:  # root writes through permissions: use a path under a regular file
        blocker = tmp_path / "a-file"
        blocker.write_text("")
        out = blocker / "out"
    else:
        locked = tmp_path / "read-only"
        locked.mkdir(mode=0o555)
        out = locked / "out"
    run = _prepare(root, out, "--workers", "1")
    printed, error = run.communicate(timeout=60)
    assert run.returncode == 2 and printed == ""
    assert error.count("\n") == 1 and f"--out {out}" in error and "Traceback" not in error
