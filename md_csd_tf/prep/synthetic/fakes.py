"""The fake families: each one changes only the face box enlarged 1.3x (the FF++ crop).

- Deepfakes: the source identity's face at low resolution, colour-mismatched, blended under a
  soft elliptical mask (autoencoder output pasted back);
- Face2Face: the target's own face with time-varying local warps of mouth and eyes plus a slight
  re-render smoothing (expression reenactment);
- FaceSwap: the source face slightly misregistered, colour-mismatched and pasted under a hard
  landmark-hull mask (graphics-based swap);
- NeuralTextures: the mouth region re-rendered: smoothed, resampled at half resolution and
  modulated by a stride-2 checkerboard (transposed-convolution traces in the spectrum).

DFD's and Celeb-DF's deepfakes are the Deepfakes recipe at higher resolution with softer blends.
Swap families take a source of ANOTHER person rendered with the target's motion; expression and
texture families work on the target's own face.
"""

from __future__ import annotations

import cv2
import numpy as np

from md_csd_tf.names import FFPP_METHODS

# Per-family strengths. Deepfakes-style families differ in the resolution the swapped face is
# generated at (face box side in px), the colour mismatch (max per-channel gain error) and the
# blending feather (fraction of the face width). Celeb-DF's improved synthesis is the subtlest.
_DEEPFAKE_STYLES = {
    "Deepfakes": {"resolution": (44, 60), "colour": 0.08, "feather": 0.035},
    "DeepFakeDetection": {"resolution": (56, 76), "colour": 0.06, "feather": 0.045},
    "Celeb-synthesis": {"resolution": (80, 104), "colour": 0.04, "feather": 0.06},
}
# Every stand-in fake family: the four FF++ methods plus the DFD and Celeb-DF deepfake styles.
FAKE_FAMILIES = (*FFPP_METHODS, "DeepFakeDetection", "Celeb-synthesis")
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
        method: one of `FAKE_FAMILIES` (the four FF++ methods, plus the deepfake styles of DFD
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
    if method not in FAKE_FAMILIES:
        raise ValueError(f"unknown manipulation {method!r}; expected one of {FAKE_FAMILIES}")
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
