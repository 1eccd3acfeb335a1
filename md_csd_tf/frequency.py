"""Frequency transforms of face crops, in pure TensorFlow (graph- and tf.data-safe).

Every transform takes an image `(H, W, C)` or a batch `(B, H, W, C)` of float pixels (our
pipelines pass 0..255) and returns a tensor of the same shape, so the frequency branch of the
network is shaped exactly like the RGB branch. No NumPy and no `py_function`: these run inside
`tf.data.Dataset.map` in parallel.

Reference: MD-CSDNetwork, Section II.B.2 (DCT spectrum) and Table VI (DWT vs FFT vs DCT).
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

# log(|X| + eps). Pixels are 0..255 so coefficients are O(1e-3..1e4); float32 round-off of the
# transform is ~1e-3 at that scale, so any eps well below it only matters for exact zeros (flat
# synthetic images), which it keeps finite. See docs/reading-the-paper.md.
DEFAULT_EPSILON = 1e-6


def _channels_first(images: tf.Tensor) -> tuple[tf.Tensor, bool]:
    """(…, H, W, C) -> (…, C, H, W) so that tf.signal transforms act on the last axes."""
    images = tf.convert_to_tensor(images)
    if images.dtype not in (tf.float32, tf.float64):
        images = tf.cast(images, tf.float32)
    single = images.shape.rank == 3
    if single:
        images = images[tf.newaxis]
    return tf.transpose(images, [0, 3, 1, 2]), single


def _channels_last(x: tf.Tensor, single: bool) -> tf.Tensor:
    x = tf.transpose(x, [0, 2, 3, 1])
    return x[0] if single else x


def dct2(images: tf.Tensor) -> tf.Tensor:
    """Full-image orthonormal 2-D DCT-II per channel: along rows, then along columns.

    The paper computes the 2-D DCT "as a product of 1-D DCTs across the rows and then across the
    columns separately for all the channels" (Sec. II.B.2): one transform of the whole crop, not
    JPEG's 8x8 blocks.
    """
    x, single = _channels_first(images)
    x = tf.signal.dct(x, type=2, norm="ortho")  # along each row (the W axis)
    x = tf.linalg.matrix_transpose(x)
    x = tf.signal.dct(x, type=2, norm="ortho")  # along each column (the H axis)
    x = tf.linalg.matrix_transpose(x)
    return _channels_last(x, single)


def log_dct(images: tf.Tensor, epsilon: float = DEFAULT_EPSILON) -> tf.Tensor:
    """Natural log of the DCT magnitude, `log(|DCT2(x)| + epsilon)`, per channel.

    The log brings the high-frequency coefficients, orders of magnitude smaller than the
    low-frequency ones in natural images, to the same scale (Sec. II.B.2).
    """
    return tf.math.log(tf.abs(dct2(images)) + epsilon)


def log_fft(images: tf.Tensor, epsilon: float = DEFAULT_EPSILON) -> tf.Tensor:
    """Log magnitude of the centred 2-D FFT per channel (Table VI's "FFT" row).

    Centred (zero frequency in the middle, as `numpy.fft.fftshift` places it) so that, as for the
    DCT, position in the map means frequency in a way convolutions can exploit.
    """
    x, single = _channels_first(images)
    spectrum = tf.signal.fft2d(tf.cast(x, tf.complex64))
    height, width = tf.shape(x)[-2], tf.shape(x)[-1]
    spectrum = tf.roll(spectrum, shift=[height // 2, width // 2], axis=[-2, -1])
    magnitude = tf.cast(tf.abs(spectrum), x.dtype)
    return _channels_last(tf.math.log(magnitude + epsilon), single)


def haar_dwt(images: tf.Tensor) -> tf.Tensor:
    """One-level 2-D Haar DWT per channel, sub-bands laid out as quadrants of the input's shape.

    Layout `[[LL, H], [V, D]]` (approximation top-left; horizontal, vertical and diagonal detail,
    named as PyWavelets' `dwt2` returns `(cA, (cH, cV, cD))`). An odd side is first extended by
    repeating its last row/column (PyWavelets' "symmetric" mode for Haar), which makes the
    quadrants one sample longer than half; the assembled map is then cut back to the input's
    size, dropping the last row/column of detail coefficients. This keeps the output shaped like
    the RGB input, which the shared Xception branch needs (Table VI's "DWT" row).
    """
    x, single = _channels_first(images)
    height, width = tf.shape(x)[-2], tf.shape(x)[-1]
    x = tf.concat([x, x[..., -1:, :]], axis=-2)[..., : height + height % 2, :]
    x = tf.concat([x, x[..., :, -1:]], axis=-1)[..., :, : width + width % 2]
    a, b = x[..., 0::2, :], x[..., 1::2, :]  # row pairs
    low_rows, high_rows = (a + b), (a - b)
    scale = tf.constant(0.5, x.dtype)  # (1/sqrt 2)^2 for the two 1-D passes
    ll = (low_rows[..., 0::2] + low_rows[..., 1::2]) * scale
    horizontal = (high_rows[..., 0::2] + high_rows[..., 1::2]) * scale
    vertical = (low_rows[..., 0::2] - low_rows[..., 1::2]) * scale
    diagonal = (high_rows[..., 0::2] - high_rows[..., 1::2]) * scale
    top = tf.concat([ll, horizontal], axis=-1)
    bottom = tf.concat([vertical, diagonal], axis=-1)
    quadrants = tf.concat([top, bottom], axis=-2)[..., :height, :width]
    return _channels_last(quadrants, single)


TRANSFORMS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "dct": log_dct,
    "fft": log_fft,
    "dwt": haar_dwt,
}


def get_transform(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """The transform registered under `name` ("dct", "fft" or "dwt")."""
    try:
        return TRANSFORMS[name]
    except KeyError:
        raise ValueError(
            f"Unknown frequency transform {name!r}; choose one of {sorted(TRANSFORMS)}."
        ) from None
