"""Xception trained with a semi-hard triplet loss, plus a classifier on its embeddings.

The metric-learning detector of Kumar and Bhavsar, "Detecting Deepfakes with Metric Learning",
IWBF 2020 (arXiv:2003.08645; the issue's "Kumar, Vatsa, Singh" is a misattribution), as the
project issue defines it, on the official repository's Xception pipeline
(github.com/AKASH2907/deepfakes_video_classification):

    crop (B, S, S, 3), pixels 0..255, S = 160 (the README's `-im_size 160`)
    -> x / 127.5 - 1 (Xception's ImageNet normalisation; `pixels="unit"`: x / 255, the script's)
    -> Xception (ImageNet) without top, global average pooling  (B, 2048)
    -> Dense 512, L2-normalised: the embedding                   (B, 512)
    -> Dense 1, sigmoid: P(fake) (label 1 = fake)                (B, 1)

Loss: `triplet_weight * semi_hard_triplet_loss(embedding, margin=1) + BCE(P(fake))`. The triplet
loss is TensorFlow's `triplet_semihard_loss` (FaceNet's online semi-hard mining in the batch,
Schroff et al., CVPR 2015, Sec. 3.2), which the official `train_triplets_semi_hard.py` copies with
`margin = 1.`; here re-written in pure TensorFlow (no tensorflow-addons).

The published system scores with **max voting** over models trained on class-balanced chunks of
the training videos ("7 chunks ... 700 fake and 700 real", README): see
`md_csd_tf.models.ensemble.VoteEnsemble` and `md_csd_tf.training.ensemble.train_ensemble`.

What the official code does differently, and what we chose (also in docs/detectors.md):
- Its triplet network is not on Xception: it maps FaceNet's 512-d face embeddings through an MLP
  (512-256-256-128-64, ReLU, dropout 0.1, no L2 normalisation) with the semi-hard loss (Adam
  3e-4, batch 32), and then fits scikit-learn classifiers (SGD logistic regression, ...) on the
  64-d embeddings. Its Xception (ImageNet, GAP, Dense 512 ReLU, softmax; Nadam 2e-3, pixels
  x/255, augmentation) is the CNN trained per chunk and max-voted. The issue joins the two: the
  Xception's 512-wide head becomes the triplet embedding. We follow the issue.
- Classifier after the embedding, as published: by default (`classifier_gradient=False`) the BCE
  gradient stops at the embedding, so the embedding is shaped by the triplet loss alone and the
  sigmoid unit is a logistic regression on it (the script's SGD logistic classifier), trained in
  the same `fit`. `classifier_gradient=True` trains both jointly.
- L2 normalisation of the embedding (the TF loss's documented input; the official MLP omits it).
- Optimizer: Adam at 3e-4, the rate of the official triplet training.
- Mining fallback, as TensorFlow's: a pair (anchor, positive) with no negative farther than the
  positive takes the anchor's farthest negative; anchors with no negative in the batch add nothing
  (TensorFlow would divide by the pair count regardless; same value when every anchor has one).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.multi_loss import MultiLossSteps
from md_csd_tf.models.registry import Recipe, register
from md_csd_tf.models.weights import backbone_source

PAPER = (
    "Kumar, Bhavsar, Detecting Deepfakes with Metric Learning, IWBF 2020 (arXiv:2003.08645); "
    "official code github.com/AKASH2907/deepfakes_video_classification: README (Xception "
    "ImageNet, 22M params, -im_size 160, 50 epochs, EarlyStopping patience 10, 7 balanced chunks, "
    "max voting), train_triplets_semi_hard.py (semi-hard triplet, margin 1, Adam 3e-4, batch 32)"
)


# -- the loss ----------------------------------------------------------------------------------


def pairwise_squared_distances(embeddings: tf.Tensor) -> tf.Tensor:
    """Squared Euclidean distances `(B, B)` between rows, exactly 0 on the diagonal.

    Written as |a|^2 - 2 a.b + |b|^2 (one matrix product); round-off can make it slightly
    negative, so it is clamped at 0.
    """
    embeddings = tf.cast(embeddings, tf.float32)
    squares = tf.reduce_sum(tf.square(embeddings), axis=1)
    distances = squares[:, None] - 2.0 * tf.matmul(embeddings, embeddings, transpose_b=True)
    distances = tf.maximum(distances + squares[None, :], 0.0)
    return tf.linalg.set_diag(distances, tf.zeros_like(squares))


def semi_hard_triplet_loss(labels, embeddings, margin: float = 1.0) -> tf.Tensor:
    """FaceNet's triplet loss with online semi-hard negative mining inside the batch.

    For every anchor `a` and positive `p` (same label, `p != a`), the negative is the closest
    one (other label) that is still farther from `a` than `p` is (semi-hard:
    `d(a, p) < d(a, n)`); if no negative is that far, the farthest negative of `a`. Each pair
    costs `max(0, d(a, p) - d(a, n) + margin)` on squared distances; the loss is the mean over
    the pairs. Pure TensorFlow (no tensorflow-addons), float32 whatever the input dtype.

    Args:
        labels: `(B,)` or `(B, 1)` class labels (here 0 real, 1 fake).
        embeddings: `(B, D)`, L2-normalised rows (as FaceNet and the model produce them).
        margin: the margin alpha.

    Returns:
        A float32 scalar; 0 when the batch has no (anchor, positive) pair with a negative.

    Reference:
        Schroff, Kalenichenko, Philbin, FaceNet, CVPR 2015, Eq. 1 and Sec. 3.2 (semi-hard).
    """
    labels = tf.reshape(labels, [-1])
    distances = pairwise_squared_distances(embeddings)
    same = tf.equal(labels[:, None], labels[None, :])
    eye = tf.eye(tf.shape(labels)[0], dtype=tf.bool)
    positive = tf.logical_and(same, tf.logical_not(eye))  # (a, p)
    negative = tf.logical_not(same)  # (a, n)

    d_ap = distances[:, :, None]  # (a, p, 1)
    d_an = distances[:, None, :]  # (a, 1, n)
    farther = tf.logical_and(negative[:, None, :], d_an > d_ap)  # semi-hard candidates (a, p, n)
    big = tf.reduce_max(distances) + 1.0  # a stand-in for "no candidate" in the min
    semi_hard = tf.reduce_min(tf.where(farther, d_an, big), axis=2)  # (a, p)
    has_semi_hard = tf.reduce_any(farther, axis=2)
    farthest = tf.reduce_max(tf.where(negative, distances, -1.0), axis=1)  # (a,)
    chosen = tf.where(has_semi_hard, semi_hard, farthest[:, None])

    has_negative = tf.reduce_any(negative, axis=1)  # anchors with some negative in the batch
    pairs = tf.cast(tf.logical_and(positive, has_negative[:, None]), tf.float32)
    losses = tf.maximum(distances - chosen + margin, 0.0) * pairs
    return tf.math.divide_no_nan(tf.reduce_sum(losses), tf.reduce_sum(pairs))


# -- the model ---------------------------------------------------------------------------------

# Pixel rescalings (scale, offset) applied inside the model to 0..255 inputs.
PIXELS = {"xception": (1.0 / 127.5, -1.0), "unit": (1.0 / 255.0, 0.0)}


def _forward(layers: dict, inputs: dict):
    """The graph from the input dict to `(P(fake), embedding)`."""
    pooled = layers["backbone"](layers["rescale"](inputs["rgb"]))
    embedding = layers["l2"](layers["embedding"](pooled))
    return layers["classifier"](embedding), embedding


@keras.saving.register_keras_serializable(package="md_csd_tf")
class XceptionMetric(MultiLossSteps, DetectorModel):
    """Xception -> 512-d unit embedding -> sigmoid P(fake), trained with triplet + BCE losses.

    Compile with `model.compile(optimizer, loss=None, metrics=...)`: the model supplies its own
    losses in `train_step`/`test_step` (logged as `loss`, `triplet_loss`, `bce_loss`).
    `predict`/`__call__` return P(fake) `(B, 1)`.

    Args:
        image_size: input side (160, the official README's; at least 71).
        embedding_dim: size of the embedding (512).
        margin: triplet margin on squared distances (1.0, the official code's).
        triplet_weight: weight of the triplet loss against the BCE's 1.
        classifier_gradient: False (default, as published: classifier after the embedding):
            the BCE gradient stops at the embedding; True: joint training.
        pixels: "xception" (x/127.5-1, what ImageNet Xception expects, default) or "unit"
            (x/255, the official training script's rescaling).
        crop_size: side of the training crops (None: `image_size`); set by the trainer.
        name, trainable: Keras'.

    Reference:
        Kumar and Bhavsar, IWBF 2020; official `train_triplets_semi_hard.py` (the loss) and
        `01.train_CNN.py` (the Xception).
    """

    detector = "xception_metric"
    config_keys = (
        "image_size", "embedding_dim", "margin", "triplet_weight", "classifier_gradient",
        "pixels", "crop_size",
    )  # fmt: skip
    loss_names = ("loss", "triplet_loss", "bce_loss")

    def __init__(
        self,
        image_size: int = 160,
        embedding_dim: int = 512,
        margin: float = 1.0,
        triplet_weight: float = 1.0,
        classifier_gradient: bool = False,
        pixels: str = "xception",
        crop_size: int | None = None,
        name: str = "xception_metric",
        trainable: bool = True,
        **kwargs,
    ):
        if pixels not in PIXELS:
            raise ValueError(f"pixels must be one of {list(PIXELS)}, got {pixels!r}")
        scale, offset = PIXELS[pixels]
        layers = {
            "rescale": keras.layers.Rescaling(scale, offset=offset, name="xception_pixels"),
            "backbone": keras.applications.Xception(
                include_top=False,
                weights=None,
                input_shape=(image_size, image_size, 3),
                pooling="avg",
                name="xception",
            ),
            "embedding": keras.layers.Dense(embedding_dim, name="embedding"),
            "l2": keras.layers.UnitNormalization(name="embedding_l2"),
            "classifier": keras.layers.Dense(
                1, activation="sigmoid", dtype="float32", name="classifier"
            ),
        }
        inputs = {"rgb": keras.Input((image_size, image_size, 3), name="rgb")}
        probability, _ = _forward(layers, inputs)
        super().__init__(inputs, probability, name=name, trainable=trainable, **kwargs)
        self.image_size = image_size
        self.embedding_dim = embedding_dim
        self.margin = margin
        self.triplet_weight = triplet_weight
        self.classifier_gradient = classifier_gradient
        self.pixels = pixels
        self.crop_size = crop_size
        self.track_losses()

    # -- losses and steps ----------------------------------------------------------------------

    def losses_of(self, x, y, sample_weight=None, training=False):
        """`({"loss": total, "triplet_loss", "bce_loss"}, P(fake))` of one batch."""
        # The functional graph, layer by layer, to get the embedding from the same forward pass.
        layer = self.get_layer
        pooled = layer("xception")(layer("xception_pixels")(x["rgb"]), training=training)
        embedding = layer("embedding_l2")(layer("embedding")(pooled))
        head_input = embedding if self.classifier_gradient else tf.stop_gradient(embedding)
        probability = layer("classifier")(head_input)
        labels = tf.reshape(tf.cast(y, tf.float32), [-1, 1])
        bce = keras.losses.binary_crossentropy(labels, probability)  # (B,)
        if sample_weight is not None:
            weights = tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
            bce = tf.math.divide_no_nan(tf.reduce_sum(bce * weights), tf.reduce_sum(weights))
        else:
            bce = tf.reduce_mean(bce)
        triplet = semi_hard_triplet_loss(labels, embedding, self.margin)
        total = self.triplet_weight * triplet + bce
        return {"loss": total, "triplet_loss": triplet, "bce_loss": bce}, probability

    # -- the contract --------------------------------------------------------------------------

    def embedding_model(self) -> keras.Model:
        """A model from the same inputs to the L2-normalised embedding `(B, embedding_dim)`."""
        return keras.Model(self.inputs, self.get_layer("embedding_l2").output)

    def freeze_backbone(self, frozen: bool) -> None:
        """Freezes (or unfreezes) Xception: the README's first scenario fine-tunes the head only."""
        self.get_layer("xception").trainable = not frozen


def build(
    image_size: int = 160, weights=None, crop_size: int | None = None, **options
) -> XceptionMetric:
    """Builds `XceptionMetric`; `weights`: None (random), "imagenet" (Keras' download, as
    published), a Keras Xception weights file without top or a built
    `keras.applications.Xception` (`models.weights.backbone_source`)."""
    model = XceptionMetric(image_size=image_size, crop_size=crop_size, **options)
    if weights is None:
        return model
    source = backbone_source(
        weights,
        lambda w: keras.applications.Xception(
            include_top=False, weights=w, input_shape=(image_size, image_size, 3), pooling="avg"
        ),
        "Xception",
    )
    model.get_layer("xception").set_weights(source.get_weights())
    return model


RECIPE = Recipe(
    paper=PAPER,
    image_size=160,  # README: `train_data_prepare.py -img_size 160`, `train_CNN.py -im_size 160`
    inputs=("rgb",),
    normalisation="RGB x/127.5-1 (Xception; the official script used x/255)",
    loss="model",  # semi-hard triplet (margin 1) on the embedding + BCE of the classifier
    optimizer="adam",
    learning_rate=3e-4,  # train_triplets_semi_hard.py: Adam(lr=3e-4)
    batch_size=32,  # both official scripts; a batch needs both classes for the triplet loss
    epochs=50,  # README: 50 epochs with EarlyStopping(patience=10); we keep the best epoch
    plateau=None,  # no learning-rate schedule in the Adam script
    video_aggregate="vote",  # evaluate_triplets.py: fake when most frame verdicts say so
    ensemble=4,  # FF++ 2880 fake : 720 real -> 4 chunks of 720+720; Celeb-DF: 7 (README)
    min_image_size=71,  # Xception's minimum input
    parameters=21_911_081,
)

LISTING_ORDER = 60  # where `list_detectors()` puts this module's entries

register(
    "xception_metric",
    build,
    RECIPE,
    "Xception + 512-d semi-hard triplet embedding + classifier; max vote of K chunk models",
)
