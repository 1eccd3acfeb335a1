"""Jobs: a SQLite table that outlives the server, a bounded pool of workers, the scoring.

Every job is one row of `data_dir/jobs.sqlite3` (WAL mode: the page's polls read while a worker
writes). The upload is stored before the row is written and the result is written in the same
statement that marks the job done, so a server killed at any moment restarts with each job
either queued (run again from its stored upload) or finished. Rows still "running" at start were
cut off by the kill: `WorkerPool.start` puts them back in the queue.

Workers are threads sharing one loaded `Detector` (one model in memory, traced once). Scoring
goes through `inference.batch.score_inputs`, as `md-csd predict` does, so a job's row is the
one predict writes for the same file.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from md_csd_tf.inference.crops import Crop, CropStream  # OpenCV, not TensorFlow
from md_csd_tf.prep.faces import FaceCropper
from md_csd_tf.serve.uploads import now, one_line, remove_old_files

if TYPE_CHECKING:
    from md_csd_tf.inference.batch import Row
    from md_csd_tf.inference.detector import Detector

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "done", "failed")
SCORING_SHARE = 0.9  # of the progress bar; the report (Grad-CAM of a few frames) takes the rest

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    filename TEXT NOT NULL,
    path TEXT NOT NULL,
    kind TEXT NOT NULL,
    result TEXT,
    report TEXT,
    error TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL
)
"""


