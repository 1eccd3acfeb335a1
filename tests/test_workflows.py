"""Experiment scripts and the demo in --smoke mode: each model trained once, every table whole."""

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

from md_csd_tf import cli
from md_csd_tf.names import FFPP_METHODS
from md_csd_tf.workflows.demo import prepare_demo_data
from md_csd_tf.workflows.paper_configs import EXPERIMENTS, SMOKE, Run, experiments_of

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
    return prepare_demo_data(str(out), image_size=71, videos=4, progress=False)


def table_rows(out, table):
    return pd.read_csv(Path(out) / "results" / f"table_{table.lower()}.csv").to_dict("records")


def test_experiments_share_one_run_per_model():
    settings = dict(SMOKE.settings)
    folder = EXPERIMENTS["table2_c23"].run.folder_name(settings)
    # The 0.9929 model: Table II c23, Table III, Table IV, Table V row 5, Table VI's DCT row.
    for name in ("table3_celebdf", "table4_dfd", "table5_md_csd", "table6_dct"):
        assert EXPERIMENTS[name].run.folder_name(settings) == folder
    assert len({e.run for e in EXPERIMENTS.values()}) == 8 + 1 + 1 + 4 + 2  # I, II, V, VI
    # How long a run trains does not make it another run; what it trains does.
    assert Run().folder_name({**settings, "epochs": 9}) == folder
    assert Run().folder_name({**settings, "flip": True}) != folder
    assert Run().folder_name({**settings, "head": "pooled"}) != folder
    assert Run().folder_name({**settings, "weights": "imagenet"}) != folder  # another init
    assert Run().folder_name({**settings, "batch_size": 4, "plateau_factor": 0.2}) == folder
    doc = EXPERIMENTS["table1_c40_NeuralTextures"].doc
    assert "81.78" in doc and "--compression c40 --manipulation NeuralTextures" in doc


def test_demo_data_covers_all_three_datasets_and_splits(demo_manifest):
    table = pd.read_csv(demo_manifest, dtype={"video_id": str})
    assert set(table["dataset"]) == {"ffpp", "celebdf", "dfd"}
    ffpp = table[table["dataset"] == "ffpp"]
    assert set(ffpp["split"]) == {"train", "val", "test"}
    assert set(ffpp["method"]) == {"real", *FFPP_METHODS}


def test_run_ff_writes_table_ii_from_its_run_and_leaves_the_rest_not_run(demo_manifest, tmp_path):
    code = script("run_ff").main(["--data", demo_manifest, "--out", str(tmp_path), "--smoke"])
    assert code == 0
    run = tmp_path / "runs" / EXPERIMENTS["table2_c23"].run.folder_name(SMOKE.settings)
    video = json.loads((run / "test" / "metrics.json").read_text())["video"]["overall"]
    assert (run / "test" / "roc.png").is_file()
    rows = table_rows(tmp_path, "II")
    c23 = [r for r in rows if r["setting"].startswith("FF++ c23")]
    assert [r["metric"] for r in c23] == ["Acc (%)", "AUC"]
    assert c23[0]["paper"] == pytest.approx(97.28)
    assert c23[0]["ours"] == pytest.approx(100 * video["accuracy"])
    assert c23[1]["ours"] == pytest.approx(video["auc"])
    c40 = [r for r in rows if r["setting"].startswith("FF++ c40")]
    assert all(pd.isna(r["ours"]) and "not run" in r["run"] for r in c40)
    # Every table exists, whole, with the paper's numbers: 16 Table I rows (8 cells x 2).
    assert len(table_rows(tmp_path, "I")) == 16
    assert "Table VI" in (tmp_path / "results" / "tables.md").read_text()


def test_single_manipulation_run_trains_on_that_method_only(demo_manifest, tmp_path):
    script("run_ff").main(
        ["--data", demo_manifest, "--out", str(tmp_path), "--smoke", "--manipulation", "FaceSwap"]
    )
    run = tmp_path / "runs" / EXPERIMENTS["table1_c23_FaceSwap"].run.folder_name(SMOKE.settings)
    predictions = pd.read_csv(run / "test" / "predictions.csv")
    assert set(predictions["method"]) == {"real", "FaceSwap"}
    (cell,) = [
        r
        for r in table_rows(tmp_path, "I")
        if "FaceSwap" in r["setting"] and "c23" in r["setting"] and r["metric"] == "Acc (%)"
    ]
    assert cell["paper"] == pytest.approx(99.10) and "finished" in cell["run"]


