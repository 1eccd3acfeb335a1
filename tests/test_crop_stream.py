"""`CropStream` and `score_inputs`' batching loop under stress, with no model and no video.

Inputs are fakes: a video is a list of frames, some faceless, some failing mid-video or
mid-stage; a "crop" is `[input, frame]`, and the fake detector scores it from those two numbers,
so a score that lands on the wrong input or frame is caught. Every interleaving the thread can
produce (back-pressure at 3 batches of 4 crops, parked `--frames auto` videos, idle flushes,
failures) runs in well under a second per seed.
"""

from __future__ import annotations

import collections
import random
import threading
import time
import types

import numpy as np
import pytest

from md_csd_tf.inference import batch as batch_module
from md_csd_tf.inference import crops as crops_module
from md_csd_tf.inference.sequential import stages


def make_plan(seed: int, count: int = 40) -> tuple[list[tuple[str, str]], dict]:
    rng = random.Random(seed)
    inputs, plan = [], {}
    for i in range(count):
        draw = rng.random()
        kind = "video" if draw < 0.7 else "image" if draw < 0.9 else "missing"
        path = f"/fake/input{i}.{'mp4' if kind == 'video' else 'png'}"
        plan[path] = dict(
            item=i,
            frames=rng.choice([3, 8, 32, 32]),
            faceless=rng.random() < 0.2,
            fail_at=rng.choice([None] * 6 + [0, 2, 5]),  # 0: undecodable; 2, 5: mid-video
            level=rng.choice([0.99, 0.01, 0.5]),  # confident fake, confident real, uncertain
        )
        inputs.append((path, kind))
    return inputs, plan


def expected_score(plan: dict, inputs, item: int, frame: int) -> float:
    level = plan[inputs[item][0]]["level"]
    return level + 1e-4 * frame * (1 if level < 0.9 else -1)


def face(spec: dict, frame: int) -> bool:
    return not spec["faceless"] and frame % 5 != 4


@pytest.fixture
def fakes(monkeypatch):
    """Installs fake video/image croppers reading the plan set by the test; returns a setter."""
    state = {}

    def iter_video_crops(cropper, path, frames=32, sampling="uniform", every_k=None, **_):
        spec = state["plan"][path]
        for frame in range(spec["frames"]):
            if spec["fail_at"] is not None and frame == spec["fail_at"]:
                raise crops_module.InputError(f"{path}: broken at frame {frame}")
            if face(spec, frame):
                yield frame, np.array([spec["item"], frame]), (0, 0, 1, 1)
            else:
                yield frame, None, None

    class Stages:
        def __init__(self, cropper, path, track=True, timings=None):
            self.spec, self.path = state["plan"][path], path
            if self.spec["fail_at"] == 0:
                raise crops_module.InputError(f"{path}: cannot decode")
            self.total, self.sampled = self.spec["frames"], 0
            self._stages = stages(self.total)

        def more(self):
            return bool(self._stages)

        def next_stage(self):
            out = []
            for position in self._stages.pop(0):
                self.sampled += 1
                if self.spec["fail_at"] == 5 and position == 5:
                    raise crops_module.InputError(f"{self.path}: broken in a stage")
                crop = np.array([self.spec["item"], position])
                out.append((position, crop, (0, 0, 1, 1)) if face(self.spec, position) else
                           (position, None, None))  # fmt: skip
            return out

    def image(self, path):
        spec = state["plan"][path]
        if spec["faceless"]:
            raise crops_module.InputError(f"{path}: no face found")
        return np.array([spec["item"], 0]), (0, 0, 1, 1)

    monkeypatch.setattr(crops_module, "iter_video_crops", iter_video_crops)
    monkeypatch.setattr(crops_module, "VideoStages", Stages)
    monkeypatch.setattr(crops_module.CropStream, "_image", image)
    return lambda plan: state.update(plan=plan)


