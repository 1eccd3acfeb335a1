"""Face detection and the FF++ crop rule; the OpenCV frame reader."""

from __future__ import annotations

import cv2
import dlib
import numpy as np
import pytest
from prep_fixtures import blank_frame, face_frame, face_patch, write_video

from md_csd_tf.prep.faces import FaceCropper, _upsampled, iou, reference_detect, square_box
from md_csd_tf.prep.video import VideoError, read_frames, sample_indices


@pytest.fixture(scope="module")
def cropper():
    return FaceCropper(image_size=64)


def test_square_box_inside_frame():
    # w=100, h=80 -> side int(1.3 * 100) = 130 around the centre (150, 120).
    assert square_box((100, 80, 200, 160), (480, 640, 3)) == (85, 55, 215, 185)


def test_square_box_left_top_is_shifted():
    # Side 65 around (25, 25) would start at -7: the corner is clamped to 0, the side kept.
    assert square_box((0, 0, 50, 50), (480, 640)) == (0, 0, 65, 65)
    assert square_box((-20, -10, 30, 40), (480, 640)) == (0, 0, 65, 65)


def test_square_box_right_bottom_shrinks():
    # Side 39 around (85, 85) starts at 66 and would end at 105 > 100: the side is cut to 34.
    assert square_box((70, 70, 100, 100), (100, 100)) == (66, 66, 100, 100)


def test_square_box_always_square_and_inside():
    rng = np.random.default_rng(0)
    for _ in range(500):
        height, width = rng.integers(50, 400, 2)
        left, top = rng.integers(-40, 380, 2)
        side = rng.integers(10, 200)
        box = square_box((left, top, left + side, top + rng.integers(10, 200)), (height, width))
        assert box[2] - box[0] == box[3] - box[1]
        assert box[0] >= 0 and box[1] >= 0 and box[2] <= width and box[3] <= height
        assert box[2] > box[0]


def _patch_face_box(cropper):
    found = cropper.detect(face_patch())
    assert found is not None
    return found[0]


def test_detect_finds_face_where_pasted(cropper):
    px0, py0, px1, py1 = _patch_face_box(cropper)
    for x, y in ((60, 30), (120, 50), (0, 0)):
        box, score = cropper.detect(face_frame(x=x, y=y))
        assert score > 0
        assert iou(box, (px0 + x, py0 + y, px1 + x, py1 + y)) > 0.8


