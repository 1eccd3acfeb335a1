"""The dual-level network of Pu et al.: a video scored from a sequence of frames.

Pu, Mangaokar, Kelly, Bhattacharya, Sundaram, Javed, Wang, Viswanath, "Learning a deep dual-level
network for robust DeepFake detection", Pattern Recognition 130, 2022 (Sec. 3; the authors' public code, README: ResNet + RNN, the AUC loss in
`utils/aucloss.py`):

    clip (B, T, S, S, 3), pixels 0..255, T consecutive face crops of one video
    -> ResNet-50 pixels (caffe: BGR, ImageNet mean subtracted), per frame
    -> ResNet-50 (ImageNet) without top, global average pooling, per frame   (B, T, 2048)
    -> GRU x 3, 256 units, every step returned                               (B, T, 256)
    -> frame head: Dense 1, sigmoid per step: P(frame is fake)               (B, T, 1)
    -> video head: Dense 1, sigmoid on the last step: P(video is fake)      (B, 1)

Loss (Sec. 3): 0.6 x video-level + 0.4 x frame-level, each the paper's AUC loss
(`md_csd_tf.losses.AUCLoss`: 0.5 BCE + 0.5 pairwise squared hinge, gamma 0.15), which keeps the
gradient alive under the real/fake imbalance. `level_loss="bce"` uses plain BCE at both levels.

Where we chose (also in docs/detectors.md):
- T = 8 consecutive frames per clip by default (`clip_frames`); at scoring, a video's clips are
  disjoint runs of T crops and its score the mean of their video-head probabilities.
- The video head reads the last GRU step (the state after the whole clip).
- Frame labels are the manifest's per-frame labels (in FF++ and Celeb-DF every frame of a fake
  video is labelled fake); a plain `(B,)` label (a clip label) is used for every frame.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from md_csd_tf.losses import AUCLoss
from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.imagenet import IMAGENET_CAFFE_BGR_MEAN
from md_csd_tf.models.multi_loss import MultiLossSteps
from md_csd_tf.models.registry import Option, Recipe, register
from md_csd_tf.models.weights import backbone_source

PAPER = (
    "Pu et al., Learning a deep dual-level network for robust DeepFake detection, Pattern "
    "Recognition 130 (2022), Sec. 3 (ResNet-50 + 3-layer GRU 256, frame and video heads, "
    "loss 0.6 video + 0.4 frame, AUC loss alpha 0.5, gamma 0.15, p 2)"
)

LEVEL_LOSSES = ("auc", "bce")


@keras.saving.register_keras_serializable(package="md_csd_tf")
class CaffePixels(keras.layers.Layer):
    """RGB 0..255 to ResNet-50's input ("caffe" mode): channels reversed to BGR, ImageNet mean
    subtracted, no scaling."""

    def call(self, x):
        return x[..., ::-1] - tf.constant(IMAGENET_CAFFE_BGR_MEAN, x.dtype)


@keras.saving.register_keras_serializable(package="md_csd_tf")
class LastStep(keras.layers.Layer):
    """`(B, T, C)` to `(B, C)`: the last step of a sequence."""

    def call(self, x):
        return x[:, -1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


# The last layer of each of ResNet-50's four stages (conv2_x .. conv5_x: 3, 4, 6, 3 bottleneck
# blocks; 256, 512, 1024, 2048 channels), in Keras' layer names.
RESNET_STAGE_ENDS = ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out")


def _resnet(image_size: int, weights=None, stages: int = 4) -> keras.Model:
    """ResNet-50 without top, average pooled; `stages` < 4 keeps its first stages only (the
    same layers and weights up to that stage's end: a shallower stand-in for quick tests)."""
    if stages == len(RESNET_STAGE_ENDS):  # the published network, exactly Keras' own
        return keras.applications.ResNet50(
            include_top=False,
            weights=weights,
            input_shape=(image_size, image_size, 3),
            pooling="avg",
            name="resnet50",
        )
    full = keras.applications.ResNet50(
        include_top=False, weights=weights, input_shape=(image_size, image_size, 3)
    )
    end = full.get_layer(RESNET_STAGE_ENDS[stages - 1]).output
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(end)
    return keras.Model(full.input, pooled, name="resnet50")


@keras.saving.register_keras_serializable(package="md_csd_tf")
class DualLevel(MultiLossSteps, DetectorModel):
    """Per-frame ResNet-50 -> 3-layer GRU -> frame head and video head; reads clips.

    `__call__`/`predict` take `{"rgb": (B, T, S, S, 3)}` and return the video-level P(fake)
    `(B, 1)`; `frame_model()` gives the per-frame probabilities `(B, T, 1)`. Compile with
    `loss=None` (recipe `loss="model"`): `train_step`/`test_step` add the two levels' losses,
    logged as `loss`, `video_loss`, `frame_loss`.

    Args:
        image_size: crop side (224, ResNet-50's ImageNet size).
        clip_frames: T, frames per clip.
        units / layers: GRU width and depth (256 and 3, the paper's).
        resnet_stages: how many of ResNet-50's four stages to keep (4, the paper's; fewer
            gives a shallow frame encoder for quick tests: 1 keeps conv1 and conv2_x, 256
            features).
        video_weight: weight of the video-level loss; the frame level has 1 - it (0.6 / 0.4).
        level_loss: "auc" (the paper's AUC loss at both levels) or "bce".
        crop_size: side of the training crops (None: `image_size`); set by the trainer.
        name, trainable: Keras'.

    Reference:
        Pu et al., Pattern Recognition 2022, Sec. 3.
    """

    detector = "dual_level"
    config_keys = (
        "image_size", "clip_frames", "units", "layers", "video_weight", "level_loss",
        "resnet_stages", "crop_size",
    )  # fmt: skip
    config_attributes = {"layers": "layers_count"}  # Keras' `Model.layers` owns the name
    loss_names = ("loss", "video_loss", "frame_loss")

    def __init__(
        self,
        image_size: int = 224,
        clip_frames: int = 8,
        units: int = 256,
        layers: int = 3,
        video_weight: float = 0.6,
        level_loss: str = "auc",
        resnet_stages: int = 4,
        crop_size: int | None = None,
        name: str = "dual_level",
        trainable: bool = True,
        **kwargs,
    ):
        if level_loss not in LEVEL_LOSSES:
            raise ValueError(f"level_loss must be one of {LEVEL_LOSSES}, got {level_loss!r}")
        if not 1 <= resnet_stages <= len(RESNET_STAGE_ENDS):
            raise ValueError(f"resnet_stages must be 1 to 4, got {resnet_stages}")
        clip = keras.Input((clip_frames, image_size, image_size, 3), name="rgb")
        encoder = _resnet(image_size, stages=resnet_stages)
        features = keras.layers.TimeDistributed(encoder, name="frames")(
            CaffePixels(name="resnet_pixels")(clip)  # elementwise: any leading dims
        )
        sequence = features
        for i in range(layers):
            sequence = keras.layers.GRU(units, return_sequences=True, name=f"gru_{i}")(sequence)
        frame_probability = keras.layers.Dense(
            1, activation="sigmoid", dtype="float32", name="frame_head"
        )(sequence)
        last = LastStep(name="last_step")(sequence)
        video_probability = keras.layers.Dense(
            1, activation="sigmoid", dtype="float32", name="video_head"
        )(last)
        super().__init__({"rgb": clip}, video_probability, name=name, trainable=trainable, **kwargs)
        self.image_size = image_size
        self.clip_frames = clip_frames
        self.units = units
        self.layers_count = layers
        self.video_weight = video_weight
        self.level_loss = level_loss
        self.resnet_stages = resnet_stages
        self.crop_size = crop_size
        self._frame_model = keras.Model({"rgb": clip}, [video_probability, frame_probability])
        self.track_losses()

    def _level_loss(self, labels, probabilities):
        if self.level_loss == "auc":
            return AUCLoss()(labels, probabilities)
        return tf.reduce_mean(keras.losses.binary_crossentropy(labels, probabilities))

    def losses_of(self, x, y, sample_weight=None, training=False):
        """`(losses dict, video P(fake) (B, 1))`; `y` is `{"video", "frame"}` or `(B,)`.
        Sample weights are not used (clip batches carry none)."""
        video, frames = self._frame_model(x, training=training)
        if isinstance(y, dict):
            video_labels, frame_labels = y["video"], y["frame"]
        else:  # one label per clip: every frame carries it
            video_labels = y
            frame_labels = tf.repeat(tf.reshape(y, [-1, 1]), self.clip_frames, axis=1)
        video_labels = tf.reshape(tf.cast(video_labels, tf.float32), [-1, 1])
        frame_labels = tf.reshape(tf.cast(frame_labels, tf.float32), [-1, 1])
        video_loss = self._level_loss(video_labels, video)
        frame_loss = self._level_loss(frame_labels, tf.reshape(frames, [-1, 1]))
        total = self.video_weight * video_loss + (1.0 - self.video_weight) * frame_loss
        return {"loss": total, "video_loss": video_loss, "frame_loss": frame_loss}, video

    def metric_labels(self, y):
        """The compiled metrics score the video head against the clip labels."""
        return y["video"] if isinstance(y, dict) else y

    def frame_model(self) -> keras.Model:
        """The same inputs to `[video P(fake) (B, 1), frame P(fake) (B, T, 1)]`."""
        return self._frame_model


def build(
    image_size: int = 224, weights=None, crop_size: int | None = None, **options
) -> DualLevel:
    """Builds `DualLevel`; `weights`: None (random), "imagenet" (Keras' ResNet-50 download, as
    published) or a Keras ResNet-50 weights file without top (`models.weights.backbone_source`;
    with `resnet_stages` < 4, its first stages are copied)."""
    model = DualLevel(image_size=image_size, crop_size=crop_size, **options)
    if weights is None:
        return model
    source = backbone_source(
        weights, lambda w: _resnet(image_size, w, model.resnet_stages), "ResNet50"
    )
    model.get_layer("frames").layer.set_weights(source.get_weights())
    return model


RECIPE = Recipe(
    paper=PAPER,
    image_size=224,  # ResNet-50's ImageNet input
    inputs=("rgb",),
    normalisation="RGB -> BGR, ImageNet mean subtracted (ResNet-50 caffe)",
    loss="model",  # 0.6 video + 0.4 frame, each the AUC loss (Sec. 3)
    optimizer="adam",
    learning_rate=1e-4,  # our choice for a pretrained ResNet under an RNN (see docs)
    batch_size=8,  # clips of 8 frames: 64 crops per step
    epochs=20,
    plateau=(0.2, 3),
    video_aggregate="mean",  # mean of the clips' video-head probabilities
    clip_frames=8,
    min_image_size=32,  # ResNet-50's minimum input
    parameters=26_148_738,  # ResNet-50 23,587,712 + GRUs + heads; independent of T
)

LISTING_ORDER = 80  # where `list_detectors()` puts this module's entries

register(
    "dual_level",
    build,
    RECIPE,
    "ResNet-50 per frame + 3-layer GRU, frame and video heads, AUC loss (reads clips of T frames)",
    options=(Option("clip_frames", int, 8, (2, None), "frames per clip, T (the recipe's 8)"),),
)
