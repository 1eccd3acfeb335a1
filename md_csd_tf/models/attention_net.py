"""The RGB-frequency attention network of the related work, on RECCE's reconstruction learning.

"Attention Network for Deepfake Detection" (public repository, README "Architecture"; it "borrows
heavily" from RECCE: Cao et al., "End-to-End Reconstruction-Classification Learning for Face
Forgery Detection", CVPR 2022). The main alternative to MD-CSD's cross-stitch fusion of RGB and
frequency: the two modalities meet by attention rather than by learned linear mixing.

    crop (B, S, S, 3), pixels 0..255
    -> x / 127.5 - 1, + white noise N(0, noise_std) in training only (RECCE Sec. 3)
    -> Xception entry flow (blocks 1-4, ImageNet)        encoder features (B, h, w, 728)
       |-> decoder: 4 x (upsample 2, conv 3x3), resize to S, conv 1x1, tanh: reconstruction
       |-> 1x1 conv to `dim`: the RGB stream R
       |-> 1x1 conv to `dim` -> FrequencyFilter (FFT2, learnable complex filter, inverse
           FFT2, feed-forward, residual): the frequency stream F
    -> 4 x CrossModalityFusion(R, F): attention of RGB queries over frequency keys/values
       across the h*w positions, 3x3 conv, residual on R
    -> global average pooling: the embedding (B, dim)  -> Dense 1, sigmoid: P(fake)

Losses (RECCE Sec. 3, its weights): BCE + 0.1 * reconstruction (L1 on real faces only: the
network learns to reconstruct the distribution of real faces, so fakes reconstruct badly)
+ 0.1 * metric (on the L2-normalised embeddings: real faces pulled together, fakes pushed
away from them).

Where we chose (also in docs/detectors.md):
- The filter is a trained weight (`add_weight`), initialised to the identity (all ones, so the
  block starts as a pass-through plus its feed-forward); the published code draws it from a
  random normal at every forward pass, so it is never learned and the score is random.
- Encoder: Xception's entry flow (blocks 1-4, stride ~16), RECCE's encoder depth; the
  frequency block and the fusion act on those features, where the spatial grid is still
  fine enough (19 x 19 at 299 px) to carry local frequency artefacts.
- Metric loss: mean over pairs of real faces of (1 - cos) plus mean over (real, fake) pairs of
  max(0, cos): RECCE's one-class view (compact reals, fakes anywhere else); 0 for a pair type
  the batch lacks.
- Fusion width `dim` = 256 (1x1 projections from 728) to keep four 3x3 convolutions at ~0.6M
  parameters each; the README gives no width.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.multi_loss import MultiLossSteps
from md_csd_tf.models.registry import Recipe, register
from md_csd_tf.models.weights import backbone_source

PAPER = (
    "Attention Network for Deepfake Detection (public repository, README: Xception encoder, "
    "reconstruction + metric loss, 2-D FFT frequency filter, 4 stacked cross-modality fusion "
    "blocks); on RECCE: Cao et al., End-to-End Reconstruction-Classification Learning for Face "
    "Forgery Detection, CVPR 2022, Sec. 3 (losses BCE + 0.1 rec + 0.1 metric)"
)


@keras.saving.register_keras_serializable(package="md_csd_tf")
class FrequencyFilter(keras.layers.Layer):
    """2-D FFT over the spatial axes, a learnable complex filter, inverse FFT, feed-forward.

    `y = x + FFN(irfft2(W * rfft2(x)))` with `W` complex `(h, w // 2 + 1, C)`, a trained weight
    (two real tensors); identity at initialisation. The FFT runs in float32 whatever the policy.

    Reference: the README's frequency block ("2DFFT along spatial dimensions", after M2TR and
    GFNet's global filter).
    """

    def __init__(self, hidden: int = 512, **kwargs):
        super().__init__(**kwargs)
        self.hidden = hidden

    def build(self, input_shape):
        _, height, width, channels = input_shape
        self.height, self.width = int(height), int(width)
        shape = (self.height, self.width // 2 + 1, int(channels))
        self.filter_real = self.add_weight(shape=shape, initializer="ones", name="filter_real")
        self.filter_imag = self.add_weight(shape=shape, initializer="zeros", name="filter_imag")
        self.expand = keras.layers.Dense(self.hidden, activation="gelu", name="ffn_in")
        self.expand.build((None, self.height, self.width, int(channels)))
        self.project = keras.layers.Dense(int(channels), name="ffn_out")
        self.project.build((None, self.height, self.width, self.hidden))

    def call(self, x):
        dtype = x.dtype
        spatial = tf.transpose(tf.cast(x, tf.float32), [0, 3, 1, 2])  # FFT acts on last 2 axes
        spectrum = tf.signal.rfft2d(spatial)  # (B, C, h, w // 2 + 1)
        weight = tf.complex(
            tf.cast(self.filter_real, tf.float32), tf.cast(self.filter_imag, tf.float32)
        )
        filtered = spectrum * tf.transpose(weight, [2, 0, 1])[None]
        back = tf.signal.irfft2d(filtered, fft_length=[self.height, self.width])
        back = tf.cast(tf.transpose(back, [0, 2, 3, 1]), dtype)
        return x + self.project(self.expand(back))

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


@keras.saving.register_keras_serializable(package="md_csd_tf")
class CrossModalityFusion(keras.layers.Layer):
    """RGB queries attend over frequency keys and values across spatial positions.

    `R' = R + Conv3x3(softmax(Q K^T / sqrt(d)) V)` with `Q = Conv1x1(R)`, `K, V = Conv1x1(F)`,
    positions flattened to `h * w`. Returns `R'` (same shape as `R`).

    Reference: the README's CMF block (1x1 convolutions on each modality, flattened spatial
    attention, 3x3 convolution with a residual connection).
    """

    def __init__(self, key_dim: int = 64, **kwargs):
        super().__init__(**kwargs)
        self.key_dim = key_dim

    def build(self, input_shape):
        rgb_shape, freq_shape = input_shape
        channels = int(rgb_shape[-1])
        self.query = keras.layers.Conv2D(self.key_dim, 1, name="query")
        self.key = keras.layers.Conv2D(self.key_dim, 1, name="key")
        self.value = keras.layers.Conv2D(channels, 1, name="value")
        self.mix = keras.layers.Conv2D(channels, 3, padding="same", name="mix")
        self.query.build(rgb_shape)
        self.key.build(freq_shape)
        self.value.build(freq_shape)
        self.mix.build(rgb_shape)

    def call(self, inputs):
        rgb, freq = inputs
        shape = tf.shape(rgb)
        q = self.query(rgb)
        q = tf.reshape(q, [shape[0], -1, self.key_dim])
        k = tf.reshape(self.key(freq), [shape[0], -1, self.key_dim])
        v = self.value(freq)
        v = tf.reshape(v, [shape[0], -1, v.shape[-1]])
        scale = tf.cast(self.key_dim, q.dtype) ** -0.5
        attention = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) * scale, axis=-1)
        fused = tf.reshape(tf.matmul(attention, v), shape)
        return rgb + self.mix(fused)

    def get_config(self):
        return {**super().get_config(), "key_dim": self.key_dim}


# -- losses ------------------------------------------------------------------------------------


def real_reconstruction_loss(labels, reconstruction, target) -> tf.Tensor:
    """Mean L1 between reconstruction and input over the real faces (label 0) only; 0 if none.

    Reference: RECCE Sec. 3: reconstruction learning on real faces.
    """
    real = tf.cast(tf.reshape(labels, [-1]) < 0.5, tf.float32)
    per_sample = tf.reduce_mean(
        tf.abs(tf.cast(reconstruction, tf.float32) - tf.cast(target, tf.float32)), axis=[1, 2, 3]
    )
    return tf.math.divide_no_nan(tf.reduce_sum(per_sample * real), tf.reduce_sum(real))


def real_compact_metric_loss(labels, embeddings) -> tf.Tensor:
    """Mean (1 - cos) over pairs of distinct reals + mean max(0, cos) over (real, fake) pairs.

    Reference: RECCE Sec. 3 (metric learning: reals compact, fakes apart); see module notes.
    """
    labels = tf.reshape(labels, [-1])
    unit = tf.math.l2_normalize(tf.cast(embeddings, tf.float32), axis=-1)
    cosine = tf.matmul(unit, unit, transpose_b=True)
    real = tf.cast(labels < 0.5, tf.float32)
    fake = 1.0 - real
    real_pairs = real[:, None] * real[None, :] * (1.0 - tf.eye(tf.shape(labels)[0]))
    mixed_pairs = real[:, None] * fake[None, :]
    pull = tf.math.divide_no_nan(
        tf.reduce_sum((1.0 - cosine) * real_pairs), tf.reduce_sum(real_pairs)
    )
    push = tf.math.divide_no_nan(
        tf.reduce_sum(tf.nn.relu(cosine) * mixed_pairs), tf.reduce_sum(mixed_pairs)
    )
    return pull + push


# -- the model ---------------------------------------------------------------------------------


def _xception(image_size: int, weights=None) -> keras.Model:
    return keras.applications.Xception(
        include_top=False, weights=weights, input_shape=(image_size, image_size, 3)
    )


def _encoder(xception: keras.Model) -> keras.Model:
    """Keras' Xception cut after block 4 (the end of the entry flow)."""
    names = [layer.name for layer in xception.layers]
    # The residual Add after block4_pool ends block 4; its auto-generated name varies.
    block4 = xception.layers[names.index("block4_pool") + 1]
    return keras.Model(xception.input, block4.output, name="xception_entry")


