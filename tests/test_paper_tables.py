"""The paper's numbers as typed into package data, and the ours-beside-paper table writer."""

from __future__ import annotations

import csv
import math

import pytest

from md_csd_tf.evaluation.results_table import (
    cross_dataset_rows,
    ff_rows,
    table_v_rows,
    table_vi_rows,
    write_table,
)
from md_csd_tf.paper import OURS, TABLES, paper_table, paper_value


@pytest.mark.parametrize(
    ("table", "path", "expected"),
    [
        ("V", ("md_csd", "auc"), 0.9929),
        ("V", ("rgb", "auc"), 0.9509),
        ("V", ("freq", "auc"), 0.8114),
        ("V", ("concat", "auc"), 0.9789),
        ("V", ("one_stitch", "auc"), 0.9900),
        ("VI", ("dct", "auc"), 0.9929),
        ("VI", ("dwt", "auc"), 0.9665),
        ("VI", ("fft", "auc"), 0.9800),
        ("II", (OURS, "c40", "acc"), 87.57),
        ("II", (OURS, "c23", "acc"), 97.28),
        ("II", (OURS, "c23", "auc"), 0.9929),
        ("II", (OURS, "c40", "auc"), 0.8901),
        ("II", ("F3-Net [40]", "c40", "acc"), 90.43),
        ("III", (OURS, "celebdf"), 0.6877),
        ("III", (OURS, "ff++"), 0.9970),
        ("III", ("SPSL [32]", "celebdf"), 0.7688),
        ("IV", (OURS, "dfd"), 0.8951),
        ("I", (OURS, "FaceSwap", "c23"), 99.10),
        ("I", (OURS, "NeuralTextures", "c40"), 81.78),
        ("I", (OURS, "Deepfakes", "c40"), 97.34),
        ("I", ("MesoNET [6]", "NeuralTextures", "c40"), 40.67),
    ],
)
def test_spot_values(table, path, expected):
    assert paper_value(table, *path) == pytest.approx(expected)


def test_table_shapes_and_missing_cells():
    assert [len(paper_table(t)["rows"]) for t in TABLES] == [11, 14, 18, 4, 5, 3]
    assert list(paper_table("V")["rows"]) == ["rgb", "freq", "concat", "one_stitch", "md_csd"]
    assert paper_value("II", "Face X-ray [28]", "c23", "acc") is None  # reports AUC only
    assert paper_value("I", "SSTNet [52]", "NeuralTextures", "c40") is None
    # Table I: every comparator has all four LQ cells but NT, which prints 8 of 10
    rows = paper_table("I")["rows"]
    lq = [[rows[m][k]["c40"] for m in rows if m != OURS] for k in paper_table("I")["manipulations"]]
    assert [sum(v is not None for v in col) for col in lq] == [10, 10, 10, 8]
    assert paper_table("I")["uncertain_cells"]  # the ambiguity is recorded, not hidden


def test_lookup_aliases_and_errors():
    assert paper_table("table_v") is paper_table("5") is paper_table("Table V")
    with pytest.raises(KeyError, match="unknown paper table"):
        paper_table("VII")
    with pytest.raises(KeyError, match="valid keys"):
        paper_value("V", "xception")
    with pytest.raises(TypeError, match="not one number"):
        paper_value("V", "md_csd")


def test_write_table_md_and_csv(tmp_path):
    rows = [
        *table_v_rows({"md_csd": 0.95, "RGB": 0.9}),
        *ff_rows("c40", "all", acc=0.8, auc=0.85),
        *ff_rows("c23", "FS", acc=0.99, auc=0.999),
        *cross_dataset_rows("Celeb-DF", 0.6),
        *cross_dataset_rows("dfd", None),
    ]
    md, csv_path = write_table(rows, tmp_path / "results" / "demo", title="Demo")
    assert (md.name, csv_path.name) == ("demo.md", "demo.csv")

    with csv_path.open(newline="") as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == ["setting", "metric", "ours", "paper", "delta"]
    assert len(table) == 5 + 2 + 2 + 1 + 1
    md_csd = table[4]
    assert "md_csd" in md_csd["setting"] and md_csd["metric"] == "AUC"
    assert float(md_csd["paper"]) == pytest.approx(0.9929)
    assert float(md_csd["delta"]) == pytest.approx(0.95 - 0.9929)
    assert table[1]["ours"] == "" and table[1]["delta"] == ""  # freq not run
    assert float(table[0]["ours"]) == pytest.approx(0.9)  # variant keys are case-insensitive
    acc_all = table[5]
    assert "Table II" in acc_all["setting"] and acc_all["metric"] == "Acc (%)"
    assert (float(acc_all["ours"]), float(acc_all["paper"])) == (80.0, 87.57)
    assert "FaceSwap (Table I)" in table[7]["setting"] and float(table[7]["paper"]) == 99.10
    assert table[8]["paper"] == ""  # Table I has no AUC
    assert float(table[9]["paper"]) == pytest.approx(0.6877)
    assert float(table[10]["paper"]) == pytest.approx(0.8951) and table[10]["ours"] == ""

    text = md.read_text()
    lines = text.splitlines()
    assert lines[0] == "## Demo"
    assert lines[2] == "| setting | metric | ours | paper | delta |"
    assert lines[3] == "|---|---|---|---|---|"
    assert "| AUC | 0.9500 | 0.9929 | -0.0429 |" in text
    assert "| Acc (%) | 80.00 | 87.57 | -7.57 |" in text
    assert "| ID 2: frequency branch only [freq] | AUC | - | 0.8114 | - |" in text
    assert not list(md.parent.glob("*.tmp"))


def test_row_helpers_validate():
    assert [r["paper"] for r in table_vi_rows({"DCT": 0.97})] == [0.9665, 0.98, 0.9929]
    with pytest.raises(ValueError, match="unknown setting"):
        table_v_rows({"xception": 0.9})
    with pytest.raises(ValueError, match="fraction"):
        ff_rows("c23", "all", acc=97.0, auc=0.99)
    with pytest.raises(ValueError, match="c23 or c40"):
        ff_rows("raw", "all", acc=0.9, auc=0.9)
    with pytest.raises(ValueError, match="not in the paper's tables"):
        ff_rows("c23", "FaceShifter", acc=0.9, auc=0.9)
    with pytest.raises(ValueError, match="unknown manipulation"):
        ff_rows("c23", "FaceMorph", acc=0.9, auc=0.9)
    with pytest.raises(ValueError, match="celebdf or dfd"):
        cross_dataset_rows("dfdc", 0.7)
    nan_row = ff_rows("c40", "nt", acc=math.nan, auc=math.nan)
    assert nan_row[0]["ours"] is not None  # NaN passes through; write_table shows it as "-"
