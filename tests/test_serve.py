"""`md-csd serve`: the JSON API, bad inputs, restarts, retention, concurrency (`md_csd_tf.serve`).

The detector is the shipped 128 px Meso-4 (`Detector.pretrained()`, ~2 s to load) and the
media the stand-in face videos of `inference_fixtures`; a job's row must be the one
`score_inputs` (what `md-csd predict` runs) gives for the same file.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from inference_fixtures import make_media, render_face_video

pytest.importorskip("flask", reason="md-csd serve needs the extra md-csd-tf[serve]")

from md_csd_tf.errors import UserError  # noqa: E402
from md_csd_tf.inference.batch import score_inputs  # noqa: E402
from md_csd_tf.inference.crops import Crop  # noqa: E402
from md_csd_tf.inference.detector import Detector  # noqa: E402
from md_csd_tf.prep import synthetic  # noqa: E402
from md_csd_tf.prep.faces import FaceCropper  # noqa: E402
from md_csd_tf.serve.app import create_app  # noqa: E402
from md_csd_tf.serve.jobs import JobStore, WorkerPool, _CountingStream, score_job  # noqa: E402
from md_csd_tf.serve.uploads import sniff  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    found = make_media(root / "media", render_face_video(n_frames=8))
    found["empty"] = root / "empty.mp4"
    found["empty"].write_bytes(b"")
    # An MP4 signature over garbage: accepted by content, then the decoder fails the job.
    found["fake_mp4"] = root / "broken.mp4"
    found["fake_mp4"].write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000))
    return found


@pytest.fixture(scope="module")
def detector():
    return Detector.pretrained()


@pytest.fixture(scope="module")
def reference(detector, media):
    """`md-csd predict`'s rows (score_inputs with predict's options) by media name."""
    names = ("video", "image")
    rows = score_inputs(
        detector,
        [(str(media[n]), "video" if n == "video" else "image") for n in names],
        progress=False,
        aggregate=detector.recipe.video_aggregate,
        threshold=detector.threshold,
        faces="all",  # predict's default, and serve's
    )
    return dict(zip(names, rows, strict=True))


@pytest.fixture
def apps(tmp_path):
    """Makes apps on `tmp_path/data` (or another folder); stops them all at the end."""
    made = []

    def make(detector, data=None, **options):
        app = create_app(detector, data or tmp_path / "data", **options)
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["md_csd"].stop()


def submit(client, path: Path, name: str | None = None, headers: dict | None = None):
    with open(path, "rb") as stream:
        return client.post(
            "/api/jobs", data={"file": (stream, name or path.name)}, headers=headers or {}
        )


def wait(client, job_id: str, timeout: float = 60.0) -> dict:
    """Polls the job until it is done or failed; checks progress never goes back meanwhile."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").get_json()
        seen.append(job["progress"])
        if job["status"] in ("done", "failed"):
            if job["status"] == "done":
                assert seen == sorted(seen) and seen[-1] == 1.0, seen
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


def assert_serving(client):
    health = client.get("/api/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"


# -- content checks ------------------------------------------------------------------------------


SIGNATURES = [
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, ("image", ".png")),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 20, ("image", ".jpg")),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 ", ("image", ".webp")),
    (b"RIFF\x00\x00\x00\x00AVI LIST", ("video", ".avi")),
    (b"\x00\x00\x00\x18ftypisom\x00\x00", ("video", ".mp4")),
    (b"\x00\x00\x00\x14ftypqt  \x00\x00", ("video", ".mov")),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm", ("video", ".webm")),
    (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x88matroska", ("video", ".mkv")),
    (b"%PDF-1.7\n", None),
    (b"this is not a video\n", None),
    (b"PK\x03\x04", None),
]


def test_sniff_tells_media_by_content():
    # One test, not one per case: the suite's garbage collection after each test costs ~1 s.
    assert [sniff(head) for head, _ in SIGNATURES] == [kind for _, kind in SIGNATURES]


