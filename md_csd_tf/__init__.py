"""md-csd-tf: MD-CSDNetwork (Multi-Domain Cross Stitched Network for Deepfake Detection, FG 2021).

Public names are imported lazily, so `md-csd --help` and data preparation do not pay for
importing TensorFlow.
"""

from __future__ import annotations

import importlib

from md_csd_tf._version import __version__

_LAZY = {
    "CrossStitch": "md_csd_tf.layers.cross_stitch",
    "FrequencyStandardization": "md_csd_tf.layers.standardization",
    "build_model": "md_csd_tf.models.md_csd",
    "DetectorModel": "md_csd_tf.models.base",
    "build_detector": "md_csd_tf.models.registry",
    "list_detectors": "md_csd_tf.models.registry",
    "recipe_of": "md_csd_tf.models.registry",
    "feature_model": "md_csd_tf.models.md_csd",
    "VARIANTS": "md_csd_tf.models.md_csd",
    "load_model": "md_csd_tf.models.saving",
    "compile_model": "md_csd_tf.training.compile",
    "GroupedAdam": "md_csd_tf.optimizers",
    "ReduceBothLROnPlateau": "md_csd_tf.training.callbacks",
    "frequency": "md_csd_tf.frequency",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'md_csd_tf' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if module.__name__.endswith(name) else getattr(module, name)
    globals()[name] = value
    return value
