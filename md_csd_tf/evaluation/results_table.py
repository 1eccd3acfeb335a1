"""Experiment result tables with the paper's number beside ours (`results/<name>.md` and `.csv`).

A row is a dict: `setting`, `metric` ("Acc (%)" or "AUC"), `ours`, `paper`, `delta`
(ours - paper, filled in when both exist); extra keys become extra columns. Accuracies are shown
in percent like the paper, AUCs as fractions. The helpers build the rows for each experiment
script from `md_csd_tf.paper`.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from md_csd_tf.files import atomic_write_text
from md_csd_tf.names import COMPRESSIONS, FFPP_METHODS, canonical_method
from md_csd_tf.paper import OURS, paper_table, paper_value

COLUMNS = ("setting", "metric", "ours", "paper", "delta")
ACC = "Acc (%)"
AUC = "AUC"

_TABLE_V_LABELS = {
    "rgb": "RGB branch only (Xception)",
    "freq": "frequency branch only",
    "concat": "both branches, no stitches",
    "one_stitch": "both branches, one stitch",
    "md_csd": "both branches, all stitches (MD-CSDNetwork)",
}


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _complete(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {c: row.get(c) for c in COLUMNS} | dict(row)
    out["ours"], out["paper"] = _number(out["ours"]), _number(out["paper"])
    if out.get("delta") is None and out["ours"] is not None and out["paper"] is not None:
        out["delta"] = round(out["ours"] - out["paper"], 6)  # no 1e-15 float noise in the CSV
    return out


def _format(value: Any, metric: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" if metric == ACC else f"{value:.4f}"
    return str(value).replace("|", "\\|")


def write_table(
    rows: Iterable[Mapping[str, Any]], out_stem: str | os.PathLike, title: str | None = None
) -> tuple[Path, Path]:
    """Write `<out_stem>.md` (Markdown table) and `<out_stem>.csv`, each atomically.

    Args:
        rows: Dicts with at least setting, metric, ours, paper; delta is computed when absent.
            None/NaN cells print as "-" in Markdown and stay empty in CSV.
        out_stem: Path without suffix, e.g. "results/table_v"; parent directories are created.
        title: Optional heading line for the Markdown file.

    Returns:
        (markdown path, csv path).
    """
    table = [_complete(r) for r in rows]
    columns = list(COLUMNS)
    for row in table:
        columns += [k for k in row if k not in columns]
    stem = Path(out_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    md_path, csv_path = stem.with_name(stem.name + ".md"), stem.with_name(stem.name + ".csv")

    lines = [f"## {title}", ""] if title else []
    lines += ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table:
        cells = (_format(row.get(c), row.get("metric", "")) for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("paper: numbers as printed in Agarwal et al., FG 2021; delta = ours - paper.")
    atomic_write_text(md_path, "\n".join(lines) + "\n")

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({c: "" if row.get(c) is None else row.get(c) for c in columns})
    atomic_write_text(csv_path, buffer.getvalue())
    return md_path, csv_path


def _ablation_rows(table: str, ours: Mapping[str, float], labels: Mapping[str, str]):
    keys = list(paper_table(table)["rows"])
    ours = {k.lower(): v for k, v in ours.items()}
    unknown = sorted(set(ours) - set(keys))
    if unknown:
        raise ValueError(f"Table {table}: unknown setting(s) {unknown}; expected {keys}")
    return [
        {
            "setting": labels[k],
            "metric": AUC,
            "ours": ours.get(k),
            "paper": paper_value(table, k, "auc"),
        }
        for k in keys
    ]


def table_v_rows(our_aucs: Mapping[str, float]) -> list[dict[str, Any]]:
    """Table V (ablation of components, FF++ HQ, AUC): one row per variant in the paper's order.

    Args:
        our_aucs: variant (rgb, freq, concat, one_stitch, md_csd) -> our AUC; variants not run
            get an empty "ours" cell.
    """
    rows = paper_table("V")["rows"]
    labels = {k: f"ID {v['id']}: {_TABLE_V_LABELS[k]} [{k}]" for k, v in rows.items()}
    return _ablation_rows("V", our_aucs, labels)


def table_vi_rows(our_aucs: Mapping[str, float]) -> list[dict[str, Any]]:
    """Table VI (frequency transform, AUC): one row per transform (dwt, fft, dct), any case."""
    labels = {k: v["label"] for k, v in paper_table("VI")["rows"].items()}
    return _ablation_rows("VI", our_aucs, labels)


def ff_rows(
    compression: str, manipulation: str, acc: float | None, auc: float | None
) -> list[dict[str, Any]]:
    """FF++ rows: the Table II row (manipulation "all") or the Table I cell (one manipulation).

    Args:
        compression: "c23" (HQ) or "c40" (LQ).
        manipulation: "all", or Deepfakes/Face2Face/FaceSwap/NeuralTextures (also DF/F2F/FS/NT).
        acc: Our accuracy as a fraction in [0, 1] (what `frame_metrics` returns); shown in
            percent like the paper.
        auc: Our AUC. Table I prints no AUC, so its paper cell is empty.

    Returns:
        Two rows, Acc (%) and AUC.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be c23 or c40, got {compression!r}")
    if acc is not None and not math.isnan(acc) and not 0.0 <= acc <= 1.0:
        raise ValueError(f"acc must be a fraction in [0, 1] (got {acc}); the table shows percent")
    quality = f"FF++ {compression} ({COMPRESSIONS[compression]})"
    if manipulation.lower() == "all":
        setting = f"{quality}, all manipulations (Table II)"
        paper_acc = paper_value("II", OURS, compression, "acc")
        paper_auc = paper_value("II", OURS, compression, "auc")
    else:
        name = canonical_method(manipulation)
        if name not in FFPP_METHODS:
            raise ValueError(f"{name} is not in the paper's tables; use one of {FFPP_METHODS}")
        setting = f"{quality}, {name} (Table I)"
        paper_acc, paper_auc = paper_value("I", OURS, name, compression), None
    ours_acc = None if acc is None else round(100.0 * acc, 6)
    return [
        {"setting": setting, "metric": ACC, "ours": ours_acc, "paper": paper_acc},
        {"setting": setting, "metric": AUC, "ours": auc, "paper": paper_auc},
    ]