def test_crop_follows_the_ff_formula(cropper):
    frame = face_frame(x=100, y=40)
    face_box, score = cropper.detect(frame)
    crop, box, crop_score = cropper.crop(frame)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    assert crop_score == score
    left, top, right, bottom = face_box
    side = int(1.3 * max(right - left, bottom - top))
    assert box == ((left + right) // 2 - side // 2, (top + bottom) // 2 - side // 2,
                   (left + right) // 2 - side // 2 + side, (top + bottom) // 2 - side // 2 + side)  # fmt: skip
    expected = cv2.resize(frame[box[1] : box[3], box[0] : box[2]], (64, 64),
                          interpolation=cv2.INTER_AREA)  # fmt: skip
    np.testing.assert_array_equal(crop, expected)


def test_crop_at_frame_corner_is_clamped():
    # The face positions below were measured with the fast path (upsample 0); the clamping rule
    # under test does not depend on how the face box was found.
    cropper = FaceCropper(image_size=64, exact=False)
    # Face at about (-1, 3)-(86, 90): the ~113 px box around its centre would start left of 0.
    frame = np.ascontiguousarray(face_frame(x=0, y=0)[40:, 50:])
    face_box, _ = cropper.detect(frame)
    crop, box, _ = cropper.crop(frame)
    side = int(1.3 * max(face_box[2] - face_box[0], face_box[3] - face_box[1]))
    assert (face_box[0] + face_box[2]) // 2 < side // 2  # precondition: it leaves on the left
    assert (face_box[1] + face_box[3]) // 2 < side // 2  # and at the top
    assert box == (0, 0, side, side)  # shifted in, full side kept
    # Face at about (49, 43)-(136, 130) in a 140 px high frame: the box is cut at the bottom.
    frame = np.ascontiguousarray(face_frame(x=0, y=0)[:140])
    face_box, _ = cropper.detect(frame)
    crop, box, _ = cropper.crop(frame)
    side = int(1.3 * max(face_box[2] - face_box[0], face_box[3] - face_box[1]))
    top = (face_box[1] + face_box[3]) // 2 - side // 2
    assert top + side > 140
    assert box[1] == top and box[3] == 140 and box[2] - box[0] == 140 - top  # shrunk, square
    assert crop.shape == (64, 64, 3)


def test_no_face(cropper):
    assert cropper.detect(blank_frame()) is None
    assert cropper.crop(blank_frame()) == (None, None, None)


def test_downscaled_detection_matches_full_size():
    big_face = cv2.resize(face_patch(), (540, 540))
    frame = np.full((720, 1280, 3), 100, np.uint8)
    frame[100:640, 500:1040] = big_face
    # The fast path's own claim: a (5/6)**k downscale keeps its boxes on the full-size ladder.
    fast = FaceCropper(detect_max_side=640, exact=False).detect(frame)
    full = FaceCropper(detect_max_side=None, exact=False).detect(frame)
    assert fast is not None and full is not None
    assert iou(fast[0], full[0]) > 0.85


def test_pick_largest_of_two_faces():
    frame = np.full((360, 640, 3), 90, np.uint8)
    frame[0:180, 0:180] = face_patch()
    frame[0:360, 260:620] = cv2.resize(face_patch(), (360, 360))
    box, _ = FaceCropper(pick="largest").detect(frame)
    assert box[0] > 260  # the big face on the right
    assert FaceCropper(pick="best").detect(frame) is not None
    with pytest.raises(ValueError):
        FaceCropper(pick="first")


def test_sample_indices():
    assert sample_indices(10, 4, "consecutive") == [0, 1, 2, 3]
    assert sample_indices(12, 4, "uniform") == [1, 4, 7, 10]
    assert sample_indices(3, 25, "uniform") == [0, 1, 2]
    assert sample_indices(5, None, "consecutive") == [0, 1, 2, 3, 4]


def _colour_video(path, n=10):
    frames = []
    for i in range(n):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[..., 0] = 200  # red in RGB
        frame[:, : 6 * i + 1, 2] = 255  # a blue bar whose width encodes the frame index
        frames.append(frame)
    return write_video(path, frames)


def test_read_frames_rgb_and_indices(tmp_path):
    path = _colour_video(tmp_path / "v.mp4")
    frames, indices = read_frames(path, 3, "consecutive")
    assert indices == [0, 1, 2] and len(frames) == 3
    assert frames[0].shape == (48, 64, 3) and frames[0].dtype == np.uint8
    assert frames[0][24, 60, 0] > 150 and frames[0][24, 60, 2] < 60  # RGB, not BGR
    frames, indices = read_frames(path, 5, "uniform")
    assert indices == [1, 3, 5, 7, 9]
    bar = [(f[24, :, 2] > 128).sum() for f in frames]
    assert bar == sorted(bar) and bar[-1] > bar[0] + 30  # frames come in index order
    frames, indices = read_frames(path, 25, "consecutive")  # short video: all it has
    assert indices == list(range(10))


def test_read_frames_bad_files(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty.mp4: empty file"):
        read_frames(empty, 5)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoError, match="notes.mp4: "):
        read_frames(text, 5)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(_colour_video(tmp_path / "ok.mp4").read_bytes()[:600])
    with pytest.raises(VideoError, match="cut.mp4: "):
        read_frames(truncated, 5)
    with pytest.raises(VideoError, match="file not found"):
        read_frames(tmp_path / "missing.mp4", 5)


def _faces_at(size, placements):
    """A frame of ``size`` (w, h) with the face patch resized to ``side`` at each ``(x, y, side)``."""
    frame = np.full((size[1], size[0], 3), 100, np.uint8)
    for x, y, side in placements:
        frame[y : y + side, x : x + side] = cv2.resize(face_patch(), (side, side))
    return frame


def test_upsampling_is_dlibs_own():
    # The exact path rebuilds the reference's pyramid; equal scores mean equal pixels.
    gray = cv2.cvtColor(face_frame(), cv2.COLOR_RGB2GRAY)
    detector = dlib.get_frontal_face_detector()
    rects, scores, _ = detector.run(gray, 1, 0.0)
    up_rects, up_scores, _ = detector.run(_upsampled(gray), 0, 0.0)
    assert len(rects) == len(up_rects) == 1
    assert up_scores[0] == scores[0]
    assert dlib.pyramid_down(2).rect_down(up_rects[0]) == rects[0]


@pytest.mark.parametrize(
    "size, placements",
    [((512, 384), [(300, 100, 200)]), ((854, 480), [(20, 200, 150), (400, 20, 440)]),
     ((1280, 720), [(700, 150, 500)]), ((1920, 1080), [(100, 300, 700)])],
)  # fmt: skip
def test_exact_crops_equal_the_ff_procedure(size, placements):
    frame = _faces_at(size, placements)
    reference = reference_detect(frame)
    assert reference is not None
    expected = square_box(reference[0], frame.shape)
    cropper = FaceCropper(image_size=64)
    side = reference[0][2] - reference[0][0]
    # No hint (coarse first look), the right hint, and misleading ones (a face 4x smaller, 3x
    # larger than it is: the first starts too early, the second is not confirmed and redone), and
    # the box itself, as a video's previous frame gives it.
    for hint in (None, side, side // 4, side * 3, reference[0]):
        box, score = cropper.detect(frame, hint)
        assert iou(square_box(box, frame.shape), expected) > 0.95, hint
        assert score == pytest.approx(reference[1], abs=0.05)
    fast = FaceCropper(image_size=64, exact=False).detect(frame)
    assert fast is not None  # the option still works (looser boxes)


def test_ff_script_takes_the_best_scoring_face_not_the_biggest():
    # detect_from_video.py takes faces[0] ("biggest face"); dlib sorts by score. Blurring the big
    # face lowers its score below the small one's.
    frame = _faces_at((700, 400), [(10, 10, 180), (300, 0, 400)])
    frame[:, 300:] = cv2.GaussianBlur(frame[:, 300:], (0, 0), 4)
    faces = dlib.get_frontal_face_detector()(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), 1)
    assert len(faces) == 2
    first = (faces[0].left(), faces[0].top(), faces[0].right(), faces[0].bottom())
    assert reference_detect(frame, pick="best")[0] == first
    largest = reference_detect(frame, pick="largest")[0]
    assert largest[0] > 300 and first[0] < 300  # "largest" is the blurred big face
    # Same face to a pixel (dlib rounds the box once per mapping, and we map in two steps).
    assert iou(FaceCropper(image_size=64, pick="largest").detect(frame)[0], largest) > 0.98


def test_tracking_by_box_keeps_the_ff_crops(tmp_path):
    # A video as predict reads it: each frame's search starts from the previous frame's box
    # (moving and growing face, so the level chosen from it is sometimes one too many or too few).
    frames = [_faces_at((854, 480), [(40 + 60 * i, 20 + 5 * i, 260 + 25 * i)]) for i in range(6)]
    path = write_video(tmp_path / "moving.mp4", frames)
    cropper, hint = FaceCropper(image_size=64), None
    decoded, _ = read_frames(path, None)
    assert len(decoded) == 6
    for frame in decoded:
        found = cropper.detect(frame, hint)
        reference = reference_detect(frame)
        assert found is not None and reference is not None
        expected = square_box(reference[0], frame.shape)
        assert iou(square_box(found[0], frame.shape), expected) >= 0.95
        hint = found[0]
