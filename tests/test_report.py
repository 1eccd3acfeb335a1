"""HTML reports (`inference.report`): what a page holds, read back with the stdlib's parser.

Pages are scored by the shipped 128 px Meso-4 (one branch) and a tiny untrained MD-CSD (two
branches, 71 px, no middle blocks) on a short stand-in video written here.
"""

from __future__ import annotations

import base64
import html.parser
import re
import urllib.parse
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest
from inference_fixtures import render_face_video, write_png

import md_csd_tf
from md_csd_tf.inference import report
from md_csd_tf.inference.batch import Identity, Row, collect_inputs, score_inputs
from md_csd_tf.inference.detector import Detector
from md_csd_tf.models.base import DetectorModel
from md_csd_tf.prep import synthetic

FRAMES = 8


class Page(html.parser.HTMLParser):
    """The images (alt -> decoded image), links, tags and visible text of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.images: list[tuple[str, np.ndarray]] = []
        self.links: list[str] = []
        self.tags: list[str] = []
        self.sources: list[str] = []
        self.text: list[str] = []
        self.feed(text)
        self.text = " ".join(" ".join(self.text).split())

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        attrs = dict(attrs)
        if tag == "img":
            src = attrs["src"]
            self.sources.append(src)
            prefix = "data:image/png;base64,"
            assert src.startswith(prefix), src[:40]
            data = np.frombuffer(base64.b64decode(src[len(prefix) :], validate=True), np.uint8)
            image = cv2.imdecode(data, cv2.IMREAD_COLOR)
            assert image is not None and image.size > 0, attrs.get("alt")
            self.images.append((attrs.get("alt", ""), image))
        if tag == "a":
            self.links.append(attrs["href"])
        if tag in ("link", "script", "iframe"):
            self.sources.append(attrs.get("src") or attrs.get("href") or tag)

    def handle_data(self, data):
        self.text.append(data)

    def alts(self, pattern: str) -> list[str]:
        return [alt for alt, _ in self.images if re.match(pattern, alt)]


def _read(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    frames = render_face_video(seed=0, n_frames=FRAMES)
    video = root / "clip.mp4"
    synthetic.write_video(video, frames)
    return {"root": root, "video": video, "image": write_png(root / "face.png", frames[3])}


@pytest.fixture(scope="module")
def meso():
    return Detector.pretrained()


@pytest.fixture(scope="module")
def video_row(media, meso):
    (row,) = score_inputs(meso, collect_inputs([media["video"]]), progress=False)
    assert row.ok, row.error
    return row


def test_report_holds_verdict_threshold_curve_frames_and_card(tmp_path, meso, video_row):
    path = report.write_report(video_row, meso, tmp_path / "clip.html")
    page = _read(path)
    # Self-contained: every picture inline, no script, no stylesheet or frame to fetch.
    assert all(s.startswith("data:image/png;base64,") for s in page.sources)
    assert not {"script", "link", "iframe"} & set(page.tags)
    (curve,) = page.alts("per-frame score curve")
    assert curve  # decoded by the parser
    assert f"{video_row.fake_probability:.4f}" in page.text
    assert f"verdict {video_row.verdict}" in page.text
    assert f"{meso.threshold:.4f}, calibrated on the model's validation split" in page.text
    assert f"{video_row.frames_scored} of {video_row.frames_sampled} sampled" in page.text
    # The four highest-scoring frames, each with its crop and the Meso-4 branch's Grad-CAM.
    top = sorted(video_row.frame_scores, reverse=True)[: report.SUSPICIOUS_FRAMES]
    shown = page.alts(r"face 0, frame \d+: P\(fake\)")
    assert [float(a.rsplit(" ", 1)[1]) for a in shown] == pytest.approx(top, abs=5e-5)
    assert len(page.alts("crop$")) == len(page.alts("Grad-CAM rgb$")) == len(shown) == 4
    frame = next(image for alt, image in page.images if alt == shown[0])
    assert frame.shape[:2] == (240, 320)  # the stand-in frame at its size (under FRAME_SIDE)
    card = meso.metadata["card"]
    for field in ("md-csd-sbi", card["trained"], card["training_data"], "celebdf (held out)"):
        assert field in page.text


def test_report_shows_every_face_and_the_deciding_ones_frames(tmp_path, meso, media):
    """Two faces by hand: the curve and table hold both, the frames shown are face 1's."""
    box = (100, 20, 240, 160)
    faces = [
        Identity(0, [0, 2, 4], [0.2, 0.3, 0.25], [box] * 3, 0.25, "real", counted=True),
        Identity(1, [1, 3, 5, 7, 6], [0.9, 0.8, 0.7, 0.6, 0.95], [box] * 5, 0.79, "fake", True),
        Identity(2, [6], [0.99], [box], 0.99, "fake", counted=False),
    ]
    row = Row(str(media["video"]), "video", 8, 0.79, "fake", frame_indices=[1, 3, 5, 7, 6],
              frame_scores=[0.9, 0.8, 0.7, 0.6, 0.95], frames_sampled=8, identities=faces,
              decided_by=1, boxes=[box] * 5)  # fmt: skip
    page = _read(report.write_report(row, meso, tmp_path / "two.html"))
    shown = page.alts(r"face \d+, frame")
    assert shown == [
        "face 1, frame 6: P(fake) 0.9500",
        "face 1, frame 1: P(fake) 0.9000",
        "face 1, frame 3: P(fake) 0.8000",
        "face 1, frame 5: P(fake) 0.7000",
    ]
    assert "3; the verdict is face 1's" in page.text
    assert "2 1 0.9900 fake no (too few frames)" in page.text  # face 2: shown, not counted
    assert "1 5 0.7900 fake yes yes" in page.text


