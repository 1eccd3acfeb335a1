"""The frequency input computed inside the model, from the RGB pixels, as matrix products."""

from __future__ import annotations

import keras

from md_csd_tf.frequency import DEFAULT_EPSILON, TRANSFORMS, matmul_spectrum


@keras.saving.register_keras_serializable(package="md_csd_tf")
class Spectrum(keras.layers.Layer):
    """Pixels 0..255 `(B, H, W, 3)` -> the frequency input named by `transform`, same shape.

    The same numbers as the tf.data path (`md_csd_tf.frequency.get_transform`) within float32
    rounding, but as two batched matmuls with the transform's basis (`matmul_spectrum`), so a GPU
    or TPU computes the spectrum instead of the input pipeline's CPU cores, and XLA and TFLite
    can compile it. The layer always runs in float32 whatever the mixed-precision policy: the
    log of small coefficients needs float32's range and precision (float16 rounding of 255-scale
    sums is ~0.1, larger than many high-frequency coefficients). On Ampere and later GPUs,
    TensorFloat-32 matmuls (TensorFlow's default there) round the products to 10-bit mantissas;
    call `tf.config.experimental.enable_tensor_float_32_execution(False)` for the exact spectrum.

    Args:
        transform: "dct", "fft" or "dwt" (Table VI).
        epsilon: as in `md_csd_tf.frequency.log_dct`.

    Reference: MD-CSDNetwork, Sec. II.B.2 and Table VI.
    """

    def __init__(self, transform: str = "dct", epsilon: float = DEFAULT_EPSILON, **kwargs):
        kwargs["dtype"] = "float32"  # see the docstring: never the mixed-precision policy
        super().__init__(**kwargs)
        if transform not in TRANSFORMS:
            raise ValueError(f"Unknown transform {transform!r}; choose one of {list(TRANSFORMS)}.")
        self.transform = transform
        self.epsilon = float(epsilon)

    def call(self, inputs):
        return matmul_spectrum(keras.ops.cast(inputs, "float32"), self.transform, self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(transform=self.transform, epsilon=self.epsilon)
        return config
