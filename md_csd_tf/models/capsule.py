"""Capsule-Forensics v2: a frozen VGG19 stem, ten primary capsules and dynamic routing.

Reference:
    H. H. Nguyen, J. Yamagishi, I. Echizen, "Use of a Capsule Network to Detect Fake Images and
    Videos", arXiv:1910.12467 (2019), the extended version of "Capsule-Forensics", ICASSP 2019:
    the section on the proposed method (architecture, routing with random noise) and the one on
    experiments (training). The paper's full text was not at hand when this was written, so every
    number here was read from the authors' published v2 code (`model_big.py` for the network,
    `train_binary_ffpp.py` for the recipe, `test_vid_binary_ffpp.py` for video scores) and the
    citations name those files; this module is written from those facts, not copied.

Architecture (image side 300, shapes channels-last):
    pixels 0..255 -> VGG19 pre-processing -> VGG19 block1..block3 up to `block3_pool`
    (ImageNet weights, frozen: the authors keep it out of the optimiser and detach its output),
    (37, 37, 256) -> 10 primary capsules, each
        Conv 3x3 256->64, BN, ReLU, Conv 3x3 64->16, BN, ReLU,
        statistical pooling (mean and unbiased std of each of the 16 maps) -> (16, 2),
        Conv1D 2->8 kernel 5 stride 2 (padding 2), BN, Conv1D 8->1 kernel 3 (padding 1), BN
        -> an 8-D vector;
    the ten vectors (10, 8) -> squash -> dynamic routing (2 iterations, weights W of shape
    (2 out, 10 in, 4, 8), Gaussian noise of std 0.01 added to W and 5 % dropout of the
    predictions in training) -> 2 output capsules of 4 dimensions;
    class probabilities = softmax over the 2 output capsules for each of the 4 dimensions,
    averaged over the dimensions; P(fake) is the probability of class 1 (label 1 = fake,
    the authors' folder `1_deepfakes` etc.).

Recipe: 300x300 inputs, batch 32, Adam lr 5e-4 with betas (0.9, 0.999), 25 epochs, no
augmentation, video score = mean of the frame probabilities. Where we chose (the pixel
normalisation, the loss, the axis of the first squash), see `CapsuleForensics` and
docs/detectors.md.
"""

from __future__ import annotations

import functools

import keras
from keras import layers, ops

from md_csd_tf.models.base import DetectorModel
from md_csd_tf.models.imagenet import IMAGENET_CAFFE_BGR_MEAN, IMAGENET_MEAN, IMAGENET_STD

# VGG19 up to block3_pool, as (block, convolutions, filters); names follow keras.applications so
# the ImageNet weights copy over by layer name.
VGG19_STEM = ((1, 2, 64), (2, 2, 128), (3, 4, 256))

NUM_PRIMARY_CAPSULES = 10
PRIMARY_DIM = 8  # the length after the stride-2 Conv1D over 16 statistics
NUM_CLASSES = 2  # output capsules: 0 = real, 1 = fake
OUTPUT_DIM = 4

PIXEL_NORMALISATIONS = ("caffe", "torch")
PRIMARY_SQUASH = ("capsules", "dimensions")


def squash(x, axis: int = -1, epsilon: float = 1e-7):
    """The capsule non-linearity: `|s|^2 / (1 + |s|^2) * s / |s|` along `axis`.

    Keeps the direction of `s` and maps its length into [0, 1). Reference: Sabour et al. 2017,
    Eq. 1, used by Capsule-Forensics (model_big.py). `epsilon` keeps the gradient finite at s = 0 (the
    authors' code has none).
    """
    squared_norm = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * (squared_norm / (1.0 + squared_norm)) / ops.sqrt(squared_norm + epsilon)


