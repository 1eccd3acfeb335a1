"""Throughput benchmark of every registered detector: `python -m md_csd_tf.bench`.

    python -m md_csd_tf.bench                                # every detector at its recipe size
    python -m md_csd_tf.bench --detectors md_csd meso4 --seconds 10 --out table.md
    python -m md_csd_tf.bench --detectors md_csd --sizes 299 71   # one detector at other sizes

Prints, per detector: inference and training images/s (`predict_on_batch`, and
`train_on_batch` with its recipe's loss and rates, the multi-loss detectors' own train steps
included), its forward FLOPs per image, the FLOP rate that achieves and its ratio to this
machine's dense float32 matmul rate, measured in the same run at the start and again at the end
(the machine is shared: a move of more than 10% between the two is printed as a warning).
Numbers, never assertions: speed belongs here, not in tests.

FLOP convention: one multiply-add = 2 FLOPs. `forward_flops` counts every arithmetic op of the
traced graph of one forward pass (inference mode, batch 1), nested models and loop bodies
included: convolutions (2-D, depthwise, 3-D, grouped), matmuls and einsums exactly; FFTs as
5 N log2 N for N complex points (half that for real transforms); every other arithmetic op
(elementwise, activations, normalisation, reductions, pooling windows) as one FLOP per element.
A training step is counted as 3 forward passes (the forward, the input and the weight
gradients), the usual estimate. Detectors that read clips of T frames (`Recipe.clip_frames`)
count per frame: images/s are clips/s x T and FLOPs per image are the clip's over T.
"""

from __future__ import annotations

import argparse
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Ops that move, index or convert data: no arithmetic, no FLOPs.
_FREE = {
    "Placeholder", "Const", "Identity", "IdentityN", "NoOp", "ReadVariableOp", "Reshape",
    "Squeeze", "ExpandDims", "Transpose", "ConcatV2", "Pack", "Unpack", "Split", "SplitV",
    "StridedSlice", "Slice", "Pad", "PadV2", "MirrorPad", "Cast", "Shape", "ShapeN", "Range",
    "Fill", "ZerosLike", "OnesLike", "Tile", "GatherV2", "ReverseV2", "SpaceToBatchND",
    "BatchToSpaceND", "Complex", "Real", "Imag", "TensorListReserve", "TensorListFromTensor",
    "TensorListStack", "TensorListGetItem", "TensorListSetItem", "StopGradient", "Size",
    "BroadcastTo", "BroadcastArgs", "Rank", "Select", "SelectV2", "Where", "OneHot",
    "ResizeBilinear", "ResizeNearestNeighbor", "VarHandleOp", "LogicalAnd", "LogicalNot",
}  # fmt: skip
_REDUCTIONS = {"Sum", "Mean", "Max", "Min", "Prod", "ArgMax", "ArgMin", "All", "Any"}
_POOLS = {"MaxPool", "AvgPool", "MaxPool3D", "AvgPool3D"}
# FFT ops: (dims transformed, cost factor); a real transform is half a complex one.
_FFTS = {
    "FFT": (1, 1),
    "FFT2D": (2, 1),
    "FFT3D": (3, 1),
    "IFFT": (1, 1),
    "IFFT2D": (2, 1),
    "IFFT3D": (3, 1),
    "RFFT": (1, 0.5),
    "RFFT2D": (2, 0.5),
    "RFFT3D": (3, 0.5),
    "IRFFT": (1, 0.5),
    "IRFFT2D": (2, 0.5),
    "IRFFT3D": (3, 0.5),
}
_LOOPS = {"While", "StatelessWhile"}
_CALLS = {"PartitionedCall", "StatefulPartitionedCall"}  # a nested tf.function (grouped convs)


def _elements(shape) -> int:
    """Elements of a static shape; an unknown dimension counts 1 (batch 1 is traced)."""
    return math.prod(d or 1 for d in shape.as_list()) if shape.rank is not None else 0


def _dims(shape) -> list[int]:
    return [d or 1 for d in shape.as_list()]


def _einsum_flops(op) -> int:
    """2 x the product of the sizes of every index of the equation (one multiply-add per term
    of the sum); 1 x when nothing is summed (an elementwise or outer product)."""
    equation = op.get_attr("equation").decode().replace(" ", "")
    inputs, output = equation.split("->")
    sizes = {}
    for labels, tensor in zip(inputs.split(","), op.inputs, strict=True):
        dims = _dims(tensor.shape)
        if "..." in labels:  # the ellipsis stands for the leading dims the labels leave
            head, tail = labels.split("...")
            ellipsis = len(dims) - len(head) - len(tail)
            labels = head + "".join(chr(0x100 + i) for i in range(ellipsis)) + tail
        sizes.update(zip(labels, dims, strict=True))
    summed = set(sizes) - set(output) - {c for c in sizes if ord(c) >= 0x100}
    terms = math.prod(sizes.values())
    return 2 * terms if summed and len(op.inputs) > 1 else terms


