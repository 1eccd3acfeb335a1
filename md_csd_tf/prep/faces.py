"""Face crops as the FaceForensics++ authors make them: dlib detector, 1.3x square box, resize.

The crop rule (FF++ ``detect_from_video.py``, which MD-CSDNetwork follows, Section III.A: "dlib
[...] to extract the largest face in a frame and [...] an enlarged face crop with a scale factor of
1.3"):

* the box is dlib's rectangle ``(left, top, right, bottom)``;
* ``size = int(scale * max(right - left, bottom - top))``, centred on the box centre
  ``((left + right) // 2, (top + bottom) // 2)``;
* clamping, as FF++ does it: the top-left corner is clamped to 0 (so a box leaving the frame on the
  left or top is *shifted* inwards and the face sits off-centre), then the size is cut to what
  remains up to the right and bottom edges (so a box leaving on the right or bottom *shrinks*).
  The crop stays square and inside the frame; we keep this rule so our crops match FF++'s.

The reference (:func:`reference_detect`) is the FF++ script's detection step, exactly: the frame
in grayscale, ``detector(gray, 1)`` (one 2x upsampling) on the full frame. The script then takes
``faces[0]``, commented "biggest face", but dlib sorts its detections by score, so that is the
*best-scoring* face (``pick="best"``); the MD-CSD paper says "largest face" (``pick="largest"``,
our default). With one face, the usual case, the two agree.

Speed: dlib's HOG detector costs time in proportion to the pixels it scans, and the reference
scans a 2x upsampled frame (4x the pixels) plus its whole pyramid. ``FaceCropper(exact=True)``
(the default) gives the reference's boxes for a fraction of that: dlib finds a face on the
pyramid level where its box is 72 px, and the levels above it (where the face is larger) only
serve smaller faces. So we build the reference's pyramid with dlib's own functions (the same 2x
bilinear upsampling, then ``pyramid_down(6)`` level by level, so every pixel is the reference's),
skip the levels where the face is more than one rung (6/5) above 72 px, and run the detector
without upsampling on the first level kept: it sees exactly the reference's levels from there
down. Which level to start from comes from the face size in the previous frame (or a
coarse detection on a downscaled copy); a frame where that guess is not confirmed is redone from
the size found, then, failing that, with the reference. ``exact=False`` is the older, looser
fast path: detection on a copy downscaled to ``detect_max_side`` without upsampling (boxes off by
up to one pyramid rung, IoU ~0.7-0.9 with the reference).

What is left of the cost (720p, measured in CPU time): building the reference's levels down to
the first one kept, ~45-50 ms per frame (the 2x upsampling ~17 ms, then ~10-14 pyramid_down
steps), against ~2-8 ms for the scan itself. Building them for a region around the previous
frame's face only does not give the reference's pixels: dlib resamples each level with a step
that depends on the image's size ((n - 1) / (m - 1)), so a region's levels sit on another
lattice, and its boxes moved by a HOG cell or a whole rung (crop IoU down to 0.69 on the
benchmark's large-face videos). So the previous box only chooses the level, as its width does.
"""

from __future__ import annotations

import dataclasses
import functools

import cv2
import dlib
import numpy as np

Box = tuple[
    int, int, int, int
]  # (left, top, right, bottom) in frame pixels, right/bottom exclusive
PICKS = ("largest", "best")
# dlib's frontal detector (80 px window) reports a face with a 72 px box on the pyramid level
# where it finds it, so its boxes come in sizes 72 * (6/5)**k (measured), and candidates for the
# same face on neighbouring levels compete in non-max suppression.
DLIB_BOX = 72
# The exact path keeps a result only if its box is at least one rung above DLIB_BOX on the first
# level kept (>= 80, i.e. >= 86 px): the face was found below that level, with both neighbouring
# levels scanned as in the reference, and whatever the skipped levels hold is smaller.
ACCEPT_SIDE = 80
# It starts on the last level where the previous frame's face is still that large (80-96 px):
# each level more is 1.44x the pixels to scan. A face that shrank below it is looked for once more
# from its new size before the frame is redone with the reference.
START_SIDE = ACCEPT_SIDE
# `FaceCropper.detect_every` (every face of a frame) skips faces narrower than this, in frame
# pixels: a 64 px face is a ~83 px crop, already upscaled >1.5x to a 128 px model input (3.6x to
# 299), so smaller faces carry little the detectors were trained on; and each pyramid level not
# scanned saves time (the levels of the smallest faces are the largest images).
MIN_FACE_SIDE = 64
# ... and faces narrower than this fraction of the frame's main face (`detect`'s): scanning the
# pyramid down to 64 px costs ~3.5x `detect`'s time on a 720p frame with a 270 px face, down to
# half its size ~1.5x (benchmark in docs/inference.md); a face that much smaller than the main
# one is a bystander more often than the subject, and is upscaled far more to the model's side.
MIN_FACE_RATIO = 0.5