def test_written_media_are_recognised(media):
    assert sniff(media["video"].read_bytes()[:64]) == ("video", ".mp4")
    assert sniff(media["image"].read_bytes()[:64]) == ("image", ".png")


# -- the API -------------------------------------------------------------------------------------


def test_submit_poll_fetch_gives_predicts_row(detector, media, reference, apps, tmp_path):
    client = apps(detector).test_client()
    for name in ("video", "image"):
        answer = submit(client, media[name], name=f"C:\\Users\\me\\{media[name].name}")
        assert answer.status_code == 202, answer.get_json()
        body = answer.get_json()
        assert body["status"] == "queued" and body["progress"] == 0.0
        assert answer.headers["Location"] == body["links"]["self"] == f"/api/jobs/{body['id']}"
        assert body["filename"] == media[name].name  # the client's path is dropped
        job = wait(client, body["id"])
        assert job["status"] == "done", job
        row, expected = job["result"], reference[name]
        assert row["input"] == media[name].name and row["error"] == ""
        assert row["fake_probability"] == pytest.approx(expected.fake_probability, abs=1e-5)
        assert row["verdict"] == expected.verdict
        assert row["frame_indices"] == expected.frame_indices
        assert client.get(body["links"]["result"]).get_json() == row
        report = client.get(body["links"]["report"])
        assert report.status_code == 200 and report.mimetype == "text/html"
        assert b"<html" in report.data.lower()
        # Shown inertly even opened in its own tab: it holds the upload's (chosen) name.
        policy = report.headers["Content-Security-Policy"]
        assert policy.startswith("sandbox;") and "default-src 'none'" in policy
        assert report.headers["X-Content-Type-Options"] == "nosniff"
    # Stored under generated names with the content's extension, nothing of the client's.
    stored = sorted(p.name for p in (tmp_path / "data" / "uploads").iterdir())
    assert len(stored) == 2 and all(len(Path(p).stem) == 32 for p in stored)
    assert {Path(p).suffix for p in stored} == {".mp4", ".png"}


def test_two_workers_share_one_detector(detector, media, reference, apps):
    # Two crop threads searching with dlib at once abort the process: the app serialises it.
    cropper = detector.cropper
    client = apps(detector, workers=2).test_client()
    # The service serialises the face search on its own copy: the caller's detector is untouched.
    assert detector.cropper is cropper and type(cropper) is FaceCropper
    assert client.get("/api/health").get_json()["aggregate"] == detector.recipe.video_aggregate
    names = ["video", "image", "video", "image"]
    ids = [submit(client, media[n]).get_json()["id"] for n in names]
    for name, job_id in zip(names, ids, strict=True):
        job = wait(client, job_id)
        expected = reference[name].fake_probability
        assert job["status"] == "done" and job["result"]["fake_probability"] == pytest.approx(
            expected, abs=1e-5
        )


def test_progress_counts_scored_frames(detector, media):
    seen = []
    options = {"frames": 32, "sampling": "uniform", "threshold": detector.threshold}
    row = score_job(detector, str(media["video"]), "video", options, seen.append)
    assert row.ok and row.frames_scored == 8
    # 8 frames planned (the video has 8 of the 32 asked for), reported as they are scored.
    assert seen == sorted(seen) and seen[-1] == 1.0 and all(0 < s <= 1 for s in seen)


def test_progress_counts_frames_not_faces():
    # Two faces per frame, 2 frames planned: the bar is full only when both frames are scored
    # (counting crops, it was full after the first frame's two).
    seen = []
    stream = _CountingStream([], None, planned=2, on_progress=seen.append, faces="all")
    box = (0, 0, 10, 10)
    for index in (0, 1):
        for face in (0, 1):
            stream._post(Crop(0, "video", np.zeros((1, 1, 3), np.uint8), index, box, face))
    for _ in range(4):
        stream.scored(1)
    assert seen == [0.5, 0.5, 1.0, 1.0]


