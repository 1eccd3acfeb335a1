"""The Flask app of `md-csd serve`: the upload page, the job page and the JSON API.

    GET  /                      upload page (templates/index.html)
    GET  /jobs/<id>             one job's page: progress, then verdict and report (job.html)
    POST /api/jobs              multipart field "file" -> 202 the queued job
    GET  /api/jobs/<id>         the job: status, progress, message; result or error when over
    GET  /api/jobs/<id>/result  the row `md-csd predict --output x.json` writes (409 until done)
    GET  /api/jobs/<id>/report  the HTML report (409 until done)
    GET  /api/health            model, threshold, jobs waiting

Every error is JSON `{"error": "<one line>"}` with a fitting status (400 no or empty file, 404
unknown job, 409 not done, 413 too large, 415 not an image or video, 500 a bug); a bad input or a
failing model fails its job, never the server.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import logging
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path

from flask import Flask, jsonify, render_template, request, send_file, url_for
from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge

from md_csd_tf.files import OutputLock
from md_csd_tf.inference.batch import Row
from md_csd_tf.inference.crops import DEFAULT_FRAMES, NO_DETECT_HINT
from md_csd_tf.inference.detector import Detector
from md_csd_tf.inference.report import write_report
from md_csd_tf.serve.jobs import (
    SCORING_SHARE,
    JobStore,
    Sweeper,
    WorkerPool,
    score_job,
    share_cropper,
)
from md_csd_tf.serve.uploads import UploadError, one_line, save_upload

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"^[0-9a-f]{32}$")  # uuid4().hex
# The Host names a loopback-bound server answers to (with or without a port): a page on another
# site that makes its own name resolve to 127.0.0.1 (DNS rebinding) sends that name instead.
LOOPBACK_HOST = re.compile(r"^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d{1,5})?$", re.IGNORECASE)
# The report shows text taken from the upload (its file name): served so that nothing in it can
# run, load anything or be read as another type, even opened in its own tab.
REPORT_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; "
    "style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
}
FORM_SLACK = 1 << 20  # bytes of multipart framing allowed above the file's own limit


class Service:
    """What the app runs besides Flask: the job table, the workers and the sweeper.

    Args:
        detector: the loaded detector every worker shares.
        data_dir: holds `jobs.sqlite3`, `uploads/` and `reports/`.
        workers: jobs scored at once.
        max_upload_bytes: the largest upload accepted.
        retention: seconds a finished job (row, upload, report) is kept.
        frames: evenly spaced frames scored per video (`md-csd predict --frames`).
        model_name: how /api/health names the model.
        lock: an `OutputLock` on `data_dir` the caller already holds (the command takes it
            before loading the model, so a second server is refused at once); the service
            takes it when None, and releases it on `stop` or when it fails to start here.
    """

    def __init__(
        self,
        detector: Detector,
        data_dir: str | os.PathLike,
        workers: int = 1,
        max_upload_bytes: int = 200 << 20,
        retention: float = 24 * 3600.0,
        frames: int | None = None,
        model_name: str | None = None,
        lock: OutputLock | None = None,
    ):
        self.data_dir = Path(data_dir)
        # One server per folder: two would run the same queued jobs. An OS lock, so a server
        # killed with -9 leaves nothing to clean up.
        self.lock = lock or OutputLock(self.data_dir, "md-csd serve").acquire()
        try:
            self._setup(detector, workers, max_upload_bytes, retention, frames, model_name)
        except BaseException:
            self.lock.release()  # else the folder stays locked by a server that never ran
            raise

    def _setup(self, detector, workers, max_upload_bytes, retention, frames, model_name):
        # Our own shallow copy: `share_cropper` swaps the cropper, which must not change the
        # caller's detector (the same model and weights are shared, not copied).
        self.detector = detector = copy.copy(detector)
        self.uploads, self.reports = self.data_dir / "uploads", self.data_dir / "reports"
        for folder in (self.uploads, self.reports):
            folder.mkdir(parents=True, exist_ok=True)
        self.max_upload_bytes = int(max_upload_bytes)
        self.model_name = model_name or detector.model.name
        # predict's defaults: the detector's own video aggregation and (calibrated) threshold.
        self.options = {
            "frames": frames or DEFAULT_FRAMES,
            "sampling": "uniform",
            "aggregate": detector.recipe.video_aggregate,
            "threshold": detector.threshold,
            "detect": True,
            "faces": "all",
        }
        if workers > 1:
            share_cropper(detector)
        self.store = JobStore(self.data_dir / "jobs.sqlite3")
        self.pool = WorkerPool(self.store, self.run_job, workers)
        self.sweeper = Sweeper(self.store, [self.uploads, self.reports], retention)

    def start(self) -> Service:
        try:
            self.detector.warm_up()  # traced once here, not inside the first user's job
        except Exception:  # noqa: BLE001 - a model that fails fails its jobs, with the message
            log.exception("the model failed its warm-up call; jobs will report the failure")
        self.pool.start()
        self.sweeper.start()
        return self

    def stop(self, wait: bool = True) -> None:
        """Stops the sweeper and the workers; with `wait`, after their current job, and then
        closes the table (without, a job cut off stays "running" and runs at the next start)."""
        self.sweeper.stop()
        self.pool.stop(timeout=None if wait else 0)
        if wait:
            self.store.close()
        self.lock.release()

    def run_job(self, job: dict) -> None:
        """Scores one job and records the outcome (a `WorkerPool` worker calls it)."""
        job_id, stored, name = job["id"], job["path"], job["filename"]

        def progress(fraction: float) -> None:
            self.store.update(job_id, progress=round(SCORING_SHARE * fraction, 4))

        row = score_job(self.detector, stored, job["kind"], self.options, progress)
        # The user knows the file by its name; the generated path means nothing to them.
        row.input = name
        row.error = row.error.replace(stored, name)
        # The page has no --no-detect: its users need another way out of a face-less image.
        row.error = row.error.replace(NO_DETECT_HINT, "upload a photo or video where a face shows")
        result = dataclasses.asdict(row)  # as `md-csd predict --output x.json` writes it
        if not row.ok:
            self.store.update(
                job_id, status="failed", message="failed", error=row.error, result=result
            )
            return
        self.store.update(job_id, progress=SCORING_SHARE, message="writing the report")
        report, message = self._report(row, job_id, stored)
        self.store.update(
            job_id, status="done", progress=1.0, message=message, result=result, report=report
        )

    def _report(self, row: Row, job_id: str, stored: str) -> tuple[str | None, str]:
        """Writes the job's HTML report; returns `(path or None, status message)`. A report that
        cannot be written leaves the scores standing."""
        path = self.reports / f"{job_id}.html"
        try:
            write_report(row, self.detector, path, source=stored)
        except Exception as error:  # noqa: BLE001 - the verdict stands without its report
            log.exception("report of job %s failed", job_id)
            return None, one_line(f"done (the report failed: {error})")
        return str(path), "done"


def _iso(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).isoformat(
        timespec="seconds"
    )


def _display_name(raw: str | None) -> str:
    """The client's file name for display: its last path part, one line, at most 200 chars."""
    name = re.split(r"[\\/]", raw or "")[-1]
    return one_line(name)[:200] or "upload"


