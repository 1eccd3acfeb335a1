"""Faces of a video's sampled frames linked into identities (`md-csd predict --faces all`).

A video can show several people, and a fake of one of them is a fake video (the FFIW rule: a
video is forged when any face in it is). So each face found in a sampled frame is given to a
track, one per person as far as position can tell, by one greedy rule, frame by frame in order:

1. Overlap: every pair (face, open track) whose boxes have IoU >= `IOU_MIN` (the track's last
   box) is a candidate; pairs are taken best IoU first (ties: earlier track, then earlier face),
   each face and each track at most once.
2. Position: a face left over goes to the open track left over whose last box centre is nearest
   to its centre, if that distance is at most `CENTRE_MAX` times the track's last box side
   (nearest first, same ties): sampled frames can be a second apart, and a face that turned or
   moved fast can overlap its previous box little.
3. Otherwise the face starts a new track (ids 0, 1, ... by first appearance).

A track not matched for more than `MAX_GAP` sampled frames in a row is closed: a face appearing
later at that place is a new track (a person who left and came back, or another person). The
rule only sees boxes, so two people who swap places between two sampled frames swap tracks too;
this is the price of linking without a face recogniser.

Pure functions of boxes (no image, no model): the same boxes give the same tracks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from md_csd_tf.prep.faces import Box, iou

IOU_MIN = 0.3  # below this, two boxes of one face in consecutive samples are rare (talking heads)
CENTRE_MAX = 0.5  # centre moved by at most half the face's size: still the same face
MAX_GAP = 8  # sampled frames a track may miss (a quarter of the default 32) before it closes


@dataclasses.dataclass
class _Track:
    id: int
    box: Box  # last box seen
    missed: int = 0  # sampled frames since it was last seen


def _centre(box: Box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


class Linker:
    """The linking rule (module docstring), fed one sampled frame at a time.

    Args:
        iou_min, centre_max, max_gap: the rule's thresholds (`IOU_MIN`, `CENTRE_MAX`, `MAX_GAP`).
    """

    def __init__(
        self, iou_min: float = IOU_MIN, centre_max: float = CENTRE_MAX, max_gap: int = MAX_GAP
    ):
        self.iou_min, self.centre_max, self.max_gap = iou_min, centre_max, max_gap
        self._open: list[_Track] = []
        self.count = 0  # tracks started so far

    def add(self, boxes: Sequence[Box]) -> list[int]:
        """Links the faces of the next sampled frame (a frame without a face: `[]`).

        Args:
            boxes: the frame's face boxes `(left, top, right, bottom)`.

        Returns:
            The track id of each box, in the order given.
        """
        ids: list[int | None] = [None] * len(boxes)
        free = set(range(len(self._open)))
        pairs = sorted(
            (-iou(track.box, box), t, f)
            for t, track in enumerate(self._open)
            for f, box in enumerate(boxes)
        )
        for negative, t, f in pairs:
            if -negative >= self.iou_min and t in free and ids[f] is None:
                ids[f] = self._open[t].id
                free.discard(t)
        near = []
        for t in sorted(free):
            track = self._open[t]
            side = max(track.box[2] - track.box[0], track.box[3] - track.box[1])
            (tx, ty) = _centre(track.box)
            for f, box in enumerate(boxes):
                if ids[f] is None:
                    (fx, fy) = _centre(box)
                    distance = ((tx - fx) ** 2 + (ty - fy) ** 2) ** 0.5
                    if distance <= self.centre_max * side:
                        near.append((distance, t, f))
        for _, t, f in sorted(near):
            if t in free and ids[f] is None:
                ids[f] = self._open[t].id
                free.discard(t)
        by_id = {track.id: track for track in self._open}
        for f, box in enumerate(boxes):
            if ids[f] is None:
                ids[f] = self.count
                by_id[self.count] = _Track(self.count, tuple(box))
                self.count += 1
            else:
                by_id[ids[f]].box, by_id[ids[f]].missed = tuple(box), 0
        seen = set(ids)
        for track in by_id.values():
            if track.id not in seen:
                track.missed += 1
        self._open = sorted(
            (track for track in by_id.values() if track.missed <= self.max_gap),
            key=lambda track: track.id,
        )
        return ids


def link_faces(frames: Sequence[Sequence[Box]], **rule) -> list[list[int]]:
    """Track ids of the faces of a video's sampled frames (module docstring's rule).

    Args:
        frames: for each sampled frame in order, its face boxes (`[]` without a face).
        **rule: `Linker`'s thresholds.

    Returns:
        For each frame, the track id of each of its boxes.
    """
    linker = Linker(**rule)
    return [linker.add(boxes) for boxes in frames]


def counted_frames(frames_with_a_face: int) -> int:
    """The fewest frames an identity needs for its verdict to count toward the video's.

    At least 3 frames (one or two can be a detector's false face, a passer-by or a poster) and a
    quarter of the sampled frames where any face was found (8 of the default 32): a face seen that
    briefly carries too few scores to convict the video alone.
    """
    return max(3, -(-frames_with_a_face // 4))
