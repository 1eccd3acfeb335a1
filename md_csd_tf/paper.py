"""The paper's published numbers (Tables I-VI), loaded from package data.

The numbers live in `md_csd_tf/resources/paper_results.json`, typed by hand from the paper; that
file's `notes` fields say how each table was rebuilt and which cells are uncertain. Accuracies are
percent and AUCs fractions, exactly as printed.

Reference:
    Agarwal et al., "MD-CSDNetwork: Multi-Domain Cross Stitched Network for Deepfake Detection",
    FG 2021, Sec. IV-C/D, Tables I-VI.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

#: The paper's own row in Tables I-IV.
OURS = "Proposed MD-CSDNetwork"

TABLES = ("I", "II", "III", "IV", "V", "VI")
_ARABIC = {str(i): name for i, name in enumerate(TABLES, start=1)}


@functools.cache
def paper_results() -> dict[str, Any]:
    """The whole data file as a dict (cached; treat it as read-only)."""
    text = resources.files("md_csd_tf").joinpath("resources/paper_results.json").read_text("utf-8")
    return json.loads(text)


def _table_name(name: str) -> str:
    key = str(name).strip().upper().removeprefix("TABLE").strip(" _")
    key = _ARABIC.get(key, key)
    if key not in TABLES:
        raise KeyError(f"unknown paper table {name!r}; expected one of {', '.join(TABLES)}")
    return key


def paper_table(name: str) -> dict[str, Any]:
    """One table: `title`, `metric`, `rows` (row key -> cells) and `notes`.

    Args:
        name: "I".."VI", also accepted as "table_v", "Table V" or "5".

    Returns:
        The table's dict. Rows of Tables I-IV are keyed by the method name as printed (the paper's
        own row is `OURS`); Table V by our variant names (rgb, freq, concat, one_stitch, md_csd);
        Table VI by transform (dwt, fft, dct).
    """
    return paper_results()["tables"][_table_name(name)]


def paper_value(table: str, key: str, *path: str) -> float | None:
    """One cell of a table, or None where the paper prints no value.

    Examples: `paper_value("V", "md_csd", "auc")` is 0.9929,
    `paper_value("II", OURS, "c40", "acc")` is 87.57,
    `paper_value("I", OURS, "FaceSwap", "c23")` is 99.10.

    Args:
        table: Table name, as for `paper_table`.
        key: Row key (method name, variant or transform).
        *path: Keys below the row down to one number (manipulation, compression, metric).

    Returns:
        The number as printed (percent for accuracy, fraction for AUC) or None.

    Raises:
        KeyError: an unknown table, row or column; the message lists the valid keys.
        TypeError: the path stops above a single number.
    """
    node: Any = paper_table(table)["rows"]
    for part in (key, *path):
        if not isinstance(node, dict) or part not in node:
            valid = sorted(node) if isinstance(node, dict) else []
            raise KeyError(f"Table {_table_name(table)}: no {part!r} here; valid keys: {valid}")
        node = node[part]
    if node is not None and (isinstance(node, bool) or not isinstance(node, int | float)):
        raise TypeError(
            f"Table {_table_name(table)} {(key, *path)} is not one number: {node!r}; "
            "give the remaining keys"
        )
    return None if node is None else float(node)