def table_iii_rows(ff_deepfakes_auc: float | None, celebdf_auc: float | None) -> list[dict]:
    """Table III's two columns, from one FF++-trained model: AUC on the FF++ test set's
    Deepfakes class and on Celeb-DF (frame level, both)."""
    return [
        {
            "setting": "FF++ test, Deepfakes vs real, frame-level (Table III, first column)",
            "metric": AUC,
            "ours": ff_deepfakes_auc,
            "paper": paper_value("III", OURS, "ff++"),
        },
        *cross_dataset_rows("celebdf", celebdf_auc),
    ]


def cross_dataset_rows(dataset: str, auc: float | None) -> list[dict[str, Any]]:
    """Cross-dataset AUC of a model trained on FF++: Table III (celebdf) or Table IV (dfd)."""
    key = dataset.lower().replace("-", "").replace("_", "")
    if key == "celebdf":
        setting = "FF++ -> Celeb-DF, frame-level (Table III, second column)"
        paper = paper_value("III", OURS, key)
    elif key == "dfd":
        setting, paper = "FF++ -> DFD (Table IV)", paper_value("IV", OURS, key)
    else:
        raise ValueError(f"dataset must be celebdf or dfd, got {dataset!r}")
    return [{"setting": setting, "metric": AUC, "ours": auc, "paper": paper}]


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value).replace("|", "\\|")


def score_cell(value: Any) -> str:
    """A leaderboard cell: scores (floats <= 1) with 4 decimals, percentages with 2, None/NaN
    as "-"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if value <= 1 else f"{value:.2f}"
    return str(value)


def markdown_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    cell: Callable[[Any], str] = _cell,
) -> str:
    """Rows of dicts as a Markdown table: by default floats with 3 decimals, None/NaN as "-";
    `cell` formats each value otherwise (e.g. `score_cell`)."""
    rows = list(rows)
    columns = list(columns or dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
