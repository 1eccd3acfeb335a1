"""Reduced-precision variants of a detector, offered only where a check on labelled crops passes.

Two variants (docs/inference.md, "Reduced precision"):

    bfloat16  the Keras model rebuilt under the `mixed_bfloat16` policy with the same weights
              (served as a SavedModel by `md-csd export`, or by Keras in `md-csd predict`);
    int8      full-integer post-training quantisation of the TFLite model (`export_tflite`'s
              serving function), activation ranges calibrated on real face crops; ops without
              an int8 kernel stay float.

A variant is never trusted on faith: `export_variant` scores a labelled check set with the
float32 model and with the variant and writes the variant only when |AUC difference| <=
`AUC_TOLERANCE` and the verdicts (at the model's own threshold) agree on at least
`MIN_AGREEMENT` of the crops. The figures go into a check record (JSON) beside the variant,
with the SHA-256 of the .keras file it came from, so `use_precision` (predict) scores with a
variant only while the record says it passed for exactly that model file.

Layout beside a model `RUN/best.keras` (where `use_precision` looks; export's --out default):

    RUN/best.int8.tflite              the int8 model
    RUN/best.int8.tflite.check.json   its check record
    RUN/best.bfloat16                 the bfloat16 SavedModel (predict rebuilds it from the .keras)
    RUN/best.bfloat16.check.json      its check record
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from md_csd_tf.errors import UserError

PRECISIONS = ("float32", "bfloat16", "int8")
# The runtime each reduced precision runs in: TFLite has no bfloat16 kernels and Keras no int8.
RUNTIME_OF = {"bfloat16": "savedmodel", "int8": "tflite"}
# Issue #19's bar for offering a variant: ranking (AUC) and decisions (verdicts) unchanged.
AUC_TOLERANCE = 0.005
MIN_AGREEMENT = 0.99
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


# -- variants ----------------------------------------------------------------------------------


def bfloat16_model(model):
    """`model` rebuilt under Keras' `mixed_bfloat16` policy, with the same (float32) weights.

    Layers that must stay float32 (the in-model `Spectrum`, the `fake_probability` output) say
    so themselves (`md_csd_tf.mixed_precision`).
    """
    import keras

    from md_csd_tf.mixed_precision import POLICIES

    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(POLICIES["bfloat16"])
    try:  # the policy is global state: restored even when the rebuild fails
        config = {k: v for k, v in model.get_config().items() if k != "dtype"}
        copy = type(model).from_config(config)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(model.get_weights())
    from md_csd_tf.models.saving import get_metadata, set_metadata

    set_metadata(copy, get_metadata(model))
    return copy


def keras_scorer(model):
    """A callable: uint8 crops `(N, H, W, 3)` -> `(N,)` float32 P(fake), the model in a
    `tf.function` (the preprocessing of `model_inputs` included, as the runtimes hold it)."""
    import tensorflow as tf

    from md_csd_tf.data.inputs import model_inputs

    # A free batch and side, as `Detector`'s own functions: traced once, not per batch size.
    function = tf.function(
        lambda crops: model(model_inputs(model, crops), training=False)[:, 0],
        input_signature=[tf.TensorSpec((None, None, None, 3), tf.uint8)],
    )
    return lambda crops: tf.cast(function(tf.constant(crops)), tf.float32).numpy()


def quantize_int8(model, calibration_crops: np.ndarray | None) -> bytes:
    """The model as a full-integer (int8) TFLite model, activation ranges from real crops.

    Args:
        model: a detector of the registry.
        calibration_crops: uint8 `(N, H, W, 3)` real face crops (a few hundred suffice: they
            only set each activation's range); None: int8 weights only, float activations
            (TFLite's dynamic-range quantisation; measured by experiments/benchmark_precision.py,
            not offered).

    Returns:
        The .tflite bytes (input uint8 crops, output float32 probabilities, as `export_tflite`).

    Raises:
        UserError: the converter cannot quantise the model.
    """
    import tensorflow as tf

    from md_csd_tf.inference.export import SIGNATURE, export_saved_model

    def representative():
        for crop in calibration_crops:  # one crop a step: the signature's batch is open
            yield [crop[None]]

    with tempfile.TemporaryDirectory() as saved:
        export_saved_model(model.with_spectrum_in_model(), saved)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=[SIGNATURE])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if calibration_crops is not None:
            converter.representative_dataset = representative
            # INT8 first, float builtins where an op has no int8 kernel (the resize of
            # odd-sized crops, the in-model spectrum's matmuls when their ranges cannot be
            # calibrated).
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
        try:
            return converter.convert()
        except Exception as error:  # the converter raises several types, all with long text
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
            raise UserError(
                f"{model.detector}: TFLite cannot quantise this model ({first})"
            ) from None


# -- crops -------------------------------------------------------------------------------------


def load_crops(
    source: str | os.PathLike,
    image_size: int,
    split: str | None = None,
    label: int | None = None,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Face crops from a crops manifest (with labels) or a folder of crop images (without).

    Crops are decoded and resized by `data.pipeline.decode_crop`, as evaluation reads them.

    Args:
        source: a manifest (`manifest.csv`/`.parquet`, or the folder holding `manifest.csv`)
            or a folder of image files.
        image_size: the model's side.
        split / label: the manifest rows to keep (None: all).
        limit: at most this many crops, spread evenly over the rows (the order of the
            manifest groups videos, so evenly spread rows cover them all).

    Returns:
        `(crops, labels)`: uint8 `(N, image_size, image_size, 3)` and `(N,)` 0/1, or None
        for a folder of images.
    """
    from md_csd_tf.data.manifest import read_manifest, select
    from md_csd_tf.data.pipeline import decode_crop

    source = Path(source)
    is_manifest = source.is_file() or (source / "manifest.csv").is_file()
    if is_manifest:
        table = read_manifest(source)
        if split is not None:
            table = select(table, split=split)
        if label is not None:
            table = table[table["label"] == label]
        paths, labels = list(table["abs_path"]), table["label"].to_numpy(np.int64)
    elif source.is_dir():
        paths = sorted(str(p) for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        labels = None
    else:
        raise UserError(f"{source}: neither a crops manifest nor a folder of face crops")
    if not paths:
        what = f"split {split!r}, label {label!r}" if is_manifest else "image files"
        raise UserError(f"{source}: no crops ({what})")
    if limit is not None and len(paths) > limit:
        keep = np.linspace(0, len(paths) - 1, limit).round().astype(int)
        paths = [paths[i] for i in keep]
        labels = labels[keep] if labels is not None else None
    crops = np.stack([decode_crop(path, image_size).numpy() for path in paths])
    return crops, labels


# -- the check ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Check:
    """How a variant scores a labelled set beside float32.

    Attributes:
        frames: crops scored.
        max_abs_diff: the largest |P(fake) difference| over the crops.
        auc_float32 / auc: the frame AUC of float32 and of the variant.
        auc_diff: `auc - auc_float32`.
        agreement: the fraction of crops with the same verdict at `threshold`.
        threshold: the model's decision threshold.
    """

    frames: int
    max_abs_diff: float
    auc_float32: float
    auc: float
    auc_diff: float
    agreement: float
    threshold: float

    @property
    def passed(self) -> bool:
        return abs(self.auc_diff) <= AUC_TOLERANCE and self.agreement >= MIN_AGREEMENT

    def summary(self) -> str:
        return (
            f"max |score diff| {self.max_abs_diff:.4f}, AUC {self.auc:.4f} vs float32 "
            f"{self.auc_float32:.4f} (diff {self.auc_diff:+.4f}, limit {AUC_TOLERANCE}), "
            f"verdicts agree on {self.agreement:.2%} of {self.frames} crops (limit "
            f"{MIN_AGREEMENT:.0%})"
        )


def score(scorer, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """`scorer`'s P(fake) of crops, in batches of `batch_size` (the last one smaller)."""
    parts = [scorer(crops[i : i + batch_size]) for i in range(0, len(crops), batch_size)]
    return np.concatenate(parts).astype(np.float32)


def compare(reference: np.ndarray, scores: np.ndarray, labels, threshold: float) -> Check:
    """The check figures of a variant's `scores` beside the float32 `reference` scores."""
    from md_csd_tf.evaluation.metrics import frame_metrics

    reference, scores = np.asarray(reference), np.asarray(scores)
    if reference.shape != scores.shape or not reference.size:
        raise ValueError(f"scores of different shapes: {reference.shape} vs {scores.shape}")
    auc_float32 = frame_metrics(labels, reference, threshold)["auc"]
    auc = frame_metrics(labels, scores, threshold)["auc"]
    if np.isnan(auc_float32):
        raise UserError("the check set holds one class only; AUC needs real and fake crops")
    return Check(
        frames=int(reference.size),
        max_abs_diff=float(np.max(np.abs(reference - scores))),
        auc_float32=float(auc_float32),
        auc=float(auc),
        auc_diff=float(auc - auc_float32),
        agreement=float(np.mean((reference > threshold) == (scores > threshold))),
        threshold=float(threshold),
    )


# -- files -------------------------------------------------------------------------------------


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def variant_path(model_path: str | os.PathLike, precision: str) -> Path:
    """Where the variant of `model_path` lives beside it (predict looks there)."""
    suffix = {"int8": ".int8.tflite", "bfloat16": ".bfloat16"}[precision]
    return Path(model_path).with_suffix(suffix)


def record_path(variant: str | os.PathLike) -> Path:
    """The check record of a variant file or folder: beside it, `<variant>.check.json`."""
    return Path(f"{os.fspath(variant)}.check.json")


def export_variant(
    model_path: str | os.PathLike,
    precision: str,
    out: str | os.PathLike,
    check: str | os.PathLike,
    calibration: str | os.PathLike | None = None,
    check_split: str = "test",
    calibration_split: str = "train",
    calibration_frames: int = 300,
    verbose: bool = True,
) -> Check:
    """Writes the checked `precision` variant of a .keras model to `out` and its record beside.

    Args:
        model_path: the float32 .keras model.
        precision: "bfloat16" (a SavedModel folder) or "int8" (a .tflite file).
        out: the variant's path; `variant_path(model_path, precision)` is where predict looks.
        check: a crops manifest whose `check_split` rows (labelled) the check scores.
        calibration: int8 only: a crops manifest (its real `calibration_split` crops) or a
            folder of real face crops; at most `calibration_frames` are used.

    Returns:
        The passing check.

    Raises:
        UserError: the check fails (nothing is written; the message gives the figures), or
            the model, the sources or the conversion are unusable.
    """
    from md_csd_tf.files import atomic_path, atomic_write_json
    from md_csd_tf.models.saving import get_metadata, load_detector

    if precision not in RUNTIME_OF:
        raise UserError(f"--precision {precision}: choose one of {', '.join(RUNTIME_OF)}")
    if precision == "int8" and calibration is None:
        raise UserError("--precision int8 needs --calibration (real face crops)")
    model = load_detector(model_path)
    threshold = float(get_metadata(model).get("threshold", 0.5))
    crops, labels = load_crops(check, model.image_size, split=check_split)
    if labels is None:
        raise UserError(f"--check {check}: needs a crops manifest (labels), not a folder")
    reference = score(keras_scorer(model), crops)
    calibration_info = None
    with tempfile.TemporaryDirectory() as scratch:
        if precision == "int8":
            from md_csd_tf.inference.runtime import TFLiteRuntime

            real, real_labels = load_crops(
                calibration, model.image_size, calibration_split, 0, calibration_frames
            )
            calibration_info = {"source": os.fspath(calibration), "frames": len(real)}
            if real_labels is not None:  # a manifest: its real crops of that split
                calibration_info["split"] = calibration_split
            candidate = Path(scratch) / "variant.tflite"
            candidate.write_bytes(quantize_int8(model, real))
            scorer = TFLiteRuntime(candidate)
        else:
            variant = bfloat16_model(model)
            scorer = keras_scorer(variant)
        result = compare(reference, score(scorer, crops), labels, threshold)
        if verbose:
            print(f"{precision} check on {check} ({check_split}): {result.summary()}")
        if not result.passed:
            raise UserError(
                f"{model_path}: the {precision} variant fails its check ({result.summary()}); "
                "not written: keep float32"
            )
        with atomic_path(out) as partial:
            if precision == "int8":
                Path(partial).write_bytes(candidate.read_bytes())
            else:
                from md_csd_tf.inference.export import export_saved_model

                export_saved_model(variant, partial)
    record = {
        "precision": precision,
        "runtime": RUNTIME_OF[precision],
        "model": Path(model_path).name,
        "model_sha256": sha256_of(model_path),
        "variant": Path(out).name,
        "variant_sha256": sha256_of(out) if precision == "int8" else None,
        "check": {"source": os.fspath(check), "split": check_split, **dataclasses.asdict(result)},
        "calibration": calibration_info,
        "limits": {"auc_diff": AUC_TOLERANCE, "agreement": MIN_AGREEMENT},
        "passed": True,
    }
    atomic_write_json(record_path(out), record)
    return result


def export_command(model_path, precision: str) -> str:
    """The `md-csd export` command that checks and writes the variant predict looks for."""
    out = variant_path(model_path, precision)
    runtime = RUNTIME_OF[precision]
    extra = " --calibration CROPS" if precision == "int8" else ""
    return (
        f"md-csd export --model {model_path} --runtime {runtime} --precision {precision}"
        f"{extra} --check MANIFEST --out {out}"
    )


def checked_variant(model_path: str | os.PathLike, precision: str) -> dict:
    """The passing check record of `model_path`'s variant, verified against the files.

    Raises:
        UserError: one line naming the model and the command that checks it, when there is no
            record, it did not pass, or the model or the variant is not the file it checked.
    """
    variant = variant_path(model_path, precision)
    path = record_path(variant)
    problem = None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record, problem = None, "no check record"
    if record is not None:
        if not record.get("passed") or record.get("precision") != precision:
            problem = "its check record did not pass"
        elif record.get("model_sha256") != sha256_of(model_path):
            problem = "the model changed since its check"
        elif precision == "int8" and (
            not variant.is_file() or record.get("variant_sha256") != sha256_of(variant)
        ):
            problem = f"{variant.name} is missing or is not the file that was checked"
    if problem:
        raise UserError(
            f"{os.fspath(model_path)}: no passing {precision} check ({problem}); check it "
            f"with: {export_command(model_path, precision)}"
        )
    return record


def use_precision(detector, model_path: str | os.PathLike | None, precision: str) -> None:
    """Switches `detector` to the checked `precision` variant of its model.

    Args:
        detector: an `inference.detector.Detector` of the model at `model_path`.
        model_path: its .keras file; None: the shipped model (`models.pretrained.DEFAULT`).
        precision: "float32" (no change), "bfloat16" or "int8".

    Raises:
        UserError: one line naming the model and the command that would check it, when no
            passing check exists for this model file and precision.
    """
    if precision == "float32":
        return
    if precision not in RUNTIME_OF:
        raise UserError(f"--precision {precision}: choose one of {', '.join(PRECISIONS)}")
    if model_path is None:
        from md_csd_tf.models.pretrained import path_of

        model_path = path_of()
    if os.path.isdir(model_path):
        raise UserError(
            f"{os.fspath(model_path)}: --precision takes one .keras model, not a folder"
        )
    checked_variant(model_path, precision)
    if precision == "int8":
        from md_csd_tf.inference.runtime import TFLiteRuntime

        detector.use_runtime(TFLiteRuntime(variant_path(model_path, precision)))
    else:
        detector.use_runtime(keras_scorer(bfloat16_model(detector.model)))