def create_app(
    detector: Detector | Callable[[], Detector],
    data_dir: str | os.PathLike,
    *,
    workers: int = 1,
    max_upload_mb: float = 200,
    retention_hours: float = 24,
    frames: int | None = None,
    model_name: str | None = None,
    start: bool = True,
    loopback: bool = True,
    lock: OutputLock | None = None,
) -> Flask:
    """The app, its job table opened and (with `start`) its workers running.

    Args:
        detector: a loaded `Detector`, or a function returning one (called once: one model
            load for every worker).
        data_dir: the folder for `jobs.sqlite3`, `uploads/` and `reports/`; jobs found
            queued or running there are run; one server per folder (`files.OutputLock`).
        workers: jobs scored at once, sharing the detector.
        max_upload_mb: the largest upload accepted (413 above).
        retention_hours: finished jobs, their uploads and reports are deleted after this.
        frames: evenly spaced frames scored per video (default: predict's, 32).
        model_name: the model's name in /api/health (default: the Keras model's name).
        start: start the workers and the sweeper (tests pass False to hold jobs queued).
        loopback: the server listens on a loopback address only: requests whose Host is not
            localhost, 127.x.x.x or [::1] are refused (400), against DNS rebinding.
        lock: an `OutputLock` on `data_dir` already held (see `Service`).

    Raises:
        UserError: another server uses `data_dir`.

    Returns:
        The Flask app; `app.extensions["md_csd"]` is its `Service` (`.stop()` on shutdown).
    """
    if callable(detector) and not isinstance(detector, Detector):
        detector = detector()
    service = Service(
        detector,
        data_dir,
        workers=workers,
        max_upload_bytes=int(max_upload_mb * 2**20),
        retention=retention_hours * 3600.0,
        frames=frames,
        model_name=model_name,
        lock=lock,
    )
    app = Flask(__name__)
    # Werkzeug refuses a larger body while reading it (413), before the file is spooled whole.
    app.config["MAX_CONTENT_LENGTH"] = service.max_upload_bytes + FORM_SLACK
    app.extensions["md_csd"] = service

    def error(status: int, message: str):
        return jsonify(error=one_line(message)), status

    def find(job_id: str) -> dict:
        job = service.store.get(job_id) if JOB_ID.match(job_id) else None
        if job is None:
            raise _NoSuchJob(job_id)
        return job

    def view(job: dict) -> dict:
        out = {
            "id": job["id"],
            "status": job["status"],
            "progress": float(job["progress"]),
            "message": job["message"],
            "filename": job["filename"],
            "created": _iso(job["created"]),
            "updated": _iso(job["updated"]),
            "links": {
                "self": url_for("job_status", job_id=job["id"]),
                "result": url_for("job_result", job_id=job["id"]),
                "report": url_for("job_report", job_id=job["id"]),
                "page": url_for("job_page", job_id=job["id"]),
            },
        }
        if job["status"] == "done":
            out["result"] = job["result"]
        if job["status"] == "failed":
            out["error"] = job["error"]
        return out

    def finished(job: dict) -> None:
        if job["status"] == "failed":
            raise _NotDone(f"job {job['id']} failed: {job['error']}")
        if job["status"] != "done":
            raise _NotDone(f"job {job['id']} is {job['status']}; poll {view(job)['links']['self']}")

    @app.before_request
    def refuse_foreign_requests():
        if loopback and not LOOPBACK_HOST.match(request.host or ""):
            return error(
                400,
                f"unexpected Host {request.host[:100]!r}: this server answers only to localhost, "
                "127.0.0.1 or [::1]",
            )
        # Another site's page can POST a form here (browsers allow cross-site form posts
        # without asking): only this server's own page may submit jobs.
        if request.method == "POST" and request.path == "/api/jobs":
            origin = request.headers.get("Origin")
            own = f"{request.scheme}://{request.host}"
            if origin is not None and origin.lower() != own.lower():
                return error(403, f"cross-site upload refused (Origin {origin[:100]!r})")
            if request.headers.get("Sec-Fetch-Site", "").lower() == "cross-site":
                return error(403, "cross-site upload refused (Sec-Fetch-Site: cross-site)")
        return None

    @app.get("/")
    def index():
        return render_template("index.html", max_upload_mb=max_upload_mb)

    @app.get("/jobs/<job_id>")
    def job_page(job_id: str):
        return render_template("job.html", job_id=find(job_id)["id"])

    @app.post("/api/jobs")
    def submit():
        upload = request.files.get("file")
        if upload is None:
            return error(400, 'no file: send the upload as the multipart form field "file"')
        name = _display_name(upload.filename)
        job_id = uuid.uuid4().hex
        try:
            path, kind = save_upload(
                upload.stream, service.uploads, job_id, name, service.max_upload_bytes
            )
        except UploadError as refused:
            return error(refused.status, str(refused))
        job = service.store.add(job_id, name, path, kind)
        service.pool.submit(job_id)
        body = view(job)
        del body["created"], body["updated"]
        response = jsonify(body)
        response.status_code = 202
        response.headers["Location"] = body["links"]["self"]
        return response

    @app.get("/api/jobs/<job_id>")
    def job_status(job_id: str):
        return jsonify(view(find(job_id)))

    @app.get("/api/jobs/<job_id>/result")
    def job_result(job_id: str):
        job = find(job_id)
        finished(job)
        return jsonify(job["result"])

    @app.get("/api/jobs/<job_id>/report")
    def job_report(job_id: str):
        job = find(job_id)
        finished(job)
        if not job["report"] or not Path(job["report"]).is_file():
            return error(404, f"job {job_id} has no report ({job['message']})")
        response = send_file(job["report"], mimetype="text/html")
        response.headers.update(REPORT_HEADERS)
        return response

    @app.get("/api/health")
    def health():
        return jsonify(
            status="ok",
            model=service.model_name,
            threshold=service.detector.threshold,
            aggregate=service.options["aggregate"],  # the page states the video rule with it
            queue=service.store.count("queued", "running"),
        )

    @app.errorhandler(_NoSuchJob)
    def no_such_job(missing: _NoSuchJob):
        return error(
            404, f"no job {str(missing)[:64]!r} (unknown id, or deleted after the retention)"
        )

    @app.errorhandler(_NotDone)
    def not_done(early: _NotDone):
        return error(409, str(early))

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_):
        return error(413, f"the upload is larger than the {max_upload_mb:g} MB limit")

    @app.errorhandler(NotFound)
    def not_found(_):
        return error(404, f"not found: {request.path[:200]} (see docs/serve.md for the API)")

    @app.errorhandler(HTTPException)
    def http_error(failure: HTTPException):
        return error(failure.code or 500, f"{failure.name}: {failure.description}")

    @app.errorhandler(Exception)
    def internal_error(failure: Exception):
        log.exception("request %s %s failed", request.method, request.path)
        return error(500, f"internal error ({type(failure).__name__}: {failure})")

    if start:
        service.start()
    return app


class _NoSuchJob(Exception):
    """No job has this id (404)."""


class _NotDone(Exception):
    """The job has no result to fetch yet, or failed (409)."""
