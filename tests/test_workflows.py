"""Experiment scripts and the demo in --smoke mode: each runs end to end and writes its table."""

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from md_csd_tf import cli, workflows

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_manifest(tmp_path_factory):
    """The stand-in FF++/Celeb-DF/DFD datasets, made and face-cropped once for this module."""
    out = tmp_path_factory.mktemp("demo")
    return workflows.prepare_demo_data(str(out), image_size=71, videos=4, progress=False)


def table_rows(path):
    return pd.read_csv(path).to_dict("records")


def test_demo_data_covers_all_three_datasets_and_splits(demo_manifest):
    table = pd.read_csv(demo_manifest, dtype={"video_id": str})
    assert set(table["dataset"]) == {"ffpp", "celebdf", "dfd"}
    ffpp = table[table["dataset"] == "ffpp"]
    assert set(ffpp["split"]) == {"train", "val", "test"}
    assert set(ffpp["method"]) == {"real", *workflows.MANIPULATIONS}


def test_run_ff_smoke_writes_the_table_ii_row(demo_manifest, tmp_path):
    code = script("run_ff").main(["--data", demo_manifest, "--out", str(tmp_path), "--smoke"])
    assert code == 0
    rows = table_rows(tmp_path / "results" / "ff_c23_all_md_csd.csv")
    assert [r["metric"] for r in rows] == ["Acc (%)", "AUC"]
    assert rows[0]["paper"] == pytest.approx(97.28) and 0 <= rows[0]["ours"] <= 100
    assert (tmp_path / "runs" / "ff_c23_all_md_csd" / "test" / "metrics.json").is_file()
    assert (tmp_path / "runs" / "ff_c23_all_md_csd" / "test" / "roc.png").is_file()


def test_single_manipulation_run_trains_on_that_method_only(demo_manifest, tmp_path):
    script("run_ff").main(
        [
            "--data",
            demo_manifest,
            "--out",
            str(tmp_path),
            "--smoke",
            "--manipulation",
            "FaceSwap",
            "--variant",
            "rgb",
        ]
    )
    run = tmp_path / "runs" / "ff_c23_FaceSwap_rgb"
    predictions = pd.read_csv(run / "test" / "predictions.csv")
    assert set(predictions["method"]) == {"real", "FaceSwap"}
    assert table_rows(tmp_path / "results" / "ff_c23_FaceSwap_rgb.csv")[0][
        "paper"
    ] == pytest.approx(99.10)


def test_ablation_table_v_smoke_trains_every_variant(demo_manifest, tmp_path):
    code = script("ablation").main(
        ["--table", "V", "--data", demo_manifest, "--out", str(tmp_path), "--smoke"]
    )
    assert code == 0
    rows = table_rows(tmp_path / "results" / "table_v.csv")
    assert len(rows) == 5 and all(pd.notna(r["ours"]) for r in rows)
    assert [r["paper"] for r in rows] == pytest.approx([0.9509, 0.8114, 0.9789, 0.9900, 0.9929])
    assert (tmp_path / "results" / "table_v.md").read_text().count("\n|") >= 6


def test_ablation_table_vi_and_cross_dataset_smoke(demo_manifest, tmp_path):
    script("ablation").main(
        ["--table", "VI", "--data", demo_manifest, "--out", str(tmp_path), "--smoke"]
    )
    rows = table_rows(tmp_path / "results" / "table_vi.csv")
    assert len(rows) == 3 and all(pd.notna(r["ours"]) for r in rows)
    model = tmp_path / "runs" / "tablevi_dct" / "best.keras"
    for dataset, paper in (("celebdf", 0.6877), ("dfd", 0.8951)):
        code = script("cross_dataset").main(
            [
                "--model",
                str(model),
                "--data",
                demo_manifest,
                "--dataset",
                dataset,
                "--out",
                str(tmp_path),
            ]
        )
        assert code == 0
        (row,) = table_rows(tmp_path / "results" / f"cross_{dataset}.csv")
        assert row["paper"] == pytest.approx(paper) and 0 <= row["ours"] <= 1


def test_demo_command_smoke_runs_end_to_end(tmp_path, capsys):
    assert cli.main(["demo", "--smoke", "--out", str(tmp_path)]) == 0
    tmp_path = tmp_path / "smoke"  # a smoke run never shares its folder with the real demo
    printed = capsys.readouterr().out
    assert "video-level AUC" in printed and "Written:" in printed
    summary = json.loads((tmp_path / "demo_summary.json").read_text())
    assert set(summary) >= {"held_out_video_auc", "celebdf_frame_auc", "dfd_frame_auc", "model"}
    assert Path(summary["model"]).is_file()


def test_scripts_report_a_bad_manifest_in_one_line(tmp_path, capsys):
    from md_csd_tf.cli import run_main

    code = run_main(script("run_ff").main, ["--data", str(tmp_path / "missing.csv"), "--smoke"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.csv" in err[0] and "md-csd prepare" in err[0]