@functools.cache
def _frontal_face_detector():
    # Building the detector deserialises its HOG model (~0.5 s); one per process is enough,
    # and its run() keeps no state between calls.
    return dlib.get_frontal_face_detector()


def _pick(rects, scores, pick: str) -> int:
    if pick == "largest":
        return max(range(len(rects)), key=lambda i: rects[i].width() * rects[i].height())
    return max(range(len(rects)), key=lambda i: scores[i])


def _rect_box(rect) -> Box:
    return (rect.left(), rect.top(), rect.right(), rect.bottom())


def reference_detect(
    frame_rgb: np.ndarray, pick: str = "largest", adjust_threshold: float = 0.0
) -> tuple[Box, float] | None:
    """The FF++ detection step (``detect_from_video.py``): grayscale, ``detector(gray, 1)``.

    Full frame, one upsampling pass, no downscaling: slow, and the yardstick for
    :class:`FaceCropper` (the benchmark and the tests measure IoU against it).

    Args:
        frame_rgb: ``(height, width, 3)`` RGB ``uint8`` frame.
        pick: ``"largest"`` (the paper) or ``"best"`` score (what the script's ``faces[0]`` is).
        adjust_threshold: added to dlib's threshold (0 in the script).

    Returns:
        ``(box, score)`` in frame pixels, or ``None`` when dlib finds no face.
    """
    gray = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY)
    rects, scores, _ = _frontal_face_detector().run(gray, 1, adjust_threshold)
    if not rects:
        return None
    best = _pick(rects, scores, pick)
    return _rect_box(rects[best]), float(scores[best])


@functools.cache
def _pyramids():
    # pyramid_down(2) is what dlib's Python binding upsamples with (and maps boxes back with);
    # pyramid_down(6) is the HOG scanner's own pyramid.
    return dlib.pyramid_down(2), dlib.pyramid_down(6)


def _upsampled(gray: np.ndarray) -> np.ndarray:
    """The frame as dlib's ``run(gray, 1)`` upsamples it, pixel for pixel.

    Its size is ``pyramid_down(2).rect_up`` of the frame (not simply 2x) and the resampling is
    dlib's bilinear ``resize_image``; OpenCV's bilinear resize differs by a few grey levels, enough
    to flip near-ties between pyramid levels (boxes one rung, ~20%, apart).
    """
    up = _pyramids()[0].rect_up(dlib.rectangle(0, 0, gray.shape[1] - 1, gray.shape[0] - 1))
    return dlib.resize_image(gray, up.bottom() + 1, up.right() + 1)


