"""Frequency transforms of face crops, in pure TensorFlow (graph- and tf.data-safe).

Every transform takes an image `(H, W, C)` or a batch `(B, H, W, C)` of float pixels (our
pipelines pass 0..255) and returns a tensor of the same shape, so the frequency branch of the
network is shaped exactly like the RGB branch. No NumPy and no `py_function`: these run inside
`tf.data.Dataset.map` in parallel.

Reference: MD-CSDNetwork, Section II.B.2 (DCT spectrum) and Table VI (DWT vs FFT vs DCT).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
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


# -- the same transforms as matrix products, for computing the spectrum inside the model ---------
#
# Every transform above is linear in the pixels before its magnitude/log step, so along each axis
# it is one N x N (or 2N x N) matrix. Applying it as `M_H @ X @ M_W^T` turns the spectrum into
# two batched matmuls, which accelerators run at full speed, and which TFLite and XLA compile
# (tf.signal's DCT/FFT kernels are CPU/GPU-only and not TFLite builtins). The bases are built
# once per (transform, size) in float64 and rounded to float32 once.


def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix D (n x n), float64: D @ v = scipy.fft.dct(v, norm="ortho").

    Row k is `s_k cos(pi (2i + 1) k / 2n)` over samples i. The one home of the DCT basis: the
    in-model spectrum and F3-Net's frequency-aware decomposition both use it.
    """
    k, i = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    basis = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    basis[0] /= np.sqrt(2.0)
    return basis


def _centred_dft_basis(n: int) -> np.ndarray:
    """`[cos; -sin]` rows of the DFT, rows rolled by n // 2 as `log_fft` centres: (2n, n)."""
    k = (np.arange(n) - n // 2) % n  # output row r holds frequency (r - n//2) mod n
    angle = 2 * np.pi * np.outer(k, np.arange(n)) / n
    return np.concatenate([np.cos(angle), -np.sin(angle)])


def _haar_basis(n: int) -> np.ndarray:
    """`[low; high]` Haar analysis rows with `haar_dwt`'s edge repeat for odd n: (2m, n)."""
    m = (n + 1) // 2
    low, high = np.zeros((m, n)), np.zeros((m, n))
    for j in range(m):
        a, b = 2 * j, min(2 * j + 1, n - 1)  # an odd side repeats its last sample
        low[j, a] += 1.0
        low[j, b] += 1.0
        high[j, a] += 1.0
        high[j, b] -= 1.0
    return np.concatenate([low, high]) / np.sqrt(2.0)


_BASES = {"dct": dct_matrix, "fft": _centred_dft_basis, "dwt": _haar_basis}


@functools.cache
def transform_basis(name: str, n: int) -> np.ndarray:
    """The float32 matrix that applies transform `name` along an axis of length `n`."""
    if name not in _BASES:
        raise ValueError(f"Unknown frequency transform {name!r}; choose one of {sorted(_BASES)}.")
    return _BASES[name](int(n)).astype(np.float32)


def matmul_spectrum(
    images: tf.Tensor, transform: str = "dct", epsilon: float = DEFAULT_EPSILON
) -> tf.Tensor:
    """`get_transform(transform)(images)` computed as matrix products with the transform basis.

    Equal to the tf.signal path within float32 rounding (the tests check each transform): the
    2-D DCT-II of an H x W channel is `D_H X D_W^T` (Sec. II.B.2's rows-then-columns product);
    the centred FFT magnitude comes from the four real products of `[C; S] X [C; S]^T`; the
    Haar DWT from `[L; H] X [L; H]^T`, its quadrants placed as `haar_dwt` places them. Height and
    width must be static (they size the bases).

    Reference: MD-CSDNetwork, Sec. II.B.2 and Table VI.
    """
    x, single = _channels_first(images)
    height, width = x.shape[-2], x.shape[-1]
    if height is None or width is None:
        raise ValueError(f"matmul_spectrum needs a static height and width, got {images.shape}.")
    rows = tf.constant(transform_basis(transform, height), x.dtype)
    cols = tf.constant(transform_basis(transform, width), x.dtype)
    # (…, C, H, W): transform every row (W axis), then every column (H axis).
    y = tf.matmul(rows, tf.matmul(x, cols, transpose_b=True))
    if transform == "dct":
        out = tf.math.log(tf.abs(y) + epsilon)
    elif transform == "fft":
        # y = [[C X C^T, C X S^T], [S X C^T, S X S^T]]; Re = CXC^T - SXS^T, Im = CXS^T + SXC^T.
        cc, cs = y[..., :height, :width], y[..., :height, width:]
        sc, ss = y[..., height:, :width], y[..., height:, width:]
        out = tf.math.log(tf.sqrt(tf.square(cc - ss) + tf.square(cs + sc)) + epsilon)
    else:
        # y = [[LL, L_H H_W], [H_H L_W, HH]]; haar_dwt lays the H-axis detail out along W
        # (top right) and the W-axis detail along H (bottom left), so the off-diagonal swap.
        mh, mw = (height + 1) // 2, (width + 1) // 2
        ll, vertical = y[..., :mh, :mw], y[..., :mh, mw:]
        horizontal, diagonal = y[..., mh:, :mw], y[..., mh:, mw:]
        top = tf.concat([ll, horizontal], axis=-1)
        bottom = tf.concat([vertical, diagonal], axis=-1)
        out = tf.concat([top, bottom], axis=-2)[..., :height, :width]
    return _channels_last(out, single)
