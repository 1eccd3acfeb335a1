"""Fewer frames when the answer is clear: `md-csd predict --frames auto`.

`--frames 32` scores 32 evenly spaced frames of a video and compares their mean fake probability
with the threshold. Most videos are far from the threshold after a handful of frames, so
`--frames auto` scores the 32 frames in stages, coarse to fine (`stages`), and stops after a
stage when the frames scored so far decide the 32-frame verdict (`should_stop`). The verdict it
aims at is the one `--frames 32` would give, not a better one: it is an economy, not a model.

The rule. The 32 grid frames are a finite population; the frames scored after each stage are a
systematic sample of it (every 4th frame, then every 2nd, ...). The population mean, which is the
32-frame video score, is estimated by the sample mean `m` of the `n` scores, with standard error
`s / sqrt(n) * sqrt(1 - n / total)` (`s` the sample standard deviation; the second factor is the
finite-population correction: at `n == total` the error is 0 and the verdict is exact). We stop
when the threshold lies more than `z` standard errors from `m`:

    |m - threshold| > z * max(s, floor) / sqrt(n) * sqrt(1 - n / total)

and never with fewer than `min_scores` scores. Why each piece:

- `z` (`Z`): a one-sided normal bound would say z = 2.3 for 1% wrong stops, but frame scores of a
  video are neither normal nor independent (neighbouring frames share a face and a compression),
  so `z` comes from data: on the 80 FF++ stand-in train+val videos (never seen by the shipped
  detector; the 20 val videos alone never put a partial mean on the wrong side, so they say
  nothing about z) the largest z at which the rule would have stopped a video on the wrong side
  is 1.9 for the shipped detector (one Face2Face video) and 0.84 for MesoNet's published weights
  (`experiments/benchmark_frames_auto.py`). z = 3 keeps a margin of ~1.6 over that, because 80
  videos of one synthetic kind cannot show a 1% error rate (0 errors in 80 only bound it at
  ~3.7%, 95% confidence); it costs about one frame per video over z = 2 (8.5 against 7.6 of 25
  frames on the test videos, shipped detector). The stand-in videos have 25 frames, so their
  grid is 25 (stages of 6, 7 and 12 frames), not 32.
- `floor` (`FLOOR`): eight near-identical scores give `s ~ 0` and would stop at any distance from
  the threshold; a video whose first frames agree by chance is exactly the one to keep scoring.
  The floor says how much frame-to-frame spread we assume at least. 0.05 was set before looking at
  scores; on the tuning videos it leaves the critical z as it is (1.9 with floors 0 to 0.05) and
  costs < 0.5 frame per video at z = 3.
- `min_scores` (`MIN_SCORES`): a standard deviation of two or three scores means little. Frames
  without a face give no score, so a first stage with missing faces may not be enough to stop.
- The sample is systematic, not random: with temporally smooth scores it estimates the mean
  better than a random sample of the same size, so the bound is on the safe side there; what it
  can miss is a short burst (a few manipulated frames), which is why later stages fill in
  between the first ones rather than extending one end.

"vote" applies the same rule to the frame votes (1 when a frame's probability is above
`threshold`, else 0) against 0.5, the majority (`evaluation.metrics.video_score`); it also stops
when the votes so far decide the majority whatever the remaining frames say.

Frames without a face: the rule sees only the scores it has; `total` stays the size of the grid,
which makes the correction factor conservative (the true population, frames with a face, is
smaller).

Reference: finite-population correction of a sample mean, e.g. Cochran, *Sampling Techniques*
(3rd ed., 1977), Sec. 2.5; systematic sampling, ibid. Ch. 8.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from md_csd_tf.evaluation.metrics import AGGREGATES, video_score

MAX_FRAMES = 32  # the grid of `--frames 32`, `inference.crops.DEFAULT_FRAMES`
FIRST_STRIDE = 4  # the first stage scores every 4th grid frame: 8 of 32, spread over the video
Z = 3.0  # standard errors between estimate and threshold: 1.6x the least safe z on tuning videos
FLOOR = 0.05  # the least frame-to-frame standard deviation assumed (probability units)
MIN_SCORES = 6  # no stop on fewer scores: 6 of the first stage's 8 frames must have a face


def stages(total: int = MAX_FRAMES) -> list[list[int]]:
    """The positions in a grid of `total` evenly spaced frames, in scoring order, stage by stage.

    Stage 1 takes every `FIRST_STRIDE`-th position, centred (2, 6, ..., 30 of 32); stage 2 the
    positions halfway between (0, 4, ..., 28); stage 3 the rest (the odd positions). Each stage
    spreads over the whole video, so stopping after any of them has looked at all of it.

    Args:
        total: size of the grid (the frames `--frames total` scores; fewer for a video shorter
            than that).

    Returns:
        Disjoint, non-empty lists of positions in `range(total)`, ascending within a stage, whose
        union is `range(total)`.
    """
    if total < 0:
        raise ValueError(f"total must be >= 0, got {total}")
    half = FIRST_STRIDE // 2
    positions = range(total)
    plan = [
        [p for p in positions if p % FIRST_STRIDE == half],
        [p for p in positions if p % FIRST_STRIDE == 0],
        [p for p in positions if p % 2 == 1],
    ]
    return [stage for stage in plan if stage]


def should_stop(
    scores: Sequence[float],
    threshold: float,
    aggregate: str = "mean",
    total: int = MAX_FRAMES,
    *,
    z: float = Z,
    floor: float = FLOOR,
    min_scores: int = MIN_SCORES,
) -> bool:
    """Whether the frame scores so far decide the video's `total`-frame verdict.

    Call it after each complete stage of `stages(total)` with every score so far (frames without
    a face give none).

    Args:
        scores: fake probabilities of the frames scored so far, any order.
        threshold: the detector's decision threshold (`Detector.threshold`).
        aggregate: "mean" (video score = mean probability, fake when > threshold) or "vote"
            (fraction of frames with probability > threshold, fake when > 0.5).
        total: the grid size; the verdict to predict is the one over all `total` frames.
        z, floor, min_scores: the rule's constants (module docstring).

    Returns:
        True to stop (always when `len(scores) >= total`), False to score the next stage.
    """
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
    n = len(scores)
    if n >= total:
        return True
    if n < min_scores:
        return False
    values = np.asarray(scores, dtype=np.float64)
    cut = threshold
    if aggregate == "vote":
        fake = int(np.sum(values > threshold))
        # Decided outright: more than half of the grid already votes fake, or even if every
        # remaining frame voted fake the fraction could not exceed one half (a tie is real).
        if fake > total / 2 or fake + (total - n) <= total / 2:
            return True
        values, cut = (values > threshold).astype(np.float64), 0.5
    estimate = video_score(values, "mean")
    spread = max(float(np.std(values, ddof=1)), floor)
    error = spread / math.sqrt(n) * math.sqrt(1.0 - n / total)
    return abs(estimate - cut) > z * error


def simulate(
    grid_scores: Sequence[float | None],
    threshold: float,
    aggregate: str = "mean",
    **rule,
) -> tuple[int, int, int]:
    """Runs `--frames auto` on known scores: what it would decide and how many frames it reads.

    Exact for a detector whose frame scores do not depend on which other frames are scored.

    Args:
        grid_scores: the score at each grid position (length = the grid size), None or NaN
            where the frame has no face.
        threshold, aggregate: as `should_stop`.
        **rule: `z`, `floor`, `min_scores` for `should_stop`.

    Returns:
        `(label, frames_read, frames_scored)`: the verdict (1 fake, 0 real; -1 when no frame had
        a face), the number of grid frames decoded and searched for a face, and how many of them
        had one (were scored by the model).
    """
    total = len(grid_scores)
    seen: list[float] = []
    read = 0
    for stage in stages(total):
        read += len(stage)
        for p in stage:
            value = grid_scores[p]
            if value is not None and not math.isnan(value):
                seen.append(float(value))
        if should_stop(seen, threshold, aggregate, total, **rule):
            break
    if not seen:
        return -1, read, 0
    score = video_score(seen, aggregate, threshold)
    return int(score > (0.5 if aggregate == "vote" else threshold)), read, len(seen)
