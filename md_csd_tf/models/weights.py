"""Pretrained backbone weights: the one resolver every detector's builder uses.

A builder's `weights` argument names where its backbone starts: None (random), "imagenet"
(Keras' download), a path to a Keras weights file of the backbone without top, or a built Keras
model to copy from. `backbone_source` turns it into the Keras model whose weights the builder
copies, with the same errors for every detector.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras


def backbone_source(
    weights,
    make: Callable[[str], keras.Model],
    network: str,
    argument: str = "weights",
) -> keras.Model:
    """The Keras model whose weights a detector copies into its backbone.

    Args:
        weights: "imagenet", a path to a Keras `network` weights file (include_top=False), or
            a built `keras.Model` (returned as is). Not None: a builder checks that first.
        make: builds the source from "imagenet" or the file's path, e.g.
            `lambda w: keras.applications.Xception(include_top=False, weights=w, ...)`.
        network: the backbone's name for messages ("Xception", "ResNet50", ...).
        argument: the builder argument's name for messages ("weights", MD-CSD's "rgb_weights").

    Raises:
        FileNotFoundError: `weights` is a path to no file.
        TypeError: `weights` is neither a name, a path nor a Keras model.
    """
    if isinstance(weights, keras.Model):
        return weights
    if isinstance(weights, (str, os.PathLike)):
        weights = os.fspath(weights)
        if weights != "imagenet" and not os.path.isfile(weights):
            raise FileNotFoundError(
                f"{argument} file {weights!r} does not exist; pass 'imagenet', None, a Keras "
                f"{network} weights file (include_top=False) or a keras.applications.{network}."
            )
        return make(weights)
    raise TypeError(
        f"{argument} must be None, 'imagenet', a path or a keras.Model; got {weights!r}"
    )
