"""HTML reports people can read: one self-contained page per scored input, and a batch summary.

A report holds everything in one file (images as `data:image/png;base64` URIs, CSS inline, no
script, nothing fetched), so it can be mailed, attached to a ticket or opened offline:

    verdict, fake probability, the threshold used and where it came from
    -> per-frame score curve, one line per face followed across the video (`Row.identities`)
    -> the faces table: frames, score, verdict, counted toward the verdict, which one decided
    -> the most suspicious frames of the deciding face: the frame with its crop box, the crop and
       the Grad-CAM of each branch of the model (evidence for "fake")
    -> the model card (`model_card`): name, training data, date, metrics, threshold.

Frames are read again from the media file (`source`) at the indices the row lists, and the crop
is cut at the row's box exactly as scoring cut it (`fit_crops`), so no crop needs to be kept
between scoring and reporting. The page never fails for lack of an explanation: a model that
Grad-CAM cannot read, or a frame that cannot be read back, is said in the page instead.

Example:
    >>> rows = score_inputs(detector, collect_inputs(["clip.mp4"]))
    >>> write_reports(rows, detector, "reports/")  # reports/clip.html + reports/index.html
"""

from __future__ import annotations

import base64
import datetime
import html
import io
import os
import re
import urllib.parse
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import keras
import numpy as np

from md_csd_tf._version import __version__
from md_csd_tf.data.inputs import fit_crops
from md_csd_tf.errors import UserError
from md_csd_tf.files import atomic_write_text
from md_csd_tf.inference.batch import Identity, Row
from md_csd_tf.inference.gradcam import GradCamExplainer, overlay

if TYPE_CHECKING:  # TensorFlow comes with the detector, not with this module
    from md_csd_tf.inference.detector import Detector