def test_row_without_identities_is_one_face(tmp_path, meso, video_row):
    old = Row(video_row.input, "video", video_row.frames_scored, video_row.fake_probability,
              video_row.verdict, frame_indices=video_row.frame_indices,
              frame_scores=video_row.frame_scores, frames_sampled=video_row.frames_sampled,
              boxes=video_row.boxes)  # fmt: skip
    page = _read(report.write_report(old, meso, tmp_path / "old.html"))
    assert len(page.alts("face 0, frame")) == 4
    assert "1; the verdict is face 0's" in page.text


@pytest.mark.slow  # builds a tiny MD-CSD and its Grad-CAM graph: 7-10 s on 2 loaded cores
def test_md_csd_report_shows_the_grad_cam_of_both_branches(tmp_path, media):
    keras.utils.set_random_seed(0)
    model = md_csd_tf.build_model(image_size=71, middle_blocks=0)
    detector = Detector(model, batch_size=4)
    (row,) = score_inputs(detector, collect_inputs([media["image"]]), progress=False)
    page = _read(report.write_report(row, detector, tmp_path / "face.html"))
    assert len(page.alts("face 0, frame 0")) == 1
    assert len(page.alts("Grad-CAM rgb$")) == len(page.alts("Grad-CAM freq$")) == 1
    # An untrained model: nothing calibrated, no card; said, not guessed.
    assert "0.5000, the default 0.5" in page.text
    assert "training data not recorded in the model file" in page.text
    assert "No metrics are recorded in the model file." in page.text
    card = report.model_card(detector)
    assert card["threshold_source"] == "default" and card["metrics"] == {}
    assert card["parameters"] == model.count_params()


class NoMaps(DetectorModel):
    """A detector with no spatial layer for Grad-CAM to read: pooled pixels, one unit."""

    detector = "no_maps"

    def __init__(self, image_size: int = 64, **kwargs):
        rgb = keras.Input((image_size, image_size, 3), name="rgb")
        x = keras.layers.GlobalAveragePooling2D()(rgb)
        p = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name="fake_probability")
        super().__init__(inputs={"rgb": rgb}, outputs=p(x), **kwargs)
        self.image_size, self.crop_size = image_size, None