def test_bad_uploads_are_refused_with_status_and_message(detector, media, apps):
    client = apps(detector, max_upload_mb=0.05).test_client()  # 52 kB
    cases = [
        (submit(client, media["text_mp4"]), 415, "not an image or video"),
        (submit(client, media["empty"]), 400, "empty"),
        (client.post("/api/jobs", data={}), 400, "no file"),
        (client.post("/api/jobs", data={"other": "x"}), 400, "no file"),
    ]
    # Too large: over the request limit (refused while reading the body) and just over the
    # file limit (counted while storing it).
    for size in (1_300_000, 60_000):
        big = media["video"].parent / f"big{size}.png"
        big.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(size))
        cases.append((submit(client, big), 413, "0.05 MB"))
    for answer, status, words in cases:
        assert answer.status_code == status, answer.data
        message = answer.get_json()["error"]
        assert words in message and "\n" not in message
        assert_serving(client)
    assert [p.name for p in client.application.extensions["md_csd"].uploads.iterdir()] == []


def test_bad_media_fail_their_job_with_the_reason(detector, media, apps):
    client = apps(detector).test_client()
    reasons = {
        "truncated": "not a readable video",
        "fake_mp4": "not a readable video",
        "noface_video": "no face found",
        "flat": "no face found (dlib); upload a photo or video where a face shows",
    }
    for name, words in reasons.items():
        answer = submit(client, media[name])
        assert answer.status_code == 202, (name, answer.get_json())
        job = wait(client, answer.get_json()["id"])
        assert job["status"] == "failed", (name, job)
        assert words in job["error"] and job["error"].startswith(media[name].name), job["error"]
        assert "uploads" not in job["error"]  # the stored path is never shown
        assert "--no-detect" not in job["error"]  # a command-line option: no use on the page
        for what in ("result", "report"):
            early = client.get(job["links"][what])
            assert early.status_code == 409 and "failed" in early.get_json()["error"]
        assert_serving(client)


def test_unknown_or_malformed_job_ids_are_404(detector, apps):
    client = apps(detector).test_client()
    for job_id in (uuid.uuid4().hex, "../../etc/passwd", "x" * 500, "ABC"):
        for suffix in ("", "/result", "/report"):
            answer = client.get(f"/api/jobs/{job_id}{suffix}")
            assert answer.status_code == 404, (job_id, suffix)
            words = "not found" if "/" in job_id else "no job"  # a path, not an id
            assert words in answer.get_json()["error"]
    assert client.get(f"/jobs/{uuid.uuid4().hex}").status_code == 404


def test_errors_are_one_line_json_never_html(detector, apps, monkeypatch):
    app = apps(detector)
    client = app.test_client()
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and missing.is_json
    wrong = client.delete("/api/health")
    assert wrong.status_code == 405 and "Method Not Allowed" in wrong.get_json()["error"]
    service = app.extensions["md_csd"]

    def broken(*_):
        raise RuntimeError("database\nis gone")

    monkeypatch.setattr(service.store, "count", broken)
    failed = client.get("/api/health")
    assert failed.status_code == 500
    assert failed.get_json() == {"error": "internal error (RuntimeError: database is gone)"}
    monkeypatch.undo()
    assert_serving(client)


def test_a_failing_model_fails_the_job_not_the_server(detector, media, apps):
    broken = Detector(detector.model)  # the same network; its scoring fails

    def explode(crops):
        raise RuntimeError("the model exploded")

    broken.predict_crops = explode
    broken.warm_up = lambda: None
    client = apps(broken).test_client()
    for _ in range(2):  # the worker survives the first failure
        job = wait(client, submit(client, media["image"]).get_json()["id"])
        assert job["status"] == "failed" and "the model exploded" in job["error"]
    assert_serving(client)


# -- security ------------------------------------------------------------------------------------


