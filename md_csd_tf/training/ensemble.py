"""Training a max-voting ensemble: K members, each on one chunk of the training videos.

The published metric-learning system (Kumar et al., IWBF 2020; official README) found that
training on Celeb-DF's imbalanced set (712 real, 5299 fake videos) as a whole "is not useful",
divided it into 7 chunks of about 1400 videos (700 real, 700 fake), trained one Xception per
chunk and combined them by max voting. Here:

    balanced_chunks(train rows, k)     -> K row sets, split by VIDEO (no video's frames straddle
                                          two chunks)
    each chunk -> <out>/chunks/chunk_<i>.csv   (its train rows + every val/test row, absolute
                                          crop paths), trained by the project's trainer into
                                          <out>/member_<i>/ (resumable like any run); the
                                          manifest's crop_settings.json is copied beside them
    <out>/best.keras                   = VoteEnsemble of the members' best.keras (with the
                                          crop settings in its metadata, as the members')
    <out>/ensemble.json                = K, the chunking, the videos per chunk and class

`md_csd_tf.models.saving.load_ensemble_folder(<out>)` loads the result.

Two ways to chunk, both class-balanced "as far as possible":
- `share_minority=False` (default): every video in exactly one chunk; each class is dealt
  round-robin, so every chunk has the same class mix as the whole set (to within one video per
  class). With imbalanced data each chunk is as imbalanced as the set; the trainer's frame
  balancing (`balance=True`) evens the classes inside each member's batches.
- `share_minority=True`: the published scheme. Only the majority class is split; every chunk
  holds ALL minority videos, so chunks are balanced (Celeb-DF: 5299 fake / 7 ~ 757 and the 712
  reals in every chunk, the README's "700 fake and 700 real"). `published_chunk_count` gives
  K = round(majority / minority): 7 on Celeb-DF, 4 on FF++ with its four methods
  (2880 fake / 720 real), 1 with one method.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from md_csd_tf.data.manifest import (
    CROP_SETTINGS_FILE,
    MANIFEST_COLUMNS,
    read_crop_settings,
    read_manifest,
    select,
)
from md_csd_tf.evaluation.metrics import video_key
from md_csd_tf.files import atomic_write_json, atomic_write_text

if TYPE_CHECKING:  # annotations only: the trainer calls this module, never the reverse
    from md_csd_tf.training.config import TrainConfig
    from md_csd_tf.training.trainer import TrainResult


def _videos(frames: pd.DataFrame) -> pd.DataFrame:
    """One row per video: its key columns and label."""
    keys = video_key(frames)
    videos = frames.groupby(keys, sort=True)["label"].agg(["min", "max"]).reset_index()
    mixed = videos[videos["min"] != videos["max"]]
    if len(mixed):
        raise ValueError(f"video {mixed.iloc[0][keys].to_dict()} has both labels")
    return videos.rename(columns={"min": "label"}).drop(columns="max")


def published_chunk_count(frames: pd.DataFrame) -> int:
    """K = round(majority videos / minority videos), at least 1: the README's 7 on Celeb-DF."""
    counts = _videos(frames)["label"].value_counts()
    if len(counts) < 2:
        return 1
    return max(1, round(counts.max() / counts.min()))


