"""Per-channel standardisation of the frequency input, with its statistics stored in the model."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="md_csd_tf")
class FrequencyStandardization(keras.layers.Layer):
    """`(x - mean) / std` per channel, with mean and std as non-trainable model weights.

    The paper normalises each branch separately (Sec. II.B) but gives no statistics for the
    spectrum. Log-DCT values have no fixed range (the DC term is ~10 at 299 px, most others near
    0), so we standardise them with statistics measured on training crops and keep those inside
    the model: a saved model then scores raw spectra with nothing else to ship. Until set, the
    statistics are mean 0, std 1 (identity).

    Args:
        channels: number of input channels (3 for an RGB crop's spectrum).
        epsilon: floor on std so a flat channel cannot divide by zero.
    """

    def __init__(self, channels=3, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if input_shape[-1] != self.channels:
            raise ValueError(f"Expected {self.channels} channels, got shape {input_shape}.")
        self.mean = self.add_weight(
            name="mean", shape=(self.channels,), initializer="zeros", trainable=False
        )
        self.std = self.add_weight(
            name="std", shape=(self.channels,), initializer="ones", trainable=False
        )

    def set_statistics(self, mean, std) -> None:
        """Sets the per-channel statistics, e.g. from `md_csd_tf.data` on training crops."""
        mean = np.asarray(mean, dtype="float32").reshape(self.channels)
        std = np.asarray(std, dtype="float32").reshape(self.channels)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
            raise ValueError(
                f"Frequency statistics must be finite with std > 0; got {mean}, {std}."
            )
        self.mean.assign(mean)
        self.std.assign(std)

    def call(self, inputs):
        mean = ops.cast(self.mean, inputs.dtype)
        std = ops.cast(ops.maximum(self.std, self.epsilon), inputs.dtype)
        return (inputs - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, epsilon=self.epsilon)
        return config