@keras.saving.register_keras_serializable(package="md_csd_tf")
class VGGPreprocess(layers.Layer):
    """Pixels 0..255 (RGB) to what a VGG19 expects; no weights.

    Args:
        mode: "caffe" (keras.applications.vgg19.preprocess_input: RGB->BGR, minus the ImageNet
            mean; what Keras' ImageNet VGG19 weights were trained on) or "torch" (x/255, minus
            mean, over std per RGB channel; what the authors fed torchvision's VGG19).
    """

    def __init__(self, mode: str = "caffe", **kwargs):
        super().__init__(**kwargs)
        if mode not in PIXEL_NORMALISATIONS:
            raise ValueError(f"Unknown mode {mode!r}; choose one of {PIXEL_NORMALISATIONS}.")
        self.mode = mode

    def call(self, x):
        if self.mode == "caffe":  # keras.applications.vgg19.preprocess_input
            bgr_mean = ops.convert_to_tensor(IMAGENET_CAFFE_BGR_MEAN, dtype=x.dtype)
            return ops.flip(x, axis=-1) - bgr_mean
        # torchvision's normalisation, what the authors fed their VGG19 (train_binary_ffpp.py).
        mean = ops.convert_to_tensor(IMAGENET_MEAN, dtype=x.dtype)
        std = ops.convert_to_tensor(IMAGENET_STD, dtype=x.dtype)
        return (x / 255.0 - mean) / std

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="md_csd_tf")
class StatisticalPooling(layers.Layer):
    """Mean and unbiased standard deviation of each feature map over its spatial positions.

    `(B, H, W, C)` -> `(B, C, 2)`: a length-C sequence with two channels (mean, std), ready for
    a channels-last Conv1D. Reference: Capsule-Forensics' "statistical pooling";
    the authors' code (model_big.py) takes torch.std, i.e. the n-1 estimate.
    """

    def call(self, x):
        shape = ops.shape(x)
        flat = ops.reshape(x, (shape[0], shape[1] * shape[2], shape[3]))
        n = ops.cast(shape[1] * shape[2], x.dtype)
        mean = ops.mean(flat, axis=1)
        variance = ops.sum(ops.square(flat - mean[:, None, :]), axis=1) / (n - 1.0)
        # The square root's gradient is infinite at zero variance (a map a dead ReLU left
        # constant, common while a random stem trains): a tiny floor keeps training finite.
        return ops.stack([mean, ops.sqrt(variance + 1e-12)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1], 2)


