"""The page of `md-csd serve` in a real browser: headless Chromium driven by Selenium.

The real server runs in a subprocess (the `md-csd serve` command with the shipped model, on a free
loopback port, its data in a temporary folder); the browser uploads a stand-in video through the
upload form, follows the job page until the verdict shows, and the verdict on the page must be
the one the JSON API gives. A screenshot of the finished page is saved (its path is printed): in the folder named by
`MD_CSD_BROWSER_SHOTS` when set (kept; docs/images/serve.png was made so), else in the test's
temporary folder (deleted when the test passes).

Needs Debian's `chromium` and `chromium-driver` (CI's `.ci/run` installs them) and the `selenium`
package; without them the tests skip and say what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

SERVER_START_S = 180  # importing TensorFlow and loading the model on a loaded 2-core CPU
VERDICT_S = 120  # one short video scored by the shipped model, queue empty
N_FRAMES = 12


def _browser_binaries() -> tuple[str, str]:
    """Paths of Chromium and its driver; skips the test, naming what is missing, without them."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [
        name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path
    ]
    if missing:
        pytest.skip(
            f"no browser: {' and '.join(missing)} not on PATH "
            "(Debian: apt-get install chromium chromium-driver; .ci/run does it)"
        )
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Base URL of a real `md-csd serve` (shipped model), stopped when the module's tests end."""
    pytest.importorskip("flask", reason="the [serve] extra (Flask) is not installed")
    pytest.importorskip("waitress", reason="the [serve] extra (waitress) is not installed")
    root = tmp_path_factory.mktemp("serve")
    port = _free_port()
    log = (root / "server.log").open("w")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    process = subprocess.Popen(
        [sys.executable, "-m", "md_csd_tf.cli", "serve", "--port", str(port)]
        + ["--data", str(root / "data")],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"md-csd serve exited ({process.returncode}):\n{_tail(root)}")
            try:
                if _get_json(base + "/api/health").get("status") == "ok":
                    break
            except (OSError, ValueError):  # not listening yet
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"md-csd serve not healthy after {SERVER_START_S} s:\n{_tail(root)}")
            time.sleep(0.5)
        yield base
    finally:
        process.kill()
        process.wait(timeout=30)
        log.close()