SUSPICIOUS_FRAMES = 4  # frames shown with Grad-CAM: enough to see a pattern, small enough a page
FRAME_SIDE = 400  # longest side of a frame shown in the page (full 1080p PNGs weigh megabytes)
CROP_SIDE = 160  # side of the crop and Grad-CAM images shown (the model's 128-299 px, enlarged)
INDEX_NAME = "index.html"

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.4em;word-break:break-all}h2{font-size:1.15em;margin-top:1.6em}
.verdict{display:inline-block;padding:.3em .8em;border-radius:4px;color:#fff;font-weight:bold}
.fake{background:#c62828}.real{background:#2e7d32}.error{background:#6d4c41}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f3f3f3}
.frames{display:flex;flex-wrap:wrap;gap:1em}.frame{border:1px solid #ddd;padding:.5em}
.frame img{display:block;margin:.2em 0}.crops{display:flex;gap:.4em}.note{color:#6d4c41}
figure{margin:0}figcaption{font-size:.85em;color:#555}
"""


# -- the model card ---------------------------------------------------------------------------


def model_card(detector: Detector) -> dict:
    """What a reader of a verdict should know about the model that gave it.

    Read from the model file's metadata (`models.saving`): a shipped model carries its full card
    (`pretraining.model_card`); a model trained by `md-csd train` carries its calibrated
    threshold and validation AUC; anything missing is said to be so, never guessed.

    Args:
        detector: the loaded detector.

    Returns:
        `{"name", "detector", "image_size", "parameters", "training_data", "trained",
        "metrics": {set: {metric: value}}, "threshold", "threshold_source", "notes": {...}}`;
        `notes` holds the card's other lines (what it detects, what it was never tested on, the
        recipe, its documentation).
    """
    metadata = detector.metadata
    card = dict(metadata.get("card") or {})
    unknown = "not recorded in the model file"
    metrics: dict[str, dict] = {}
    val_auc = card.get("val_auc", metadata.get("val_auc"))
    if val_auc is not None:
        metrics["validation"] = {"frame_auc": float(val_auc)}
    for name, figures in (card.get("held_out") or {}).items():
        metrics[f"{name} (held out)"] = dict(figures)
    known = {"name", "detector", "image_size", "parameters", "trained", "training_data",
             "val_auc", "held_out", "threshold"}  # fmt: skip
    return {
        "name": str(card.get("name") or metadata.get("name") or detector.model.detector),
        "detector": detector.model.detector,
        "image_size": detector.image_size,
        "parameters": int(card.get("parameters") or detector.model.count_params()),
        "training_data": str(card.get("training_data") or unknown),
        "trained": str(card.get("trained") or unknown),
        "metrics": metrics,
        "threshold": float(detector.threshold),
        "threshold_source": detector.threshold_source,
        "notes": {k: v for k, v in card.items() if k not in known},
    }


def threshold_text(threshold: float, source: str) -> str:
    """The threshold and, in words, where it came from (`Detector.threshold_source`)."""
    if source.startswith("calibrated"):
        rule = source.split(":", 1)[1].strip() if ":" in source else source
        origin = f"calibrated on the model's validation split when it was trained ({rule})"
    elif source == "given":
        origin = "given for this run (--threshold)"
    else:
        origin = "the default 0.5: the model carries no calibrated threshold"
    return f"{threshold:.4f}, {origin}"


# -- pictures ---------------------------------------------------------------------------------


def png_uri(rgb: np.ndarray) -> str:
    """An RGB (or grayscale) uint8 image as a `data:image/png;base64,...` URI."""
    image = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"could not encode an image of shape {rgb.shape} as PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def score_curve(faces: Sequence[Identity], threshold: float, decided_by: int | None) -> str:
    """The per-frame fake probability of each face as a PNG data URI (matplotlib, Agg).

    A `Figure` with its own Agg canvas, not pyplot: no global state, so reports can be drawn
    from several threads of a server at once.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 3), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for face in faces:
        label = f"face {face.id}" + (
            " (decided)" if face.id == decided_by else "" if face.counted else " (not counted)"
        )
        style = "o-" if len(face.frame_indices) > 1 else "o"
        axes.plot(face.frame_indices, face.frame_scores, style, markersize=3, label=label,
                  linewidth=2.2 if face.id == decided_by else 1.2)  # fmt: skip
    axes.axhline(threshold, color="#c62828", linestyle="--", linewidth=1,
                 label=f"threshold {threshold:.3f}")  # fmt: skip
    axes.set_ylim(0.0, 1.0)
    axes.set_xlabel("frame index")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # frames, not 2.5
    axes.set_ylabel("P(fake)")
    axes.grid(alpha=0.3)
    # Above the axes, not over the curves it names.
    axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False,
                ncols=min(5, len(faces) + 1))  # fmt: skip
    # Fixed margins: tight_layout draws the figure once more to measure it (~0.3 s a report).
    figure.subplots_adjust(left=0.08, right=0.98, bottom=0.16, top=0.88)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _shrink(rgb: np.ndarray, side: int) -> np.ndarray:
    scale = side / max(rgb.shape[:2])
    if scale >= 1:
        return rgb
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def _enlarge(rgb: np.ndarray, side: int) -> np.ndarray:
    return cv2.resize(rgb, (side, side), interpolation=cv2.INTER_NEAREST)


def _read_frames(source: str, kind: str, wanted: set[int]) -> dict[int, np.ndarray]:
    """The RGB frames `wanted` of a video (decoded in order, as scoring read them), or the
    image as frame 0."""
    from md_csd_tf.inference.crops import read_image
    from md_csd_tf.prep.video import iter_frames

    if kind == "image":
        return {0: read_image(source)}
    # Decoded in order up to the last wanted index (seeking is not frame-exact for every codec);
    # only the wanted frames are converted.
    return dict(iter_frames(source, None, indices=wanted))


# -- Grad-CAM ---------------------------------------------------------------------------------

_EXPLAINERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (explainer, note)


def _explainer(model):
    """`(explainer, None)` or `(None, why not)`; built once per model (a Keras graph each)."""
    if model not in _EXPLAINERS:
        _EXPLAINERS[model] = _make_explainer(model)
    return _EXPLAINERS[model]


def _make_explainer(model):
    try:
        return GradCamExplainer(model), None
    except UserError:
        pass  # not MD-CSD's Xception branches: a single-branch model is still explained below
    except Exception as error:  # noqa: BLE001 - no explanation is no reason to lose the report
        return None, f"Grad-CAM is not available for {model.detector}: {error}"
    layer = _last_spatial_layer(model)
    if model.reads_clips or len(model.branches) != 1 or layer is None:
        return None, (
            f"Grad-CAM is not available for {model.detector}: it needs MD-CSD's branches or a "
            "single-branch model of single crops with a 'fake_probability' output unit"
        )
    try:
        return LayerCam(model, layer), None
    except Exception as error:  # noqa: BLE001
        return None, f"Grad-CAM is not available for {model.detector}: {error}"


def _last_spatial_layer(model) -> str | None:
    """The last layer with a spatial output `(batch, H, W, C)`, H and W > 1, that is not a
    pooling layer (whose coarser map shows less), of a model whose head is a unit named
    "fake_probability" (Grad-CAM reads its weights); None when there is none."""
    if "fake_probability" not in {layer.name for layer in model.layers}:
        return None
    found = None
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or "pool" in type(layer).__name__.lower():
            continue
        shape = tuple(layer.output.shape)
        if len(shape) == 4 and (shape[1] or 0) > 1 and (shape[2] or 0) > 1:
            found = layer.name
    return found


class LayerCam(GradCamExplainer):
    """`GradCamExplainer`'s maps read at a named layer of a single-branch detector (the shipped
    Meso-4) instead of MD-CSD's `{branch}_block14_sepconv2_act`.

    Args:
        model: a detector with one branch and a "fake_probability" output unit.
        layer: the layer whose activations are weighed (`_last_spatial_layer`).
    """

    def __init__(self, model, layer: str):  # the parent's set-up, at another layer
        self.model = model
        head = model.get_layer("fake_probability")
        outputs = {model.branches[0]: model.get_layer(layer).output, "features": head.input}
        self._grad_model = keras.Model(model.inputs, outputs)
        self._kernel, self._bias = head.kernel, head.bias


# -- one input --------------------------------------------------------------------------------


def faces_of(row: Row) -> tuple[list[Identity], int | None]:
    """The row's faces and the id of the deciding one; a row written before faces were followed
    (no `identities`) is one face made of its `frame_indices` / `frame_scores` / `boxes`."""
    if row.identities:
        return list(row.identities), row.decided_by
    if not row.frame_indices:
        return [], None
    face = Identity(0, list(row.frame_indices), list(row.frame_scores), list(row.boxes),
                    row.fake_probability, row.verdict, True)  # fmt: skip
    return [face], 0


def suspicious_frames(
    faces: Sequence[Identity], decided_by: int | None, k: int = SUSPICIOUS_FRAMES
) -> list[tuple[Identity, int]]:
    """The `k` highest-scoring frames, as `(face, position in its lists)`: those of the
    deciding face, or across all faces when none decided."""
    pool = [f for f in faces if f.id == decided_by] or list(faces)
    ranked = sorted(
        ((face, i) for face in pool for i in range(len(face.frame_scores))),
        key=lambda item: -item[0].frame_scores[item[1]],
    )
    return ranked[:k]


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>\n{body}\n"
        f'<footer><p class="note">md-csd-tf {_e(__version__)}, '
        f"{_e(datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC'))}</p>"
        "</footer></body></html>\n"
    )


def _table(header: Sequence[str] | None, rows: Sequence[Sequence[str]]) -> str:
    """A table of already escaped cells, with a header row unless `header` is None."""
    head = "" if header is None else "<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _score(value) -> str:
    return "-" if value is None else f"{float(value):.4f}"


def _card_html(card: dict) -> str:
    lines = [
        ("name", card["name"]),
        (
            "detector",
            f"{card['detector']} at {card['image_size']} px, {card['parameters']:,} parameters",
        ),
        ("training data", card["training_data"]),
        ("trained", card["trained"]),
        ("threshold", threshold_text(card["threshold"], card["threshold_source"])),
        *((key.replace("_", " "), value) for key, value in card["notes"].items()),
    ]
    out = _table(("model card", ""), [(_e(k), _e(v)) for k, v in lines])
    metrics = card["metrics"]
    if metrics:
        columns = sorted({m for figures in metrics.values() for m in figures})
        cells = [
            [_e(name)]
            + [_e(_score(f[c]) if isinstance(f.get(c), float) else f.get(c, "-")) for c in columns]
            for name, f in metrics.items()
        ]
        out += _table(["metrics", *(_e(c.replace("_", " ")) for c in columns)], cells)
    else:
        out += '<p class="note">No metrics are recorded in the model file.</p>'
    return out


def _frame_html(
    detector: Detector, face: Identity, i: int, frames: dict[int, np.ndarray], threshold: float
) -> str:
    index, score = face.frame_indices[i], face.frame_scores[i]
    caption = f"face {face.id}, frame {index}: P(fake) {score:.4f}"
    if index not in frames:
        missing = "the frame could not be read back from the file"
        return f'<div class="frame"><p>{_e(caption)}</p><p class="note">{missing}</p></div>'
    frame = frames[index]
    height, width = frame.shape[:2]
    left, top, right, bottom = face.boxes[i] if i < len(face.boxes) else (0, 0, width, height)
    left, top = max(0, int(left)), max(0, int(top))
    right, bottom = min(width, int(right)), min(height, int(bottom))
    if right <= left or bottom <= top:  # a box outside this frame: show the whole frame
        left, top, right, bottom = 0, 0, width, height
    drawn = frame.copy()
    colour = (198, 40, 40) if score > threshold else (46, 125, 50)
    cv2.rectangle(drawn, (left, top), (right - 1, bottom - 1), colour,
                  max(2, round(max(height, width) / 250)))  # fmt: skip
    parts = [f"<figure><img alt=\"{_e(caption)}\" src=\"{png_uri(_shrink(drawn, FRAME_SIDE))}\">"
             f"<figcaption>{_e(caption)}</figcaption></figure>"]  # fmt: skip
    crop = fit_crops([frame[top:bottom, left:right]], detector.cropper.image_size)[0]
    pictures = [("crop", crop)]
    explainer, note = _explainer(detector.model)
    if explainer is not None:
        try:
            result = explainer.explain(crop, target="fake")
            pictures += [(f"Grad-CAM {b}", overlay(crop, m)) for b, m in result.maps.items()]
        except Exception as error:  # noqa: BLE001 - the page is worth more than the map
            note = f"Grad-CAM failed on this frame: {' '.join(str(error).split())}"
    images = "".join(
        f'<figure><img alt="{_e(name)}" src="{png_uri(_enlarge(p, CROP_SIDE))}">'
        f"<figcaption>{_e(name)}</figcaption></figure>"
        for name, p in pictures
    )
    parts.append(f'<div class="crops">{images}</div>')
    if note:
        parts.append(f'<p class="note">{_e(note)}</p>')
    return f'<div class="frame">{"".join(parts)}</div>'


def report_html(
    row: Row, detector: Detector, source: str | None = None, threshold: float | None = None
) -> str:
    """The report page of one row as a string (`write_report` writes it)."""
    card = model_card(detector)
    if threshold is None or float(threshold) == detector.threshold:
        threshold, source_text = detector.threshold, detector.threshold_source
    else:
        threshold, source_text = float(threshold), "given"
    name = row.input
    if not row.ok:
        body = (
            f'<h1>{_e(name)}</h1><p><span class="verdict error">not scored</span></p>'
            f"<p>{_e(row.error)}</p>"
            f"<p>Model: {_e(card['name'])} ({_e(card['detector'])}).</p>"
        )
        return _page(f"{name}: error", body)
    faces, decided_by = faces_of(row)
    summary = [
        ("verdict", f'<span class="verdict {_e(row.verdict)}">{_e(row.verdict)}</span>'),
        ("fake probability", _e(_score(row.fake_probability))),
        ("threshold", _e(threshold_text(threshold, source_text))),
        ("kind", _e(row.kind)),
        (
            "frames scored",
            _e(f"{row.frames_scored} of {row.frames_sampled or row.frames_scored} sampled"),
        ),
        (
            "faces",
            _e(
                f"{len(faces)}; the verdict is face {decided_by}'s"
                if decided_by is not None
                else len(faces)
            ),
        ),
    ]
    parts = [f"<h1>{_e(name)}</h1>", _table(None, [(_e(k), v) for k, v in summary])]
    if row.face_note:
        parts.append(f'<p class="note">{_e(row.face_note)}</p>')
    if detector.crop_note:
        parts.append(f'<p class="note">{_e(detector.crop_note)}</p>')
    parts.append(
        "<h2>Score per frame</h2><p>A video is fake when any face followed across enough frames "
        "is fake; faces seen in too few frames are shown but not counted.</p>"
        f'<img alt="per-frame score curve" src="{score_curve(faces, threshold, decided_by)}">'
    )
    parts.append(
        "<h2>Faces</h2>"
        + _table(
            ("face", "frames", "fake probability", "verdict", "counted", "decided"),
            [
                (
                    _e(f.id),
                    _e(len(f.frame_indices)),
                    _e(_score(f.fake_probability)),
                    _e(f.verdict),
                    _e("yes" if f.counted else "no (too few frames)"),
                    _e("yes" if f.id == decided_by else ""),
                )
                for f in faces
            ],
        )
    )
    chosen = suspicious_frames(faces, decided_by)
    parts.append(
        "<h2>Most suspicious frames</h2><p>The highest-scoring frames of the deciding face, with "
        "its crop box; Grad-CAM shows where each branch of the model finds evidence for "
        '"fake" (red: most).</p>'
    )
    try:
        frames = _read_frames(source or row.input, row.kind,
                              {f.frame_indices[i] for f, i in chosen})  # fmt: skip
    except Exception as error:  # noqa: BLE001 - the scores stand without the pictures
        frames = {}
        parts.append(f'<p class="note">The frames could not be read back: {_e(error)}</p>')
    blocks = [_frame_html(detector, f, i, frames, threshold) for f, i in chosen]
    parts.append(f'<div class="frames">{"".join(blocks)}</div>')
    parts.append("<h2>Model</h2>" + _card_html(card))
    return _page(f"{name}: {row.verdict}", "\n".join(parts))


def write_report(
    row: Row,
    detector: Detector,
    path: str | os.PathLike,
    *,
    source: str | None = None,
    threshold: float | None = None,
) -> Path:
    """Writes one input's self-contained HTML report (atomically).

    Args:
        row: the input's row (`score_inputs`); an error row gets a short page with its error.
        detector: the detector that scored it (its threshold, cropper, model card, Grad-CAM).
        path: the `.html` file to write.
        source: the media file to read the frames from (default `row.input`; a server passes
            its stored upload while `row.input` is the user's file name).
        threshold: the threshold the row was scored at, when not the detector's own.

    Returns:
        `path`.
    """
    return atomic_write_text(path, report_html(row, detector, source, threshold))


# -- a batch ----------------------------------------------------------------------------------


def report_names(rows: Sequence[Row]) -> list[str]:
    """A unique, file-system-safe `.html` name per row, from its input's name: `clip.html`;
    a second `clip.mp4` (another folder) `clip-2.html`; never `index.html`."""
    taken = {INDEX_NAME}
    names = []
    for row in rows:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(row.input).stem).strip("._") or "input"
        name, n = f"{stem}.html", 1
        while name.lower() in taken:
            n += 1
            name = f"{stem}-{n}.html"
        taken.add(name.lower())
        names.append(name)
    return names