def _layers(image_size: int, dim: int, noise_std: float, blocks: int) -> dict:
    conv = keras.layers.Conv2D
    layers = {
        "xception_pixels": keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="xception_pixels"),
        "noise": keras.layers.GaussianNoise(noise_std, name="noise"),
        "xception_entry": _encoder(_xception(image_size)),
        "rgb_projection": conv(dim, 1, name="rgb_projection"),
        "freq_projection": conv(dim, 1, name="freq_projection"),
        "frequency_filter": FrequencyFilter(2 * dim, name="frequency_filter"),
        "embedding": keras.layers.GlobalAveragePooling2D(name="embedding"),
        "classifier": keras.layers.Dense(
            1, activation="sigmoid", dtype="float32", name="classifier"
        ),
    }
    for i in range(blocks):
        layers[f"fusion_{i}"] = CrossModalityFusion(name=f"fusion_{i}")
    return layers


def _decoder(feature_shape, image_size: int) -> keras.Sequential:
    """Encoder features back to a `[-1, 1]` image: 4 x (upsample 2, conv 3x3), resize, 1x1."""
    stages = []
    for i, width in enumerate((256, 128, 64, 32)):  # halve the width at each 2x upsampling
        stages += [
            keras.layers.UpSampling2D(2, name=f"up_{i}"),
            keras.layers.Conv2D(width, 3, padding="same", activation="relu", name=f"conv_{i}"),
        ]
    return keras.Sequential(
        [
            keras.Input(feature_shape),
            *stages,
            keras.layers.Resizing(image_size, image_size, name="resize"),
            keras.layers.Conv2D(3, 1, activation="tanh", dtype="float32", name="image"),
        ],
        name="decoder",
    )