def balanced_chunks(
    frames: pd.DataFrame, k: int, seed: int = 0, share_minority: bool = False
) -> list[pd.DataFrame]:
    """Splits training rows by video into `k` chunks, each balanced real/fake as far as possible.

    Args:
        frames: manifest rows (one split), with the video key columns and `label`.
        k: number of chunks.
        seed: the shuffle of the videos before dealing.
        share_minority: False: every video in exactly one chunk (each class dealt round-robin
            from chunk 0, so chunk i has ceil or floor of n_class / k videos of each class).
            True: the published scheme; the majority class is dealt so, and every chunk also
            holds all videos of the minority class.

    Returns:
        `k` DataFrames of the rows of `frames` (index reset), all frames of a video together.

    Raises:
        ValueError: `k < 1`, or a class with fewer videos than chunks to deal it into (a chunk
            would miss that class).
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    keys = video_key(frames)
    videos = _videos(frames)
    counts = videos["label"].value_counts()
    minority = counts.idxmin() if share_minority and len(counts) == 2 else None
    rng = np.random.default_rng(seed)
    chunk_of = pd.Series(-1, index=videos.index)
    for label, count in counts.sort_index().items():
        if label == minority:
            continue
        if count < k:
            raise ValueError(f"{count} videos of label {label} cannot fill {k} chunks")
        order = rng.permutation(videos.index[videos["label"] == label].to_numpy())
        chunk_of[order] = np.arange(len(order)) % k
    videos = videos.assign(chunk=chunk_of.to_numpy())
    rows = frames.merge(videos[[*keys, "chunk"]], on=keys, how="left")
    shared = rows[rows["chunk"] < 0]
    return [
        pd.concat([rows[rows["chunk"] == i], shared]).drop(columns="chunk").reset_index(drop=True)
        for i in range(k)
    ]


@dataclasses.dataclass(frozen=True)
class EnsembleResult:
    out_dir: str
    best_model: str
    members: list  # the trainer's TrainResult of each member


def _manifest_csv(rows: pd.DataFrame) -> str:
    """Rows in the manifest schema with absolute crop paths (the CSV lives in the run folder)."""
    table = rows.assign(path=rows["abs_path"].map(lambda p: str(Path(p).resolve())))
    columns = [c for c in MANIFEST_COLUMNS if c in table.columns]
    return table[columns].to_csv(index=False)


def train_ensemble(
    config: TrainConfig,
    train_member: Callable[[TrainConfig], TrainResult],
    k: int | None = None,
    share_minority: bool = True,
) -> EnsembleResult:
    """Trains K members on K chunks of the training videos and saves their vote.

    Args:
        config: the run's `TrainConfig`; `out_dir` is the ensemble folder, `seed` the chunking's
            (member i trains with `seed + i`). Its val/test rows are given to every member.
        train_member: trains one member's run (`training.trainer.train`, which dispatches
            ensembles here: passing it in keeps this module free of an import cycle).
        k: number of members; None: `published_chunk_count` of the training rows (pass the
            recipe's `ensemble` to follow the registry).
        share_minority: the chunking (see `balanced_chunks`).

    Returns:
        The folder, `<out>/best.keras` and each member's `TrainResult`.
    """
    from md_csd_tf.models.ensemble import VoteEnsemble
    from md_csd_tf.models.saving import load_members, save_model, set_metadata

    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = read_manifest(config.manifest)
    train_rows = select(
        table,
        split="train",
        dataset=config.dataset,
        compression=config.compression,
        methods=config.methods,
    )
    k = k or published_chunk_count(train_rows)
    # Every chunk needs videos of the class that is dealt out; a small set gets fewer members.
    counts = _videos(train_rows)["label"].value_counts()
    dealt = counts.max() if share_minority else counts.min()
    if int(dealt) < k:
        print(f"note: {int(dealt)} training videos to deal; {k} ensemble members cut to {dealt}.")
        k = int(dealt)
    chunks = balanced_chunks(train_rows, k, config.seed, share_minority)
    others = table[table["split"] != "train"]
    (out / "chunks").mkdir(exist_ok=True)
    # Beside the chunk manifests, so every member's model stores how prepare cut the crops.
    crops = read_crop_settings(config.manifest)
    if crops:
        atomic_write_json(out / "chunks" / CROP_SETTINGS_FILE, crops, indent=1)
    results, summary = [], []
    for i, chunk in enumerate(chunks):
        manifest = out / "chunks" / f"chunk_{i}.csv"
        atomic_write_text(manifest, _manifest_csv(pd.concat([chunk, others])))
        labels = _videos(chunk)["label"].value_counts()
        summary.append(
            {"chunk": i, "real_videos": int(labels.get(0, 0)), "fake_videos": int(labels.get(1, 0))}
        )
        member = dataclasses.replace(
            config, manifest=str(manifest), out_dir=str(out / f"member_{i}"), seed=config.seed + i
        )
        results.append(train_member(member))
    atomic_write_json(
        out / "ensemble.json",
        {"k": k, "share_minority": share_minority, "seed": config.seed, "chunks": summary},
    )
    best = out / "best.keras"
    newest = max(Path(r.best_model).stat().st_mtime for r in results)
    if not (best.is_file() and best.stat().st_mtime >= newest):  # finished: reuse, no rewrite
        ensemble = VoteEnsemble(load_members([r.best_model for r in results]))
        if crops:  # predict cuts faces as the members' crops were cut
            set_metadata(ensemble, {"crops": crops})
        save_model(ensemble, best)
    return EnsembleResult(str(out), str(best), results)