def test_ablations_reuse_the_table_ii_model_instead_of_retraining(demo_manifest, tmp_path):
    out = str(tmp_path)
    script("run_ff").main(["--data", demo_manifest, "--out", out, "--smoke"])
    shared = tmp_path / "runs" / EXPERIMENTS["table2_c23"].run.folder_name(SMOKE.settings)
    trained_at = (shared / "best.keras").stat().st_mtime_ns
    assert script("ablation").main(["--table", "VI", "--data", demo_manifest, "--out", out,
                                    "--smoke"]) == 0  # fmt: skip
    assert script("ablation").main(["--table", "V", "--data", demo_manifest, "--out", out,
                                    "--smoke"]) == 0  # fmt: skip
    assert (shared / "best.keras").stat().st_mtime_ns == trained_at  # reused, never retrained
    runs = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(runs) == 1 + 2 + 4  # Table II c23, Table VI dwt/fft, Table V's four other rows
    auc = json.loads((shared / "test" / "metrics.json").read_text())["video"]["overall"]["auc"]
    table_v, table_vi = table_rows(out, "V"), table_rows(out, "VI")
    assert [r["paper"] for r in table_v] == pytest.approx([0.9509, 0.8114, 0.9789, 0.99, 0.9929])
    assert all(pd.notna(r["ours"]) for r in table_v + table_vi)
    assert table_v[-1]["ours"] == pytest.approx(auc) == table_vi[-1]["ours"]


def test_cross_dataset_fills_both_table_iii_columns_from_one_model(demo_manifest, tmp_path):
    out = str(tmp_path)
    assert script("cross_dataset").main(["--data", demo_manifest, "--out", out, "--smoke"]) == 0
    run = tmp_path / "runs" / EXPERIMENTS["table3_celebdf"].run.folder_name(SMOKE.settings)
    test = json.loads((run / "test" / "metrics.json").read_text())
    cross = json.loads((run / "cross_celebdf" / "metrics.json").read_text())
    ff_column, celebdf_column = table_rows(out, "III")
    assert ff_column["paper"] == pytest.approx(0.997)
    assert ff_column["ours"] == pytest.approx(test["frame"]["per_manipulation"]["Deepfakes"]["auc"])
    assert celebdf_column["paper"] == pytest.approx(0.6877)
    assert celebdf_column["ours"] == pytest.approx(cross["frame"]["overall"]["auc"])
    assert "c23, all four manipulations" in (tmp_path / "results" / "table_iii.md").read_text()
    # A given model file: scored on DFD, written beside the other results.
    code = script("cross_dataset").main(
        ["--model", str(run / "best.keras"), "--data", demo_manifest, "--dataset", "dfd",
         "--out", out, "--smoke"]
    )  # fmt: skip
    assert code == 0
    (row,) = pd.read_csv(tmp_path / "results" / "cross_dfd.csv").to_dict("records")
    dfd = json.loads((tmp_path / "cross_dfd" / "metrics.json").read_text())
    assert row["paper"] == pytest.approx(0.8951)
    assert row["ours"] == pytest.approx(dfd["frame"]["overall"]["auc"])


def test_tables_script_assembles_without_training(demo_manifest, tmp_path, capsys):
    assert script("tables").main(["--out", str(tmp_path), "--smoke"]) == 0
    assert not (tmp_path / "runs").exists()
    rows = table_rows(tmp_path, "V")
    assert len(rows) == 5 and all("not run" in r["run"] for r in rows)
    assert script("tables").main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert listed.count("Table ") >= len(EXPERIMENTS) and "0.9929" in listed
    assert [e.name for e in experiments_of("VI")] == ["table6_dwt", "table6_fft", "table6_dct"]