def op_flops(op) -> int:
    """FLOPs of one graph op from its static shapes, by the convention of the module docstring.

    Args:
        op: a `tf.Operation` of a graph traced with fully known shapes.

    Returns:
        Its FLOPs (0 for data movement, and for loops and function calls, whose bodies
        `graph_flops` counts).
    """
    kind = op.type
    if kind in _FREE or kind in _LOOPS or kind in _CALLS or not op.outputs:
        return 0
    out = _elements(op.outputs[0].shape)
    if kind in ("Conv2D", "Conv3D", "Conv2DBackpropInput"):
        # The filter (kh, kw, cin / groups, cout): the multiply-adds of each output element.
        *window, cin_per_group, _ = _dims(op.inputs[1].shape)
        if kind == "Conv2DBackpropInput":  # a transposed conv: each input element fans out
            return 2 * _elements(op.inputs[2].shape) * math.prod(window) * cin_per_group
        return 2 * out * math.prod(window) * cin_per_group
    if kind == "DepthwiseConv2dNative":
        kh, kw, _, _ = _dims(op.inputs[1].shape)
        return 2 * out * kh * kw
    if kind == "MatMul":
        a = _dims(op.inputs[0].shape)
        inner = a[0] if op.get_attr("transpose_a") else a[1]
        return 2 * out * inner
    if kind in ("BatchMatMul", "BatchMatMulV2", "BatchMatMulV3"):
        a = _dims(op.inputs[0].shape)
        inner = a[-2] if op.get_attr("adj_x") else a[-1]
        return 2 * out * inner
    if kind == "Einsum":
        return _einsum_flops(op)
    if kind in _FFTS:
        rank, factor = _FFTS[kind]
        signal = op.inputs[0].shape if kind.startswith("RFFT") else op.outputs[0].shape
        dims = _dims(signal)
        points = math.prod(dims[-rank:])
        transforms = math.prod(dims[:-rank])
        return int(factor * 5 * points * math.log2(max(points, 2)) * transforms)
    if kind in _REDUCTIONS:
        return _elements(op.inputs[0].shape)
    if kind in _POOLS:
        return out * math.prod(op.get_attr("ksize"))
    return out  # elementwise arithmetic, activations, BiasAdd, Softmax...


def _loop_trips(graph, op) -> int | None:
    """Iterations of a while loop: its `maximum_iterations` when static, else the length of the
    tensor list it reads (a Keras RNN loops over the time steps of its input), else None."""
    bound = op.inputs[1] if len(op.inputs) > 1 else None
    import tensorflow as tf

    value = tf.get_static_value(bound) if bound is not None else None
    if value is not None and int(value) >= 0:
        return int(value)
    for tensor in op.inputs:
        if tensor.op.type == "TensorListFromTensor":
            return _dims(tensor.op.inputs[0].shape)[0]
    return None


def graph_flops(graph) -> tuple[int, int]:
    """FLOPs of every op of `graph`, the bodies of its while loops times their iterations and
    of the functions it calls once per call.

    Loop and call bodies are functions of the graph's library, which TensorFlow keeps in a
    private attribute (`Graph._functions`, TF 2.13-2.21; `tests/test_bench.py` fails if that
    changes); without it a loop or call counts 0 and is reported.

    Returns:
        (FLOPs, loops or calls whose body or iteration count could not be read).
    """
    total, unknown = 0, 0
    functions = getattr(graph, "_functions", {})
    for op in graph.get_operations():
        if op.type in _CALLS:
            body = functions.get(op.get_attr("f").name)
            if body is None or not hasattr(body, "graph"):
                unknown += 1
                continue
            flops, inner = graph_flops(body.graph)
            total, unknown = total + flops, unknown + inner
        elif op.type in _LOOPS:
            body = functions.get(op.get_attr("body").name)
            trips = _loop_trips(graph, op)
            if body is None or trips is None or not hasattr(body, "graph"):
                unknown += 1
                continue
            flops, inner = graph_flops(body.graph)
            total, unknown = total + trips * flops, unknown + inner
        else:
            total += op_flops(op)
    return total, unknown


