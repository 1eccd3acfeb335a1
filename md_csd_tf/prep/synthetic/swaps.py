"""Classic face swaps on real face crops, for held-out checks of detectors trained on reals only.

The graphics-era swap (the FaceSwap tool of FF++, the "classic" swaps of forensic test sets): the
source face is warped onto the target's landmarks triangle by triangle, its colours are moved to
the target's (mean and spread per channel in Lab, inside the face), and it is blended in, either

- "Swap-Poisson": by Poisson image editing (`cv2.seamlessClone`: the source's gradients inside
  the mask, the target's colours on its border, so no seam of colour is left), or
- "Swap-Alpha": by a feathered alpha mask (a soft seam).

"LowRes" is the face re-synthesis of autoencoder deepfakes: the same warped, colour-moved source
face, generated at a low resolution (its face 48-72 px wide, as a 64-128 px decoder gives it)
and pasted back under the feathered mask. "Expression" is `fakes.apply_manipulation`'s Face2Face
recipe on the target's own face (time-varying warps of mouth and eyes, a re-rendering blur).
Nothing here is used for training; `CORPUS_FAKES` names the families of the corpus's held-out
splits.

Conventions: crops are uint8 RGB `(S, S, 3)`, landmarks the 68 iBUG points `(68, 2)` in crop
pixels (`prep.landmarks`). Reference: Thies et al.'s FaceSwap baseline as described in FF++
(Rössler et al., ICCV 2019, Sec. 3); Pérez et al., "Poisson image editing", SIGGRAPH 2003;
Reinhard et al., "Color transfer between images", 2001.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from md_csd_tf.prep.synthetic.fakes import apply_manipulation

# Families made on the corpus's held-out real crops, and the recipe each follows.
SWAP_FAMILIES = ("Swap-Poisson", "Swap-Alpha")
CORPUS_FAKES = (*SWAP_FAMILIES, "Expression", "LowRes")
# Face box width, in pixels, at which "LowRes" faces are generated.
LOW_RESOLUTION = (48, 72)
# Jaw 0..16, then the brows back from 26 to 17: the face outline (as `data.blend.OUTLINE`).
OUTLINE = tuple(range(17)) + tuple(range(26, 16, -1))


def warp_to(source: np.ndarray, source_points, target_points) -> tuple[np.ndarray, np.ndarray]:
    """The source face moved onto the target's landmarks, piecewise affinely.

    Each pixel inside the triangulation of the target's 68 points takes the source pixel at the
    same barycentric position in the matching source triangle.

    Returns:
        `(warped, inside)`: the warped uint8 image (source pixels where `inside`, zeros
        elsewhere) and the boolean mask of pixels covered by the triangulation.
    """
    size = source.shape[0]
    target = np.asarray(target_points, np.float64)
    src = np.asarray(source_points, np.float64)
    mesh = Delaunay(target)
    ys, xs = np.mgrid[0:size, 0:size]
    pixels = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    simplex = mesh.find_simplex(pixels)
    inside = simplex >= 0
    transform = mesh.transform[simplex[inside]]  # (n, 3, 2): inverse affine, then the offset
    offset = pixels[inside] - transform[:, 2]
    weights = np.einsum("nij,nj->ni", transform[:, :2], offset)
    weights = np.concatenate([weights, 1 - weights.sum(axis=1, keepdims=True)], axis=1)
    corners = src[mesh.simplices[simplex[inside]]]  # (n, 3, 2)
    where = np.einsum("ni,nij->nj", weights, corners)
    map_x = np.full(size * size, -1.0, np.float32)
    map_y = np.full(size * size, -1.0, np.float32)
    map_x[inside], map_y[inside] = where[:, 0], where[:, 1]
    warped = cv2.remap(
        source,
        map_x.reshape(size, size),
        map_y.reshape(size, size),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
    )
    return warped, inside.reshape(size, size)


def outline_mask(points, size: int, erode: int = 0) -> np.ndarray:
    """uint8 0/255 mask of the face outline polygon, eroded by `erode` pixels."""
    mask = np.zeros((size, size), np.uint8)
    polygon = np.round(np.asarray(points, np.float64)[list(OUTLINE)] * 16).astype(np.int32)
    cv2.fillPoly(mask, [polygon], 255, cv2.LINE_AA, shift=4)
    mask = np.where(mask >= 128, 255, 0).astype(np.uint8)
    if erode > 0:
        mask = cv2.erode(mask, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return mask


def transfer_colour(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`source` with the mean and spread of each Lab channel of `target`, measured in `mask`."""
    inside = mask > 0
    src = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    tgt = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    s_mean, s_std = src[inside].mean(0), src[inside].std(0) + 1e-3
    t_mean, t_std = tgt[inside].mean(0), tgt[inside].std(0) + 1e-3
    moved = (src - s_mean) / s_std * t_std + t_mean
    return cv2.cvtColor(np.clip(moved, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def classic_swap(
    target: np.ndarray,
    target_points,
    source: np.ndarray,
    source_points,
    blending: str = "poisson",
    resolution: float | None = None,
) -> np.ndarray:
    """The source's face swapped into the target crop (see the module doc).

    Args:
        target, source: uint8 RGB crops of the same side.
        target_points, source_points: their 68 landmarks in pixels.
        blending: "poisson" (`cv2.seamlessClone`) or "alpha" (feathered mask).
        resolution: generate the swapped face at this face width in pixels (the crop's face box
            is its central 1/1.3), then enlarge it back; None: at the crop's resolution.

    Returns:
        uint8 RGB crop; equal to `target` outside the face outline (alpha: outside its feather).
    """
    size = target.shape[0]
    warped, covered = warp_to(source, source_points, target_points)
    margin = max(1, size // 100)
    mask = outline_mask(target_points, size, erode=margin)
    mask[~covered] = 0
    if mask.max() == 0:  # degenerate landmarks: nothing to swap
        return target.copy()
    coloured = transfer_colour(warped, target, mask)
    if resolution is not None:
        small = max(2, int(round(1.3 * resolution)))  # the crop side whose face box is that wide
        coloured = cv2.resize(coloured, (small, small), interpolation=cv2.INTER_AREA)
        coloured = cv2.resize(coloured, (size, size), interpolation=cv2.INTER_LINEAR)
    if blending == "poisson":
        ys, xs = np.nonzero(mask)
        centre = (int((xs.min() + xs.max() + 1) // 2), int((ys.min() + ys.max() + 1) // 2))
        clone = cv2.seamlessClone(
            cv2.cvtColor(coloured, cv2.COLOR_RGB2BGR),
            cv2.cvtColor(target, cv2.COLOR_RGB2BGR),
            mask.copy(),  # seamlessClone writes into its mask argument
            centre,
            cv2.NORMAL_CLONE,
        )
        # OpenCV solves on the mask's bounding box and also touches pixels just outside the
        # mask there; the swap must change the face only.
        return np.where(mask[..., None] > 0, cv2.cvtColor(clone, cv2.COLOR_BGR2RGB), target)
    if blending == "alpha":
        feather = max(1.0, 0.03 * size)
        alpha = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), feather)
        alpha = np.where(covered, alpha, 0.0)[..., None]
        mixed = target.astype(np.float32) * (1 - alpha) + coloured.astype(np.float32) * alpha
        return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    raise ValueError(f"blending must be 'poisson' or 'alpha', got {blending!r}")


def corpus_fake(
    family: str,
    targets: np.ndarray,
    target_points: np.ndarray,
    source: np.ndarray,
    source_points: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One fake "video" of `family` from the crops of one real medium.

    Args:
        family: one of `CORPUS_FAKES`.
        targets: uint8 `(T, S, S, 3)` real crops of one medium, in order.
        target_points: `(T, 68, 2)` their landmarks in pixels.
        source: uint8 `(S, S, 3)` a crop of another person (swaps and LowRes).
        source_points: `(68, 2)` its landmarks.
        rng: the fake's randomness (Expression and LowRes draw their strengths from it).

    Returns:
        uint8 `(T, S, S, 3)`.
    """
    if family in (*SWAP_FAMILIES, "LowRes"):
        blending = "poisson" if family == "Swap-Poisson" else "alpha"
        # One resolution per video, as one decoder generates every frame.
        resolution = rng.uniform(*LOW_RESOLUTION) if family == "LowRes" else None
        return np.stack([
            classic_swap(t, p, source, source_points, blending, resolution)
            for t, p in zip(targets, target_points, strict=True)
        ])  # fmt: skip
    if family != "Expression":
        raise ValueError(f"unknown corpus fake family {family!r}; expected one of {CORPUS_FAKES}")
    size = targets.shape[1]
    # A crop is the FF++ 1.3x box, so the detector's face box is its central 1/1.3.
    start, end = size * (1 - 1 / 1.3) / 2, size * (1 + 1 / 1.3) / 2
    boxes = np.tile([start, start, end, end], (len(targets), 1))
    return apply_manipulation("Face2Face", targets, None, boxes, rng)
