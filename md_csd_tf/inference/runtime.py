"""A CPU serving runtime: the detector and its preprocessing as a TensorFlow Lite model (XNNPACK).

Measured side by side (`experiments/benchmark_runtime.py`, numbers in docs/inference.md), no
CPU runtime beats TensorFlow's own oneDNN kernels on this 2-core machine (TFLite x0.65-0.72,
OpenVINO x0.77, ONNX Runtime x0.52 of Keras images/s at 299 px); TFLite is kept because it
ships inside TensorFlow (no new dependency) and its single file runs without this package.

The .tflite model holds the whole crop-to-score path, like the SavedModel of
`md_csd_tf.inference.export`: uint8 RGB crops `(batch, height, width, 3)` of any side in,
resized to the model's side by `resize_crop` and turned into the model's inputs by
`model_inputs` (the one crop-to-input path), `fake_probability` `(batch,)` out. The frequency
input is computed by matmuls with the transform basis (`Spectrum`, the `spectrum_in_model`
option): tf.signal's DCT/FFT are not TFLite builtins, matmuls are, and the numbers agree within
float32 rounding. A model that computes its spectrum in tf.data is re-instanced with the option
(the same weights: the option adds none) before conversion.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from md_csd_tf.errors import UserError
from md_csd_tf.inference.export import SIGNATURE, export_saved_model

RUNTIMES = ("tflite",)


def export_tflite(model, out_path: str | os.PathLike) -> Path:
    """Writes `model` with its preprocessing as a .tflite file.

    Every detector of the registry converts and scores like Keras except `f3net_fad`, whose
    converted model TFLite 2.21 cannot plan (checked at 71 px); it is refused with a UserError.

    Args:
        model: a built or loaded detector.
        out_path: the file to write.

    Returns:
        The path. Score it with `TFLiteRuntime(out_path)`.

    Raises:
        UserError: the model cannot be converted, or its converted form cannot run.
    """
    # Converted from the SavedModel `export_saved_model` writes (the same serving function):
    # converting a concrete function of the Keras 3 model directly left its variables unfrozen
    # and the TFLite model returned NaN.
    with tempfile.TemporaryDirectory() as saved:
        export_saved_model(model.with_spectrum_in_model(), saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SIGNATURE])
        # Float32 throughout: no quantisation, so scores stay within 1e-3 of Keras.
        try:
            data = converter.convert()
        except Exception as error:  # the converter raises several types, all with long text
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            raise UserError(
                f"{model.detector}: TFLite cannot convert this model ({first}); use the "
                "Keras path or the SavedModel of md-csd export"
            ) from None
    try:  # a converted model TFLite cannot plan (f3net_fad's 5-D einsums) fails here, not later
        tf.lite.Interpreter(model_content=data)
    except ValueError as error:
        raise UserError(
            f"{model.detector}: TFLite converted this model but cannot run it "
            f"({str(error).splitlines()[0]}); use the Keras path or the SavedModel"
        ) from None
    out_path = Path(out_path)
    out_path.write_bytes(data)
    return out_path


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask: a container's or taskset's
    limit, which `os.cpu_count()` ignores)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class TFLiteRuntime:
    """Scores uint8 face crops with a .tflite model written by `export_tflite`.

    Args:
        path: the .tflite file.
        num_threads: CPU threads for XNNPACK and TFLite's own kernels; None: every core this
            process may use (`cpu_cores`). TFLite's own default is one thread, which left the
            other cores idle (issue #19).
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None):
        self.num_threads = int(num_threads) if num_threads is not None else cpu_cores()
        if self.num_threads < 1:
            raise ValueError(f"num_threads must be positive, got {num_threads}")
        if not os.path.isfile(path):
            raise UserError(
                f"{os.fspath(path)}: no such .tflite file; write one with md-csd export"
            )
        try:
            self.interpreter = tf.lite.Interpreter(
                model_path=os.fspath(path), num_threads=self.num_threads
            )
        except ValueError as error:
            raise UserError(f"{os.fspath(path)}: not a TFLite model ({error})") from None
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._shape = None

    def __call__(self, crops) -> np.ndarray:
        """Fake probabilities `(N,)` float32 of uint8 crops `(N, H, W, 3)`."""
        crops = np.asarray(crops)
        if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[-1] != 3 or not crops.size:
            raise UserError(
                f"TFLite runtime: expected uint8 RGB crops (batch, height, width, 3), got "
                f"{crops.dtype} {crops.shape}"
            )
        if crops.shape != self._shape:  # re-plan only when the batch shape changes
            self.interpreter.resize_tensor_input(self._input["index"], crops.shape)
            self.interpreter.allocate_tensors()
            self._shape = crops.shape
        self.interpreter.set_tensor(self._input["index"], np.ascontiguousarray(crops))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._output["index"]).astype(np.float32)


def runtime_path(model_path: str | os.PathLike, runtime: str = "tflite") -> Path:
    """Where `md-csd predict --runtime` keeps the runtime model of a .keras file: beside it."""
    return Path(model_path).with_suffix(f".{runtime}")


def open_runtime(model_path: str | os.PathLike, model, runtime: str = "tflite", verbose=True):
    """The runtime scorer of the saved model `model_path` (loaded as `model`), exported once.

    The .tflite file beside the .keras is reused while it is newer than the .keras; otherwise it
    is (re)written atomically, so a stale or half-written runtime model is never scored.
    """
    from md_csd_tf.files import atomic_path

    if runtime not in RUNTIMES:
        raise UserError(f"--runtime {runtime}: choose keras or one of {', '.join(RUNTIMES)}")
    if os.path.isdir(model_path):
        raise UserError(f"{os.fspath(model_path)}: --runtime takes one .keras model, not a folder")
    path = runtime_path(model_path, runtime)
    if not path.is_file() or path.stat().st_mtime < os.path.getmtime(model_path):
        if verbose:
            print(f"exporting {os.fspath(model_path)} to {path} (once)", file=sys.stderr)
        with atomic_path(path) as partial:
            export_tflite(model, partial)
    return TFLiteRuntime(path)
