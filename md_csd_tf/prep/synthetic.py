"""A small stand-in dataset in the exact FF++, DFD and Celeb-DF v2 layouts.

Real videos animate two real face photographs that ship inside installed packages
(`skimage.data.astronaut()` and matplotlib's `grace_hopper.jpg`): each video moves, scales and
slightly rotates the face over a panning, smooth random background under changing light, with a
per-video colour cast and sensor noise. Fakes are made FROM the frames of their target real video
(same motion, background, light and noise, so the geometry matches as in FF++) and differ from it
only inside the face box enlarged 1.3x, with an artifact of the kind each FF++ method leaves:

- Deepfakes: the source identity's face at low resolution, colour-mismatched, blended under a
  soft elliptical mask (autoencoder output pasted back);
- Face2Face: the target's own face with time-varying local warps of mouth and eyes plus a slight
  re-render smoothing (expression reenactment);
- FaceSwap: the source face slightly misregistered, colour-mismatched and pasted under a hard
  landmark-hull mask (graphics-based swap);
- NeuralTextures: the mouth region re-rendered: smoothed, resampled at half resolution and
  modulated by a stride-2 checkerboard (transposed-convolution traces in the spectrum).

All global quantities (background, light, colour cast, noise) are drawn per video and shared by a
real video and its fakes, so no global statistic tells real from fake (`tests/test_synthetic.py`
checks this with a classifier). This is data for the demo and the tests, not a benchmark; see
`docs/demo-data.md`.

No TensorFlow here: this module only needs NumPy and OpenCV (and scikit-image / matplotlib for the
two photographs).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import string
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

# Faces in the two photographs, (x0, y0, x1, y1), as dlib's frontal detector reports them
# (upsample 1). Hard-coded so that rendering never depends on the detector; the tests run dlib on
# the rendered frames instead.
PHOTOS = {
    "astronaut": (175, 76, 265, 166),
    "grace_hopper": (180, 139, 366, 325),
}
SPRITE = 240  # side of the canonical head sprite
SPRITE_FACE = 100  # side of the face box inside the sprite; the sprite spans 2.4 face boxes
FF_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures")
DFD_SCENES = (
    "walking_down_hall",
    "talking_angry_couch",
    "kitchen_pan",
    "outside_talking_still_laughing",
    "podium_speech_happy",
    "secret_conversation",
)
# Two quality levels. OpenCV's mp4v writer has no quality knob, so each frame is JPEG re-encoded
# at this quality before writing: light (c23-like) and heavy (c40-like) compression.
QUALITY = {"c23": 90, "c40": 40}
CELEBDF_QUALITY = 90
FPS = 12


@dataclasses.dataclass(frozen=True)
class Identity:
    """One person: a photograph plus fixed per-identity variation.

    Attributes:
        photo: key of `PHOTOS`.
        flip: mirror the photograph horizontally.
        hue: hue shift in OpenCV hue units (1 unit = 2 degrees).
        saturation: saturation scale.
    """

    photo: str
    flip: bool = False
    hue: float = 0.0
    saturation: float = 1.0


@dataclasses.dataclass(frozen=True)
class VideoParams:
    """Everything about a video except who is in it; a fake reuses its target's params.

    Geometry (`face_boxes`) depends only on these, never on the identity, which is what lets a
    swapped face land exactly where the target face was.
    """

    width: int = 320
    height: int = 240
    n_frames: int = 24
    face_px: float = 110.0  # face box side at scale 1
    centre0: tuple[float, float] = (160.0, 120.0)
    centre1: tuple[float, float] = (160.0, 120.0)
    wobble: float = 3.0  # px amplitude of a small periodic head motion
    wobble_phase: float = 0.0
    scale0: float = 1.0
    scale1: float = 1.0
    roll: float = 3.0  # degrees amplitude of in-plane rotation
    roll_phase: float = 0.0
    background_seed: int = 0
    pan: tuple[float, float] = (0.0, 0.0)  # background pan over the video, px
    gain0: float = 1.0
    gain1: float = 1.0
    light_slope: float = 0.1  # strength of a linear light gradient across the frame
    light_angle0: float = 0.0
    light_angle1: float = 0.5
    colour: tuple[float, ...] = (1, 0, 0, 0, 1, 0, 0, 0, 1)  # 3x3 colour cast, row major
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    noise: float = 2.0  # sensor noise std, grey levels
    noise_seed: int = 0


# ------------------------------------------------------------------------------------------------
# Identities and video parameters


def sample_identity(rng: np.random.Generator, photo: str) -> Identity:
    return Identity(
        photo=photo,
        flip=bool(rng.integers(2)),
        hue=float(rng.uniform(-4, 4)),
        saturation=float(rng.uniform(0.85, 1.15)),
    )


def sample_params(
    rng: np.random.Generator, n_frames: int = 24, size: tuple[int, int] = (320, 240)
) -> VideoParams:
    """Draws motion, background, light, colour cast and noise for one real video.

    Args:
        rng: source of randomness (one per video, for determinism).
        n_frames: number of frames.
        size: (width, height) of the frames.

    Returns:
        The parameters. The face box stays inside the frame and its side is kept between about
        0.35 and 0.5 of the frame height, large enough for dlib's detector without upsampling.
    """
    width, height = size
    face_px = height * rng.uniform(0.40, 0.46)
    scale0, scale1 = rng.uniform(0.88, 1.1, size=2)
    # Keep the 1.3x face crop inside the frame at the largest scale and roll.
    half = 0.5 * 1.3 * face_px * max(scale0, scale1) * 1.1

    def centre():
        return (
            float(rng.uniform(half, width - half)),
            float(rng.uniform(half, height - half)),
        )

    cast = np.eye(3) + rng.uniform(-0.07, 0.07, size=(3, 3))
    return VideoParams(
        width=width,
        height=height,
        n_frames=n_frames,
        face_px=float(face_px),
        centre0=centre(),
        centre1=centre(),
        wobble=float(rng.uniform(1, 4)),
        wobble_phase=float(rng.uniform(0, 2 * np.pi)),
        scale0=float(scale0),
        scale1=float(scale1),
        roll=float(rng.uniform(0, 6)),
        roll_phase=float(rng.uniform(0, 2 * np.pi)),
        background_seed=int(rng.integers(2**31)),
        pan=(float(rng.uniform(-20, 20)), float(rng.uniform(-12, 12))),
        gain0=float(rng.uniform(0.8, 1.15)),
        gain1=float(rng.uniform(0.8, 1.15)),
        light_slope=float(rng.uniform(0.0, 0.35)),
        light_angle0=float(rng.uniform(0, 2 * np.pi)),
        light_angle1=float(rng.uniform(0, 2 * np.pi)),
        colour=tuple(float(v) for v in cast.ravel()),
        offset=tuple(float(v) for v in rng.uniform(-12, 12, size=3)),
        noise=float(rng.uniform(1.0, 3.0)),
        noise_seed=int(rng.integers(2**31)),
    )


def _trajectory(params: VideoParams):
    """Per-frame centre (T, 2), scale (T,) and roll in degrees (T,)."""
    t = np.linspace(0.0, 1.0, params.n_frames)
    ease = t * t * (3 - 2 * t)  # smoothstep: the head starts and stops moving gently
    c0, c1 = np.asarray(params.centre0), np.asarray(params.centre1)
    centre = c0 + (c1 - c0) * ease[:, None]
    angle = 2 * np.pi * 1.3 * t + params.wobble_phase
    centre = centre + params.wobble * np.stack([np.sin(angle), np.cos(1.7 * angle)], axis=1)
    scale = params.scale0 + (params.scale1 - params.scale0) * t
    roll = params.roll * np.sin(2 * np.pi * 0.8 * t + params.roll_phase)
    return centre, scale, roll


def face_boxes(params: VideoParams) -> np.ndarray:
    """Face boxes (T, 4) as float (x0, y0, x1, y1), where the photo's dlib box lands per frame."""
    centre, scale, _ = _trajectory(params)
    half = 0.5 * params.face_px * scale
    return np.stack(
        [centre[:, 0] - half, centre[:, 1] - half, centre[:, 0] + half, centre[:, 1] + half],
        axis=1,
    )