class FakeDetector:
    """What `score_inputs` reads of a `Detector`; scores a crop `[input, frame]` by the plan."""

    batch_size, threshold, track, cropper = 4, 0.5, True, None
    pipeline = types.SimpleNamespace(clip_frames=0)

    def __init__(self, inputs, plan, poisoned=()):
        self.inputs, self.plan, self.poisoned = inputs, plan, set(poisoned)
        self.timings = collections.defaultdict(float)
        self.calls = 0

    def check_auto(self, sampling):
        pass

    def warm_up(self):
        pass

    def predict_crops(self, crops):
        self.calls += 1
        assert len(crops) <= self.batch_size
        if self.poisoned & {int(c[0]) for c in crops}:
            raise ValueError("a poisoned crop")
        return np.array(
            [expected_score(self.plan, self.inputs, int(c[0]), int(c[1])) for c in crops],
            np.float32,
        )

    def image_result(self, path, score, box, threshold):
        return types.SimpleNamespace(score=score, verdict="fake", frames_scored=1)

    def video_result(self, path, scores, indices, boxes, sampled, aggregate, threshold):
        return types.SimpleNamespace(
            score=float(np.mean(scores)), verdict="fake", frames_scored=len(scores),
            frame_indices=list(indices), frame_scores=list(scores), frames_sampled=sampled,
        )  # fmt: skip


def run_with_timeout(function, seconds=30):
    """Runs `function()` in a thread; a hang fails the test instead of the suite."""
    out = {}
    thread = threading.Thread(target=lambda: out.update(value=function()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "score_inputs did not return: a deadlock"
    return out["value"]


@pytest.mark.parametrize("frames", [32, "auto"])
@pytest.mark.parametrize("seed", range(6))
def test_every_score_lands_on_its_input_and_frame(fakes, seed, frames):
    inputs, plan = make_plan(seed)
    fakes(plan)
    detector = FakeDetector(inputs, plan)
    rows = run_with_timeout(
        lambda: batch_module.score_inputs(
            detector, inputs, progress=False, frames=frames, sampling="uniform"
        )
    )
    assert [row.input for row in rows] == [path for path, _ in inputs]
    for row, (path, kind) in zip(rows, inputs, strict=True):
        spec = plan[path]
        broken = kind == "missing" or (
            kind == "video" and spec["fail_at"] is not None and spec["fail_at"] < spec["frames"]
        )
        faceless = spec["faceless"] and kind != "missing"
        if frames == 32 and (broken or faceless):
            assert not row.ok and path in row.error
        if frames == 32 and not (broken or faceless):
            assert row.ok, row.error
            assert row.frame_indices == [f for f in range(spec["frames"]) if face(spec, f)] or (
                kind == "image" and row.frame_indices == [0]
            )
        if row.ok:
            assert row.frame_indices == sorted(row.frame_indices)
            for frame, score in zip(row.frame_indices, row.frame_scores, strict=True):
                assert score == pytest.approx(expected_score(plan, inputs, spec["item"], frame))
    # Never more than one call per batch of 4 crops handed over, plus the partial flushes.
    assert detector.calls >= -(-sum(r.frames_scored for r in rows if r.ok) // 4)
    assert not [t for t in threading.enumerate() if t.name == "md-csd-crops"]


def test_a_failed_shared_call_fails_only_the_input_whose_crops_fail(fakes):
    inputs = [(f"/fake/image{i}.png", "image") for i in range(6)]
    plan = {p: dict(item=i, frames=1, faceless=False, fail_at=None, level=0.01)
            for i, (p, _) in enumerate(inputs)}  # fmt: skip
    fakes(plan)
    detector = FakeDetector(inputs, plan, poisoned={2})
    rows = run_with_timeout(lambda: batch_module.score_inputs(detector, inputs, progress=False))
    assert [row.ok for row in rows] == [True, True, False, True, True, True]
    assert "poisoned" in rows[2].error and inputs[2][0] in rows[2].error


def test_close_stops_the_thread_within_a_frame(fakes, monkeypatch):
    # A long faceless video emits nothing, so only a check per frame can stop it.
    def slow_frames(cropper, path, **_):
        for frame in range(10_000):
            time.sleep(0.01)
            yield frame, None, None

    monkeypatch.setattr(crops_module, "iter_video_crops", slow_frames)
    stream = crops_module.CropStream([("/fake/long.mp4", "video")], None, frames=32).start()
    time.sleep(0.05)
    began = time.perf_counter()
    stream.close()
    assert time.perf_counter() - began < 0.5
    assert not stream._thread.is_alive()
