"""Max voting: K detectors, each trained on its own chunk of the training set, scored by vote.

The published metric-learning system (Kumar et al., IWBF 2020; official README) trains one
Xception per class-balanced chunk of the training videos (7 chunks on Celeb-DF) and combines them
by "max voting", which lifted its accuracy from 96% to 98%. `VoteEnsemble` is that combination as
one Keras model honouring the detector contract, so training-free tools (evaluate, predict,
`md_csd_tf.inference.detector.Detector`) score it like any detector:

    inputs dict -> member_0 .. member_{K-1} (each P(fake), (B, 1))
    -> fraction of members with P(fake) > 0.5                    (B, 1)

The output is what the rest of the package reads as "the probability": above 0.5 means a strict
majority of the members says fake (a tie counts as real). It takes only K + 1 values, so an ROC
AUC computed on it is coarse (K + 1 thresholds); frame-level AUC of a vote is not comparable to
that of a single model's probabilities.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from md_csd_tf.models.base import DetectorModel


@keras.saving.register_keras_serializable(package="md_csd_tf")
class MajorityVote(keras.layers.Layer):
    """Fraction of the input probabilities strictly above `threshold`.

    Args:
        threshold: a member votes fake when its P(fake) > threshold (0.5).

    Call args:
        probabilities: a list of K tensors `(B, 1)`.

    Returns:
        float32 `(B, 1)`: the share of fake votes.
    """

    def __init__(self, threshold: float = 0.5, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.threshold = threshold

    def call(self, probabilities):
        votes = [
            tf.cast(tf.cast(p, tf.float32) > self.threshold, tf.float32) for p in probabilities
        ]
        return tf.add_n(votes) / float(len(votes))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


def _input_specs(member: keras.Model) -> dict[str, tuple]:
    """The member's input dict as `{name: shape without batch}`."""
    structure = member.input  # the dict the detector was built on
    if not isinstance(structure, dict):
        raise ValueError(f"{member.name}: not a detector (its input is not a dict of tensors).")
    return {key: tuple(tensor.shape[1:]) for key, tensor in structure.items()}


# The contract's attributes of an ensemble, all derived from its members: written into its
# config for a reader of the file, never constructor arguments.
DERIVED = ("detector", "ensemble", "image_size", "branches", "transform", "crop_size")


@keras.saving.register_keras_serializable(package="md_csd_tf")
class VoteEnsemble(DetectorModel):
    """K detectors combined by majority vote; output = fraction of members voting fake.

    Args:
        members: K built or loaded detectors with the same inputs (same `branches`,
            `image_size`, `transform`), usually of one registry name; distinct Keras names
            (`load_members` renames them `member_0`, ...).
        threshold: a member votes fake when P(fake) > threshold.
        name, trainable: Keras'.

    Attributes (the detector contract, `DetectorModel`'s, taken from the first member):
        detector: the members' registry name, so `recipe_of` gives their recipe.
        ensemble: K.
        image_size, branches, transform, crop_size, spectrum_in_model, clip_frames: as the
            members'.

    Reference:
        Kumar et al., IWBF 2020, and the official README: 7 chunks, max voting (96% -> 98%).
    """

    config_keys = ("threshold",)
    config_facts = DERIVED

    def __init__(
        self,
        members,
        threshold: float = 0.5,
        name: str = "vote_ensemble",
        trainable: bool = True,
        **kwargs,
    ):
        members = [
            m if isinstance(m, keras.Model) else keras.saving.deserialize_keras_object(m)
            for m in members
        ]
        if not members:
            raise ValueError("VoteEnsemble needs at least one member.")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ValueError(
                f"VoteEnsemble members need distinct names, got {names}; load them with "
                "md_csd_tf.models.saving.load_members."
            )
        specs = _input_specs(members[0])
        for member in members[1:]:
            if _input_specs(member) != specs or any(
                getattr(member, a, None) != getattr(members[0], a, None)
                for a in ("branches", "transform", "image_size")
            ):
                raise ValueError(
                    f"VoteEnsemble members must read the same inputs: {members[0].name} takes "
                    f"{specs}, {member.name} takes {_input_specs(member)}."
                )
        inputs = {key: keras.Input(shape, name=key) for key, shape in specs.items()}
        votes = MajorityVote(threshold, name="majority_vote")([m(inputs) for m in members])
        super().__init__(inputs, votes, name=name, trainable=trainable, **kwargs)
        self.members = members
        self.threshold = threshold

    @property
    def ensemble(self) -> int:
        return len(self.members)

    # Members are detectors, but a member of another class (a test's stand-in) may lack an
    # optional fact: read those with the contract's defaults.
    @property
    def detector(self) -> str:
        return getattr(self.members[0], "detector", "")

    @property
    def image_size(self) -> int:
        return self.members[0].image_size

    @property
    def branches(self) -> tuple[str, ...]:
        return tuple(self.members[0].branches)

    @property
    def transform(self) -> str:
        return getattr(self.members[0], "transform", DetectorModel.transform)

    @property
    def crop_size(self) -> int | None:
        return getattr(self.members[0], "crop_size", None)

    @property
    def spectrum_in_model(self) -> bool:
        return bool(getattr(self.members[0], "spectrum_in_model", False))

    @property
    def clip_frames(self) -> int | None:
        return getattr(self.members[0], "clip_frames", None)

    def get_config(self):
        config = super().get_config()  # threshold, then the derived facts
        config["members"] = [keras.saving.serialize_keras_object(m) for m in self.members]
        return config


def renamed(model: keras.Model, name: str) -> keras.Model:
    """A copy of `model` (same class, config and weights) under another Keras name."""
    config = keras.saving.serialize_keras_object(model)
    config["config"] = {**config["config"], "name": name}
    copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy
