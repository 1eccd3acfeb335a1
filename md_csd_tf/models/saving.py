"""Loading saved models safely, with one-line errors for files that are not ours."""

from __future__ import annotations

import os
import zipfile

import keras

from md_csd_tf.errors import UserError

# Importing registers every custom object a saved model refers to: layers, optimizer and
# callbacks here, the vote ensemble, and (at load time, `_load_all`) every detector's module.
from md_csd_tf.layers import cross_stitch, standardization  # noqa: F401
from md_csd_tf.models import ensemble  # noqa: F401
from md_csd_tf.models.registry import _load_all
from md_csd_tf.training import callbacks, grouped_adam  # noqa: F401


def load_model(path, compile: bool = True) -> keras.Model:
    """Loads a `.keras` file with safe mode on: no Python code in the file is ever run.

    Raises:
        UserError: with a one-line message naming the file when it is missing, not a `.keras`
            archive, or holds something other than a model this package can rebuild.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"{path}: model file not found; pass the best.keras of a training run.")
    if not zipfile.is_zipfile(path):
        raise UserError(
            f"{path}: not a Keras 3 .keras archive (corrupt or another format); "
            "re-export it with model.save('model.keras')."
        )
    _load_all()  # imports every detector module, registering its classes for loading
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # Keras raises many types for a foreign or damaged archive
        text = " ".join(str(error).split())
        if "safe_mode" in text or "arbitrary code execution" in text:
            # Keras' own refusal is long and invites safe_mode=False; ours never needs code.
            raise UserError(
                f"{path}: holds Python code (e.g. a Lambda layer) that safe loading refuses to "
                "run; md-csd-tf models contain none, so use a model saved by md-csd-tf."
            ) from error
        raise UserError(
            f"{path}: cannot be loaded as an md-csd-tf model ({_first_sentence(text, error)}); "
            "use a model saved by md-csd-tf."
        ) from error


def _first_sentence(text: str, error: BaseException, limit: int = 200) -> str:
    """The error's first sentence, shortened at a word (never cut mid-word) when too long."""
    sentence = text.split(". ")[0].rstrip(".") or type(error).__name__
    if len(sentence) <= limit:
        return sentence
    return sentence[:limit].rsplit(" ", 1)[0] + " ..."