def _forward(layer, rgb, blocks: int, training=None, reconstruct: bool = False):
    """`(P(fake), reconstruction or None, embedding, clean input)`; `layer(name)` gives a layer
    (or the decoder, when `reconstruct`)."""
    clean = layer("xception_pixels")(rgb)
    noisy = layer("noise")(clean, training=training)
    features = layer("xception_entry")(noisy, training=training)
    reconstruction = layer("decoder")(features) if reconstruct else None
    fused = layer("rgb_projection")(features)
    freq = layer("frequency_filter")(layer("freq_projection")(features))
    for i in range(blocks):
        fused = layer(f"fusion_{i}")([fused, freq])
    embedding = layer("embedding")(fused)
    return layer("classifier")(embedding), reconstruction, embedding, clean


@keras.saving.register_keras_serializable(package="md_csd_tf")
class AttentionNet(MultiLossSteps, DetectorModel):
    """Xception encoder + decoder, frequency filter, 4 cross-modality fusion blocks, classifier.

    Compile with `loss=None` (recipe `loss="model"`): the model adds its losses in
    `train_step`/`test_step`, logged as `loss`, `bce_loss`, `reconstruction_loss`,
    `metric_loss`. `__call__`/`predict` return P(fake) `(B, 1)`.

    Args:
        image_size: input side (299, RECCE's; at least 71).
        dim: width of the fused streams.
        blocks: stacked fusion blocks (4, the README's).
        noise_std: std of the white noise added to the normalised input in training.
        reconstruction_weight / metric_weight: RECCE's 0.1 and 0.1 against the BCE's 1.
        crop_size: side of the training crops (None: `image_size`); set by the trainer.
        name, trainable: Keras'.

    Reference:
        Cao et al., CVPR 2022, Sec. 3 (RECCE); the attention network's README (fusion).
    """

    detector = "attention_net"
    config_keys = (
        "image_size", "dim", "blocks", "noise_std", "reconstruction_weight", "metric_weight",
        "crop_size",
    )  # fmt: skip
    loss_names = ("loss", "bce_loss", "reconstruction_loss", "metric_loss")

    def __init__(
        self,
        image_size: int = 299,
        dim: int = 256,
        blocks: int = 4,
        noise_std: float = 0.1,
        reconstruction_weight: float = 0.1,
        metric_weight: float = 0.1,
        crop_size: int | None = None,
        name: str = "attention_net",
        trainable: bool = True,
        **kwargs,
    ):
        layers = _layers(image_size, dim, noise_std, blocks)
        inputs = {"rgb": keras.Input((image_size, image_size, 3), name="rgb")}
        probability, *_ = _forward(layers.__getitem__, inputs["rgb"], blocks)
        super().__init__(inputs, probability, name=name, trainable=trainable, **kwargs)
        self.image_size = image_size
        self.dim = dim
        self.blocks = blocks
        self.noise_std = noise_std
        self.reconstruction_weight = reconstruction_weight
        self.metric_weight = metric_weight
        self.crop_size = crop_size
        # Outside the functional graph (the contract's output is P(fake) alone), tracked as an
        # attribute so `.keras` saving keeps its weights; `losses_of` calls it.
        self.decoder = _decoder(layers["xception_entry"].output.shape[1:], image_size)
        self.track_losses()

    def losses_of(self, x, y, sample_weight=None, training=False):
        """`(dict of losses, P(fake))` of one batch from one forward pass."""
        probability, reconstruction, embedding, clean = _forward(
            self._layer, x["rgb"], self.blocks, training=training, reconstruct=True
        )
        labels = tf.reshape(tf.cast(y, tf.float32), [-1, 1])
        bce = keras.losses.binary_crossentropy(labels, probability)
        if sample_weight is not None:
            weights = tf.reshape(tf.cast(sample_weight, tf.float32), [-1])
            bce = tf.math.divide_no_nan(tf.reduce_sum(bce * weights), tf.reduce_sum(weights))
        else:
            bce = tf.reduce_mean(bce)
        reconstruction_loss = real_reconstruction_loss(labels, reconstruction, clean)
        metric = real_compact_metric_loss(labels, embedding)
        total = bce + self.reconstruction_weight * reconstruction_loss
        total += self.metric_weight * metric
        losses = {
            "loss": total,
            "bce_loss": bce,
            "reconstruction_loss": reconstruction_loss,
            "metric_loss": metric,
        }
        return losses, probability

    def _layer(self, name):
        return self.decoder if name == "decoder" else self.get_layer(name)


