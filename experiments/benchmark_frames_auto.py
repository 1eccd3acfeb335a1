"""`md-csd predict --frames auto` against `--frames 32`: same verdicts, fewer frames, less wait?

    python experiments/benchmark_frames_auto.py                    # shipped detector, stand-ins
    python experiments/benchmark_frames_auto.py --models shipped meso4:mesonet-df   # 2 models
    python experiments/benchmark_frames_auto.py --scores scores.json --no-cli  # reuse the scores

What it measures, on the stand-in videos (`--root`, FF++/Celeb-DF/DFD layouts, listed with
`prep.layouts.scan_dataset`; the detectors never trained on them):

1. Every video is scored once at 32 evenly spaced frames (`Detector.predict_video(frames=32)`)
   and each frame's score put at its position in the grid (`prep.video.sample_indices`; a frame
   without a face has none). The stopping rule (`inference.sequential`) is then replayed on these
   scores (a frame's score does not depend on which other frames are scored; see the note on
   tracking below).
2. On the tuning videos (`--tune`, default FF++ train and val: the shipped detector was trained
   on real faces with pseudo-fakes, never on these) it prints the critical z, the largest z at
   which the rule would stop a video on the wrong side, which `sequential.Z` must exceed with a
   margin; then, for the module's constants and a sweep of others, on the TEST videos of each
   dataset: verdict agreement with 32 frames, frames read (decoded and searched for a face) and
   scored per video against the grid, and accuracy against the labels both ways.
3. If `md-csd predict --help` offers `--frames auto`, the user's command is timed end to end in
   fresh processes, back to back (32, auto, 32, auto) on a folder of links to the test videos,
   with the load average; the speed-up is a ratio measured in one run, and the CLI's verdicts are
   compared between the two.

Prints a Markdown report and writes it to `--out` (default frames_auto.md).

Cost (2 shared CPU cores, load average 13-21): scoring the 126 videos took ~4 min per model;
the replay is instant; the in-process timing ~4 min and the CLI timing 4 runs of 75-105 s each
on 46 videos (TensorFlow's import and the model load are in every run). Result of that run:
agreement 46/46 on test for both models at 8.5 (shipped) and 11.0 (MesoNet) of 25 frames read;
speed-up 2.48x in process, 1.35x for the CLI end to end.

The replay is exact but for face tracking: `--frames auto` searches the grid frames in stage
order, so each search starts from another previous face than at 32 frames, and a borderline face
can be found (or cut) a little differently; the timed runs check the verdicts for real.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from md_csd_tf.inference import sequential  # noqa: E402
from md_csd_tf.prep.layouts import scan_dataset  # noqa: E402
from md_csd_tf.prep.video import frame_count, probe, sample_indices  # noqa: E402

STANDIN = "pretrain_run/data/standin"  # written by python experiments/pretrain.py
DATASET_SPLITS = {"ffpp": ("train", "val", "test"), "celebdf": ("test",), "dfd": ("test",)}
GRID = sequential.MAX_FRAMES  # what `--frames auto` tries to reproduce: `--frames 32`
# Candidates for the tuning search: z from "one standard error" to very cautious; the floor from
# "trust the spread of the scores" to "assume at least 0.1 of spread".
ZS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0)
FLOORS = (0.0, 0.02, 0.05, 0.1)


@dataclasses.dataclass
class Video:
    dataset: str
    split: str
    label: int
    path: str
    grid: list[float]  # score at each grid position, NaN without a face

    @property
    def name(self) -> str:
        return (
            f"{self.dataset}/{self.split}/{Path(self.path).parent.parent.parent.name}/"
            + Path(self.path).name
        )


def list_standin(root: str) -> list[tuple[str, str, int, str]]:
    """`(dataset, split, label, path)` of the stand-in videos, in a stable order."""
    found = []
    for dataset, splits in DATASET_SPLITS.items():
        folder = Path(root) / dataset
        if not folder.is_dir():
            continue
        for record in scan_dataset(dataset, folder, splits=splits).videos:
            found.append((dataset, record.split, record.label, record.path))
    return sorted(found)


def grid_scores(detector, path: str, aggregate: str) -> list[float]:
    """The 32-frame scores of a video at their grid positions (NaN where no face was found)."""
    # The grid `iter_frames` samples: the same frame count, the same formula.
    total = probe(path).frame_count or frame_count(path)
    grid = sample_indices(total, GRID, "uniform")
    result = detector.predict_video(path, frames=GRID, aggregate=aggregate)
    where = {index: p for p, index in enumerate(grid)}
    scores = [math.nan] * len(grid)
    for index, score in zip(result.frame_indices, result.frame_scores, strict=True):
        scores[where[index]] = float(score)
    return scores


def load_detector(spec: str):
    from md_csd_tf.inference.detector import Detector

    if spec == "shipped":
        return Detector.pretrained()
    name, weights = spec.split(":")
    return Detector.pretrained(name, weights)


def score_all(spec: str, root: str) -> dict:
    detector = load_detector(spec)
    aggregate = detector.recipe.video_aggregate
    began = time.perf_counter()
    videos = []
    for dataset, split, label, path in list_standin(root):
        try:
            grid = grid_scores(detector, path, aggregate)
        except Exception as error:  # noqa: BLE001 - a video without any face: reported, skipped
            print(f"  skipped {path}: {error}")
            continue
        videos.append(dataclasses.asdict(Video(dataset, split, label, path, grid)))
    print(f"{spec}: scored {len(videos)} videos in {time.perf_counter() - began:.0f} s")
    return {"threshold": detector.threshold, "aggregate": aggregate, "videos": videos}


def replay(videos: list[Video], threshold: float, aggregate: str, **rule) -> dict:
    """Agreement with 32 frames, frames read and scored, and accuracy of the rule on known scores."""
    agree = read = scored = grid = right_auto = right_full = 0
    for video in videos:
        full, _, _ = sequential.simulate(video.grid, threshold, aggregate, min_scores=10**9)
        auto, frames, faces = sequential.simulate(video.grid, threshold, aggregate, **rule)
        agree += auto == full
        read += frames
        scored += faces
        grid += len(video.grid)
        right_auto += auto == video.label
        right_full += full == video.label
    n = max(len(videos), 1)
    return {
        "videos": len(videos),
        "agree": agree / n,
        "disagree": len(videos) - agree,
        "read": read / n,
        "scored": scored / n,
        "grid": grid / n,
        "acc_auto": right_auto / n,
        "acc_full": right_full / n,
    }


def critical_z(video: Video, threshold: float, floor: float) -> float:
    """The largest z at which the "mean" rule would stop this video on the wrong side (0: none).

    Any z above it gives the 32-frame verdict on this video; the largest over the tuning videos
    is the least z that agrees on all of them.
    """
    total = len(video.grid)
    full = np.nanmean(video.grid) > threshold
    seen, worst = [], 0.0
    for stage in sequential.stages(total)[:-1]:  # after the last stage the verdict is exact
        seen += [video.grid[p] for p in stage if not math.isnan(video.grid[p])]
        n = len(seen)
        if n < sequential.MIN_SCORES or (np.mean(seen) > threshold) == full:
            continue
        spread = max(float(np.std(seen, ddof=1)), floor)
        error = spread / math.sqrt(n) * math.sqrt(1 - n / total)
        worst = max(worst, abs(np.mean(seen) - threshold) / error)
    return worst


def row(label: str, r: dict) -> str:
    return (
        f"| {label} | {r['videos']} | {100 * r['agree']:.1f}% ({r['disagree']}) | "
        f"{r['read']:.1f} / {r['scored']:.1f} of {r['grid']:.1f} "
        f"({100 * r['read'] / r['grid']:.0f}%) | "
        f"{100 * r['acc_full']:.1f}% | {100 * r['acc_auto']:.1f}% |"
    )


HEADER = (
    "| videos | n | agreement with 32 frames (disagreeing) | frames read / scored of grid | "
    "accuracy, 32 frames | accuracy, auto |\n|---|---|---|---|---|---|"
)


def report_model(spec: str, scored: dict, tune_splits: set[str]) -> list[str]:
    threshold, aggregate = scored["threshold"], scored["aggregate"]
    videos = [Video(**v) for v in scored["videos"]]
    tuning = [v for v in videos if v.dataset == "ffpp" and v.split in tune_splits]
    test = [v for v in videos if v.split == "test"]
    tuned = "FF++ " + "+".join(sorted(tune_splits))
    lines = [f"### {spec} (threshold {threshold:.4f}, aggregate {aggregate})", ""]
    if aggregate == "mean":
        crit = {f: max((critical_z(v, threshold, f), v.name) for v in tuning) for f in FLOORS}
        lines += [
            f"Critical z on the tuning videos ({tuned}, {len(tuning)} videos; the largest z at "
            "which a video would stop on the wrong side, so any larger z agrees on all): "
            + "; ".join(f"floor {f}: {z:.2f} ({name})" for f, (z, name) in crit.items()),
            "",
        ]
    rule = {"z": sequential.Z, "floor": sequential.FLOOR, "min_scores": sequential.MIN_SCORES}
    lines += [
        f"The module's constants ({', '.join(f'{k} = {v}' for k, v in rule.items())}); frames "
        "read = decoded and searched for a face, scored = with a face:",
        "",
        HEADER,
        row(f"tuning ({tuned})", replay(tuning, threshold, aggregate, **rule)),
    ]
    for dataset in DATASET_SPLITS:
        part = [v for v in test if v.dataset == dataset]
        if part:
            lines.append(row(f"test {dataset}", replay(part, threshold, aggregate, **rule)))
    lines.append(row("**test, all**", replay(test, threshold, aggregate, **rule)))
    lines += [
        "",
        "Other constants: agreement (disagreeing videos) and frames read on all test videos; "
        "tuning-video disagreements in brackets:",
        "",
        "| z | " + " | ".join(f"floor {f}" for f in FLOORS) + " |",
        "|---|" + "---|" * len(FLOORS),
    ]
    for z in ZS:
        cells = []
        for floor in FLOORS:
            r = replay(test, threshold, aggregate, z=z, floor=floor)
            t = replay(tuning, threshold, aggregate, z=z, floor=floor)
            cells.append(
                f"{100 * r['agree']:.1f}% ({r['disagree']}), {r['read']:.1f} [{t['disagree']}]"
            )
        lines.append(f"| {z} | " + " | ".join(cells) + " |")
    if aggregate != "vote":
        r = replay(test, threshold, "vote", **rule)
        lines += [
            "",
            "`--aggregate vote`, the module's constants:",
            "",
            HEADER,
            row("test, all", r),
        ]
    return lines


def time_in_process(paths: list[str], repeats: int) -> list[str]:
    """Times `Detector.predict_video` at 32 frames and "auto", one loaded shipped detector.

    Without start-up (TensorFlow's import, the model load), which a short folder's CLI time is
    mostly made of: this is the per-video saving a long folder approaches. Interleaved per video
    (32, auto, 32, auto, ...) so that the machine's load falls on both alike.
    """
    detector = load_detector("shipped")
    aggregate = detector.recipe.video_aggregate
    detector.predict_video(paths[0], frames=GRID, aggregate=aggregate)  # tracing, not timed
    walls = {"32": 0.0, "auto": 0.0}
    same, frames = 0, {"32": 0, "auto": 0}
    load = os.getloadavg()[0]
    for _ in range(repeats):
        for path in paths:
            for way, count in (("32", GRID), ("auto", "auto")):
                began = time.perf_counter()
                try:
                    result = detector.predict_video(path, frames=count, aggregate=aggregate)
                except Exception:  # noqa: BLE001 - no face: fails the same way both times
                    result = None
                walls[way] += time.perf_counter() - began
                frames[way] += result.frames_sampled if result else 0
                if way == "32":
                    full = result.label if result else None
                else:
                    same += (result.label if result else None) == full
    n = len(paths) * repeats
    return [
        f"In process, one loaded detector, `predict_video` per video interleaved 32/auto x{repeats}"
        f" ({len(paths)} test videos; load average {load:.1f} -> {os.getloadavg()[0]:.1f}): "
        f"{1000 * walls['32'] / n:.0f} ms vs {1000 * walls['auto'] / n:.0f} ms per video, "
        f"speed-up {walls['32'] / walls['auto']:.2f}x; frames sampled {frames['32'] / n:.1f} vs "
        f"{frames['auto'] / n:.1f} per video; verdicts agree on {same} of {n}.",
        "",
    ]


def cli_offers_auto() -> bool:
    help_text = subprocess.run(
        [sys.executable, "-m", "md_csd_tf.cli", "predict", "--help"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    return "auto" in help_text


def time_cli(
    paths: list[str], repeats: int, auto: tuple[str, ...] = ("--frames", "auto")
) -> list[str]:
    """Times `md-csd predict --quiet [--frames auto]` end to end, interleaved, fresh processes."""
    with tempfile.TemporaryDirectory(prefix="frames_auto_") as tmp:
        folder = Path(tmp) / "videos"
        folder.mkdir()
        for i, path in enumerate(paths):
            (folder / f"{i:03d}_{Path(path).name}").symlink_to(path)
        walls = {"32": [], "auto": []}
        verdicts = {}
        loads = [os.getloadavg()[0]]
        for _ in range(repeats):
            for way in ("32", "auto"):
                out = Path(tmp) / f"{way}.json"
                extra = list(auto) if way == "auto" else []
                command = [sys.executable, "-m", "md_csd_tf.cli", "predict", "--quiet", *extra,
                           str(folder), "--output", str(out)]  # fmt: skip
                began = time.perf_counter()
                # Exit status 1 only says some input failed (a video without a face): its row
                # says so too, and it fails the same way both times.
                subprocess.run(command, check=False, stdout=subprocess.DEVNULL)
                walls[way].append(time.perf_counter() - began)
                rows = json.loads(out.read_text())["results"]
                verdicts[way] = {
                    r["input"]: (r["verdict"], r["frames_scored"], r["frames_sampled"])
                    for r in rows
                }
                loads.append(os.getloadavg()[0])
    same = sum(verdicts["32"][k][0] == verdicts["auto"][k][0] for k in verdicts["32"])
    full, auto = np.mean(walls["32"]), np.mean(walls["auto"])
    sampled = {w: np.mean([v[2] for v in verdicts[w].values()]) for w in walls}
    scored = {w: np.mean([v[1] for v in verdicts[w].values()]) for w in walls}
    return [
        f"`md-csd predict --quiet FOLDER` ({len(paths)} test videos), fresh processes, "
        f"interleaved 32/auto x{repeats}; load average {' -> '.join(f'{x:.1f}' for x in loads)}:",
        "",
        "| way | wall s (each run) | mean | frames sampled / scored per video |",
        "|---|---|---|---|",
        f"| --frames 32 (default) | {', '.join(f'{w:.1f}' for w in walls['32'])} | {full:.1f} | "
        f"{sampled['32']:.1f} / {scored['32']:.1f} |",
        f"| --frames auto | {', '.join(f'{w:.1f}' for w in walls['auto'])} | {auto:.1f} | "
        f"{sampled['auto']:.1f} / {scored['auto']:.1f} |",
        "",
        f"End-to-end speed-up {full / auto:.2f}x; verdicts agree on {same} of {len(verdicts['32'])}"
        " inputs.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=STANDIN, help="the stand-in datasets' folder")
    parser.add_argument(
        "--models", nargs="+", default=["shipped"],
        help="'shipped' (md-csd-sbi) and/or registry DETECTOR:WEIGHTS, e.g. meso4:mesonet-df",
    )  # fmt: skip
    parser.add_argument(
        "--tune", default="train,val", help="FF++ splits the constants are chosen on"
    )
    parser.add_argument("--scores", help="a JSON of scores: read if it exists, else written")
    parser.add_argument("--no-cli", action="store_true", help="skip timing the command")
    parser.add_argument("--repeats", type=int, default=2, help="CLI runs of each way")
    parser.add_argument("--out", default="frames_auto.md", help="the Markdown report")
    args = parser.parse_args()

    cache = Path(args.scores) if args.scores else None
    scored = json.loads(cache.read_text()) if cache and cache.is_file() else {}
    for spec in args.models:
        if spec not in scored:
            scored[spec] = score_all(spec, args.root)
    if cache:
        cache.write_text(json.dumps(scored))

    lines = ["## `--frames auto` on the stand-in videos", ""]
    for spec in args.models:
        lines += report_model(spec, scored[spec], set(args.tune.split(","))) + [""]
    if args.no_cli:
        lines.append("(CLI not timed: --no-cli.)")
    elif not cli_offers_auto():
        lines.append("(CLI not timed: `md-csd predict --help` offers no `--frames auto` yet.)")
    else:
        test = [path for _, split, _, path in list_standin(args.root) if split == "test"]
        lines += time_in_process(test, args.repeats)
        lines += time_cli(test, args.repeats)
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