def square_box(box: Box, frame_shape: tuple[int, ...], scale: float = 1.3) -> Box:
    """The FF++ crop box around a detected face box.

    Args:
        box: detected face ``(left, top, right, bottom)``; may extend beyond the frame.
        frame_shape: ``(height, width, ...)`` of the frame.
        scale: enlargement of the larger side (1.3 in FF++ and the paper).

    Returns:
        A square ``(left, top, right, bottom)`` inside the frame (see the module docstring for the
        clamping rule).
    """
    height, width = frame_shape[:2]
    left, top, right, bottom = box
    size = int(max(right - left, bottom - top) * scale)
    centre_x, centre_y = (left + right) // 2, (top + bottom) // 2
    # The upper clamps (width - 1, height - 1) only matter for a box wholly outside the frame,
    # which dlib never returns; they keep the result a valid (1-pixel) box even then.
    x0 = min(max(int(centre_x - size // 2), 0), width - 1)
    y0 = min(max(int(centre_y - size // 2), 0), height - 1)
    size = max(min(width - x0, height - y0, size), 1)
    return (x0, y0, x0 + size, y0 + size)


def detection_factor(longest_side: int, max_side: int) -> float:
    """The downscale factor for detection: the largest ``(5/6)**k`` that fits ``max_side``.

    dlib's detector scans an image pyramid whose levels shrink by 5/6 (``pyramid_down<6>``), so
    its boxes come in sizes quantised to that ladder. Downscaling by an arbitrary factor (say 1/2)
    moves the ladder, and the box found can be a rung larger or smaller than at full size (up to
    ~20%, IoU ~0.8). Downscaling by a power of 5/6 keeps the rungs where they were: the small
    image's pyramid is the tail of the full image's, and the boxes agree with full-size detection.
    """
    factor = 1.0
    while longest_side * factor > max_side:
        factor *= 5 / 6
    return factor


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(width, 0) * max(height, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclasses.dataclass
class FaceCropper:
    """Detects one face per frame and cuts the FF++ crop.

    Args:
        image_size: side of the saved crop (299, the Xception input size).
        scale: box enlargement (1.3, paper Section III.A).
        detect_max_side: frames are downscaled (by a power of 5/6, see :func:`detection_factor`)
            so that their longest side is at most this before detection (``None``: full size).
            640 scans ~4x fewer pixels than 720p (1280 -> 617) and keeps FF++ faces (typically
            150-300 px at 720p) above dlib's ~80 px minimum.
        upsample: dlib upsampling passes on the detection image (0 is fastest).
        retry_upsample: if nothing is found, try once more with one more upsampling pass, so small
            faces are not lost to the downscaling.
        pick: ``"largest"`` face (the paper's choice) or ``"best"`` detector score.
        adjust_threshold: added to dlib's decision threshold (negative finds more, weaker faces).
        exact: give the boxes of the FF++ procedure (:func:`reference_detect`), fast (see the
            module docstring); ``detect_max_side`` then only sizes the coarse first look.
            ``False``: the looser fast path (``detect_max_side`` downscale, ``upsample``,
            ``retry_upsample``), as before this option existed. With ``pick="best"`` the exact
            path can miss a smaller face that scores higher than the one found (it skips the
            levels only small faces live on); ``"largest"`` has no such gap.
    """

    image_size: int = 299
    scale: float = 1.3
    detect_max_side: int | None = 640
    upsample: int = 0
    retry_upsample: bool = True
    pick: str = "largest"
    adjust_threshold: float = 0.0
    exact: bool = True

    def __post_init__(self):
        if self.pick not in PICKS:
            raise ValueError(f"pick must be one of {PICKS}, got {self.pick!r}")
        self._detector = _frontal_face_detector()

    def __getstate__(self):  # the dlib detector does not pickle; rebuild it in each worker
        state = dict(self.__dict__)
        state.pop("_detector", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._detector = _frontal_face_detector()

    def detect(
        self, frame_rgb: np.ndarray, hint: int | Box | None = None
    ) -> tuple[Box, float] | None:
        """Finds the face to crop.

        Args:
            frame_rgb: ``(height, width, 3)`` RGB ``uint8`` frame.
            hint: the face found in the previous frame of the same video, if any: its box (as
                this method returns it) or only its width; with ``exact=True`` it replaces the
                coarse first look (the result does not depend on it, only the time taken).
                Ignored by the fast path.

        Returns:
            ``(box, score)`` with the dlib box in full-frame pixels (it may extend beyond the
            frame, as dlib's does), or ``None`` when there is no face.
        """
        if not self.exact:
            return self._detect_fast(frame_rgb)
        # The reference's pyramid (the 2x upsampled frame, then each pyramid_down(6) level) is
        # most of the cost (~50 of ~60 ms CPU per 720p frame); a retry and the fallback start
        # from a level already built, so each level is built once per frame.
        levels = [_upsampled(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY))]
        return self._detect_exact(frame_rgb, levels, hint)

    def _detect_exact(
        self, frame_rgb: np.ndarray, levels: list[np.ndarray], hint: int | Box | None
    ) -> tuple[Box, float] | None:
        """:meth:`detect` with ``exact=True`` on the reference's pyramid ``levels`` (built so
        far, from the upsampled frame; the levels it builds are appended)."""
        if hint is not None and not isinstance(hint, (int, np.integer)):
            hint = hint[2] - hint[0]  # a box: its width is what the level is chosen from
        if hint is None:
            coarse = self._detect_fast(frame_rgb)
            hint = coarse[0][2] - coarse[0][0] if coarse else None
        for _ in range(2):
            if hint is None:
                break
            found, hint = self._detect_from_level(levels, hint)
            if found is not None:
                return found
        # No guess, or the guess was not confirmed: the reference procedure itself
        # (``run(gray, 1)`` is ``run`` on the upsampled frame, boxes mapped back).
        rects, scores, _ = self._detector.run(levels[0], 0, self.adjust_threshold)
        if not rects:
            return None
        best = _pick(rects, scores, self.pick)
        return _rect_box(_pyramids()[0].rect_down(rects[best])), float(scores[best])

    def _detect_from_level(
        self, levels: list[np.ndarray], hint: int
    ) -> tuple[tuple[Box, float] | None, int | None]:
        """The reference detection run on its pyramid from the level that fits ``hint``.

        Args:
            levels: the reference's pyramid built so far, from the upsampled frame; the levels
                this call builds are appended.
            hint: the face width, in frame pixels, that chooses the first level.

        Returns:
            ``((box, score), None)``, or ``(None, width)`` when the face found is too small on
            the first level kept to be sure (a skipped level could hold it): ``width`` is its
            size in frame pixels, a better hint; ``(None, None)`` when no face is found.
        """
        up, down = _pyramids()
        side, level = 2.0 * hint, 0
        while side * 5 / 6 >= START_SIDE:
            side *= 5 / 6
            level += 1
        while len(levels) <= level:
            levels.append(down(levels[-1]))
        rects, scores, _ = self._detector.run(levels[level], 0, self.adjust_threshold)
        if not rects:
            return None, None
        best = _pick(rects, scores, self.pick)
        # Back through the skipped levels, then through the upsampling, as dlib maps its boxes.
        rect = up.rect_down(down.rect_up(rects[best], level))
        if level and rects[best].width() < ACCEPT_SIDE:
            return None, rect.width()
        return (_rect_box(rect), float(scores[best])), None

    def detect_every(
        self,
        frame_rgb: np.ndarray,
        hint: int | Box | None = None,
        min_side: int | None = MIN_FACE_SIDE,
        min_ratio: float | None = MIN_FACE_RATIO,
    ) -> list[tuple[Box, float]]:
        """Every face of the frame (``md-csd predict --faces all``), :meth:`detect`'s first.

        The first face is :meth:`detect`'s, box for box (so a video of one person is cropped as
        with one face per frame). The others come from one more scan of the reference's pyramid
        (the levels :meth:`detect` built, shared), skipping the levels where only faces smaller
        than ``min_side`` are found, as :meth:`detect` skips levels from its hint: a face kept is
        at least one rung above the first level scanned, so both its neighbouring levels are
        scanned as in the reference and its box is the reference's (up to the 1 px of mapping
        back from another level). ``exact=False``: the fast path's detections, all of them.

        Args:
            frame_rgb: ``(height, width, 3)`` RGB ``uint8`` frame.
            hint: as :meth:`detect` (for the first face).
            min_side: smallest face width kept, in frame pixels (about: levels come in rungs of
                6/5); ``None``: every face the reference finds (a full scan, the slowest).
            min_ratio: faces narrower than this fraction of the first face's width are dropped
                (and their levels not scanned); ``None``: kept.

        Returns:
            ``[(box, score), ...]``: :meth:`detect`'s face, then the others, largest first (ties
            by position); a face found by both scans is listed once (IoU >= 0.5); empty without
            a face.
        """
        if not self.exact:
            first = self._detect_fast(frame_rgb)
            others = self._detect_fast(frame_rgb, every=True) if first else []
        else:
            levels = [_upsampled(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2GRAY))]
            first = self._detect_exact(frame_rgb, levels, hint)
            side = max(
                min_side or 0, (min_ratio or 0) * (first[0][2] - first[0][0]) if first else 0
            )
            # No face for the reference (detect's last resort) is no face at all.
            others = self._scan_levels(levels, int(side) or None) if first else []
        if first is None:
            return []
        narrowest = (min_ratio or 0) * (first[0][2] - first[0][0])
        others = [
            face
            for face in others
            if iou(face[0], first[0]) < 0.5 and face[0][2] - face[0][0] >= narrowest
        ]
        others.sort(key=lambda f: (-(f[0][2] - f[0][0]) * (f[0][3] - f[0][1]), f[0]))
        return [first, *others]

    def _scan_levels(
        self, levels: list[np.ndarray], min_side: int | None
    ) -> list[tuple[Box, float]]:
        """All faces of the reference's pyramid from the level where faces of ``min_side`` are
        found (see :meth:`detect_every`); builds the levels it needs onto ``levels``."""
        up, down = _pyramids()
        level = 0
        # A face kept on level k is >= ACCEPT_SIDE there, ACCEPT_SIDE / 2 * (6/5)**k frame
        # pixels (level 0 is the 2x upsampled frame): start on the last level where that is
        # still no more than min_side.
        while min_side and ACCEPT_SIDE / 2 * (6 / 5) ** (level + 1) <= min_side:
            level += 1
        while len(levels) <= level:
            levels.append(down(levels[-1]))
        rects, scores, _ = self._detector.run(levels[level], 0, self.adjust_threshold)
        return [
            (_rect_box(up.rect_down(down.rect_up(rect, level))), float(score))
            for rect, score in zip(rects, scores, strict=True)
            if not level or rect.width() >= ACCEPT_SIDE
        ]

    def _detect_fast(self, frame_rgb: np.ndarray, every: bool = False):
        """The fast path's face (``(box, score)`` or None), or with ``every`` all its faces."""
        height, width = frame_rgb.shape[:2]
        factor = 1.0
        image = frame_rgb
        if self.detect_max_side and max(height, width) > self.detect_max_side:
            factor = detection_factor(max(height, width), self.detect_max_side)
            size = (max(round(width * factor), 1), max(round(height * factor), 1))
            image = cv2.resize(frame_rgb, size, interpolation=cv2.INTER_AREA)
        image = np.ascontiguousarray(image)
        rects, scores, _ = self._detector.run(image, self.upsample, self.adjust_threshold)
        if not rects and self.retry_upsample:
            rects, scores, _ = self._detector.run(image, self.upsample + 1, self.adjust_threshold)

        def scaled(rect) -> Box:
            return tuple(int(round(v / factor)) for v in _rect_box(rect))

        if every:
            return [(scaled(rect), float(score)) for rect, score in zip(rects, scores, strict=True)]
        if not rects:
            return None
        best = _pick(rects, scores, self.pick)
        return scaled(rects[best]), float(scores[best])

    def crop_box(self, frame_rgb: np.ndarray, face_box: Box) -> tuple[np.ndarray, Box]:
        """Cuts and resizes the FF++ crop around a face box; returns ``(crop, crop_box)``."""
        left, top, right, bottom = square_box(face_box, frame_rgb.shape, self.scale)
        crop = frame_rgb[top:bottom, left:right]
        # INTER_AREA when shrinking (no aliasing), INTER_CUBIC when enlarging small faces.
        interpolation = cv2.INTER_AREA if crop.shape[0] >= self.image_size else cv2.INTER_CUBIC
        crop = cv2.resize(crop, (self.image_size, self.image_size), interpolation=interpolation)
        return crop, (left, top, right, bottom)

    def crop(
        self, frame_rgb: np.ndarray, hint: int | None = None
    ) -> tuple[np.ndarray | None, Box | None, float | None]:
        """Detects and crops (``hint``: see :meth:`detect`).

        Returns:
            ``(crop, crop_box, score)``: the ``image_size`` square RGB ``uint8`` crop, the crop box
            in frame pixels (after the 1.3x enlargement and clamping) and the detector score; all
            ``None`` when no face is found.
        """
        found = self.detect(frame_rgb, hint)
        if found is None:
            return None, None, None
        face_box, score = found
        crop, box = self.crop_box(frame_rgb, face_box)
        return crop, box, score
