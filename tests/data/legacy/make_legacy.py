"""Writes the legacy files of this folder with the code of the checkout on PYTHONPATH.

Run once, at commit 02d044e (before the DetectorModel base class), as
`PYTHONPATH=<tree at 02d044e> python make_legacy.py tests/data/legacy`: tiny .keras files,
the scores they give on fixed crops (expected.json) and every detector's serialized config at
71 px (configs.json). Kept to show how they were made; the test never runs it.
"""

import json
import os
import sys

import keras
import numpy as np

from md_csd_tf.data.inputs import model_inputs
from md_csd_tf.models.ensemble import VoteEnsemble, renamed
from md_csd_tf.models.registry import build_detector

out = sys.argv[1]
keras.utils.set_random_seed(0)
models = {
    "meso4_32": build_detector("meso4", image_size=32, weights=None, crop_size=40),
    "mesoinception4_32": build_detector("mesoinception4", image_size=32, weights=None),
    "dual_level_32": build_detector(
        "dual_level", image_size=32, weights=None, clip_frames=2, resnet_stages=1, units=8, layers=1
    ),
}
members = [
    renamed(build_detector("meso4", image_size=32, weights=None), f"member_{i}") for i in range(3)
]
models["vote_meso4_32"] = VoteEnsemble(members)
expected = {}
for name, model in models.items():
    s = model.image_size
    shape = (2, model.clip_frames, s, s, 3) if getattr(model, "clip_frames", None) else (2, s, s, 3)
    crops = np.random.default_rng(1).integers(0, 256, size=shape).astype(np.uint8)
    inputs = model_inputs(model, crops)
    p = model(inputs, training=False).numpy()
    path = os.path.join(out, f"{name}.keras")
    model.save(path)
    expected[name] = {
        "detector": model.detector,
        "input_shape": list(shape),
        "seed": 1,
        "fake_probability": p[:, 0].astype(float).tolist(),
        "size_bytes": os.path.getsize(path),
    }
    print(name, os.path.getsize(path), p[:, 0])
with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1)

from md_csd_tf.models.registry import get_entry, list_detectors  # noqa: E402

configs = {}
for name in list_detectors():
    entry = get_entry(name)
    options = {"image_size": 71, "weights": None}
    if "middle_blocks" in entry.options:
        options["middle_blocks"] = 0
    if entry.recipe.clip_frames:
        options.update(clip_frames=2, resnet_stages=1)
    model = entry.build(**options)
    configs[name] = keras.saving.serialize_keras_object(model)
    print(name, configs[name]["config"])
with open(os.path.join(out, "configs.json"), "w") as f:
    json.dump(configs, f, indent=1, default=list)
