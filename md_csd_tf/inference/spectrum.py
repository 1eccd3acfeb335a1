"""Mean log-DCT spectra of real faces and of each manipulation, and their differences (Fig. 1).

For every group of crops in a manifest (real, and each manipulation method) the log-magnitude
full-image DCT (`md_csd_tf.frequency.log_dct`, the network's own frequency input) is averaged
over crops and colour channels. Real vs fake differences show where, in frequency, a method
leaves its traces: top-left is low frequency, bottom-right high frequency, as in the paper.

Reference: MD-CSDNetwork, Sec. II.A and Fig. 1 (row 2: averaged log-scaled DCT coefficients).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

REAL = "real"


def load_manifest(
    path: str | os.PathLike,
    split: str | None = None,
    dataset: str | None = None,
    compression: str | None = None,
) -> pd.DataFrame:
    """Manifest rows of one dataset and compression, `path` made absolute.

    Averaging FF++ c23 with c40, or FF++ reals with Celeb-DF's, would show dataset and codec
    differences instead of manipulation traces, so a manifest that mixes them needs
    `dataset`/`compression` to say which part to use.

    Raises:
        UserError: missing or unreadable file, missing columns, an ambiguous mix, no rows.
    """
    from md_csd_tf.data.manifest import read_manifest, select
    from md_csd_tf.errors import UserError

    table = read_manifest(path)
    # Dataset first, then compression within it (Celeb-DF's crops have compression "original").
    for column, chosen, flag in (
        ("dataset", dataset, "--dataset"),
        ("compression", compression, "--compression"),
    ):
        values = sorted(table[column].dropna().astype(str).unique())
        if chosen is None and len(values) > 1:
            raise UserError(f"{path}: holds several {column}s {values}; pick one with {flag}")
        if chosen is not None:
            table = select(table, **{column: chosen})
    table = select(table, split=split)
    table["path"] = table["abs_path"]
    return table


def group_names(table: pd.DataFrame) -> pd.Series:
    """ "real" for label 0, else the manipulation method (or "fake" without a method column)."""
    if "method" in table.columns:
        methods = table["method"].fillna("fake").astype(str)
    else:
        methods = pd.Series("fake", index=table.index)
    return methods.where(table["label"] == 1, REAL)


def sample_per_group(
    table: pd.DataFrame, groups: pd.Series, max_per_group: int | None, seed: int = 0
) -> pd.DataFrame:
    """At most `max_per_group` rows of each group, drawn at random (reproducibly)."""
    table = table.assign(group=groups.values)
    if max_per_group is None:
        return table
    parts = [
        part.sample(n=min(len(part), max_per_group), random_state=seed)
        for _, part in table.groupby("group", sort=True)
    ]
    return pd.concat(parts)


def read_crop(path: str, size: int | None = None) -> np.ndarray:
    """An RGB uint8 crop from disk, resized to `size` if given, as training resizes crops."""
    from md_csd_tf.data.inputs import fit_crops
    from md_csd_tf.inference.detector import read_image

    crop = read_image(path)
    return crop if size is None else fit_crops([crop], size)[0]


def mean_spectra(
    table: pd.DataFrame, batch_size: int = 32, size: int | None = None
) -> tuple[list[str], np.ndarray, dict[str, int]]:
    """Mean log-DCT (over crops and channels) per group.

    Args:
        table: rows with `path` and `group` (see `sample_per_group`).
        batch_size: crops transformed at once.
        size: crop side; by default the first crop's (all are resized to it).

    Returns:
        `(groups, means, counts)`: group names (real first), an array `(G, H, W)` and the
        number of crops averaged per group.
    """
    import tensorflow as tf

    from md_csd_tf.frequency import log_dct

    names = sorted(table["group"].unique(), key=lambda g: (g != REAL, g))
    if size is None:
        size = read_crop(table["path"].iloc[0]).shape[0]
    transform = tf.function(
        lambda x: tf.reduce_sum(tf.reduce_mean(log_dct(x), axis=-1), axis=0),
        input_signature=[tf.TensorSpec((None, size, size, 3), tf.uint8)],
    )
    means, counts = [], {}
    for name in names:
        paths = table.loc[table["group"] == name, "path"].tolist()
        total = np.zeros((size, size), np.float64)
        for start in range(0, len(paths), batch_size):
            crops = np.stack([read_crop(p, size) for p in paths[start : start + batch_size]])
            total += transform(tf.constant(crops)).numpy()
        means.append(total / len(paths))
        counts[name] = len(paths)
    return names, np.stack(means).astype(np.float32), counts


def plot_spectra(names: list[str], means: np.ndarray, out_dir: Path) -> list[Path]:
    """One PNG per group, one per difference to real, and a grid of all (Fig. 1, row 2)."""
    from matplotlib.figure import Figure

    written = []
    low, high = np.percentile(means, [1, 99])

    def heatmap(ax, data, title, diverging=False):
        if diverging:
            limit = float(np.percentile(np.abs(data), 99)) or 1.0
            image = ax.imshow(data, cmap="RdBu_r", vmin=-limit, vmax=limit)
        else:
            image = ax.imshow(data, cmap="jet", vmin=low, vmax=high)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        return image

    def single(name, data, title, diverging=False):
        # The object-oriented Figure API renders with Agg without touching pyplot's global state.
        fig = Figure(figsize=(4, 3.6))
        ax = fig.add_subplot()
        image = heatmap(ax, data, title, diverging)
        fig.colorbar(image, ax=ax, fraction=0.046)
        path = out_dir / name
        fig.savefig(path, dpi=100, bbox_inches="tight")
        written.append(path)

    real = names.index(REAL) if REAL in names else None
    for name, data in zip(names, means, strict=True):
        single(f"spectrum_{name}.png", data, f"mean log|DCT|: {name}")
        if real is not None and name != REAL:
            single(
                f"spectrum_diff_{name}.png", data - means[real], f"{name} - real", diverging=True
            )
    columns = len(names)
    rows = 2 if real is not None and columns > 1 else 1
    fig = Figure(figsize=(2.6 * columns, 2.6 * rows))
    axes = fig.subplots(rows, columns, squeeze=False)
    for i, (name, data) in enumerate(zip(names, means, strict=True)):
        heatmap(axes[0, i], data, name)
        if rows == 2:
            if name == REAL:
                axes[1, i].axis("off")
            else:
                heatmap(axes[1, i], data - means[real], f"{name} - real", diverging=True)
    fig.suptitle("Mean log-DCT spectra (low frequency top-left)", fontsize=10)
    path = out_dir / "spectrum.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    written.append(path)
    return written


def spectrum_report(
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    split: str | None = None,
    max_per_group: int | None = 500,
    seed: int = 0,
    dataset: str | None = None,
    compression: str | None = None,
) -> dict:
    """Computes and writes the Fig. 1 spectra for a manifest (one dataset and compression).

    Writes `spectrum.png` (grid), `spectrum_{group}.png`, `spectrum_diff_{method}.png`,
    `spectrum_means.npy` `(G, H, W)` and `spectrum.json` (group order and counts).

    Returns:
        The contents of `spectrum.json` plus the list of files written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = load_manifest(manifest, split, dataset, compression)
    table = sample_per_group(table, group_names(table), max_per_group, seed)
    names, means, counts = mean_spectra(table)
    np.save(out_dir / "spectrum_means.npy", means)
    files = plot_spectra(names, means, out_dir)
    summary = {"groups": names, "crops": counts, "split": split, "shape": list(means.shape)}
    (out_dir / "spectrum.json").write_text(json.dumps(summary, indent=2))
    summary["files"] = [str(f) for f in files]
    return summary
