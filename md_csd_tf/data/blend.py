"""Pseudo-fakes made from real faces: FWA, Face X-ray and self-blended images (SBI).

Each generator is a pure-TensorFlow function of (frame, landmarks, seed) -> (image, mask, label),
so it runs inside `tf.data.Dataset.map` with parallel calls and stateless randomness: the same
seed gives the same pseudo-fake eagerly and in a pipeline, and a new seed per element and epoch
gives new pseudo-fakes every epoch.

Conventions: `frame` is a uint8 `(S, S, 3)` face crop; `landmarks` are the 68 iBUG points
`(68, 2)` as (x, y) pixel coordinates of that frame; `seed` is a stateless seed `[2]` int32.
`mask` is the float32 `(S, S, 1)` weight of the blended-in face in the output (0 outside), so
wherever `mask == 0` the output equals `frame` exactly (the tests check it). `label` is 1.0.

The face region is the polygon of the jaw line (points 0-16) closed over the eyebrows (26-17):
the outline of the 68 points, which is their convex hull up to the dip between the brows.

References:
    FWA: Li & Lyu, "Exposing DeepFake Videos By Detecting Face Warping Artifacts", CVPRW 2019,
        Sec. 3 (resolution mismatch of the warped-back face).
    Face X-ray: Li et al., "Face X-ray for More General Face Forgery Detection", CVPR 2020,
        Sec. 3.3-3.4 (blending with nearest-landmark donors, B = 4 M (1 - M)).
    SBI: Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022,
        Sec. 3 (source-target generator, mask generator, blending ratio).
"""

from __future__ import annotations

import math

import tensorflow as tf

# Jaw 0..16 then the brows from the right end back to the left: a closed outline of the face.
OUTLINE = tuple(range(17)) + tuple(range(26, 16, -1))
# SBI's blend ratios (Sec. 3.3): a fully opaque blend half the time, partial otherwise.
SBI_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
# Masks never leave the outline dilated by this fraction of the crop side: elastic deformation
# and blurring move the edge by at most ~6% of the side, so the clip below rarely bites; it makes
# "the mask lies inside the dilated hull" a guarantee rather than a likelihood.
HULL_MARGIN = 0.08


def _uniform(seed, low=0.0, high=1.0, shape=()):
    return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high)


def polygon_mask(points: tf.Tensor, size: int) -> tf.Tensor:
    """A `(size, size, 1)` float 0/1 mask of the pixels whose centres lie inside a polygon.

    Even-odd rule, vectorised over pixels and edges (no OpenCV, so it runs in tf.data).

    Args:
        points: `(P, 2)` vertices (x, y) in pixels, in order around the polygon.
        size: side of the mask.
    """
    points = tf.cast(points, tf.float32)
    centres = tf.range(size, dtype=tf.float32) + 0.5
    py = centres[:, None, None]
    px = centres[None, :, None]
    x0, y0 = points[:, 0], points[:, 1]
    nxt = tf.roll(points, shift=-1, axis=0)
    x1, y1 = nxt[:, 0], nxt[:, 1]
    straddles = (y0 > py) != (y1 > py)
    dy = tf.where(tf.equal(y1, y0), tf.ones_like(y0), y1 - y0)
    x_cross = x0 + (py - y0) * (x1 - x0) / dy
    crossings = tf.reduce_sum(tf.cast(straddles & (px < x_cross), tf.int32), axis=-1)
    return tf.cast(crossings % 2 == 1, tf.float32)[:, :, None]


def hull_mask(landmarks: tf.Tensor, size: int) -> tf.Tensor:
    """The face outline of 68 landmarks as a `(size, size, 1)` 0/1 mask."""
    return polygon_mask(tf.gather(landmarks, OUTLINE), size)


def dilate(mask: tf.Tensor, pixels: int) -> tf.Tensor:
    """Binary dilation of a `(S, S, 1)` mask by a square of half-side `pixels`.

    A square is a row times a column, so two 1-D max-pools give the same result as one k x k
    pool at 2k instead of k^2 comparisons per pixel: at 299 px (k = 49) the k x k pool took
    ~95 ms of SBI's ~100 ms per pseudo-fake.
    """
    k = 2 * pixels + 1
    rows = tf.nn.max_pool2d(mask[None], (1, k), strides=1, padding="SAME")
    return tf.nn.max_pool2d(rows, (k, 1), strides=1, padding="SAME")[0]


