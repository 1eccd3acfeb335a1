"""Rendering real videos: a person's head moving over a synthetic scene.

Each video moves, scales and slightly rotates the head over a panning, smooth random background
under changing light, with a per-video colour cast and sensor noise. The head is a still photo's
(animated as a rigid sprite) or, for real footage, the head of each frame of a clip (so the face
keeps its own speech, blinks and expressions). All global quantities (background, light, colour
cast, noise) are drawn per video and shared by a real video and its fakes, so no global statistic
tells real from fake. Geometry depends only on `VideoParams`, never on who is rendered, which is
what lets a swapped face land exactly where the target face was.

No TensorFlow here: NumPy and OpenCV only.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import cv2
import numpy as np

from md_csd_tf.files import atomic_path
from md_csd_tf.prep.synthetic.media import (
    BUNDLED,
    FPS,
    SPRITE,
    SPRITE_FACE,
    Face,
    head_frames,
)

_BY_KEY = {f.key: f for f in BUNDLED}


@dataclasses.dataclass(frozen=True)
class Identity:
    """One appearance of a person: a face (photo, or clip of a real video) plus fixed variation.

    Attributes:
        photo: the face's key (`Face.key`); a bundled photograph's name ("astronaut",
            "grace_hopper") needs no `face`.
        flip: mirror the head horizontally.
        hue: hue shift in OpenCV hue units (1 unit = 2 degrees).
        saturation: saturation scale.
        face: the face record (fetched media); None for a bundled photograph.
        start: first frame of the clip, for a real video (at `FPS`).
    """

    photo: str
    flip: bool = False
    hue: float = 0.0
    saturation: float = 1.0
    face: Face | None = None
    start: int = 0

    @property
    def media(self) -> Face:
        if self.face is not None:
            return self.face
        if self.photo not in _BY_KEY:
            raise ValueError(f"unknown photo {self.photo!r}; expected one of {sorted(_BY_KEY)}")
        return _BY_KEY[self.photo]

    @property
    def person(self) -> str:
        return self.media.person


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
    # The camera's effective resolution as a fraction of the frame's: the finished video (real
    # or fake) is down- and up-sampled by it. Real footage is blurrier than a photo's head, and a
    # blurry face is what the Deepfakes family looks like; drawn per video and shared with the
    # fakes, this makes "blurry" mean nothing by itself, only a face blurrier than its frame.
    resolution: float = 1.0


# ------------------------------------------------------------------------------------------------
# Identities and video parameters


def sample_identity(rng: np.random.Generator, photo: str | Face, start: int = 0) -> Identity:
    """Draws the fixed variation of one appearance of `photo` (a bundled photo's name, or a Face)."""
    face = photo if isinstance(photo, Face) else None
    return Identity(
        photo=face.key if face else photo,
        flip=bool(rng.integers(2)),
        hue=float(rng.uniform(-4, 4)),
        saturation=float(rng.uniform(0.85, 1.15)),
        face=face,
        start=int(start),
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
        resolution=float(rng.uniform(0.6, 1.0)),  # drawn last: earlier draws keep their values
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


def _tint(identity: Identity, rgb: np.ndarray) -> np.ndarray:
    """The identity's flip, hue and saturation on one uint8 sprite; float32 result."""
    if identity.flip:
        rgb = rgb[:, ::-1]
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + identity.hue) % 180
    hsv[..., 1] = np.clip(hsv[..., 1] * identity.saturation, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _alpha() -> np.ndarray:
    # A soft head-and-shoulders ellipse, so the medium's own background fades into ours.
    alpha = np.zeros((SPRITE, SPRITE), np.float32)
    cv2.ellipse(alpha, (SPRITE // 2, SPRITE // 2 + 12), (104, 122), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(alpha, (0, 0), 7)


@functools.lru_cache(maxsize=64)
def _photo_sprite(identity: Identity) -> np.ndarray:
    return _tint(identity, head_frames(identity.media, 0, 1)[0])[None]


def _sprites(identity: Identity, n_frames: int) -> np.ndarray:
    """float32 RGB sprites (1 for a photo, else n_frames, SPRITE, SPRITE, 3)."""
    if not identity.media.is_video:
        return _photo_sprite(identity)
    heads = head_frames(identity.media, identity.start, n_frames)
    return np.stack([_tint(identity, h) for h in heads])


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
    sprites, alpha = _sprites(identity, params.n_frames), _alpha()
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
        sprite = sprites[min(t, len(sprites) - 1)]
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


def camera(frames: np.ndarray, params: VideoParams) -> np.ndarray:
    """The camera's resolution (`params.resolution`) applied to finished uint8 frames."""
    if params.resolution >= 0.999:
        return frames
    height, width = frames.shape[1:3]
    small = (max(round(width * params.resolution), 1), max(round(height * params.resolution), 1))
    return np.stack([
        cv2.resize(cv2.resize(f, small, interpolation=cv2.INTER_AREA), (width, height),
                   interpolation=cv2.INTER_LINEAR)
        for f in frames
    ])  # fmt: skip


def write_video(path: Path, frames: np.ndarray, quality: int | None = None, fps: int = FPS):
    """Writes RGB frames as an mp4v .mp4, atomically.

    Args:
        path: final file name; ends in .mp4.
        frames: uint8 RGB (T, H, W, 3).
        quality: JPEG quality each frame is re-encoded at before writing (the compression level;
            the mp4v writer has no quality setting of its own), or None to write as is.
        fps: frame rate.
    """
    height, width = frames.shape[1:3]
    # OpenCV picks the container from the extension, so the temporary name keeps ".mp4"; it is
    # hidden, so a killed job leaves nothing that `*.mp4` globs pick up.
    with atomic_path(path, suffix=".mp4") as tmp:
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
