"""t-SNE of the model's pooled features: do real and fake crops separate in feature space?

Features are the global-average-pooled 2048-d outputs of each branch (`feature_model`),
concatenated as the classifier sees them, reduced by PCA to at most 50 dimensions (the usual
step before t-SNE: it removes noise and makes the neighbour search fast), then embedded in 2-D.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from md_csd_tf.inference.spectrum import (
    REAL,
    group_names,
    load_manifest,
    read_crop,
    sample_per_group,
)


def pooled_features(model, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Concatenated pooled branch features `(N, 2048 * branches)` of uint8 crops."""
    import tensorflow as tf

    from md_csd_tf.data.inputs import model_inputs
    from md_csd_tf.models.md_csd import feature_model

    features = feature_model(model)
    size = model.image_size
    # Fixed batch shape: one trace for the whole run (the last batch is padded).
    spec = tf.TensorSpec((batch_size, size, size, 3), tf.uint8)
    step = tf.function(
        lambda x: tf.concat(
            [features(model_inputs(model, x), training=False)[b] for b in model.branches], -1
        ),
        input_signature=[spec],
    )
    out = []
    for start in range(0, len(crops), batch_size):
        chunk = crops[start : start + batch_size]
        count = len(chunk)
        if count < batch_size:
            chunk = np.concatenate(
                [chunk, np.zeros((batch_size - count, *chunk.shape[1:]), chunk.dtype)]
            )
        out.append(step(tf.constant(chunk)).numpy()[:count])
    return np.concatenate(out)


def embed(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """PCA (to <= 50 dims) then 2-D t-SNE; perplexity shrinks for small sets (sklearn needs
    perplexity < number of samples)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n = len(features)
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 crops, got {n}")
    dims = min(50, n, features.shape[1])
    reduced = PCA(n_components=dims, random_state=seed).fit_transform(features)
    perplexity = float(min(30.0, (n - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return tsne.fit_transform(reduced)


def plot_tsne(table: pd.DataFrame, path: Path) -> Path:
    """Two panels: coloured by class (real/fake) and by group (real, each method)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 5))
    by_class, by_method = fig.subplots(1, 2)
    for label, colour, name in ((0, "tab:blue", "real"), (1, "tab:red", "fake")):
        part = table[table["label"] == label]
        by_class.scatter(part["x"], part["y"], s=8, c=colour, label=name, alpha=0.7)
    by_class.set_title("by class")
    for group, part in table.groupby("group", sort=True):
        marker = "o" if group == REAL else "^"
        by_method.scatter(part["x"], part["y"], s=8, marker=marker, label=group, alpha=0.7)
    by_method.set_title("by manipulation")
    for ax in (by_class, by_method):
        ax.legend(fontsize=8, markerscale=2)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("t-SNE of pooled MD-CSD features", fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def tsne_report(
    model,
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike,
    split: str | None = None,
    max_samples: int = 1000,
    seed: int = 0,
    batch_size: int = 32,
    dataset: str | None = None,
    compression: str | None = None,
) -> dict:
    """Features, t-SNE, `tsne.png` and `tsne.csv` (path, label, group, x, y) in `out_dir`.

    At most `max_samples` crops, split evenly over the groups (real and each method).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = load_manifest(manifest, split, dataset, compression)
    groups = group_names(table)
    per_group = max(1, max_samples // max(groups.nunique(), 1))
    table = sample_per_group(table, groups, per_group, seed).reset_index(drop=True)
    crops = np.stack([read_crop(p, model.image_size) for p in table["path"]])
    points = embed(pooled_features(model, crops, batch_size), seed)
    table["x"], table["y"] = points[:, 0], points[:, 1]
    columns = [c for c in ("path", "label", "group", "video_id", "frame_index", "x", "y")
               if c in table.columns]  # fmt: skip
    csv_path = out_dir / "tsne.csv"
    table[columns].to_csv(csv_path, index=False)
    png_path = plot_tsne(table, out_dir / "tsne.png")
    return {"crops": len(table), "groups": table["group"].value_counts().to_dict(),
            "files": [str(png_path), str(csv_path)]}  # fmt: skip