def build(
    image_size: int = 299, weights=None, crop_size: int | None = None, **options
) -> AttentionNet:
    """Builds `AttentionNet`; `weights`: None (random), "imagenet" (Keras' Xception download,
    RECCE's initialisation), a Keras Xception weights file without top or a built
    `keras.applications.Xception` (`models.weights.backbone_source`); its entry flow is copied."""
    model = AttentionNet(image_size=image_size, crop_size=crop_size, **options)
    if weights is None:
        return model
    source = backbone_source(weights, lambda w: _xception(image_size, w), "Xception")
    model.get_layer("xception_entry").set_weights(_encoder(source).get_weights())
    return model


RECIPE = Recipe(
    paper=PAPER,
    image_size=299,  # RECCE's input side (Xception's)
    inputs=("rgb",),
    normalisation="RGB x/127.5-1 (Xception), + N(0, 0.1) noise in training",
    loss="model",  # BCE + 0.1 real-only reconstruction + 0.1 metric (RECCE Sec. 3)
    optimizer="adam",
    learning_rate=2e-4,  # our choice: the project's Adam rate (the README gives none)
    batch_size=32,
    epochs=20,
    plateau=(0.2, 3),  # as MD-CSD's, for a like-for-like comparison
    video_aggregate="mean",
    min_image_size=71,  # Xception's minimum input
    parameters=5_936_324,  # at 299 px (the frequency filter's size follows the feature grid)
)

LISTING_ORDER = 70  # where `list_detectors()` puts this module's entries

register(
    "attention_net",
    build,
    RECIPE,
    "RECCE-style Xception encoder-decoder + FFT filter + 4 RGB-frequency attention fusion blocks",
)
