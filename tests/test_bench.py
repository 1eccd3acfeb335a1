"""The benchmarks' FLOP count against hand-computed and published figures, and their commands on
tiny inputs (they print and write numbers; their speed is not asserted)."""

import importlib.util
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from md_csd_tf import bench


def _count(model, types) -> int:
    """FLOPs of the ops of `types` only (the multiply-add ops a published figure counts)."""
    spec = tf.TensorSpec((1, *model.input.shape[1:]))
    forward = tf.function(lambda x: model(x, training=False), autograph=False)
    graph = forward.get_concrete_function(spec).graph
    return sum(bench.op_flops(op) for op in graph.get_operations() if op.type in types)


def test_flops_of_every_layer_kind_by_hand():
    x = keras.Input((8, 8, 3))
    y = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(x)  # 8*8*4 outputs x 27 MACs
    y = keras.layers.DepthwiseConv2D(3, use_bias=False)(y)  # 6*6*4 outputs x 9 MACs
    y = keras.layers.SeparableConv2D(6, 1, use_bias=False)(y)  # 6*6*4 x 1, then 6*6*6 x 4
    y = keras.layers.Conv2D(4, 3, groups=2, use_bias=False)(y)  # 4*4*4 outputs x 9*3 MACs
    y = keras.layers.Flatten()(y)
    y = keras.layers.Dense(5, use_bias=False)(y)  # 5 outputs x 64 MACs
    inner = keras.Model(x, y)
    outer_in = keras.Input((8, 8, 3))
    model = keras.Model(outer_in, inner(outer_in))  # a nested model: its layers count too
    macs = 8 * 8 * 4 * 27 + 6 * 6 * 4 * 9 + 6 * 6 * 4 + 6 * 6 * 6 * 4 + 4 * 4 * 4 * 27 + 5 * 64
    assert (
        bench.forward_flops(model, strict=True) == 2 * macs
    )  # nothing else in the graph does arithmetic


def test_flops_of_conv3d_einsum_matmul_and_elementwise():
    x = keras.Input((4, 6, 6, 2))
    y = keras.layers.Conv3D(3, 3, use_bias=False)(x)  # 2*4*4*3 outputs x 27*2 MACs
    y = keras.layers.Reshape((32, 3))(y)
    y = keras.layers.EinsumDense("abc,cd->abd", (32, 5))(y)  # 32*5 outputs x 3 MACs, no bias
    y = keras.layers.Activation("relu")(y)  # one FLOP per element: 160
    model = keras.Model(x, y)
    assert bench.forward_flops(model) == 2 * (2 * 4 * 4 * 3 * 54 + 32 * 5 * 3) + 160
    x = keras.Input((4, 4, 3))
    up = keras.Model(x, keras.layers.Conv2DTranspose(2, 3, strides=2, use_bias=False)(x))
    assert bench.forward_flops(up) == 2 * 4 * 4 * 3 * 9 * 2  # each input element x 9 x 2 out


def test_fft_counts_five_n_log_n():
    class Spectrum(keras.layers.Layer):
        def call(self, x):
            return tf.abs(tf.signal.fft2d(tf.complex(x, 0.0)))

    x = keras.Input((16, 16))
    model = keras.Model(x, Spectrum()(x))
    # 5 N log2 N for the N = 256 points, plus Abs: 256 elements.
    assert bench.forward_flops(model) == 5 * 256 * 8 + 256


def test_loops_count_each_iteration():
    x = keras.Input((7, 3))
    model = keras.Model(x, keras.layers.SimpleRNN(4, use_bias=False)(x))
    flops = bench.forward_flops(model, strict=True)
    # Per time step: the input (3 -> 4) and recurrent (4 -> 4) matmuls, their add and the tanh.
    assert flops >= 7 * (2 * 4 * 3 + 2 * 4 * 4 + 4 + 4)
    assert flops < 7 * (2 * 4 * 3 + 2 * 4 * 4 + 4 + 4) + 200  # loop bookkeeping only


@pytest.mark.slow
def test_published_multiply_adds_of_xception_and_resnet50():
    """One multiply-add = 2 FLOPs. Xception at 299 px: 8.4 G multiply-adds (timm's table for
    the original Xception); ResNet-50 at 224 px: 3.8 G (He et al. 2016, Table 1, which counts
    multiply-adds as FLOPs); convolutions and the classifier only, as those figures count."""
    types = ("Conv2D", "DepthwiseConv2dNative", "MatMul")
    xception = _count(keras.applications.Xception(weights=None), types) / 2e9
    assert xception == pytest.approx(8.4, rel=0.01), xception
    resnet = _count(keras.applications.ResNet50(weights=None), types) / 2e9
    assert resnet == pytest.approx(3.8, rel=0.03), resnet