def _tail(root: Path) -> str:
    return (root / "server.log").read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium session, closed when the module's tests end.

    Tests name it before `server`, so that a machine without a browser skips before the server
    spends its half minute starting.
    """
    chromium, chromedriver = _browser_binaries()
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="the selenium package is not installed"
    )
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    # Both paths given, so Selenium Manager never looks for (or downloads) a browser or driver.
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1500")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    except WebDriverException as failure:  # SessionNotCreatedException included
        # Found but unable to start (a driver of another version, a missing library): the
        # machine has no usable browser, which is what the skip is for.
        pytest.skip(
            f"chromium at {chromium} does not start: {' '.join(str(failure).split())[:300]}"
        )
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _stand_in_video(path: Path) -> Path:
    from inference_fixtures import render_face_video

    from md_csd_tf.prep import synthetic

    synthetic.write_video(path, render_face_video(seed=3, n_frames=N_FRAMES))
    return path


def test_upload_shows_the_verdict_the_api_gives(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    video = _stand_in_video(tmp_path / "clip.mp4")
    browser.get(server + "/")
    model = _get_json(server + "/api/health")["model"]
    WebDriverWait(browser, 10).until(lambda d: model in d.find_element(By.ID, "model").text)

    browser.find_element(By.ID, "file").send_keys(str(video))
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 30).until(lambda d: "/jobs/" in d.current_url)
    job_id = browser.current_url.rstrip("/").rsplit("/", 1)[-1]

    verdict = browser.find_element(By.ID, "verdict")
    WebDriverWait(browser, VERDICT_S).until(
        lambda d: verdict.get_attribute("data-status") in ("done", "failed")
    )
    error = browser.find_element(By.ID, "error").text
    assert verdict.get_attribute("data-status") == "done", error

    job = _get_json(f"{server}/api/jobs/{job_id}")
    assert job["status"] == "done"
    row = job["result"]
    assert row["verdict"] in ("fake", "real")
    # The page shows the API's verdict and probability, and the upload's name (not the server's).
    assert verdict.text.split()[0] == row["verdict"]
    assert f"{row['fake_probability']:.4f}" in verdict.text
    assert browser.find_element(By.ID, "filename").text == "clip.mp4"
    assert "%" in browser.find_element(By.ID, "status").text
    assert float(browser.find_element(By.ID, "progress").get_attribute("value")) == 1.0
    # The rule as the detector applies it: strictly above the threshold.
    health = _get_json(server + "/api/health")
    rule = browser.find_element(By.ID, "threshold").text
    if health["aggregate"] == "vote":
        assert rule.startswith("Fake when more than half the frames have P(fake) above"), rule
    else:
        assert rule == f"Fake when P(fake) is above {health['threshold']:.4f}.", rule

    # The report: linked, and loaded into the sandboxed frame.
    link = browser.find_element(By.ID, "report-link").get_attribute("href")
    assert link == f"{server}/api/jobs/{job_id}/report"
    frame = browser.find_element(By.ID, "report")
    assert frame.get_attribute("sandbox") == ""
    browser.switch_to.frame(frame)
    try:
        WebDriverWait(browser, 30).until(lambda d: d.find_element(By.TAG_NAME, "body").text)
        report_text = browser.find_element(By.TAG_NAME, "body").text
    finally:
        browser.switch_to.default_content()
    assert row["verdict"] in report_text.lower()

    shots = Path(os.environ.get("MD_CSD_BROWSER_SHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / "serve.png"
    assert browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 10_000

    # No script errors on the way (a missing favicon is the browser's own request, not the page's).
    log = browser.get_log("browser")
    errors = [e["message"] for e in log if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors, errors


def test_a_rejected_upload_shows_the_servers_message(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    notes = tmp_path / "notes.mp4"  # a video's name, a text file's content
    notes.write_text("this is not a video\n")
    browser.get(server + "/")
    browser.find_element(By.ID, "file").send_keys(str(notes))
    browser.find_element(By.ID, "submit").click()
    error = browser.find_element(By.ID, "upload-error")
    WebDriverWait(browser, 30).until(lambda d: error.is_displayed() and error.text)

    request = urllib.request.Request(server + "/api/jobs", method="POST")
    boundary = "md-csd-test"
    request.data = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="notes.mp4"\r\n'
        f"Content-Type: video/mp4\r\n\r\nthis is not a video\n\r\n--{boundary}--\r\n"
    ).encode()
    request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    with pytest.raises(urllib.error.HTTPError) as answer:
        urllib.request.urlopen(request, timeout=10)
    assert answer.value.code == 415
    assert error.text == json.load(answer.value)["error"]
    assert "/jobs/" not in browser.current_url


def test_a_failed_job_shows_its_error(browser, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from md_csd_tf.prep import synthetic

    empty = tmp_path / "empty_room.mp4"  # a valid video with no face in it
    synthetic.write_video(empty, np.full((6, 240, 320, 3), 90, np.uint8))
    browser.get(server + "/")
    browser.find_element(By.ID, "file").send_keys(str(empty))
    browser.find_element(By.ID, "submit").click()
    WebDriverWait(browser, 30).until(lambda d: "/jobs/" in d.current_url)
    job_id = browser.current_url.rstrip("/").rsplit("/", 1)[-1]
    verdict = browser.find_element(By.ID, "verdict")
    WebDriverWait(browser, VERDICT_S).until(lambda d: verdict.get_attribute("data-status"))

    job = _get_json(f"{server}/api/jobs/{job_id}")
    assert job["status"] == "failed"
    assert verdict.get_attribute("data-status") == "failed"
    assert browser.find_element(By.ID, "error").text == job["error"]
    assert "empty_room.mp4" in job["error"]  # the user's name, never the stored path
    assert not browser.find_element(By.ID, "result").is_displayed()