def test_a_loopback_server_refuses_foreign_host_names(detector, apps, tmp_path):
    client = apps(detector, start=False).test_client()
    for host in ("localhost", "localhost:8765", "127.0.0.1:8765", "[::1]:8765", "[::1]"):
        assert client.get("/api/health", headers={"Host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8765", "localhost.evil.example", "127.0.0.1.nip.io"):
        answer = client.get("/api/health", headers={"Host": host})
        assert answer.status_code == 400, host
        assert "unexpected Host" in answer.get_json()["error"]
    # Listening on another address, the server has no list of its names: any Host passes.
    public = apps(detector, tmp_path / "other", start=False, loopback=False).test_client()
    assert public.get("/api/health", headers={"Host": "evil.example"}).status_code == 200


def test_cross_site_uploads_are_refused(detector, media, apps):
    client = apps(detector, start=False).test_client()  # its Host: localhost
    refused = [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://localhost:9999"},
        {"Sec-Fetch-Site": "cross-site"},
    ]
    for headers in refused:
        answer = submit(client, media["image"], headers=headers)
        assert answer.status_code == 403, headers
        assert "cross-site upload refused" in answer.get_json()["error"]
    accepted = [{}, {"Origin": "http://localhost"}, {"Sec-Fetch-Site": "same-origin"}]
    for headers in accepted:
        assert submit(client, media["image"], headers=headers).status_code == 202, headers
    uploads = client.application.extensions["md_csd"].uploads
    assert len(list(uploads.iterdir())) == len(accepted)  # nothing stored for a refusal


# -- persistence ---------------------------------------------------------------------------------


def test_stopping_leaves_queued_jobs_queued(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    ids = [store.add(uuid.uuid4().hex, "x.png", "x.png", "image")["id"] for _ in range(5)]
    ran, started = [], threading.Event()

    def slow_job(job: dict) -> None:
        ran.append(job["id"])
        started.set()
        time.sleep(0.5)

    pool = WorkerPool(store, slow_job, workers=1).start()
    assert started.wait(10)
    begun = time.monotonic()
    pool.stop()
    took = time.monotonic() - begun
    # The job in progress finishes; the 4 behind it are not run (that took 4 x 0.5 s more).
    assert ran == ids[:1] and took < 1.5, (ran, took)
    assert store.ids("queued") == ids[1:]
    store.close()


def test_a_job_is_claimed_once(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3")
    job_id = store.add(uuid.uuid4().hex, "x.png", "x.png", "image")["id"]
    ran = []
    pool = WorkerPool(store, lambda job: ran.append(job["status"]), workers=2)
    pool.submit(job_id)  # and queued again by start: two workers may both hold it
    pool.start()
    deadline = time.monotonic() + 10
    while not ran and time.monotonic() < deadline:
        time.sleep(0.01)
    pool.stop()
    assert ran == ["running"]
    assert store.claim(job_id) is None  # no longer queued
    store.close()


def test_a_restarted_server_finishes_jobs_left_running_or_queued(detector, media, apps, tmp_path):
    first = apps(detector, start=False)  # a server whose workers never ran
    client = first.test_client()
    ids = [submit(client, media[n]).get_json()["id"] for n in ("video", "image")]
    store = first.extensions["md_csd"].store
    store.update(ids[0], status="running", progress=0.3)  # cut off mid-job
    assert client.get(f"/api/jobs/{ids[1]}").get_json()["status"] == "queued"
    first.extensions["md_csd"].stop()
    second = apps(detector).test_client()
    for job_id in ids:
        assert wait(second, job_id)["status"] == "done"


def test_one_server_per_data_folder(detector, apps, tmp_path):
    first = apps(detector, start=False)
    with pytest.raises(UserError, match="in use by md-csd serve"):
        create_app(detector, tmp_path / "data", start=False)
    first.extensions["md_csd"].stop()
    apps(detector, start=False)  # free once the first has stopped


def test_a_server_that_fails_to_start_frees_its_folder(detector, apps, tmp_path, monkeypatch):
    from md_csd_tf.serve import app as app_module

    def broken(*_):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(app_module, "JobStore", broken)
    with pytest.raises(sqlite3.OperationalError):
        create_app(detector, tmp_path / "data", start=False)
    monkeypatch.undo()
    apps(detector, start=False)  # not "in use": the failed one released its lock


def test_the_command_refuses_a_used_folder_before_loading_the_model(tmp_path, monkeypatch):
    import argparse

    from md_csd_tf.commands import predict, serve
    from md_csd_tf.files import OutputLock

    def load(_):
        raise AssertionError("the model was loaded before the folder was checked")

    monkeypatch.setattr(predict, "_load_detector", load)
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    lock = OutputLock(tmp_path / "data", "md-csd serve").acquire()
    try:
        with pytest.raises(UserError, match="in use by md-csd serve"):
            serve.run(parser.parse_args(["--data", str(tmp_path / "data")]))
    finally:
        lock.release()


def test_the_job_table_is_sqlite_in_wal_mode(detector, media, apps, tmp_path):
    client = apps(detector).test_client()
    job_id = submit(client, media["image"]).get_json()["id"]
    wait(client, job_id)
    with sqlite3.connect(tmp_path / "data" / "jobs.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        status, result = db.execute(
            "SELECT status, result FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
    assert status == "done" and json.loads(result)["input"] == "face.png"


def test_retention_deletes_old_jobs_uploads_and_reports(detector, media, apps, tmp_path):
    app = apps(detector, retention_hours=0.5 / 3600)  # half a second
    client, service = app.test_client(), app.extensions["md_csd"]
    service.sweeper.stop()  # its own sweep (every 1 s) would race the one below
    done = wait(client, submit(client, media["image"]).get_json()["id"])
    assert done["status"] == "done"
    waiting = service.store.add(uuid.uuid4().hex, "later.png", service.uploads / "w.png", "image")
    (service.uploads / f"{waiting['id']}.png").write_bytes(b"kept while queued")
    # Finished just now from an old upload (queued while the server was down): kept with its row.
    recent = service.store.add(uuid.uuid4().hex, "r.png", service.uploads / "r.png", "image")
    (service.uploads / f"{recent['id']}.png").write_bytes(b"kept while its row is")
    (service.reports / f"{recent['id']}.html").write_text("<html></html>")
    orphan = service.uploads / f"{uuid.uuid4().hex}.mp4"  # a crash between file and row
    orphan.write_bytes(b"x")
    old = time.time() - 10
    os.utime(orphan, (old, old))
    for path in (*service.uploads.iterdir(), *service.reports.iterdir()):
        if done["id"] not in path.name:
            os.utime(path, (old, old))
    time.sleep(0.6)
    service.store.update(recent["id"], status="done")
    assert service.sweeper.sweep() == 1
    assert client.get(f"/api/jobs/{done['id']}").status_code == 404
    assert [p.name for p in service.reports.iterdir()] == [f"{recent['id']}.html"]
    assert sorted(p.name for p in service.uploads.iterdir()) == sorted(
        f"{job['id']}.png" for job in (waiting, recent)
    )
    assert service.store.get(waiting["id"])["status"] == "queued"


def test_the_sweeper_runs_by_itself(detector, media, apps):
    # 2 s: long enough that the polls of `wait` see the job done before it goes, even when a
    # poll stalls under load; the sweeper runs every 1 s.
    client = apps(detector, retention_hours=2 / 3600).test_client()
    job_id = submit(client, media["image"]).get_json()["id"]
    assert wait(client, job_id)["status"] == "done"
    deadline = time.monotonic() + 15
    while client.get(f"/api/jobs/{job_id}").status_code != 404:
        assert time.monotonic() < deadline, "the finished job was not swept within 15 s"
        time.sleep(0.1)


def test_pages_render_the_templates(detector, media, apps):
    client = apps(detector, start=False, max_upload_mb=7.0).test_client()
    page = client.get("/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b'data-max-upload-mb="7"' in page.data and b"Up to 7 MB" in page.data
    job_id = submit(client, media["image"]).get_json()["id"]
    page = client.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and f'data-job-id="{job_id}"'.encode() in page.data
    assert client.get("/static/app.js").status_code == 200


# -- over loopback ------------------------------------------------------------------------------


def test_only_loopback_hosts_pass_without_a_warning():
    from md_csd_tf.commands.serve import is_loopback

    assert [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2")] == [True] * 4
    assert [is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.org")] == [False] * 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post_file(base: str, path: Path, timeout: float = 30) -> dict:
    """POSTs `path` as the multipart field "file" with urllib; returns the JSON answer."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{base}/api/jobs",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        assert answer.status == 202
        return json.load(answer)


def get_json(url: str, timeout: float = 10) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.load(answer)


def poll(base: str, job_id: str, timeout: float, until=("done", "failed"), every=0.1) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = get_json(f"{base}/api/jobs/{job_id}")
        if job["status"] in until:
            return job
        time.sleep(every)
    raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")


@pytest.mark.slow
def test_twenty_concurrent_submissions_over_loopback(detector, media, reference, tmp_path):
    waitress = pytest.importorskip("waitress", reason="md-csd serve needs md-csd-tf[serve]")

    app = create_app(detector, tmp_path / "data", workers=2)
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
    base = f"http://127.0.0.1:{server.effective_port}"
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        names = ["video", "image"] * 10
        answers: list = [None] * len(names)

        def client(k: int) -> None:
            try:
                job = post_file(base, media[names[k]])
                answers[k] = poll(base, job["id"], timeout=120)
            except Exception as error:  # noqa: BLE001 - reported by the assertion below
                answers[k] = error

        clients = [threading.Thread(target=client, args=(k,)) for k in range(len(names))]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        for name, job in zip(names, answers, strict=True):
            assert isinstance(job, dict) and job["status"] == "done", job
            expected = reference[name].fake_probability
            assert job["result"]["fake_probability"] == pytest.approx(expected, abs=1e-5)
        assert len({job["id"] for job in answers}) == 20
    finally:
        server.close()
        app.extensions["md_csd"].stop()


@pytest.mark.slow
def test_a_sigkilled_server_restarted_finishes_the_job(tmp_path):
    pytest.importorskip("waitress", reason="md-csd serve needs md-csd-tf[serve]")
    # 24 large frames, so that the job is still running when the server is killed (~0.1 s after
    # the poll that sees it start) even on a fast, idle machine.
    frames = np.stack([cv2.resize(f, (1280, 960)) for f in render_face_video(3, n_frames=24)])
    video = tmp_path / "long.mp4"
    synthetic.write_video(video, frames)
    data, port = tmp_path / "data", _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "md_csd_tf.cli", "serve", "--port", str(port)]
    command += ["--data", str(data), "--frames", "24"]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }

    log = tmp_path / "server.log"  # a file: an unread pipe fills and blocks the server

    def start() -> subprocess.Popen:
        with open(log, "a") as out:
            server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                get_json(f"{base}/api/health", timeout=1)
                return server
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if server.poll() is not None:
                    raise AssertionError(log.read_text(errors="replace")[-3000:]) from None
                time.sleep(0.2)
        server.kill()
        raise AssertionError("the server did not answer within 90 s")

    server = start()
    try:
        job = post_file(base, video)
        poll(base, job["id"], timeout=60, until=("running", "done", "failed"), every=0.02)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        store = JobStore(data / "jobs.sqlite3")
        left = store.get(job["id"])
        store.close()
        assert left["status"] == "running", left  # killed mid-job (else the video is too short)
        server = start()
        done = poll(base, job["id"], timeout=90)
        assert done["status"] == "done" and done["result"]["frames_sampled"] == 24, done
    finally:
        server.kill()
        server.wait(10)