# ------------------------------------------------------------------------------------------------
# Rendering real videos


@functools.lru_cache(maxsize=4)
def _photo(name: str) -> np.ndarray:
    if name == "astronaut":
        from skimage import data

        return data.astronaut()[..., :3]
    if name == "grace_hopper":
        import matplotlib.cbook
        import matplotlib.image

        path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
        return np.asarray(matplotlib.image.imread(path))[..., :3].astype(np.uint8)
    raise ValueError(f"unknown photo {name!r}; expected one of {sorted(PHOTOS)}")


@functools.lru_cache(maxsize=64)
def _sprite(identity: Identity) -> tuple[np.ndarray, np.ndarray]:
    """The identity's head as a float32 RGB sprite (S, S, 3) and a soft alpha (S, S)."""
    x0, y0, x1, y1 = PHOTOS[identity.photo]
    side = (x1 - x0) * SPRITE / SPRITE_FACE
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    k = SPRITE / side
    crop = np.array([[k, 0, SPRITE / 2 - k * cx], [0, k, SPRITE / 2 - k * cy]])
    rgb = cv2.warpAffine(
        _photo(identity.photo),
        crop,
        (SPRITE, SPRITE),
        flags=cv2.INTER_AREA,
        borderMode=cv2.BORDER_REFLECT,
    )
    if identity.flip:
        rgb = rgb[:, ::-1]
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + identity.hue) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * identity.saturation, 0, 255)
    rgb = cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)
    # A soft head-and-shoulders ellipse, so the photo's own background fades into ours.
    alpha = np.zeros((SPRITE, SPRITE), np.float32)
    cv2.ellipse(alpha, (SPRITE // 2, SPRITE // 2 + 12), (104, 122), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 7)
    return rgb, alpha


def _background(params: VideoParams) -> np.ndarray:
    """A smooth random colour field with some mid-frequency texture, larger than the frame."""
    rng = np.random.default_rng(params.background_seed)
    margin = 32
    w, h = params.width + 2 * margin, params.height + 2 * margin
    # Muted colours, like walls and furniture: a random mean colour plus smooth blotches.
    mean = rng.uniform(60, 200) + rng.uniform(-30, 30, size=3)
    base = (mean + rng.normal(0, 25, size=(3, 4, 3))).astype(np.float32)
    field = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    texture = rng.normal(0, 1, size=(h // 8, w // 8)).astype(np.float32)
    texture = cv2.resize(texture, (w, h), interpolation=cv2.INTER_CUBIC)
    field += rng.uniform(4, 14) * texture[..., None]
    return np.clip(field, 0, 255)


def render_video(identity: Identity, params: VideoParams) -> np.ndarray:
    """Renders a real video of `identity` moving as `params` says.

    Args:
        identity: who is in the video.
        params: motion, background, light, colour cast and noise (see `sample_params`).

    Returns:
        uint8 RGB frames (T, H, W, 3). The same `params` with another identity gives a video whose
        every pixel outside the head sprite, and whose face geometry, are identical.
    """
    sprite, alpha = _sprite(identity)
    background = _background(params)
    margin = (background.shape[1] - params.width) // 2
    centre, scale, roll = _trajectory(params)
    size = (params.width, params.height)
    ys, xs = np.mgrid[0 : params.height, 0 : params.width].astype(np.float32)
    xs = (xs - params.width / 2) / params.width
    ys = (ys - params.height / 2) / params.width
    cast = np.concatenate(
        [np.asarray(params.colour, np.float32).reshape(3, 3), np.asarray(params.offset)[:, None]],
        axis=1,
    ).astype(np.float32)
    # OpenCV's generator draws the noise three times faster than NumPy's; it is per thread and
    # seeded here, so the noise is still a function of `params` (and the same for a fake's source).
    cv2.setRNGSeed(params.noise_seed)
    noise = np.empty((params.height, params.width, 3), np.float32)
    sigma = (params.noise,) * 3  # a scalar would only set the first channel's deviation
    frames = np.empty((params.n_frames, params.height, params.width, 3), np.uint8)
    for t in range(params.n_frames):
        u = t / max(params.n_frames - 1, 1)
        px = margin + params.pan[0] * (u - 0.5)
        py = margin + params.pan[1] * (u - 0.5)
        shift = np.array([[1, 0, -px], [0, 1, -py]], np.float32)
        frame = cv2.warpAffine(background, shift, size, flags=cv2.INTER_LINEAR)
        k = scale[t] * params.face_px / SPRITE_FACE
        m = cv2.getRotationMatrix2D((SPRITE / 2, SPRITE / 2), float(roll[t]), float(k))
        m[:, 2] += centre[t] - SPRITE / 2
        head = cv2.warpAffine(sprite, m, size, flags=cv2.INTER_LINEAR)
        a = cv2.warpAffine(alpha, m, size, flags=cv2.INTER_LINEAR)[..., None]
        frame = frame.astype(np.float32, copy=False)
        frame += (head - frame) * a
        gain = params.gain0 + (params.gain1 - params.gain0) * u
        angle = params.light_angle0 + (params.light_angle1 - params.light_angle0) * u
        light = gain * (1 + params.light_slope * (np.cos(angle) * xs + np.sin(angle) * ys))
        frame *= light[..., None]
        # cv2.transform applies the 3x4 colour cast per pixel, far faster than a NumPy matmul.
        frame = cv2.transform(frame, cast)
        frame += cv2.randn(noise, (0.0, 0.0, 0.0), sigma)
        frames[t] = np.clip(frame + 0.5, 0, 255).astype(np.uint8)
    return frames


# ------------------------------------------------------------------------------------------------
# Manipulations: each one touches only the face box enlarged 1.3x (the FF++ crop)

# Per-family strengths. Deepfakes-style families differ in the resolution the swapped face is
# generated at (face box side in px), the colour mismatch (max per-channel gain error) and the
# blending feather (fraction of the face width). Celeb-DF's improved synthesis is the subtlest.
_DEEPFAKE_STYLES = {
    "Deepfakes": {"resolution": (44, 60), "colour": 0.08, "feather": 0.035},
    "DeepFakeDetection": {"resolution": (56, 76), "colour": 0.06, "feather": 0.045},
    "Celeb-synthesis": {"resolution": (80, 104), "colour": 0.04, "feather": 0.06},
}
MANIPULATIONS = (*FF_METHODS, "DeepFakeDetection", "Celeb-synthesis")
NEEDS_SOURCE = {"Deepfakes", "FaceSwap", "DeepFakeDetection", "Celeb-synthesis"}


def _region(box: np.ndarray, height: int, width: int, enlarge: float = 1.3):
    """Integer (y0, y1, x0, x1) of the square `enlarge` x box around the box centre, clamped."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = enlarge * max(box[2] - box[0], box[3] - box[1]) / 2
    x0, y0 = max(int(np.floor(cx - half)), 0), max(int(np.floor(cy - half)), 0)
    x1, y1 = min(int(np.ceil(cx + half)), width), min(int(np.ceil(cy + half)), height)
    return y0, y1, x0, x1


def _face_coords(box, y0, x0, shape):
    """Coordinates of the crop's pixels relative to the face box: u, v in [0, 1] inside it."""
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    u = (xs + x0 - box[0]) / (box[2] - box[0])
    v = (ys + y0 - box[1]) / (box[3] - box[1])
    return u, v


def _ellipse(u, v, centre, axes, feather):
    """Soft elliptical mask in face coordinates; `feather` is the edge width in face units."""
    r = np.sqrt(((u - centre[0]) / axes[0]) ** 2 + ((v - centre[1]) / axes[1]) ** 2)
    if feather <= 0:
        return (r <= 1).astype(np.float32)
    edge = feather / min(axes)
    return np.clip((1 + edge / 2 - r) / edge, 0, 1).astype(np.float32)


# A landmark-hull-like polygon (brows, cheeks, jaw) in face-box units, for the hard FaceSwap mask.
_HULL = np.array(
    [
        (0.12, 0.18),
        (0.5, 0.1),
        (0.88, 0.18),
        (0.97, 0.5),
        (0.88, 0.82),
        (0.68, 0.98),
        (0.5, 1.02),
        (0.32, 0.98),
        (0.12, 0.82),
        (0.03, 0.5),
    ],
    np.float32,
)


def _hull_mask(box, y0, x0, shape, feather_px):
    w, h = box[2] - box[0], box[3] - box[1]
    pts = _HULL * np.array([w, h], np.float32) + np.array([box[0] - x0, box[1] - y0])
    mask = np.zeros(shape[:2], np.float32)
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 1.0, cv2.LINE_AA, shift=4)
    if feather_px > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), feather_px)
    return mask


def _expression_warp(crop, u, v, box, mouth, smile, eyes):
    """Locally warps mouth (open/widen) and eyes (squint), as expression transfer does."""
    w, h = box[2] - box[0], box[3] - box[1]
    g_mouth = np.exp(-0.5 * (((u - 0.5) / 0.17) ** 2 + ((v - 0.8) / 0.1) ** 2))
    dy = mouth * h * np.tanh((v - 0.8) / 0.04) * g_mouth
    dx = smile * w * np.tanh((u - 0.5) / 0.06) * g_mouth
    for ex in (0.31, 0.69):
        g_eye = np.exp(-0.5 * (((u - ex) / 0.09) ** 2 + ((v - 0.4) / 0.06) ** 2))
        dy = dy - eyes * h * np.tanh((v - 0.4) / 0.03) * g_eye
    ys, xs = np.mgrid[0 : crop.shape[0], 0 : crop.shape[1]].astype(np.float32)
    return cv2.remap(
        crop,
        xs - dx.astype(np.float32),
        ys - dy.astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


def apply_manipulation(
    method: str,
    target_frames: np.ndarray,
    source_frames: np.ndarray | None,
    boxes: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Makes a fake from a real target video, changing only pixels near the face.

    Args:
        method: one of `MANIPULATIONS` (the four FF++ methods, plus the deepfake styles of DFD
            and Celeb-DF).
        target_frames: uint8 RGB (T, H, W, 3), the real video that is manipulated.
        source_frames: uint8 RGB (T, H, W, 3), the source identity rendered with the target's
            `VideoParams` (so its face sits exactly where the target's is); needed by the
            identity-swap methods (`NEEDS_SOURCE`), ignored by Face2Face and NeuralTextures.
        boxes: (T, 4) face boxes of the target (`face_boxes`).
        rng: per-video randomness of the manipulation (colour mismatch, expression, ...).

    Returns:
        uint8 RGB (T, H, W, 3); equal to `target_frames` outside the 1.3x enlarged face boxes.
    """
    if method not in MANIPULATIONS:
        raise ValueError(f"unknown manipulation {method!r}; expected one of {MANIPULATIONS}")
    if method in NEEDS_SOURCE and source_frames is None:
        raise ValueError(f"{method} swaps identities and needs source_frames")
    n, height, width = target_frames.shape[:3]
    out = target_frames.copy()
    # Per-video choices, drawn once so the artifact is consistent over time, as in real fakes.
    signs = rng.choice([-1.0, 1.0], size=3)
    if method in _DEEPFAKE_STYLES:
        style = _DEEPFAKE_STYLES[method]
        resolution = rng.uniform(*style["resolution"])
        gains = 1 + signs * rng.uniform(0.5, 1.0, size=3) * style["colour"]
        feather = style["feather"]
    elif method == "FaceSwap":
        shift = rng.uniform(-0.03, 0.03, size=2)
        zoom = 1 + rng.uniform(-0.04, 0.04)
        gains = 1 + signs * rng.uniform(0.05, 0.1, size=3)
    elif method in ("Face2Face", "NeuralTextures"):
        amplitude = rng.uniform(0.04, 0.07) if method == "Face2Face" else rng.uniform(0.015, 0.03)
        cycles, phase = rng.uniform(0.8, 1.8), rng.uniform(0, 2 * np.pi)
        smile, eyes = rng.uniform(-0.03, 0.03), rng.uniform(0.0, 0.03)
        checker = rng.uniform(0.03, 0.05)
    for t in range(n):
        box = boxes[t]
        y0, y1, x0, x1 = _region(box, height, width)
        tgt = target_frames[t, y0:y1, x0:x1].astype(np.float32)
        u, v = _face_coords(box, y0, x0, tgt.shape)
        bw = box[2] - box[0]
        if method in _DEEPFAKE_STYLES:
            src = source_frames[t, y0:y1, x0:x1].astype(np.float32)
            k = resolution / bw  # the generator's output resolution, pasted back at frame size
            small = cv2.resize(
                src,
                (max(int(tgt.shape[1] * k), 2), max(int(tgt.shape[0] * k), 2)),
                interpolation=cv2.INTER_AREA,
            )
            fake = cv2.resize(small, tgt.shape[1::-1], interpolation=cv2.INTER_LINEAR) * gains
            mask = _ellipse(u, v, (0.5, 0.56), (0.42, 0.5), feather)
        elif method == "FaceSwap":
            src = source_frames[t, y0:y1, x0:x1].astype(np.float32)
            cx, cy = (box[0] + box[2]) / 2 - x0, (box[1] + box[3]) / 2 - y0
            m = cv2.getRotationMatrix2D((float(cx), float(cy)), 0.0, float(zoom))
            m[:, 2] += shift * bw
            fake = cv2.warpAffine(src, m, tgt.shape[1::-1], borderMode=cv2.BORDER_REFLECT)
            fake = cv2.GaussianBlur(fake, (0, 0), 0.8) * gains  # a smooth rendered texture
            mask = _hull_mask(box, y0, x0, tgt.shape, feather_px=1.0)
        else:
            wave = 0.5 + 0.5 * np.sin(2 * np.pi * cycles * t / max(n - 1, 1) + phase)
            fake = _expression_warp(tgt, u, v, box, amplitude * wave, smile * wave, eyes * wave)
            if method == "Face2Face":
                fake = cv2.GaussianBlur(fake, (0, 0), 0.7)  # re-rendered face is smoother
                mask = _ellipse(u, v, (0.5, 0.56), (0.42, 0.5), 0.06)
            else:
                # Rendered at half resolution and upsampled by a stride-2 transposed conv: block
                # structure plus a checkerboard, fixed on the frame grid, in the mouth region.
                fake = cv2.GaussianBlur(fake, (0, 0), 1.0)
                half = cv2.resize(
                    fake,
                    (max(fake.shape[1] // 2, 1), max(fake.shape[0] // 2, 1)),
                    interpolation=cv2.INTER_AREA,
                )
                fake = cv2.resize(half, tgt.shape[1::-1], interpolation=cv2.INTER_NEAREST)
                ys, xs = np.mgrid[y0:y1, x0:x1]
                board = np.where((xs + ys) % 2 == 0, 1.0, -1.0).astype(np.float32)
                fake = fake * (1 + checker * board)[..., None]
                mask = _ellipse(u, v, (0.5, 0.74), (0.3, 0.22), 0.06)
        blended = tgt * (1 - mask[..., None]) + fake * mask[..., None]
        out[t, y0:y1, x0:x1] = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
    return out


# ------------------------------------------------------------------------------------------------
# Writing the dataset


def _rng(seed: int, *keys: str) -> np.random.Generator:
    """An independent generator per named entity, so outputs do not depend on generation order."""
    return np.random.default_rng([seed, zlib.crc32("|".join(keys).encode())])


def write_video(path: Path, frames: np.ndarray, quality: int | None = None, fps: int = FPS):
    """Writes RGB frames as an mp4v .mp4, atomically (temporary name, then rename).

    Args:
        path: final file name; ends in .mp4.
        frames: uint8 RGB (T, H, W, 3).
        quality: JPEG quality each frame is re-encoded at before writing (the compression level;
            the mp4v writer has no quality setting of its own), or None to write as is.
        fps: frame rate.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The container is chosen from the extension, so the temporary name must end in .mp4; the
    # leading dot keeps it out of `*.mp4` globs if the job is killed half-way.
    tmp = path.with_name(f".{path.stem}.partial{os.getpid()}.mp4")
    height, width = frames.shape[1:3]
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"OpenCV cannot write {tmp} with the mp4v codec")
    try:
        for frame in frames:
            bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)  # RGB everywhere else, BGR only here
            if quality is not None:
                ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
                bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
            writer.write(bgr)
    finally:
        writer.release()
    os.replace(tmp, path)


@dataclasses.dataclass
class _Fake:
    method: str
    source: Identity
    paths: dict[Path, int | None]  # output path -> JPEG quality
    seed_keys: tuple[str, ...]


@dataclasses.dataclass
class _Group:
    """One real target video, where it is written, and the fakes made from it."""

    identity: Identity
    params: VideoParams
    paths: dict[Path, int | None]
    fakes: list[_Fake]


def _write_group(group: _Group, seed: int, overwrite: bool) -> tuple[int, int]:
    """Renders and writes one target and its fakes; returns (written, skipped) file counts."""
    todo = [p for p in group.paths if overwrite or not p.exists()]
    fakes = [f for f in group.fakes if overwrite or not all(p.exists() for p in f.paths)]
    skipped = (
        len(group.paths)
        - len(todo)
        + sum(len(f.paths) for f in group.fakes)
        - sum(len(f.paths) for f in fakes)
    )
    if not todo and not fakes:
        return 0, skipped
    frames = render_video(group.identity, group.params)
    for path in todo:
        write_video(path, frames, group.paths[path])
    boxes = face_boxes(group.params)
    sources: dict[Identity, np.ndarray] = {}
    for fake in fakes:
        source = None
        if fake.method in NEEDS_SOURCE:
            if fake.source not in sources:
                sources[fake.source] = render_video(fake.source, group.params)
            source = sources[fake.source]
        frames_fake = apply_manipulation(
            fake.method, frames, source, boxes, _rng(seed, *fake.seed_keys)
        )
        for path, quality in fake.paths.items():
            write_video(path, frames_fake, quality)
    return len(todo) + sum(len(f.paths) for f in fakes), skipped


def _split_pairs(splits_dir: Path | None) -> dict[str, list[tuple[str, str]]]:
    if splits_dir is None:
        splits_dir = Path(__file__).resolve().parent.parent / "resources" / "ff_splits"
    pairs = {}
    for split in ("train", "val", "test"):
        with open(Path(splits_dir) / f"{split}.json") as f:
            pairs[split] = [(str(a), str(b)) for a, b in json.load(f)]
    return pairs


def pairs_for(videos: int) -> tuple[int, int, int]:
    """(train, val, test) pair counts for `videos` real FF++ videos, about 60/20/20."""
    n = max(videos // 2, 3)
    held = max(round(0.2 * n), 1)
    return n - 2 * held, held, held


def make_demo_dataset(
    out_dir: str | os.PathLike,
    videos: int = 20,
    frames: int = 25,  # DFD and Celeb-DF extraction take 25 frames per video by default
    size: tuple[int, int] = (320, 240),
    seed: int = 0,
    pairs: Sequence[int] | None = None,
    compressions: Sequence[str] = ("c23", "c40"),
    dfd_actors: int = 4,
    dfd_scenes: int = 2,
    celebdf_videos: int = 4,
    splits_dir: str | os.PathLike | None = None,
    workers: int = 1,
    overwrite: bool = False,
) -> dict:
    """Writes the stand-in FF++, DFD and Celeb-DF v2 datasets under `out_dir`.

    Layout (exactly as shipped):
        ffpp/original_sequences/youtube/<c>/videos/<id>.mp4
        ffpp/manipulated_sequences/<Method>/<c>/videos/<target>_<source>.mp4
        dfd/original_sequences/actors/<c>/videos/<actor>__<scene>.mp4
        dfd/manipulated_sequences/DeepFakeDetection/<c>/videos/<t>_<s>__<scene>__<ID8>.mp4
        celebdf/{Celeb-real,YouTube-real,Celeb-synthesis}/*.mp4, celebdf/List_of_testing_videos.txt

    Args:
        out_dir: output root.
        videos: real FF++ videos; split about 60/20/20 into official pairs (`pairs_for`).
        frames: frames per video (12 fps, so about 2 s).
        size: (width, height) of the frames.
        seed: everything is a deterministic function of it.
        pairs: (train, val, test) pair counts; overrides `videos`.
        compressions: quality levels written for FF++ and DFD (keys of `QUALITY`).
        dfd_actors: DFD actors; each has `dfd_scenes` real videos and one fake per real video.
        celebdf_videos: Celeb-real videos (one per celebrity, one fake each); YouTube-real gets
            half as many.
        splits_dir: folder with the official {train,val,test}.json; the packaged copy by default.
        workers: processes (a video group each); 1 renders in this process.
        overwrite: rewrite existing videos; by default they are kept, so a killed run resumes.

    Returns:
        A summary (also written to `out_dir/demo_summary.json`): pairs per split, video counts per
        folder, frames, size, seed, written and skipped file counts and the seconds it took.
    """
    start = time.perf_counter()
    out = Path(out_dir)
    bad = [c for c in compressions if c not in QUALITY]
    if bad:
        raise ValueError(f"unknown compression {bad}; expected some of {sorted(QUALITY)}")
    if dfd_actors < 2 or celebdf_videos < 2:
        raise ValueError("DFD and Celeb-DF stand-ins need at least two identities to swap")
    counts = tuple(pairs) if pairs is not None else pairs_for(videos)
    if len(counts) != 3 or min(counts) < 1:
        raise ValueError(f"pairs must be three positive counts (train, val, test), got {counts}")
    photos = sorted(PHOTOS)
    width, height = size
    size = (int(width), int(height))
    groups: list[_Group] = []
    summary: dict = {"root": str(out), "frames": frames, "size": list(size), "seed": seed}

    # FF++: pairs drawn from the official splits; the two people of a pair get different photos.
    ffpp = out / "ffpp"
    split_pairs = _split_pairs(splits_dir)
    chosen = {}
    for split, n in zip(("train", "val", "test"), counts, strict=True):
        available = split_pairs[split]
        if n > len(available):
            raise ValueError(f"{n} {split} pairs requested, the split has {len(available)}")
        index = np.sort(_rng(seed, "pairs", split).choice(len(available), n, replace=False))
        chosen[split] = [available[i] for i in index]
    identities, params = {}, {}
    for pair in (p for split in chosen.values() for p in split):
        first = int(_rng(seed, "ffpp-pair", *pair).integers(2))
        for k, vid in enumerate(pair):
            rng = _rng(seed, "ffpp", vid)
            identities[vid] = sample_identity(rng, photos[(first + k) % 2])
            params[vid] = sample_params(rng, frames, size)
    for pair in (p for split in chosen.values() for p in split):
        for target, source in (pair, pair[::-1]):
            real = {
                ffpp / f"original_sequences/youtube/{c}/videos/{target}.mp4": QUALITY[c]
                for c in compressions
            }
            fakes = [
                _Fake(
                    method,
                    identities[source],
                    {
                        ffpp
                        / f"manipulated_sequences/{method}/{c}/videos/{target}_{source}.mp4": QUALITY[
                            c
                        ]
                        for c in compressions
                    },
                    ("ffpp-fake", method, target, source),
                )
                for method in FF_METHODS
            ]
            groups.append(_Group(identities[target], params[target], real, fakes))
    summary["ffpp"] = {
        "pairs": {split: [list(p) for p in ps] for split, ps in chosen.items()},
        "compressions": list(compressions),
        "videos_per_folder": {
            "original": 2 * sum(counts),
            **{m: 2 * sum(counts) for m in FF_METHODS},
        },
    }

    # DFD: actors 01, 02, ... each filmed in a few scenes; one fake per real video, whose source
    # is the next actor with the other photograph.
    dfd = out / "dfd"
    actors = [f"{i + 1:02d}" for i in range(dfd_actors)]
    actor_id = {
        a: sample_identity(_rng(seed, "dfd", a), photos[i % 2]) for i, a in enumerate(actors)
    }
    alphabet = np.array(list(string.ascii_uppercase + string.digits))
    for i, actor in enumerate(actors):
        rng = _rng(seed, "dfd-scenes", actor)
        scenes = rng.choice(len(DFD_SCENES), min(dfd_scenes, len(DFD_SCENES)), replace=False)
        source = actors[(i + 1) % dfd_actors]
        if actor_id[source].photo == actor_id[actor].photo:  # odd count: wrap to the other photo
            source = actors[(i + 1 + (i + 1 == dfd_actors)) % dfd_actors]
        for s in sorted(scenes):
            scene = DFD_SCENES[s]
            rng = _rng(seed, "dfd", actor, scene)
            code = "".join(rng.choice(alphabet, 8))
            name = f"{actor}_{source}__{scene}__{code}"
            groups.append(
                _Group(
                    actor_id[actor],
                    sample_params(rng, frames, size),
                    {
                        dfd / f"original_sequences/actors/{c}/videos/{actor}__{scene}.mp4": QUALITY[
                            c
                        ]
                        for c in compressions
                    },
                    [
                        _Fake(
                            "DeepFakeDetection",
                            actor_id[source],
                            {
                                dfd / f"manipulated_sequences/DeepFakeDetection/{c}/videos/"
                                f"{name}.mp4": QUALITY[c]
                                for c in compressions
                            },
                            ("dfd-fake", name),
                        )
                    ],
                )
            )
    n_dfd = dfd_actors * min(dfd_scenes, len(DFD_SCENES))
    summary["dfd"] = {"compressions": list(compressions), "real": n_dfd, "fake": n_dfd}

    # Celeb-DF v2: celebrities id0, id1, ... with one interview each, one fake per interview
    # (id<t>_id<s>_<k>: target t's video k with s's face), a few YouTube-real videos, and the
    # official test list with 1 = real, 0 = fake.
    celeb = out / "celebdf"
    names = [f"id{i}" for i in range(celebdf_videos)]
    celeb_id = {
        n: sample_identity(_rng(seed, "celebdf", n), photos[i % 2]) for i, n in enumerate(names)
    }
    lines = []
    for i, name in enumerate(names):
        source = names[(i + 1) % celebdf_videos]
        if celeb_id[source].photo == celeb_id[name].photo:
            source = names[(i + 1 + (i + 1 == celebdf_videos)) % celebdf_videos]
        real = f"Celeb-real/{name}_0000.mp4"
        fake = f"Celeb-synthesis/{name}_{source}_0000.mp4"
        lines += [f"1 {real}", f"0 {fake}"]
        groups.append(
            _Group(
                celeb_id[name],
                sample_params(_rng(seed, "celebdf", name, "0000"), frames, size),
                {celeb / real: CELEBDF_QUALITY},
                [
                    _Fake(
                        "Celeb-synthesis",
                        celeb_id[source],
                        {celeb / fake: CELEBDF_QUALITY},
                        ("celebdf-fake", name, source),
                    )
                ],
            )
        )
    n_youtube = max(celebdf_videos // 2, 1)
    for k in range(n_youtube):
        rng = _rng(seed, "youtube", str(k))
        real = f"YouTube-real/{k:05d}.mp4"
        lines.append(f"1 {real}")
        groups.append(
            _Group(
                sample_identity(rng, photos[k % 2]),
                sample_params(rng, frames, size),
                {celeb / real: CELEBDF_QUALITY},
                [],
            )
        )
    summary["celebdf"] = {
        "Celeb-real": celebdf_videos,
        "YouTube-real": n_youtube,
        "Celeb-synthesis": celebdf_videos,
    }

    written = skipped = 0
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # "spawn", not the Linux default "fork": forking a parent that has TensorFlow loaded (the
        # test conftest, a notebook) deadlocked the workers. One OpenCV thread per worker, since
        # its own thread pool on top of ours oversubscribes the cores.
        with ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=cv2.setNumThreads,
            initargs=(1,),
        ) as pool:
            jobs = [pool.submit(_write_group, g, seed, overwrite) for g in groups]
            for job in jobs:
                w, s = job.result()
                written, skipped = written + w, skipped + s
    else:
        for group in groups:
            w, s = _write_group(group, seed, overwrite)
            written, skipped = written + w, skipped + s
    # The list is written last (atomically), so its presence means the Celeb-DF videos are there.
    listing = celeb / "List_of_testing_videos.txt"
    listing.parent.mkdir(parents=True, exist_ok=True)
    tmp = listing.with_name(f".{listing.name}.partial")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, listing)

    summary.update(written=written, skipped=skipped, seconds=round(time.perf_counter() - start, 2))
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