def dilated_hull(landmarks: tf.Tensor, size: int, margin: float = HULL_MARGIN) -> tf.Tensor:
    """The outline mask dilated by `margin` x size: the region a generated mask stays within."""
    return dilate(hull_mask(landmarks, size), max(1, int(round(margin * size))))


def gaussian_blur(image: tf.Tensor, sigma: tf.Tensor, radius: int) -> tf.Tensor:
    """Separable Gaussian blur of a float `(S, S, C)` image; `sigma` may be a random tensor.

    The kernel size (2 * radius + 1) is static so the op traces once; `sigma` only sets the
    weights. Edges are padded by reflection so a border does not darken.
    """
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    sigma = tf.maximum(tf.cast(sigma, tf.float32), 1e-3)
    kernel = tf.exp(-0.5 * tf.square(taps / sigma))
    kernel /= tf.reduce_sum(kernel)
    channels = image.shape[-1]
    padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], "REFLECT")
    rows = tf.tile(kernel[:, None, None, None], [1, 1, channels, 1])
    cols = tf.tile(kernel[None, :, None, None], [1, 1, channels, 1])
    out = tf.nn.depthwise_conv2d(padded, rows, [1, 1, 1, 1], "VALID")
    out = tf.nn.depthwise_conv2d(out, cols, [1, 1, 1, 1], "VALID")
    return out[0]