def write_summary(
    rows: Sequence[Row], reports: Sequence[Path | None], path: str | os.PathLike
) -> Path:
    """Writes the batch page: counts, and a table of inputs (linking each report, relative to
    the page's folder), verdicts, scores, faces and errors.

    Args:
        rows: the batch's rows.
        reports: each row's report file (None: no report, no link).
        path: the summary `.html` file to write.

    Returns:
        `path`.
    """
    if len(reports) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(reports)} reports")
    folder = Path(path).parent
    cells = []
    for row, report in zip(rows, reports, strict=True):
        name = _e(row.input)
        if report is not None:
            link = Path(os.path.relpath(Path(report), folder)).as_posix()
            name = f'<a href="{_e(urllib.parse.quote(link))}">{name}</a>'
        faces, decided_by = faces_of(row)
        cells.append((
            name, _e(row.kind),
            f"<span class=\"verdict {_e(row.verdict)}\">{_e(row.verdict)}</span>"
            if row.ok else "<span class=\"verdict error\">error</span>",
            _e(_score(row.fake_probability)), _e(row.frames_scored), _e(len(faces)),
            _e("" if decided_by is None else decided_by), _e(row.error),
        ))  # fmt: skip
    fakes = sum(r.ok and r.verdict == "fake" for r in rows)
    failed = sum(not r.ok for r in rows)
    body = (
        f"<h1>{_e(len(rows))} inputs, {_e(len(rows) - failed)} scored</h1>"
        f"<p>{_e(fakes)} fake, {_e(len(rows) - fakes - failed)} real, {_e(failed)} not scored.</p>"
        + _table(
            (
                "input",
                "kind",
                "verdict",
                "fake probability",
                "frames",
                "faces",
                "decided by",
                "error",
            ),
            cells,
        )
    )
    return atomic_write_text(path, _page("md-csd-tf reports", body))


def write_reports(
    rows: Sequence[Row],
    detector: Detector,
    folder: str | os.PathLike,
    threshold: float | None = None,
) -> Path:
    """One report per row (`report_names`) and the summary `index.html` in `folder`.

    Returns:
        The summary page's path.
    """
    folder = Path(folder)
    reports = []
    for row, name in zip(rows, report_names(rows), strict=True):
        reports.append(write_report(row, detector, folder / name, threshold=threshold))
    return write_summary(rows, reports, folder / INDEX_NAME)