@pytest.mark.slow  # tracing two training steps: 30 s at load 2, minutes on a loaded machine
def test_bench_main_prints_a_row_per_detector(tmp_path, capsys):
    out = tmp_path / "table.csv"
    args = ["--detectors", "meso4", "md_csd_rgb", "--sizes", "71", "--middle-blocks", "0",
            "--seconds", "0.05", "--batch", "2", "--out", str(out)]  # fmt: skip
    assert bench.main(args) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| detector | size |")
    assert [row.split(" | ")[0] for row in rows[1:]] == ["| meso4", "| md_csd_rgb"]
    assert "dense matmul again" in printed
    lines = out.read_text().splitlines()
    assert lines[0].startswith("detector,size,frames,batch,params") and len(lines) == 3
    meso = dict(zip(lines[0].split(","), lines[1].split(","), strict=True))
    assert float(meso["train_images_per_s"]) > 0 and float(meso["infer_images_per_s"]) > 0
    # The CSV's FLOPs are the model's own count at that size.
    from md_csd_tf import build_detector

    expected = bench.forward_flops(build_detector("meso4", image_size=71, weights=None)) / 1e9
    assert float(meso["forward_gflops_per_image"]) == pytest.approx(expected)


@pytest.mark.slow  # a clip of ResNet-50 stages and GRUs: its train step traces slowly
def test_clip_detectors_count_per_frame():
    """A clip of T frames: FLOPs per image are the clip's over T, images/s count frames."""
    from md_csd_tf import build_detector

    options = dict(image_size=32, weights=None, clip_frames=2, resnet_stages=1)
    r = bench.benchmark_detector("dual_level", batch=4, seconds=0.01, image_size=32,
                                 options={"clip_frames": 2, "resnet_stages": 1})  # fmt: skip
    clip = bench.forward_flops(build_detector("dual_level", **options))
    assert r["frames"] == 2 and r["batch"] == 4  # 2 clips of 2 frames
    assert r["forward_gflops_per_image"] == pytest.approx(clip / 2 / 1e9)
    assert np.isfinite(r["train_images_per_s"]) and r["train_images_per_s"] > 0


def _gpu_script():
    path = Path(__file__).parents[1] / "experiments" / "benchmark_gpu.py"
    spec = importlib.util.spec_from_file_location("benchmark_gpu", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_gpu_benchmark_budget_shortens_then_skips():
    script = _gpu_script()
    roomy = script.Budget(total=1e6, seconds=10.0, measurements=3)
    assert roomy.share() == 10.0 and roomy.allows(60.0) and not roomy.allows(2e6)
    late = script.Budget(total=-1.0, seconds=10.0, measurements=3)  # already past its end
    assert not late.allows(0.0) and late.share() == 0.2  # the minimum timing: one step
    import time

    tight = script.Budget(total=time.perf_counter() - script.STARTED + 12.0, seconds=10.0,
                          measurements=3)  # fmt: skip
    assert tight.share() == pytest.approx(2.0, abs=0.1)  # 12 s left / 3 runs / 2


@pytest.mark.slow
def test_gpu_benchmark_tiny_writes_every_figure(tmp_path):
    script = _gpu_script()
    out = tmp_path / "gpu.json"
    # A generous budget: a loaded CPU may need minutes; the GPU run's is 420 s.
    args = ["--tiny", "--seconds", "0.05", "--budget", "3000", "--out", str(out)]
    assert script.main(args) == 0
    result = json.loads(out.read_text())
    assert set(result["train"]) == {
        "float32/spectrum_in_tf_data", "float32/spectrum_in_model",
        "bfloat16/spectrum_in_tf_data", "bfloat16/spectrum_in_model",
    }  # fmt: skip
    for measured in result["train"].values():
        # Not < 1: a loaded CPU's 256-wide tiny matmul (the peak here) can be slower than the model.
        assert measured["images_per_s"] > 0 and measured["mfu"] > 0
        assert measured["forward_gflops"] > 0
    assert result["input_pipeline"]["images_per_s"] > 0
    assert set(result["predict"]) == {"float32", "bfloat16"}
    assert all(p["crops_per_s"] > 0 for p in result["predict"].values())
    assert result["peak_source"] == "measured matmul" and not result["skipped"]
    assert result["seconds"] < result["budget_s"] == 3000
