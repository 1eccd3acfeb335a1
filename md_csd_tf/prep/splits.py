"""The official FaceForensics++ train/val/test splits.

The FF++ authors publish each split as a JSON list of id pairs. A pair ``[a, b]`` puts the
original videos ``a`` and ``b`` and the manipulated videos ``a_b`` and ``b_a`` into that split
(360/70/70 pairs, so 720/140/140 originals). Copies ship in ``md_csd_tf/resources/ff_splits``.

Reference: Roessler et al., FaceForensics++ (ICCV 2019); MD-CSDNetwork, Section III.A
("720 videos for training and 140 videos for both validation and testing").
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from md_csd_tf.errors import UserError

SPLITS = ("train", "val", "test")

Pairs = list[tuple[str, str]]


def _parse(text: str, origin: str) -> Pairs:
    try:
        raw = json.loads(text)
        pairs = [(str(a), str(b)) for a, b in raw]
    except (ValueError, TypeError) as error:
        raise UserError(f"{origin}: not a JSON list of id pairs ({error})") from None
    return pairs


def load_splits(splits_dir: str | Path | None = None) -> dict[str, Pairs]:
    """Loads the FF++ split pairs.

    Args:
        splits_dir: a folder holding ``train.json``, ``val.json`` and ``test.json`` in the official
            format; ``None`` uses the copies shipped with the package.

    Returns:
        ``{"train": [(a, b), ...], "val": [...], "test": [...]}``.
    """
    splits = {}
    for name in SPLITS:
        if splits_dir is None:
            text = resources.files("md_csd_tf") / "resources" / "ff_splits" / f"{name}.json"
            splits[name] = _parse(text.read_text(encoding="utf-8"), f"ff_splits/{name}.json")
        else:
            path = Path(splits_dir) / f"{name}.json"
            if not path.is_file():
                raise UserError(f"split file {path} not found (expected train/val/test.json)")
            splits[name] = _parse(path.read_text(encoding="utf-8"), str(path))
    return splits


def split_of_videos(splits: dict[str, Pairs]) -> dict[str, str]:
    """Maps every FF++ video id (``"000"`` originals, ``"000_003"`` fakes) to its split name."""
    owner: dict[str, str] = {}
    for name, pairs in splits.items():
        for a, b in pairs:
            for video_id in (a, b, f"{a}_{b}", f"{b}_{a}"):
                owner[video_id] = name
    return owner