def forward_flops(model, strict: bool = False) -> int:
    """FLOPs of one forward pass (inference mode) of one input sample: an image, or a clip for
    a clip detector. The model's whole graph, traced at batch 1 (see the module docstring).

    Args:
        model: a built Keras model (any inputs, nested sub-models, custom layers).
        strict: raise if a loop or function call could not be counted (else it counts 0).

    Returns:
        The FLOPs, with one multiply-add = 2 FLOPs.
    """
    import tensorflow as tf

    def spec(x):
        return tf.TensorSpec((1, *x.shape[1:]), x.dtype)

    inputs = model.input  # the model's own structure: a dict, a list or one tensor
    if isinstance(inputs, dict):
        specs = {key: spec(x) for key, x in inputs.items()}
    elif isinstance(inputs, (list, tuple)):
        specs = [spec(x) for x in inputs]
    else:
        specs = spec(inputs)
    # autograph=False: a lambda's source cannot be parsed (a warning each call); Keras models
    # need no conversion.
    forward = tf.function(lambda x: model(x, training=False), autograph=False)
    graph = forward.get_concrete_function(specs).graph
    flops, unknown = graph_flops(graph)
    if unknown and strict:
        raise RuntimeError(
            f"{unknown} while loop(s) or call(s) of {model.name} could not be counted"
        )
    return flops


def matmul_flops_per_second(n: int = 2048, seconds: float = 3.0, dtype: str = "float32") -> float:
    """Dense matmul rate of this machine through TensorFlow (the achievable ceiling).

    Args:
        n: the side of the two square matrices.
        seconds: timing, after a first (tracing) call.
        dtype: "float32" or "bfloat16" (the GPU benchmark's).

    Returns:
        FLOP/s, 2 n^3 per product.
    """
    import tensorflow as tf

    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    matmul().numpy()
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        matmul().numpy()
        runs += 1
    return 2 * n**3 * runs / (time.perf_counter() - start)


