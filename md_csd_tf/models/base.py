"""The detector contract in code: `DetectorModel`, the base class of every registry detector.

Everything outside `models/` (the trainer, the pipeline, evaluation, predict, export) reads a
detector through the attributes and hooks below, never by probing it with `hasattr`:

    model.detector           registry name ("md_csd", "xception", ...): `recipe_of(model)`
    model.image_size         input side in pixels
    model.crop_size          side of the training crops (None = image_size): predict's cropper
    model.branches           the inputs it takes: ("rgb",), ("freq",) or ("rgb", "freq")
    model.transform          the spectrum the "freq" input carries (read only with a "freq" branch)
    model.spectrum_in_model  it computes its spectrum from the pixels itself (MD-CSD's option)
    model.clip_frames        None (one crop at a time) or T (clips of T consecutive crops)
    model.reads_clips        clip_frames is set
    model.freeze_backbone(frozen) / model.can_freeze_backbone   the head-only training stage
    model.set_frequency_statistics(mean, std)                   the "freq" input's statistics

A subclass builds its functional graph in `__init__`, stores each constructor option as an
attribute of the same name and lists them once in `config_keys`; `get_config` and `from_config`
follow from that list (keras-hub's pattern: `from_config` is `cls(**config)`).

Example (the whole of a detector; docs/detectors.md, "Adding a detector"):
    >>> @keras.saving.register_keras_serializable(package="md_csd_tf")
    ... class Tiny(DetectorModel):
    ...     detector = "tiny"
    ...     config_keys = ("image_size", "crop_size")
    ...     def __init__(self, image_size=64, crop_size=None, **kwargs):
    ...         rgb = keras.Input((image_size, image_size, 3), name="rgb")
    ...         x = keras.layers.GlobalAveragePooling2D()(rgb)
    ...         p = keras.layers.Dense(1, activation="sigmoid", dtype="float32")(x)
    ...         super().__init__(inputs={"rgb": rgb}, outputs=p, **kwargs)
    ...         self.image_size, self.crop_size = image_size, crop_size
"""

from __future__ import annotations

import keras

from md_csd_tf.errors import UserError

# Keys that configs written before this class listed for a reader of the file (the detector's
# name, its branches, the transform of detectors that read no spectrum) but that no constructor
# takes; `from_config` drops them, unless the class takes one as an option (MD-CSD's transform).
LEGACY_KEYS = ("detector", "branches", "transform")


class DetectorModel(keras.Model):
    """A registry detector: a `keras.Model` from the input dict to P(fake) `(batch, 1)`.

    Inputs are a dict: `"rgb"`, face crops as float32 pixels 0..255 (a clip detector:
    `(batch, clip_frames, size, size, 3)`), and `"freq"`, their spectrum by `transform`, for a
    model with a "freq" branch that does not compute it itself. The model normalises pixels
    itself and returns the probability that the face is fake (label 1 = fake), float32.

    Class attributes (a subclass sets those that differ; an instance may set them in __init__):
        detector: the registry name (a property where one class serves several names).
        branches: the inputs it takes.
        transform: the frequency transform of the "freq" input ("dct", "fft" or "dwt");
            the package default for models without a "freq" branch, which never read it.
        clip_frames: None for a detector of single crops; T for one that reads clips.
        spectrum_in_model: the model computes its "freq" input from the "rgb" pixels.
        config_keys: the constructor options, stored by `get_config` under their names.
        config_facts: contract attributes also written into the config for a reader of the
            `.keras` file; not constructor options, dropped again by `from_config`.
        config_attributes: `{option: attribute}` where an option is stored under another
            attribute name (a Keras property already owns the name).

    Instance attributes every constructor sets: `image_size` and `crop_size` (the side of the
    training crops, None = `image_size`; predict cuts faces at it).
    """

    detector: str = ""
    branches: tuple[str, ...] = ("rgb",)
    transform: str = "dct"
    clip_frames: int | None = None
    spectrum_in_model: bool = False
    image_size: int
    crop_size: int | None

    config_keys: tuple[str, ...] = ()
    config_facts: tuple[str, ...] = ("detector", "branches")
    config_attributes: dict[str, str] = {}

    # -- the contract ------------------------------------------------------------------------

    @property
    def reads_clips(self) -> bool:
        """Whether the model reads clips of `clip_frames` consecutive crops of one video."""
        return bool(self.clip_frames)

    @property
    def can_freeze_backbone(self) -> bool:
        """Whether `freeze_backbone` can freeze a pretrained part (a recipe's head-only stage)."""
        return type(self).freeze_backbone is not DetectorModel.freeze_backbone

    def freeze_backbone(self, frozen: bool) -> None:
        """Freezes (or unfreezes) the pretrained backbone, leaving the head trainable.

        The base class has no backbone: unfreezing is a no-op, freezing a `UserError`. Recompile
        after calling it (the trainer does).
        """
        if frozen:
            raise UserError(
                f"{self.detector or type(self).__name__}: has no backbone to freeze, so it cannot "
                "train a head-only stage"
            )

    def set_frequency_statistics(self, mean, std) -> None:
        """Stores the per-channel statistics of the "freq" input measured on training crops.

        Only a model with a "freq" branch reads them; it must override this method.
        """
        if "freq" in self.branches:
            raise NotImplementedError(
                f"{type(self).__name__} has a 'freq' branch but no set_frequency_statistics"
            )

    def with_spectrum_in_model(self) -> DetectorModel:
        """This model, or a copy with the same weights that computes its frequency input from
        the pixels (for runtimes without TensorFlow's signal ops).

        Raises:
            UserError: the model reads a tf.data spectrum and has no `spectrum_in_model` option.
        """
        if "freq" not in self.branches or self.spectrum_in_model:
            return self
        if "spectrum_in_model" not in self.config_keys:
            raise UserError(
                f"{self.detector}: reads a tf.data spectrum and has no spectrum_in_model "
                "option; it cannot be exported to a runtime without TensorFlow's signal ops"
            )
        copy = type(self).from_config({**self.get_config(), "spectrum_in_model": True})
        copy.set_weights(self.get_weights())
        return copy

    # -- saving ------------------------------------------------------------------------------

    def get_config(self) -> dict:
        """Keras' name, trainable and dtype, each of `config_keys`, then `config_facts`."""
        config = super().get_config()
        for key in self.config_keys:
            config[key] = getattr(self, self.config_attributes.get(key, key))
        for key in self.config_facts:
            if key not in self.config_keys:
                config[key] = getattr(self, key)
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """`cls(**config)` without the facts and legacy keys that are not constructor options
        (so `.keras` files written before this class still load)."""
        dropped = (set(LEGACY_KEYS) | set(cls.config_facts)) - set(cls.config_keys)
        return cls(**{key: value for key, value in config.items() if key not in dropped})