class JobStore:
    """The jobs table; safe to use from every thread (one connection behind a lock).

    Args:
        path: the SQLite file (created with its table if missing).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # One connection shared under the lock: SQLite serialises writers anyway, and a job's
        # few writes are tiny next to its scoring.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, fast
            self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def add(self, job_id: str, filename: str, path: str | os.PathLike, kind: str) -> dict:
        """Writes a new queued job; returns it."""
        stamp = now()
        self._run(
            "INSERT INTO jobs (id, status, filename, path, kind, message, created, updated) "
            "VALUES (?, 'queued', ?, ?, ?, 'waiting for a worker', ?, ?)",
            (job_id, filename, os.fspath(path), kind, stamp, stamp),
        )
        return self.get(job_id)

    def get(self, job_id: str) -> dict | None:
        """The job as a dict (its result parsed), or None when there is no such job."""
        rows = self._run("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if not rows:
            return None
        job = dict(rows[0])
        job["result"] = json.loads(job["result"]) if job["result"] else None
        return job

    def update(self, job_id: str, **fields) -> None:
        """Sets `fields` (status, progress, message, result, report, error) and the time."""
        if "result" in fields and fields["result"] is not None:
            fields["result"] = json.dumps(fields["result"])
        names = ", ".join(f"{name} = ?" for name in fields)
        self._run(
            f"UPDATE jobs SET {names}, updated = ? WHERE id = ?",
            (*fields.values(), now(), job_id),
        )

    def claim(self, job_id: str) -> dict | None:
        """Marks a queued job running and returns it, or None when it is not queued (swept,
        queued twice, or claimed by another worker): one statement, so two workers holding the
        same id cannot both run it."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status = 'running', progress = 0, message = 'scoring', "
                "updated = ? WHERE id = ? AND status = 'queued'",
                (now(), job_id),
            )
            if cursor.rowcount != 1:
                return None
        return self.get(job_id)

    def all_ids(self) -> set[str]:
        """Ids of every job that has a row, whatever its status."""
        return {r["id"] for r in self._run("SELECT id FROM jobs")}

    def ids(self, status: str) -> list[str]:
        """Ids of the jobs in `status`, oldest first."""
        return [
            r["id"]
            for r in self._run("SELECT id FROM jobs WHERE status = ? ORDER BY created", (status,))
        ]

    def count(self, *statuses: str) -> int:
        marks = ", ".join("?" * len(statuses))
        return self._run(f"SELECT COUNT(*) FROM jobs WHERE status IN ({marks})", statuses)[0][0]

    def requeue_running(self) -> int:
        """Puts jobs left "running" by a stopped server back in the queue; returns how many."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE jobs SET status = 'queued', progress = 0, "
                "message = 'requeued after a server restart', updated = ? "
                "WHERE status = 'running'",
                (now(),),
            )
            return cursor.rowcount

    def expired(self, before: float) -> list[dict]:
        """Finished jobs last updated before the epoch time `before`."""
        rows = self._run(
            "SELECT id, path, report FROM jobs WHERE status IN ('done', 'failed') AND updated < ?",
            (before,),
        )
        return [dict(r) for r in rows]

    def delete(self, job_id: str) -> None:
        self._run("DELETE FROM jobs WHERE id = ?", (job_id,))


def score_job(
    detector: Detector,
    path: str,
    kind: str,
    options: dict,
    on_progress: Callable[[float], None],
) -> Row:
    """Scores one stored upload as `md-csd predict` does; returns its row.

    Args:
        detector: the shared detector.
        path: the stored upload.
        kind: "image" or "video" (from its content).
        options: `score_inputs` options (frames, sampling, aggregate, threshold).
        on_progress: called with the fraction of the planned frames scored so far.

    Returns:
        The `Row` (its `error` set when the input failed).
    """
    from md_csd_tf.inference.batch import score_inputs

    inputs = [(path, kind)]
    stream = _CountingStream(
        inputs, detector.cropper, detector.track, options.get("detect", True),
        batch_size=detector.batch_size, planned=_planned_frames(path, kind, options),
        on_progress=on_progress,
        # as score_inputs settles it, or the stream is not taken over: clips follow one face
        faces="largest" if detector.pipeline.clip_frames else options.get("faces", "largest"),
        **{k: options[k] for k in ("frames", "sampling", "every_k") if k in options},
    )  # fmt: skip
    try:
        # Takes the stream over when it crops as this detector would (it does: same cropper and
        # settings), so the row is predict's; otherwise it crops anew and progress jumps at the end.
        (row,) = score_inputs(detector, inputs, progress=False, prefetch=stream, **options)
    finally:
        stream.close()
    return row


def _planned_frames(path: str, kind: str, options: dict) -> int:
    """How many frames the job will score: 1 for an image, else the sampled count."""
    if kind != "video":
        return 1
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        capture.release()
    frames = options.get("frames")
    if options.get("sampling") == "every":
        total = -(-total // int(options.get("every_k") or 1))
    if isinstance(frames, int):
        return max(min(frames, total) if total > 0 else frames, 1)
    return max(total, 1)


class _CountingStream(CropStream):
    """A `CropStream` that reports the share of the planned frames scored so far.

    Frames, not crops: with `faces="all"` a frame holds a crop per face, and counting crops
    would fill the bar after 1/N of a video with N faces. The caller scores crops in the order
    they are handed over (`scored(count)` answers the oldest `count`), so the frame of each
    handed-over crop is kept in that order until it is scored.
    """

    def __init__(self, *args, planned: int, on_progress: Callable[[float], None], **kwargs):
        super().__init__(*args, **kwargs)
        self.planned, self.on_progress = planned, on_progress
        self._handed: collections.deque[int] = collections.deque()  # frames of unscored crops
        self._frames: set[int] = set()  # frames with a scored crop (only grows: monotonic)

    def _post(self, event) -> None:
        if isinstance(event, Crop):
            self._handed.append(event.index)  # before the caller can see it
        super()._post(event)

    def scored(self, count: int) -> None:
        super().scored(count)
        for _ in range(min(count, len(self._handed))):
            self._frames.add(self._handed.popleft())
        try:
            self.on_progress(min(len(self._frames) / self.planned, 1.0))
        except Exception:  # noqa: BLE001 - progress is best effort, the scoring is not
            log.exception("recording progress failed")


_DLIB = threading.RLock()  # re-entrant: detect_every may call detect


@dataclasses.dataclass(eq=False)
class _SerialCropper(FaceCropper):
    """A `FaceCropper` whose dlib searches run one at a time, whichever thread asks.

    Every `FaceCropper` of a process shares one dlib detector (`prep.faces`), and dlib's
    detector keeps its scan in the object: two workers' crop threads searching at once abort the
    process (measured: `Fatal Python error: Aborted` inside `dlib run` with 2 workers). Only the
    search is serialised; decoding, cropping and the model still overlap across workers.
    """

    def detect(self, frame_rgb, hint=None):
        with _DLIB:
            return super().detect(frame_rgb, hint)

    def detect_every(self, frame_rgb, *args, **kwargs):
        with _DLIB:
            return super().detect_every(frame_rgb, *args, **kwargs)


def share_cropper(detector: Detector) -> None:
    """Makes `detector`'s face search safe for several worker threads (`_SerialCropper`); the
    boxes, and so the scores, stay those of its own cropper."""
    cropper = detector.cropper
    if type(cropper) is FaceCropper:
        fields = {f.name: getattr(cropper, f.name) for f in dataclasses.fields(cropper)}
        detector.cropper = _SerialCropper(**fields)
    elif not isinstance(cropper, _SerialCropper):
        log.warning("%s is not a FaceCropper: its face search is not serialised", cropper)


class WorkerPool:
    """`workers` threads running the queued jobs of `store` with one shared `run_job`.

    Args:
        store: the job table.
        run_job: `run_job(job)` scores one job and records its outcome; an exception it
            raises fails that job (with its message), never the pool.
        workers: how many jobs run at once.
    """

    def __init__(self, store: JobStore, run_job: Callable[[dict], None], workers: int = 1):
        if workers < 1:
            raise ValueError(f"workers must be positive, got {workers}")
        self.store, self.run_job, self.workers = store, run_job, int(workers)
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        # Set by `stop`: the sentinels sit behind the backlog in the FIFO queue, so without it a
        # stopping pool would run every queued job first.
        self._stopping = threading.Event()

    def start(self) -> WorkerPool:
        """Requeues jobs a stopped server left running, queues every queued job, starts."""
        requeued = self.store.requeue_running()
        if requeued:
            log.info("%d job(s) cut off by a stopped server are queued again", requeued)
        for job_id in self.store.ids("queued"):
            self._queue.put(job_id)
        for number in range(self.workers):
            thread = threading.Thread(target=self._work, name=f"md-csd-job-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def submit(self, job_id: str) -> None:
        self._queue.put(job_id)

    def stop(self, timeout: float | None = None) -> None:
        """Lets each worker finish its job, then stops them (queued jobs stay queued)."""
        self._stopping.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout)

    def _work(self) -> None:
        while not self._stopping.is_set():
            job_id = self._queue.get()
            if job_id is None or self._stopping.is_set():
                return
            job = self.store.claim(job_id)
            if job is None:  # swept, queued twice, or taken by another worker
                continue
            try:
                self.run_job(job)
            except Exception as error:  # noqa: BLE001 - one job fails, the worker goes on
                log.exception("job %s failed", job_id)
                message = one_line(str(error) or type(error).__name__)
                self.store.update(job_id, status="failed", message="failed", error=message)


class Sweeper:
    """Deletes finished jobs, their uploads and reports once older than `retention` seconds.

    Args:
        store: the job table.
        folders: where uploads and reports live (files without a row are swept by age; the
            files of a job that has a row go only with the row).
        retention: seconds a finished job is kept.
        interval: seconds between sweeps (default: a tenth of the retention, 1 s to 10 min).
    """

    def __init__(self, store: JobStore, folders, retention: float, interval: float | None = None):
        self.store, self.folders, self.retention = store, list(folders), float(retention)
        self.interval = interval or min(max(self.retention / 10, 1.0), 600.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="md-csd-sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def sweep(self) -> int:
        """One sweep now; returns how many jobs were deleted."""
        before = now() - self.retention
        old = self.store.expired(before)
        for job in old:
            for name in (job["path"], job["report"]):
                if name:
                    Path(name).unlink(missing_ok=True)
            self.store.delete(job["id"])
        # Only files without a row (a crash between the file and the row): a job's files go
        # with its row, above. A file's age says nothing about its job's (an upload waits
        # however long the server was down; a report is written after its upload).
        remove_old_files(self.folders, before, keep=self.store.all_ids())
        return len(old)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - a failed sweep is retried at the next
                log.exception("sweeping old jobs failed")
