"""The Table V variants of MD-CSDNetwork and its heads, as data (no TensorFlow import).

Kept apart from the model so that command-line choices and the experiment configs can list them
without loading TensorFlow; `md_csd.py` builds them. Stitch points are Xception's four pooling
blocks, by name (`xception_spec.POOL_STAGES`; a test checks the two agree).
"""

from __future__ import annotations

_POOLING_BLOCKS = ("block2", "block3", "block4", "block13")

# Table V of the paper, one row per variant: which branches exist and after which max-pooling
# blocks a cross-stitch unit joins them.
VARIANTS: dict[str, dict] = {
    "rgb": {"branches": ("rgb",), "stitches": ()},  # row 1: Xception on pixels
    "freq": {"branches": ("freq",), "stitches": ()},  # row 2: Xception on the spectrum
    "concat": {"branches": ("rgb", "freq"), "stitches": ()},  # row 3: features concatenated
    "one_stitch": {"branches": ("rgb", "freq"), "stitches": _POOLING_BLOCKS[:1]},  # row 4
    "md_csd": {"branches": ("rgb", "freq"), "stitches": _POOLING_BLOCKS},  # row 5: the paper's
}

# How the branches meet the classifier: "fc", the paper's "last fully connected layers are
# concatenated" (Sec. II.B), or "pooled", the pooled features concatenated directly.
HEADS = ("fc", "pooled")