@keras.saving.register_keras_serializable(package="md_csd_tf")
class Squash(layers.Layer):
    """`squash` as a layer. Args: axis: the axis holding each capsule's vector components."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def call(self, x):
        return squash(x, axis=self.axis)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="md_csd_tf")
class DynamicRouting(layers.Layer):
    """Routing-by-agreement from `(B, in_caps, in_dim)` to `(B, out_caps, out_dim)` capsules.

    Predictions `u[b, j, i] = W[j, i] @ x[b, i]`; logits start at 0; each iteration takes
    `c = softmax(logits over the input capsules)`, `v_j = squash(sum_i c * u_i)`, and, except in
    the last, adds the agreement `u * v` to the logits. As in the authors' v2 code the logits and
    the agreement are kept per output dimension (elementwise `u * v`, not the dot product of
    Sabour et al.), so each dimension of an output capsule routes on its own.

    In training only (Capsule-Forensics v2's random routing, model_big.py): Gaussian noise of std `noise_stddev` is
    added to W, and a fraction `prior_dropout` of the predictions `u` is zeroed (not rescaled,
    as the authors do). At inference the layer is deterministic.

    Args:
        num_capsules: output capsules (2: real, fake).
        capsule_dim: dimension of an output capsule (4).
        iterations: routing iterations (2).
        noise_stddev: std of the noise on W in training (0.01; 0 turns it off).
        prior_dropout: dropout rate on the predictions in training (0.05; 0 turns it off).
        seed: seed of the noise and dropout generator.

    Reference: Nguyen et al. arXiv:1910.12467, dynamic routing with random noise (the
    authors' RoutingLayer in model_big.py); W starts N(0, 1) as in their code.
    """

    def __init__(
        self,
        num_capsules: int = NUM_CLASSES,
        capsule_dim: int = OUTPUT_DIM,
        iterations: int = 2,
        noise_stddev: float = 0.01,
        prior_dropout: float = 0.05,
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {iterations}.")
        self.num_capsules = num_capsules
        self.capsule_dim = capsule_dim
        self.iterations = iterations
        self.noise_stddev = noise_stddev
        self.prior_dropout = prior_dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        _, in_caps, in_dim = input_shape
        self.route_weights = self.add_weight(
            shape=(self.num_capsules, in_caps, self.capsule_dim, in_dim),
            initializer=keras.initializers.RandomNormal(0.0, 1.0, seed=self.seed),
            name="route_weights",
        )

    def call(self, x, training=False):
        weights = ops.cast(self.route_weights, x.dtype)
        if training and self.noise_stddev:
            weights = weights + self.noise_stddev * keras.random.normal(
                ops.shape(weights), dtype=x.dtype, seed=self.seed_generator
            )
        # u[b, j, i, d] = sum_k W[j, i, d, k] x[b, i, k]
        priors = ops.einsum("jidk,bik->bjid", weights, x)
        if training and self.prior_dropout:
            keep = keras.random.uniform(ops.shape(priors), seed=self.seed_generator)
            priors = priors * ops.cast(keep >= self.prior_dropout, priors.dtype)
        logits = ops.zeros_like(priors)
        for iteration in range(self.iterations):
            coupling = ops.softmax(logits, axis=2)
            outputs = squash(ops.sum(coupling * priors, axis=2), axis=-1)  # (b, j, d)
            if iteration < self.iterations - 1:
                logits = logits + priors * outputs[:, :, None, :]
        return outputs

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_capsules, self.capsule_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "num_capsules": self.num_capsules,
            "capsule_dim": self.capsule_dim,
            "iterations": self.iterations,
            "noise_stddev": self.noise_stddev,
            "prior_dropout": self.prior_dropout,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="md_csd_tf")
class CapsuleClassProbabilities(layers.Layer):
    """Output capsules `(B, classes, dim)` to class probabilities `(B, classes)`.

    A softmax over the classes for each capsule dimension, then the mean over the dimensions
    (the authors' `class_`, which their video and frame scores use). Rows sum to 1.
    """

    def call(self, capsules):
        return ops.mean(ops.softmax(capsules, axis=1), axis=2)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1])


@keras.saving.register_keras_serializable(package="md_csd_tf")
class ClassProbability(layers.Layer):
    """Column `index` of `(B, classes)` probabilities, as `(B, 1)`."""

    def __init__(self, index: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.index = index

    def call(self, probabilities):
        return probabilities[:, self.index : self.index + 1]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "index": self.index}


def _primary_capsule(features, index: int, bn_momentum: float):
    """One primary capsule: `(B, H, W, 256)` -> `(B, 1, 8)` (model_big.py's capsule)."""
    # The authors initialise convolutions N(0, 0.02) and BN gammas N(1, 0.02); PyTorch's BN
    # momentum 0.1 and eps 1e-5 are Keras' momentum 0.9 and epsilon 1e-5.
    init = keras.initializers.RandomNormal(0.0, 0.02)
    conv2d = functools.partial(
        layers.Conv2D, kernel_size=3, padding="same", kernel_initializer=init
    )
    norm = functools.partial(
        layers.BatchNormalization,
        momentum=bn_momentum,
        epsilon=1e-5,
        gamma_initializer=keras.initializers.RandomNormal(1.0, 0.02),
    )
    p = f"primary{index}"
    x = conv2d(64, name=f"{p}_conv1")(features)
    x = layers.ReLU(name=f"{p}_relu1")(norm(name=f"{p}_bn1")(x))
    x = conv2d(16, name=f"{p}_conv2")(x)
    x = layers.ReLU(name=f"{p}_relu2")(norm(name=f"{p}_bn2")(x))
    x = StatisticalPooling(name=f"{p}_stats")(x)  # (B, 16, 2)
    # PyTorch pads 2 on both sides; Keras "same" at stride 2 would pad 1 left, 2 right.
    x = layers.ZeroPadding1D(2, name=f"{p}_pad")(x)
    x = layers.Conv1D(8, 5, strides=2, kernel_initializer=init, name=f"{p}_conv1d1")(x)
    x = norm(name=f"{p}_bn3")(x)
    x = layers.Conv1D(1, 3, padding="same", kernel_initializer=init, name=f"{p}_conv1d2")(x)
    x = norm(name=f"{p}_bn4")(x)  # (B, 8, 1)
    return layers.Reshape((1, PRIMARY_DIM), name=f"{p}_vector")(x)


@keras.saving.register_keras_serializable(package="md_csd_tf")
class CapsuleForensics(DetectorModel):
    """Capsule-Forensics v2 (Nguyen et al., arXiv:1910.12467) as a registry detector.

    Takes `{"rgb": (B, S, S, 3) float32 pixels 0..255}` and returns `(B, 1)`: P(fake), the
    fake-class probability of `CapsuleClassProbabilities` (the layer "class_probabilities"
    holds both classes; they sum to 1).

    Args:
        image_size: input side S (300 in the paper; >= 32 for VGG19's pooling).
        iterations: routing iterations (2, model_big.py).
        noise_stddev: std of the routing-weight noise in training (0.01, model_big.py).
        prior_dropout: dropout on the routing predictions in training (0.05, the authors' code).
        primary_squash: how the ten 8-D primary vectors are squashed. "capsules" (default, the
            authors' code: each of the 8 components is squashed across the 10 capsules) or
            "dimensions" (each capsule's 8-D vector, the textbook reading of the paper's text).
        pixel_normalisation: "caffe" (default) or "torch"; see `VGGPreprocess`. We default to
            "caffe" because the only ImageNet VGG19 keras.applications provides was trained on
            caffe-style inputs and the stem is frozen, so it must see the inputs its weights
            expect; the paper's mean/std ("torch") fits torchvision's weights.
        bn_momentum: BatchNormalization momentum of the primary capsules (0.9 = PyTorch's 0.1).
        train_stem: train the VGG19 stem too. False as published (an ImageNet stem, frozen);
            `build` sets it when there are no pretrained weights, since a frozen
            random stem only passes noise on (the stand-in demo and smoke runs, offline).
        seed: seed of the routing noise and dropout.
        crop_size: side of the training crops (None = image_size); set by the trainer.
        **kwargs: passed to `keras.Model` (name, trainable).
    """

    detector = "capsule"
    config_keys = (
        "image_size", "iterations", "noise_stddev", "prior_dropout", "primary_squash",
        "pixel_normalisation", "bn_momentum", "train_stem", "seed", "crop_size",
    )  # fmt: skip

    def __init__(
        self,
        image_size: int = 300,
        iterations: int = 2,
        noise_stddev: float = 0.01,
        prior_dropout: float = 0.05,
        primary_squash: str = "capsules",
        pixel_normalisation: str = "caffe",
        bn_momentum: float = 0.9,
        seed: int | None = None,
        train_stem: bool = False,
        crop_size: int | None = None,
        **kwargs,
    ):
        if image_size < 32:
            raise ValueError(f"VGG19 needs image_size >= 32, got {image_size}.")
        if primary_squash not in PRIMARY_SQUASH:
            raise ValueError(f"Unknown primary_squash {primary_squash!r}; one of {PRIMARY_SQUASH}.")
        inputs = {"rgb": keras.Input((image_size, image_size, 3), name="rgb", dtype="float32")}
        x = VGGPreprocess(pixel_normalisation, name="rgb_preprocess")(inputs["rgb"])
        for block, convs, filters in VGG19_STEM:
            for i in range(1, convs + 1):
                # Frozen, as published: the authors never pass the VGG to the optimiser.
                x = layers.Conv2D(
                    filters,
                    3,
                    padding="same",
                    activation="relu",
                    trainable=train_stem,
                    name=f"block{block}_conv{i}",
                )(x)
            x = layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
        capsules = [_primary_capsule(x, i, bn_momentum) for i in range(NUM_PRIMARY_CAPSULES)]
        primary = layers.Concatenate(axis=1, name="primary_capsules")(capsules)  # (B, 10, 8)
        axis = 1 if primary_squash == "capsules" else -1
        primary = Squash(axis, name="primary_squash")(primary)
        outputs = DynamicRouting(
            NUM_CLASSES,
            OUTPUT_DIM,
            iterations,
            noise_stddev,
            prior_dropout,
            seed=seed,
            name="routing",
        )(primary)
        probabilities = CapsuleClassProbabilities(name="class_probabilities")(outputs)
        output = ClassProbability(1, dtype="float32", name="fake_probability")(probabilities)
        super().__init__(inputs=inputs, outputs=output, **kwargs)

        self.image_size = image_size
        self.iterations = iterations
        self.noise_stddev = noise_stddev
        self.prior_dropout = prior_dropout
        self.primary_squash = primary_squash
        self.pixel_normalisation = pixel_normalisation
        self.bn_momentum = bn_momentum
        self.train_stem = train_stem
        self.seed = seed
        self.crop_size = crop_size


def copy_vgg19_weights(source: keras.Model, model: CapsuleForensics) -> None:
    """Copies the block1..block3 convolutions of a keras.applications VGG19 by layer name."""
    for block, convs, _ in VGG19_STEM:
        for i in range(1, convs + 1):
            name = f"block{block}_conv{i}"
            model.get_layer(name).set_weights(source.get_layer(name).get_weights())


def build(
    image_size: int = 300, weights=None, crop_size: int | None = None, **options
) -> CapsuleForensics:
    """Builds Capsule-Forensics v2 and loads its VGG19 stem.

    Args:
        weights: None (a random stem, which then trains with the rest), "imagenet"
            (keras.applications' download, as in the paper) or a path to a Keras VGG19
            weights file without top (`models.weights.backbone_source`).
        image_size, crop_size, **options: see `CapsuleForensics`.
    """
    options.setdefault("train_stem", weights is None)  # see CapsuleForensics.train_stem
    model = CapsuleForensics(image_size=image_size, crop_size=crop_size, **options)
    if weights is not None:
        source = backbone_source(
            weights,
            lambda w: keras.applications.VGG19(
                include_top=False, weights=w, input_shape=(image_size, image_size, 3)
            ),
            "VGG19",
        )
        copy_vgg19_weights(source, model)
    return model


def class_probability_model(model: CapsuleForensics) -> keras.Model:
    """A model from the same inputs to both class probabilities `(B, 2)` (real, fake)."""
    return keras.Model(model.inputs, model.get_layer("class_probabilities").output)


def published_capsule_loss(capsules, labels):
    """The authors' training loss, for reference (the recipe trains with BCE on P(fake)).

    Their code applies `nn.CrossEntropyLoss` to each of the 4 output dimensions' softmax
    probabilities (so a second softmax is taken inside the cross-entropy) and sums the four.

    Args:
        capsules: output capsules `(B, 2, 4)` (the "routing" layer's output).
        labels: `(B,)` integers, 1 = fake.

    Returns:
        The batch mean of the summed cross-entropies, a scalar.
    """
    probabilities = ops.softmax(capsules, axis=1)  # (B, 2, 4)
    log_p = ops.log_softmax(probabilities, axis=1)
    onehot = ops.one_hot(ops.cast(labels, "int32"), NUM_CLASSES)[:, :, None]
    return ops.mean(-ops.sum(onehot * log_p, axis=(1, 2)))


# -- registry entry ---------------------------------------------------------------------------

from md_csd_tf.models.registry import Recipe, register  # noqa: E402
from md_csd_tf.models.weights import backbone_source  # noqa: E402

RECIPE = Recipe(
    paper=(
        "Nguyen, Yamagishi, Echizen, Capsule-Forensics v2, arXiv:1910.12467 (ICASSP 2019 "
        "extended); numbers from the authors' v2 code: model_big.py (network), "
        "train_binary_ffpp.py (300 px, batch 32, Adam 5e-4, betas 0.9/0.999, 25 epochs), "
        "test_vid_binary_ffpp.py (video = mean of frame probabilities)"
    ),
    image_size=300,
    inputs=("rgb",),
    normalisation="VGG19 caffe (BGR minus ImageNet mean), matching Keras' VGG19 weights",
    loss="bce",  # on P(fake); the authors' 4-dimension loss is `published_capsule_loss`
    optimizer="adam",
    learning_rate=5e-4,
    batch_size=32,
    epochs=25,
    video_aggregate="mean",  # test_vid_binary_ffpp.py: mean of frame probabilities
    parameters=3_898_418,
    cited={"III": "Capsule [39]"},  # where the MD-CSD paper cites it
)

LISTING_ORDER = 30  # where `list_detectors()` puts this module's entries

register(
    "capsule",
    build,
    RECIPE,
    "Capsule-Forensics v2: frozen VGG19 stem, 10 primary capsules, 2-iteration routing",
)
