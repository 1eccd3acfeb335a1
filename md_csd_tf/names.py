"""The names every module shares: datasets, FF++ manipulations and their short forms, qualities.

One home for these facts: data preparation, training, the experiment configs and the result
tables all read them from here, so "all manipulations" means the same four methods everywhere.
"""

from __future__ import annotations

DATASETS = ("ffpp", "dfd", "celebdf")

#: The four FF++ manipulations of the paper (Sec. III.A): its "all manipulations".
FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
#: Only in later FF++ releases: extracted when present, never part of the paper's "all".
FFPP_OPTIONAL_METHODS = ("FaceShifter",)
#: Short forms accepted wherever a manipulation is named (the paper's table headers).
METHOD_ALIASES = {
    "fs": "FaceSwap",
    "f2f": "Face2Face",
    "df": "Deepfakes",
    "nt": "NeuralTextures",
}
#: FF++ quality levels of the paper's tables: c23 = HQ (light), c40 = LQ (heavy compression).
COMPRESSIONS = {"c23": "HQ", "c40": "LQ"}


def canonical_method(name: str) -> str:
    """`"df"`, `"deepfakes"` or `"Deepfakes"` -> `"Deepfakes"`.

    Raises:
        ValueError: not one of FF++'s manipulations (the paper's four, or FaceShifter).
    """
    key = name.strip().lower()
    for method in (*FFPP_METHODS, *FFPP_OPTIONAL_METHODS):
        if key == method.lower():
            return method
    if key in METHOD_ALIASES:
        return METHOD_ALIASES[key]
    raise ValueError(
        f"unknown manipulation {name!r}; use one of {', '.join(FFPP_METHODS)} "
        f"(or {', '.join(METHOD_ALIASES)})"
    )
