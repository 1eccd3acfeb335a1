"""The cross-stitch unit (Misra et al., CVPR 2016) as used by MD-CSDNetwork."""

from __future__ import annotations

import keras
from keras import ops

# The optimizer recognises the stitch parameters by this weight name (they train at their own
# learning rate, Sec. II.C); keep the two in sync through this constant.
ALPHA_WEIGHT_NAME = "cross_stitch_alpha"


@keras.saving.register_keras_serializable(package="md_csd_tf")
class CrossStitch(keras.layers.Layer):
    """Learned linear mix of the RGB and frequency activation maps of one depth.

    Called on `[x_rgb, x_freq]` (same shape) it returns
    `[a_RR * x_rgb + a_RD * x_freq, a_DR * x_rgb + a_DD * x_freq]`, with
    `alpha[0] = (a_RR, a_RD)` and `alpha[1] = (a_DR, a_DD)`.

    The same-branch weights start at `self_weight` (0.9) and the cross-branch ones at
    `cross_weight` (0.1): a convex combination, so each output starts at the scale of its input
    (Sec. II.C). Both outputs use both inputs; the authors' published code drops the cross terms,
    which silently turns the network into two independent branches.

    Args:
        self_weight: initial a_RR and a_DD.
        cross_weight: initial a_RD and a_DR.
        per_channel: one 2x2 matrix per channel (Misra et al.'s channel-wise variant) instead
            of one scalar matrix per unit (the paper's Eq. 1).

    Reference: MD-CSDNetwork, Sec. II.B.1, Eqs. 1-3.
    """

    def __init__(self, self_weight=0.9, cross_weight=0.1, per_channel=False, **kwargs):
        super().__init__(**kwargs)
        self.self_weight = float(self_weight)
        self.cross_weight = float(cross_weight)
        self.per_channel = bool(per_channel)

    def build(self, input_shape):
        rgb_shape, freq_shape = input_shape
        if tuple(rgb_shape[1:]) != tuple(freq_shape[1:]):
            raise ValueError(
                f"CrossStitch needs inputs of one shape, got {rgb_shape} and {freq_shape}."
            )
        shape = (2, 2, rgb_shape[-1]) if self.per_channel else (2, 2)
        self_weight, cross_weight = self.self_weight, self.cross_weight

        def initializer(shape, dtype=None):
            eye = ops.reshape(ops.eye(2, dtype=dtype), (2, 2) + (1,) * (len(shape) - 2))
            values = cross_weight + (self_weight - cross_weight) * eye
            return ops.broadcast_to(ops.cast(values, dtype), shape)

        self.alpha = self.add_weight(
            name=ALPHA_WEIGHT_NAME, shape=shape, initializer=initializer, trainable=True
        )

    def call(self, inputs):
        x_rgb, x_freq = inputs
        alpha = ops.cast(self.alpha, x_rgb.dtype)  # mixed precision: activations may be float16
        return [
            alpha[0, 0] * x_rgb + alpha[0, 1] * x_freq,
            alpha[1, 0] * x_rgb + alpha[1, 1] * x_freq,
        ]

    def compute_output_shape(self, input_shape):
        return [tuple(input_shape[0]), tuple(input_shape[1])]

    def get_config(self):
        config = super().get_config()
        config.update(
            self_weight=self.self_weight,
            cross_weight=self.cross_weight,
            per_channel=self.per_channel,
        )
        return config