def bilinear_sample(image: tf.Tensor, x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """`image` (float `(H, W, C)`) read at float pixel coordinates `x`, `y` (each `(H', W')`).

    Coordinates outside the image take the nearest edge pixel. Written with `gather_nd` (no
    tensorflow-addons, which is unmaintained).
    """
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    x = tf.clip_by_value(x, 0.0, tf.cast(width - 1, tf.float32))
    y = tf.clip_by_value(y, 0.0, tf.cast(height - 1, tf.float32))
    x0 = tf.floor(x)
    y0 = tf.floor(y)
    wx = (x - x0)[..., None]
    wy = (y - y0)[..., None]
    x0i = tf.cast(x0, tf.int32)
    y0i = tf.cast(y0, tf.int32)
    x1i = tf.minimum(x0i + 1, width - 1)
    y1i = tf.minimum(y0i + 1, height - 1)

    def at(yi, xi):
        return tf.gather_nd(image, tf.stack([yi, xi], axis=-1))

    top = at(y0i, x0i) * (1 - wx) + at(y0i, x1i) * wx
    bottom = at(y1i, x0i) * (1 - wx) + at(y1i, x1i) * wx
    return top * (1 - wy) + bottom * wy


def _pixel_grid(size: int):
    coords = tf.range(size, dtype=tf.float32)
    y, x = tf.meshgrid(coords, coords, indexing="ij")
    return x, y


def elastic_deform(mask: tf.Tensor, seed: tf.Tensor, amplitude: float, grid: int = 4) -> tf.Tensor:
    """A smooth random warp of a `(S, S, C)` float image (the mask deformation of X-ray/SBI).

    The displacement field is uniform noise on a `grid` x `grid` lattice, resized bilinearly to
    the image (so it is smooth at the scale of a face part), times `amplitude` pixels.
    """
    size = mask.shape[0]
    field = _uniform(seed, -1.0, 1.0, (grid, grid, 2))
    field = tf.image.resize(field[None], (size, size), method="bicubic")[0] * amplitude
    x, y = _pixel_grid(size)
    return bilinear_sample(mask, x + field[..., 0], y + field[..., 1])


def affine_jitter(image: tf.Tensor, seed: tf.Tensor, shift: float, scale: float) -> tf.Tensor:
    """A random small translation (+-`shift` x side) and zoom (1 +- `scale`) about the centre.

    SBI Sec. 3.2 ("the source image is resized and translated") and FWA's imperfect warp-back.
    """
    size = image.shape[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    offset = _uniform(seeds[0], -shift, shift, (2,)) * size
    zoom = _uniform(seeds[1], 1.0 - scale, 1.0 + scale)
    centre = (size - 1) / 2.0
    # Output pixel (x, y) reads input ((x - c) / zoom + c - dx, (y - c) / zoom + c - dy): the
    # projective-transform op's [a0 a1 a2 b0 b1 b2 c0 c1] form. It is the op behind Keras'
    # RandomTranslation/RandomZoom, and cheaper than our gather-based sampler on 3 channels.
    inverse = 1.0 / zoom
    transform = tf.stack([
        inverse, 0.0, centre - centre * inverse - offset[0],
        0.0, inverse, centre - centre * inverse - offset[1],
        0.0, 0.0,
    ])[None]  # fmt: skip
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=tf.cast(transform, tf.float32),
        output_shape=tf.constant([size, size]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )[0]


def _blend(frame: tf.Tensor, source: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """`mask * source + (1 - mask) * frame` as uint8, exactly `frame` where `mask == 0`."""
    frame_f = tf.cast(frame, tf.float32)
    mixed = mask * source + (1.0 - mask) * frame_f
    mixed = tf.cast(tf.clip_by_value(tf.round(mixed), 0.0, 255.0), tf.uint8)
    return tf.where(mask > 0, mixed, frame)


def _soft_mask(
    landmarks, size, seed, deform: float, blur: tuple[float, float], threshold: bool, clip=None
):
    """Hull mask -> elastic deformation -> blur (-> threshold -> blur), clipped to the dilated hull.

    The threshold step is SBI's (Sec. 3.2): blurring then keeping only the pixels above a random
    level shrinks or grows the region smoothly, and a second blur softens its edge.

    The mask is made at a quarter of the side and resized up (bilinear): it is smooth at that
    scale after blurring, and this cuts the cost of the deformation and blurs 16x, which is what
    lets the generators keep up with training (docs/generalisation.md).
    """
    seeds = tf.random.experimental.stateless_split(seed, 5)
    work = max(32, size // 4)
    factor = work / size
    radius = int(math.ceil(3 * blur[1] * work))
    mask = hull_mask(landmarks * factor, work)
    mask = elastic_deform(mask, seeds[0], deform * work)
    mask = gaussian_blur(mask, _uniform(seeds[1], *blur) * work, radius)
    if threshold:
        level = _uniform(seeds[2], 0.2, 0.8)
        mask = tf.cast(mask > level, tf.float32)
        mask = gaussian_blur(mask, _uniform(seeds[3], *blur) * work, radius)
    if work != size:
        mask = tf.image.resize(mask[None], (size, size), method="bilinear")[0]
    # Pixels below 1/255 would change nothing after rounding; zeroing them keeps mask == 0 and
    # "output == frame" the same set of pixels.
    mask = tf.where(mask < 1.0 / 255.0, 0.0, mask)
    return mask * dilated_hull(landmarks if clip is None else clip, size)


def _colour_jitter(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """SBI's colour transforms (Sec. 3.2): RGB shift, hue/saturation, brightness/contrast."""
    seeds = tf.random.experimental.stateless_split(seed, 5)
    image = image + _uniform(seeds[0], -20.0, 20.0, (1, 1, 3))
    unit = tf.clip_by_value(image / 255.0, 0.0, 1.0)
    unit = tf.image.stateless_random_hue(unit, 0.05, seeds[1])
    unit = tf.image.stateless_random_saturation(unit, 0.7, 1.3, seeds[2])
    unit = tf.image.stateless_random_brightness(unit, 0.1, seeds[3])
    unit = tf.image.stateless_random_contrast(unit, 0.9, 1.1, seeds[4])
    return tf.clip_by_value(unit, 0.0, 1.0) * 255.0


def _downscale(image: tf.Tensor, factor: tf.Tensor) -> tf.Tensor:
    size = image.shape[0]
    small = tf.cast(tf.round(size * factor), tf.int32)
    small = tf.image.resize(image[None], tf.stack([small, small]), method="area")
    return tf.image.resize(small, (size, size), method="bilinear")[0]


def _sharpen(image: tf.Tensor) -> tf.Tensor:
    kernel = tf.constant([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, 3, 1])
    padded = tf.pad(image[None], [[0, 0], [1, 1], [1, 1], [0, 0]], "REFLECT")
    return tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")[0]


def _frequency_jitter(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """SBI's frequency transforms (Sec. 3.2): downscale-upscale or sharpen, half each."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    alpha = _uniform(seeds[0], 0.2, 0.5)
    factor = _uniform(seeds[1], 0.25, 0.5)
    # Each branch computes its own result: only the chosen one runs.
    return tf.cond(
        _uniform(seeds[2]) < 0.5,
        lambda: _downscale(image, factor),
        lambda: image + alpha * (_sharpen(image) - image),
    )


def sbi(frame: tf.Tensor, landmarks: tf.Tensor, seed: tf.Tensor):
    """A self-blended image: the frame blended with an altered copy of itself.

    The source (a copy of `frame`) gets colour and frequency changes and a small affine jitter;
    the target is the frame itself. The SBI paper alters source or target at random; altering
    only the source keeps the frame bit-exact outside the mask, so the (real, fake) pair differs
    only where blending happened and nothing global gives the fake away.

    Args:
        frame: uint8 `(S, S, 3)` real crop.
        landmarks: `(68, 2)` float (x, y) pixels.
        seed: stateless seed `[2]`.

    Returns:
        `(image uint8 (S, S, 3), mask float32 (S, S, 1), label 1.0)`.

    Reference: Shiohara & Yamasaki, CVPR 2022, Sec. 3.1-3.3.
    """
    size = frame.shape[0]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    source = tf.cast(frame, tf.float32)
    source = _colour_jitter(source, seeds[0])
    source = _frequency_jitter(source, seeds[1])
    source = affine_jitter(source, seeds[2], shift=0.03, scale=0.05)
    mask = _soft_mask(landmarks, size, seeds[3], deform=0.03, blur=(0.005, 0.02), threshold=True)
    ratios = tf.constant(SBI_RATIOS)
    pick = tf.random.stateless_uniform([], seeds[4], 0, len(SBI_RATIOS), dtype=tf.int32)
    mask = mask * ratios[pick]
    return _blend(frame, source, mask), mask, tf.constant(1.0)


def fwa(frame: tf.Tensor, landmarks: tf.Tensor, seed: tf.Tensor):
    """A face-warping-artifact pseudo-fake: the face at a lower resolution, warped back in.

    The frame is downscaled by a random factor, Gaussian-blurred, upscaled and slightly
    misaligned (the imperfect warp back of a synthesised face), then pasted inside the outline of
    jittered landmarks with a softened edge.

    Returns:
        `(image uint8 (S, S, 3), mask float32 (S, S, 1), label 1.0)`.

    Reference: Li & Lyu, CVPRW 2019, Sec. 3 (scales, 5x5 Gaussian blur, convex-hull shapes).
    """
    size = frame.shape[0]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    face = _downscale(tf.cast(frame, tf.float32), _uniform(seeds[0], 0.2, 0.6))
    face = gaussian_blur(face, _uniform(seeds[1], 0.5, 1.5), radius=2)  # the paper's 5x5 kernel
    face = affine_jitter(face, seeds[2], shift=0.01, scale=0.02)
    jittered = landmarks + tf.random.stateless_normal(tf.shape(landmarks), seeds[3]) * 0.01 * size
    mask = _soft_mask(
        jittered, size, seeds[4], deform=0.0, blur=(0.002, 0.01), threshold=False, clip=landmarks
    )
    return _blend(frame, face, mask), mask, tf.constant(1.0)


def _match_colour(donor: tf.Tensor, target: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Donor pixels with the target's per-channel mean and std inside the mask (X-ray's colour
    correction, Sec. 3.4), so the seam is not a plain colour step."""
    weight = mask / tf.maximum(tf.reduce_sum(mask), 1.0)

    def stats(image):
        mean = tf.reduce_sum(image * weight, axis=[0, 1])
        std = tf.sqrt(tf.reduce_sum(tf.square(image - mean) * weight, axis=[0, 1]) + 1e-6)
        return mean, std

    d_mean, d_std = stats(donor)
    t_mean, t_std = stats(target)
    return tf.clip_by_value((donor - d_mean) / d_std * t_std + t_mean, 0.0, 255.0)


def xray(
    frame: tf.Tensor,
    landmarks: tf.Tensor,
    seed: tf.Tensor,
    donor: tf.Tensor,
):
    """A Face X-ray blend: the face of another real frame (the nearest-landmark donor, chosen by
    `pseudo_fakes.nearest_donors`) blended into `frame` under a deformed, blurred hull mask.

    Returns:
        `(image uint8, mask float32 (S, S, 1), label 1.0, boundary float32 (S, S, 1))`, the
        boundary being the X-ray target `4 M (1 - M)`.

    Reference: Li et al., CVPR 2020, Sec. 3.3 (B = 4 M (1 - M)), 3.4 (mask deformation, random
    blur, colour correction).
    """
    size = frame.shape[0]
    seeds = tf.random.experimental.stateless_split(seed, 2)
    mask = _soft_mask(landmarks, size, seeds[0], deform=0.04, blur=(0.003, 0.02), threshold=False)
    source = _match_colour(tf.cast(donor, tf.float32), tf.cast(frame, tf.float32), mask)
    boundary = 4.0 * mask * (1.0 - mask)
    return _blend(frame, source, mask), mask, tf.constant(1.0), boundary


def recompress_pair(real: tf.Tensor, fake: tf.Tensor, seed: tf.Tensor, quality=(60, 100)):
    """The same random JPEG quality applied to both images of a (real, pseudo-fake) pair, so
    compression traces carry no label (SBI Sec. 3.2's compression, applied to both)."""
    q = tf.random.stateless_uniform([], seed, quality[0], quality[1] + 1, dtype=tf.int32)
    return tf.image.adjust_jpeg_quality(real, q), tf.image.adjust_jpeg_quality(fake, q)


def degrade_pair(real: tf.Tensor, fake: tf.Tensor, seed: tf.Tensor):
    """The same random degradation applied to both images of a (real, pseudo-fake) pair.

    What a camera or a platform does to any face, real or fake: a mirror flip, a change of
    brightness, contrast and gamma, a blur (defocus, motion), a loss of resolution (a small face
    enlarged, a low-resolution stream), sensor noise. Both images get the same draws (the same
    noise pattern included), so the pair still differs only by the blend and no degradation is
    a label; a detector trained on it has seen the blend under each of them. Each step happens
    with its own probability.

    Args:
        real, fake: uint8 `(S, S, 3)`.
        seed: stateless seed `[2]`.

    Returns:
        `(real, fake)`, uint8.
    """
    size = real.shape[0]
    seeds = tf.unstack(tf.random.experimental.stateless_split(seed, 12))
    pair = tf.cast(tf.stack([real, fake]), tf.float32)

    def maybe(index, chance, change, images):
        return tf.cond(_uniform(seeds[index]) < chance, lambda: change(images), lambda: images)

    pair = maybe(0, 0.5, lambda x: x[:, :, ::-1, :], pair)

    def tone(x):
        gain = _uniform(seeds[1], 0.8, 1.2)
        bias = _uniform(seeds[2], -20.0, 20.0)
        gamma = _uniform(seeds[3], 0.8, 1.25)
        x = tf.clip_by_value(x * gain + bias, 0.0, 255.0)
        return 255.0 * tf.pow(x / 255.0, gamma)

    pair = maybe(4, 0.5, tone, pair)

    def blur(x):
        sigma = _uniform(seeds[5], 0.4, 1.2) * size / 128.0  # pixels of a 128 px face crop
        radius = max(1, math.ceil(3 * 1.2 * size / 128.0))
        return tf.stack([gaussian_blur(x[0], sigma, radius), gaussian_blur(x[1], sigma, radius)])

    pair = maybe(6, 0.3, blur, pair)

    def resolution(x):
        factor = _uniform(seeds[7], 0.5, 0.9)
        small = tf.cast(tf.round(factor * size), tf.int32)
        down = tf.image.resize(x, [small, small], method="area")
        return tf.image.resize(down, [size, size], method="bilinear")

    pair = maybe(8, 0.3, resolution, pair)

    def noise(x):
        sigma = _uniform(seeds[10], 1.0, 6.0)
        grain = tf.random.stateless_normal(tf.shape(x)[1:], seeds[11]) * sigma
        return x + grain[None]

    pair = maybe(9, 0.3, noise, pair)
    pair = tf.cast(tf.clip_by_value(tf.round(pair), 0.0, 255.0), tf.uint8)
    return pair[0], pair[1]