def test_smoke_alone_runs_on_the_stand_in_data(tmp_path):
    code = script("ablation").main(["--table", "VI", "--smoke", "--out", str(tmp_path)])
    assert code == 0
    rows = table_rows(tmp_path / "smoke", "VI")
    assert len(rows) == 3 and all(pd.notna(r["ours"]) for r in rows)


def test_demo_command_smoke_runs_end_to_end(tmp_path, capsys):
    assert cli.main(["demo", "--smoke", "--out", str(tmp_path)]) == 0
    tmp_path = tmp_path / "smoke"  # a smoke run never shares its folder with the real demo
    printed = capsys.readouterr().out
    assert "video-level AUC" in printed and "real videos of unseen people" in printed
    summary = json.loads((tmp_path / "demo_summary.json").read_text())
    assert Path(summary["model"]).is_file()
    predictions = pd.read_csv(Path(summary["model"]).parent / "test" / "predictions.csv")
    reals = predictions[predictions["label"] == 0]
    expected = reals.groupby("video_id")["prob"].mean().mean()
    assert summary["held_out_real_mean_fake_probability"] == pytest.approx(expected)
    assert summary["celebdf_frame_auc"] is not None and summary["dfd_frame_auc"] is not None


def test_scripts_report_a_bad_manifest_in_one_line(tmp_path, capsys):
    from md_csd_tf.cli import run_main

    code = run_main(script("run_ff").main, ["--data", str(tmp_path / "missing.csv"), "--smoke"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.csv" in err[0] and "md-csd prepare" in err[0]


def test_leaderboard_trains_each_detector_with_its_recipe_and_cites_the_paper(
    demo_manifest, tmp_path
):
    out = str(tmp_path)
    argv = ["--data", demo_manifest, "--out", out, "--smoke", "--detectors",
            "meso4,xception,xception_metric"]  # fmt: skip
    assert script("leaderboard").main(argv) == 0
    rows = pd.read_csv(tmp_path / "results" / "leaderboard.csv").to_dict("records")
    assert [r["detector"] for r in rows] == ["meso4", "xception", "xception_metric"]
    meso = rows[0]
    run = tmp_path / "runs" / meso["run"]
    config = json.loads((run / "config.json").read_text())["config"]
    # MesoNet's own recipe (MSE, Adam 1e-3, no plateau cut), not MD-CSD's (BCE, 2e-4, x0.2).
    assert (config["loss"], config["base_lr"], config["plateau_factor"]) == ("mse", 1e-3, None)
    test = json.loads((run / "test" / "metrics.json").read_text())
    celebdf = json.loads((run / "cross_celebdf" / "metrics.json").read_text())
    assert meso["video_auc"] == pytest.approx(test["video"]["overall"]["auc"])
    assert meso["FaceSwap_video_auc"] == pytest.approx(
        test["video"]["per_manipulation"]["FaceSwap"]["auc"]
    )
    assert meso["celebdf_auc"] == pytest.approx(celebdf["frame"]["overall"]["auc"])
    # The numbers the MD-CSD paper cites for these systems (Tables II, III, IV).
    assert meso["paper_acc"] == pytest.approx(83.10) and meso["paper_celebdf_auc"] == 0.548
    assert rows[1]["paper_acc"] == pytest.approx(95.04) and rows[1]["paper_dfd_auc"] == 0.831
    assert rows[1]["paper_ff_deepfakes_auc"] == pytest.approx(0.997)  # Xception-c23, Table III
    assert meso["Deepfakes_frame_auc"] == pytest.approx(
        test["frame"]["per_manipulation"]["Deepfakes"]["auc"]
    )
    # The metric-learning Xception trains as its paper: an ensemble voting (4 members), and
    # its video score is the vote.
    ensemble = tmp_path / "runs" / rows[2]["run"]
    assert sorted(p.name for p in ensemble.glob("member_*")) == [f"member_{i}" for i in range(4)]
    assert rows[2]["video_score"] == "vote" and meso["video_score"] == "mean"
    # Run again: every run is reused, nothing is retrained.
    before = (run / "best.keras").stat().st_mtime_ns
    assert script("leaderboard").main(argv) == 0
    assert (run / "best.keras").stat().st_mtime_ns == before