def test_a_model_grad_cam_cannot_read_is_said_in_the_page(tmp_path, media):
    detector = Detector(NoMaps())
    (row,) = score_inputs(detector, collect_inputs([media["image"]]), progress=False)
    page = _read(report.write_report(row, detector, tmp_path / "face.html"))
    assert "Grad-CAM is not available for no_maps" in page.text
    assert len(page.alts("face 0, frame 0")) == len(page.alts("crop$")) == 1
    assert not page.alts("Grad-CAM")


def test_error_row_and_hostile_names_are_escaped(tmp_path, meso):
    name = '<script>alert("x")</script>&<img src=x onerror=alert(1)>.mp4'
    row = Row(name, "video", error=f"{name}: no frame could be decoded (corrupt or truncated)")
    page_text = report.write_report(row, meso, tmp_path / "bad.html").read_text(encoding="utf-8")
    page = Page(page_text)
    assert page.tags.count("script") == 0 and page.images == []  # the name never became markup
    assert f"{name}: no frame could be decoded" in page.text
    assert "not scored" in page.text and "md-csd-sbi" in page.text
    summary = report.write_summary([row], [tmp_path / "bad.html"], tmp_path / "index.html")
    page = _read(summary)
    assert page.tags.count("script") == 0 and page.links == ["bad.html"]
    assert f"{name} video error" in page.text


def test_summary_links_every_report_with_unique_names(tmp_path, meso, media, video_row):
    twin = tmp_path / "other" / "clip.mp4"
    twin.parent.mkdir()
    twin.write_bytes(media["video"].read_bytes())
    rows = score_inputs(
        meso, collect_inputs([media["video"], twin, tmp_path / "nope.mp4"]), progress=False
    )
    assert report.report_names(rows) == ["clip.html", "clip-2.html", "nope.html"]
    out = tmp_path / "out"
    index = report.write_reports(rows, meso, out)
    assert index == out / "index.html"
    page = _read(index)
    assert page.links == ["clip.html", "clip-2.html", "nope.html"]
    for link in page.links:
        assert (out / urllib.parse.unquote(link)).is_file()
    assert "3 inputs, 2 scored" in page.text and "1 not scored" in page.text
    assert f"{video_row.fake_probability:.4f}" in page.text
    assert "nope.mp4: no such file or folder" in page.text
    # A report elsewhere is linked relative to the summary's folder, quoted for a URL.
    nested = report.write_summary(rows[:1], [tmp_path / "a b" / "x#1.html"], out / "s.html")
    assert _read(nested).links == ["../a%20b/x%231.html"]


def test_predict_report_writes_a_page_per_input_and_the_summary(tmp_path, media, capsys):
    from md_csd_tf import cli

    out = tmp_path / "reports"
    missing = tmp_path / "gone.mp4"
    status = cli.main(["predict", "--quiet", str(media["video"]), str(media["image"]),
                       str(missing), "--report", str(out)])  # fmt: skip
    assert status == 1  # one input failed; its page still says why
    assert sorted(p.name for p in out.iterdir()) == [
        "clip.html",
        "face.html",
        "gone.html",
        "index.html",
    ]
    page = _read(out / "index.html")
    assert page.links == ["clip.html", "face.html", "gone.html"]
    assert len(_read(out / "face.html").alts("face 0, frame 0")) == 1
    assert "gone.mp4: no such file or folder" in _read(out / "gone.html").text
    assert f"wrote 3 reports and {out / 'index.html'}" in capsys.readouterr().out


def test_frames_come_from_source_and_a_lost_file_costs_only_the_pictures(tmp_path, meso, media,
                                                                         video_row):  # fmt: skip
    import dataclasses

    # A server's row: the user's file name as input, the frames read from the stored upload.
    upload = dataclasses.replace(video_row, input="holiday <1>.mp4")
    page = _read(report.write_report(upload, meso, tmp_path / "a.html", source=media["video"]))
    assert len(page.alts("face 0, frame")) == 4 and "holiday <1>.mp4" in page.text
    page = _read(report.write_report(upload, meso, tmp_path / "b.html", source=tmp_path / "gone"))
    assert "The frames could not be read back" in page.text
    assert page.alts("per-frame score curve") and not page.alts("face 0, frame")
    assert page.text.count("the frame could not be read back from the file") == 4
