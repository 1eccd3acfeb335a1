"""dual_level (Pu et al., Pattern Recognition 2022): the shallow-encoder option for quick tests
keeps ResNet-50's own first layers and weights, and round-trips."""

import keras
import numpy as np
import pytest

from md_csd_tf.models.dual_level import RESNET_STAGE_ENDS
from md_csd_tf.models.registry import build_detector
from md_csd_tf.models.saving import load_model

SIZE = 32  # ResNet-50's minimum input


@pytest.mark.slow
def test_resnet_stages_keeps_a_prefix_of_resnet50_with_its_weights(tmp_path):
    keras.utils.set_random_seed(0)
    full = keras.applications.ResNet50(include_top=False, weights=None,
                                       input_shape=(SIZE, SIZE, 3))  # fmt: skip
    weights = tmp_path / "resnet50.weights.h5"
    full.save_weights(weights)
    model = build_detector("dual_level", image_size=SIZE, weights=str(weights), clip_frames=2,
                           resnet_stages=1)  # fmt: skip
    encoder = model.get_layer("frames").layer
    names = [layer.name for layer in encoder.layers[1:-1]]  # not the input, not the pooling
    assert names == [layer.name for layer in full.layers[1 : len(names) + 1]]
    assert names[-1] == RESNET_STAGE_ENDS[0] and encoder.output.shape == (None, 256)
    for name in ("conv1_conv", "conv2_block3_3_conv"):
        np.testing.assert_array_equal(encoder.get_layer(name).get_weights()[0],
                                      full.get_layer(name).get_weights()[0])  # fmt: skip

    clips = {"rgb": np.random.default_rng(0).uniform(0, 255, (2, 2, SIZE, SIZE, 3))}
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras", compile=False)
    assert loaded.resnet_stages == 1 and loaded.clip_frames == 2
    np.testing.assert_allclose(loaded(clips), model(clips), atol=1e-6)
    # The default is the published network: all four stages, 2048 features.
    assert build_detector("dual_level", weights=None).resnet_stages == len(RESNET_STAGE_ENDS)
    with pytest.raises(ValueError, match="resnet_stages must be 1 to 4"):
        build_detector("dual_level", image_size=SIZE, weights=None, resnet_stages=5)