def _rate(step, images: int, seconds: float) -> tuple[float, float]:
    """(images/s over `seconds` of calls after the first, seconds of the first: tracing)."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or done == 0:
        step()
        done += images
    return done / (time.perf_counter() - start), first


def benchmark_detector(
    name: str,
    batch: int = 8,
    seconds: float = 3.0,
    image_size: int | None = None,
    options: dict | None = None,
) -> dict:
    """Inference and training rates of one registered detector, untrained (`weights=None`).

    Args:
        name: a registered detector.
        batch: images per step; a clip detector gets `max(2, batch // T)` clips of T frames.
        seconds: timing of each of the two measurements, after its first (tracing) call.
        image_size: input side; default the recipe's.
        options: builder options (`middle_blocks`...), passed as they are.

    Returns:
        A dict: detector, size, frames (T, 1 for single images), batch (images), params,
        forward_gflops_per_image, infer/train_images_per_s, infer/train_gflops_per_s and the
        first (tracing) call of each, in seconds.
    """
    import numpy as np

    from md_csd_tf.data.inputs import model_inputs
    from md_csd_tf.models.registry import get_entry
    from md_csd_tf.training.compile import compile_detector

    entry = get_entry(name)
    recipe = entry.recipe
    size = image_size or recipe.image_size
    model = entry.build(image_size=size, weights=None, **(options or {}))
    frames = getattr(model, "clip_frames", None) or 1
    samples = max(2, batch // frames) if frames > 1 else batch
    rng = np.random.default_rng(0)
    shape = (samples, frames, size, size, 3) if frames > 1 else (samples, size, size, 3)
    inputs = model_inputs(model, rng.integers(0, 256, shape, np.uint8))
    labels = np.tile([0.0, 1.0], samples // 2 + 1)[:samples].astype("float32")
    images = samples * frames
    flops = forward_flops(model) / frames
    infer, infer_first = _rate(lambda: model.predict_on_batch(inputs), images, seconds)
    compile_detector(model, recipe.loss, recipe.learning_rate, recipe.second_learning_rate)
    train, train_first = _rate(lambda: model.train_on_batch(inputs, labels), images, seconds)
    return {
        "detector": name,
        "size": size,
        "frames": frames,
        "batch": images,
        "params": model.count_params(),
        "forward_gflops_per_image": flops / 1e9,
        "infer_images_per_s": infer,
        "train_images_per_s": train,
        "infer_gflops_per_s": flops * infer / 1e9,
        "train_gflops_per_s": 3 * flops * train / 1e9,  # forward + two backward passes
        "first_infer_call_s": infer_first,
        "first_train_call_s": train_first,
    }


def benchmark_size(size: int, batch: int, seconds: float, middle_blocks: int = 8) -> dict:
    """Full MD-CSD at `size` px (`benchmark_detector("md_csd", ...)`; the pipeline benchmark's)."""
    return benchmark_detector("md_csd", batch, seconds, size, {"middle_blocks": middle_blocks})


COLUMNS = ("detector", "size", "params", "GFLOP/img", "infer img/s", "train img/s",
           "infer GFLOP/s", "train GFLOP/s", "infer/matmul", "train/matmul")  # fmt: skip


def table_row(r: dict, peak: float) -> dict:
    """One result as the table's cells (strings), its FLOP rates over `peak` FLOP/s."""
    size = f"{r['frames']} x {r['size']}" if r["frames"] > 1 else str(r["size"])
    return dict(zip(COLUMNS, (  # noqa: B905 (ten names, ten cells)
        r["detector"], size, f"{r['params'] / 1e6:.2f}M", f"{r['forward_gflops_per_image']:.3f}",
        f"{r['infer_images_per_s']:.2f}", f"{r['train_images_per_s']:.2f}",
        f"{r['infer_gflops_per_s']:.1f}", f"{r['train_gflops_per_s']:.1f}",
        f"{r['infer_gflops_per_s'] * 1e9 / peak:.0%}", f"{r['train_gflops_per_s'] * 1e9 / peak:.0%}",
    )))  # fmt: skip


def main(argv=None) -> int:
    from md_csd_tf.models.registry import get_entry, list_detectors

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", nargs="+", default=None, help="default: every one")
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="input sides to run each detector at (default: its recipe's)")  # fmt: skip
    parser.add_argument("--batch", type=int, default=8, help="images per step (clips: frames)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timing per measurement")
    parser.add_argument("--middle-blocks", type=int, default=None,
                        help="Xception middle-flow blocks, for the detectors that take it")  # fmt: skip
    parser.add_argument("--out", default=None, help="also write the table: NAME.md or NAME.csv")
    args = parser.parse_args(argv)
    names = args.detectors or list_detectors()
    for name in names:
        get_entry(name)  # an unknown name: one line listing the registered ones, before timing
    if args.out and not args.out.endswith((".md", ".csv")):
        parser.error("--out: a .md or .csv file")

    import tensorflow as tf

    from md_csd_tf.evaluation.results_table import markdown_table

    options = {} if args.middle_blocks is None else {"middle_blocks": args.middle_blocks}
    print(f"TensorFlow {tf.__version__}; CPU threads: {os.cpu_count()}; GPUs: "
          f"{len(tf.config.list_physical_devices('GPU'))}; load average {os.getloadavg()[0]:.1f}; "
          f"batch {args.batch} images, {args.seconds:g} s per measurement", flush=True)  # fmt: skip
    matmul_seconds = min(3.0, max(args.seconds, 0.5))  # a short run (the tests) times less
    before = matmul_flops_per_second(seconds=matmul_seconds)
    print(f"dense matmul (2048^2, float32): {before / 1e9:.1f} GFLOP/s", flush=True)
    results = []
    for name in names:
        for size in args.sizes or [None]:
            taken = {k: v for k, v in options.items() if k in get_entry(name).options}
            results.append(benchmark_detector(name, args.batch, args.seconds, size, taken))
            r = results[-1]
            print(f"{name} at {r['size']} px: infer {r['infer_images_per_s']:.2f} img/s, train "
                  f"{r['train_images_per_s']:.2f} img/s, {r['forward_gflops_per_image']:.3f} "
                  f"GFLOP/img (first calls {r['first_infer_call_s']:.1f} s, "
                  f"{r['first_train_call_s']:.1f} s)", flush=True)  # fmt: skip
    after = matmul_flops_per_second(seconds=matmul_seconds)
    peak = (before + after) / 2
    moved = abs(after - before) / before
    print(f"dense matmul again: {after / 1e9:.1f} GFLOP/s ({moved:+.0%} vs the start; ratios "
          f"below use the mean, {peak / 1e9:.1f}); load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    if moved > 0.10:
        print("warning: the matmul rate moved more than 10% during the run (a shared machine): "
              "the ratios are rough")  # fmt: skip
    rows = [table_row(r, peak) for r in results]
    table = markdown_table(rows, COLUMNS, cell=str)
    print("\n" + table, end="")
    if args.out:
        from md_csd_tf.files import atomic_write_text

        if args.out.endswith(".csv"):
            import csv
            import io

            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=list(results[0]) + ["matmul_gflops_per_s"])
            writer.writeheader()
            writer.writerows(r | {"matmul_gflops_per_s": peak / 1e9} for r in results)
            atomic_write_text(args.out, buffer.getvalue())
        else:
            atomic_write_text(args.out, table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
