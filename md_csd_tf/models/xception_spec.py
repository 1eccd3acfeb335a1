"""Xception (Chollet, CVPR 2017) written as data, and one builder that turns it into layers.

Layer names follow `keras.applications.Xception` exactly, behind a branch prefix (`rgb_`,
`freq_`), so that ImageNet weights transfer by name. The four residual shortcuts, unnamed in
Keras (`conv2d`, `batch_normalization`, ...), are named `<block>_residual_conv/_bn` here and
matched by their order when weights are copied.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import keras
from keras import layers

# Keras' Xception builds every BatchNormalization with the defaults (momentum 0.99, eps 1e-3);
# matching them matters when copying ImageNet statistics.
_sep_conv = functools.partial(layers.SeparableConv2D, kernel_size=3, padding="same", use_bias=False)


@dataclass(frozen=True)
class Stem:
    """block1: two plain 3x3 convolutions, the first with stride 2 (no padding, as in Keras)."""

    name: str = "block1"
    filters: tuple[int, int] = (32, 64)


@dataclass(frozen=True)
class PoolBlock:
    """Two separable convs, 3x3/2 max-pool, plus a strided 1x1 shortcut; ends in a residual add.

    `first_relu` is False only for block2, whose input is already activated by the stem. Keras
    names block2's activations `block2_sepconv2_act` only; we keep that quirk for the weights.
    """

    name: str
    filters: tuple[int, int]
    first_relu: bool = True


@dataclass(frozen=True)
class MiddleBlock:
    """Three ReLU-separable-conv-BN units around an identity shortcut (Xception's middle flow)."""

    name: str
    filters: int = 728


@dataclass(frozen=True)
class ExitConvs:
    """block14: two separable convs, each followed by BN and ReLU; then global average pooling."""

    name: str = "block14"
    filters: tuple[int, int] = (1536, 2048)


# The max-pooling stages of Xception, after which MD-CSDNetwork places its cross-stitch units
# (Fig. 2). Block 13 is the exit flow's pooling block, numbered after the eight middle blocks.
POOL_STAGES = ("block2", "block3", "block4", "block13")


def xception_stages(middle_blocks: int = 8) -> list:
    """Xception as a list of block specs; `middle_blocks` < 8 gives a shallow branch for tests.

    Block names do not shift with `middle_blocks`: the exit flow is always block13/block14, so a
    shallow model still matches ImageNet weights for every layer it has.
    """
    if not 0 <= middle_blocks <= 8:
        raise ValueError(f"middle_blocks must be in 0..8 (Xception has 8); got {middle_blocks}.")
    return [
        Stem(),
        # Entry flow: the three pooling blocks that downsample to 1/16 of the input.
        PoolBlock("block2", (128, 128), first_relu=False),
        PoolBlock("block3", (256, 256)),
        PoolBlock("block4", (728, 728)),
        # Middle flow: 8 identical blocks at 728 channels in the paper's (and Keras') Xception.
        *[MiddleBlock(f"block{5 + i}") for i in range(middle_blocks)],
        # Exit flow.
        PoolBlock("block13", (728, 1024)),
        ExitConvs(),
    ]


def apply_block(spec, x, prefix: str, bn_momentum: float = 0.99):
    """Adds the layers of one block spec to the graph, names prefixed by `prefix_`.

    `bn_momentum` is Keras' default 0.99 (Xception's); a short run from scratch wants less,
    or the moving statistics used at inference still remember their initial values.
    """
    _bn = functools.partial(layers.BatchNormalization, axis=-1, momentum=bn_momentum)

    def name(suffix: str) -> str:
        return f"{prefix}_{spec.name}_{suffix}"

    if isinstance(spec, Stem):
        first, second = spec.filters
        x = layers.Conv2D(first, 3, strides=2, use_bias=False, name=name("conv1"))(x)
        x = _bn(name=name("conv1_bn"))(x)
        x = layers.Activation("relu", name=name("conv1_act"))(x)
        x = layers.Conv2D(second, 3, use_bias=False, name=name("conv2"))(x)
        x = _bn(name=name("conv2_bn"))(x)
        return layers.Activation("relu", name=name("conv2_act"))(x)

    if isinstance(spec, PoolBlock):
        first, second = spec.filters
        residual = layers.Conv2D(
            second, 1, strides=2, padding="same", use_bias=False, name=name("residual_conv")
        )(x)
        residual = _bn(name=name("residual_bn"))(residual)
        if spec.first_relu:
            x = layers.Activation("relu", name=name("sepconv1_act"))(x)
        x = _sep_conv(first, name=name("sepconv1"))(x)
        x = _bn(name=name("sepconv1_bn"))(x)
        x = layers.Activation("relu", name=name("sepconv2_act"))(x)
        x = _sep_conv(second, name=name("sepconv2"))(x)
        x = _bn(name=name("sepconv2_bn"))(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=name("pool"))(x)
        return layers.Add(name=name("add"))([x, residual])

    if isinstance(spec, MiddleBlock):
        residual = x
        for unit in (1, 2, 3):
            x = layers.Activation("relu", name=name(f"sepconv{unit}_act"))(x)
            x = _sep_conv(spec.filters, name=name(f"sepconv{unit}"))(x)
            x = _bn(name=name(f"sepconv{unit}_bn"))(x)
        return layers.Add(name=name("add"))([x, residual])

    if isinstance(spec, ExitConvs):
        for unit, filters in enumerate(spec.filters, start=1):
            x = _sep_conv(filters, name=name(f"sepconv{unit}"))(x)
            x = _bn(name=name(f"sepconv{unit}_bn"))(x)
            x = layers.Activation("relu", name=name(f"sepconv{unit}_act"))(x)
        return x

    raise TypeError(f"Unknown Xception block spec: {spec!r}")


def copy_keras_xception_weights(source: keras.Model, target: keras.Model, prefix: str) -> int:
    """Copies the weights of a `keras.applications.Xception` into one branch of `target`.

    Named layers map by name behind `prefix_`; the unnamed residual shortcuts map in order onto
    `POOL_STAGES`. Source layers absent from a shallow target (middle blocks beyond
    `middle_blocks`) are skipped; every layer of the target branch must be covered.

    Returns:
        The number of layers copied.
    """
    target_layers = {layer.name: layer for layer in target.layers}
    shortcut_convs = iter(POOL_STAGES)
    shortcut_bns = iter(POOL_STAGES)
    copied = set()
    for layer in source.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.name.startswith("block"):
            name = f"{prefix}_{layer.name}"
        elif isinstance(layer, layers.Conv2D):
            name = f"{prefix}_{next(shortcut_convs)}_residual_conv"
        elif isinstance(layer, layers.BatchNormalization):
            name = f"{prefix}_{next(shortcut_bns)}_residual_bn"
        else:  # a classifier head ("predictions") has no counterpart in a branch
            continue
        if name not in target_layers:
            continue
        target_layers[name].set_weights(weights)
        copied.add(name)
    expected = {
        layer.name
        for layer in target.layers
        if layer.name.startswith(f"{prefix}_block") and layer.weights
    }
    missing = sorted(expected - copied)
    if missing:
        raise ValueError(
            f"The Xception weights do not cover {len(missing)} layers of the {prefix} branch, "
            f"e.g. {missing[:3]}; was the source built with include_top=False and 3 channels?"
        )
    return len(copied)
