"""`--frames auto`'s stages and stopping rule (`inference.sequential`), on known scores."""

import math

import numpy as np
import pytest

from md_csd_tf.evaluation.metrics import video_score
from md_csd_tf.inference.sequential import MAX_FRAMES, should_stop, simulate, stages


@pytest.mark.parametrize("total", [0, 1, 2, 3, 5, 7, 16, 31, 32, 33])
def test_stages_partition_the_grid(total):
    plan = stages(total)
    flat = [p for stage in plan for p in stage]
    assert sorted(flat) == list(range(total))  # every position once
    assert all(stage and stage == sorted(stage) for stage in plan)


def test_first_stage_spreads_over_the_video():
    first = stages(MAX_FRAMES)[0]
    assert len(first) == 8
    gaps = np.diff(first)
    assert set(gaps) == {4}  # evenly spaced ...
    assert first[0] <= 3 and first[-1] >= MAX_FRAMES - 4  # ... from one end to the other
    # Each later stage also spans the video, so a stop after it has looked at all of it.
    for stage in stages(MAX_FRAMES)[1:]:
        assert stage[0] <= 3 and stage[-1] >= MAX_FRAMES - 4


def test_confident_scores_stop_after_the_first_stage():
    assert should_stop([0.95, 0.9, 0.97, 0.92, 0.99, 0.93, 0.96, 0.94], threshold=0.5)
    assert should_stop([0.02, 0.05, 0.01, 0.08, 0.03, 0.04, 0.02, 0.06], threshold=0.5)


def test_scores_straddling_the_threshold_continue():
    straddling = [0.3, 0.7, 0.45, 0.6, 0.2, 0.8, 0.55, 0.4]
    assert not should_stop(straddling, threshold=0.5)
    # Close to the threshold with little spread: the floor keeps it going.
    assert not should_stop([0.53, 0.54, 0.53, 0.54, 0.53, 0.54, 0.53, 0.54], threshold=0.5)


def test_the_floor_stops_identical_scores_from_deciding_alone():
    near = [0.6] * 8
    assert not should_stop(near, threshold=0.5, floor=0.2)
    assert should_stop(near, threshold=0.5, floor=0.0)  # s == 0: any distance would do


def test_too_few_scores_never_stop():
    assert not should_stop([0.99] * 3, threshold=0.5)
    assert not should_stop([], threshold=0.5)


def test_all_frames_scored_always_stops():
    assert should_stop([0.5, 0.51] * 16, threshold=0.5)
    assert should_stop([0.5] * 5, threshold=0.5, total=5)  # a short video's whole grid


def test_more_frames_shrink_the_error_bound():
    # Same mean and spread: the finite-population factor decides at 24 what is open at 8.
    scores = [0.45, 0.75, 0.5, 0.7] * 6
    assert not should_stop(scores[:8], threshold=0.5)
    assert should_stop(scores, threshold=0.5)


def test_vote_decided_by_the_votes_so_far():
    # 17 of 32 fake votes already: a majority whatever the other frames say.
    assert should_stop([0.9] * 17 + [0.1] * 7, threshold=0.5, aggregate="vote", z=100)
    assert not should_stop([0.9] * 16 + [0.1] * 8, threshold=0.5, aggregate="vote", z=100)
    # 8 of 8 frames vote the same: a clear majority (the mean rule would need the scores' spread).
    assert should_stop([0.51] * 8, threshold=0.5, aggregate="vote")
    assert not should_stop([0.51] * 8, threshold=0.5, aggregate="mean")
    # A split vote continues.
    assert not should_stop([0.9] * 4 + [0.1] * 4, threshold=0.5, aggregate="vote")


def test_unknown_aggregate_is_refused():
    with pytest.raises(ValueError, match="aggregate"):
        should_stop([0.5] * 8, 0.5, aggregate="median")


def test_simulate_stops_early_on_clear_videos_and_agrees_with_all_frames():
    rng = np.random.default_rng(0)
    clear = list(np.clip(rng.normal(0.9, 0.05, MAX_FRAMES), 0, 1))
    assert simulate(clear, threshold=0.5) == (1, 8, 8)
    # A video whose mean sits near the threshold reads the whole grid and so gets its verdict.
    close = list(np.clip(rng.normal(0.52, 0.2, MAX_FRAMES), 0, 1))
    label, read, scored = simulate(close, threshold=0.5)
    assert read == scored == MAX_FRAMES
    assert label == int(video_score(close) > 0.5)


def test_simulate_with_missing_faces():
    grid = [0.9] * MAX_FRAMES
    for p in stages()[0][:3]:  # 3 of the first 8 frames have no face: 5 scores are too few
        grid[p] = math.nan
    assert simulate(grid, threshold=0.5) == (1, 16, 13)
    assert simulate([None] * 4, threshold=0.5) == (-1, 4, 0)


def test_simulate_vote():
    grid = [0.8] * MAX_FRAMES
    assert simulate(grid, threshold=0.5, aggregate="vote") == (1, 8, 8)
    grid = [0.2] * 20 + [0.8] * 12
    label, _, _ = simulate(grid, threshold=0.5, aggregate="vote")
    assert label == 0
