"""Adam with a second learning rate for the cross-stitch parameters (Sec. II.C)."""

from __future__ import annotations

import keras

from md_csd_tf import keras_compat
from md_csd_tf.layers.cross_stitch import ALPHA_WEIGHT_NAME


@keras.saving.register_keras_serializable(package="md_csd_tf")
class GroupedAdam(keras.optimizers.Adam):
    """Adam at `learning_rate` for ordinary weights and `stitch_learning_rate` for stitch alphas.

    The paper trains with a base rate of 2e-4 and "a slightly higher learning rate of 1e-3 for
    the cross-stitches" (Sec. II.C). Adam keeps its moments per variable and shares only the step
    counter, so this is exactly two Adam optimizers with the same betas and epsilon, one per
    parameter group. Written as one optimizer it needs nothing beyond stock Keras 3: `fit`,
    `tf.distribute` strategies, mixed precision and `.keras` saving all see a single optimizer,
    and both rates are variables that `ReduceBothLROnPlateau` can cut and a checkpoint restores.

    Args:
        learning_rate: rate for every variable that is not a stitch alpha.
        stitch_learning_rate: rate for the cross-stitch alphas.
        stitch_variable_name: the weight name that marks a stitch alpha.
        beta_1, beta_2, epsilon: Adam's, at the paper's values (0.9, 0.999, 1e-8).
    """

    def __init__(
        self,
        learning_rate=2e-4,
        stitch_learning_rate=1e-3,
        stitch_variable_name=ALPHA_WEIGHT_NAME,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        name="grouped_adam",
        **kwargs,
    ):
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            name=name,
            **kwargs,
        )
        self.stitch_variable_name = stitch_variable_name
        # Same aggregation as Keras' own learning-rate variable, so a callback assigning it
        # outside a replica context works under MirroredStrategy.
        self._stitch_learning_rate = keras.Variable(
            float(stitch_learning_rate),
            name="stitch_learning_rate",
            dtype=keras.backend.floatx(),
            trainable=False,
            aggregation="only_first_replica",
        )
        keras_compat.track_variable(self, self._stitch_learning_rate)
        self._stitch_indices = frozenset()

    @property
    def stitch_learning_rate(self):
        return self._stitch_learning_rate

    @stitch_learning_rate.setter
    def stitch_learning_rate(self, value):
        self._stitch_learning_rate.assign(value)

    def is_stitch_variable(self, variable) -> bool:
        return variable.name == self.stitch_variable_name or variable.path.endswith(
            f"/{self.stitch_variable_name}"
        )

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._stitch_indices = frozenset(
            keras_compat.variable_index(self, v) for v in var_list if self.is_stitch_variable(v)
        )

    def update_step(self, gradient, variable, learning_rate):
        if keras_compat.variable_index(self, variable) in self._stitch_indices:
            learning_rate = self._stitch_learning_rate
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(
            stitch_learning_rate=float(keras.ops.convert_to_numpy(self._stitch_learning_rate)),
            stitch_variable_name=self.stitch_variable_name,
        )
        return config


def unwrap_optimizer(optimizer):
    """The optimizer that holds the learning rates: under mixed precision Keras wraps the
    compiled optimizer in a `LossScaleOptimizer`, which does not forward `stitch_learning_rate`.
    """
    return getattr(optimizer, "inner_optimizer", optimizer)


@keras.saving.register_keras_serializable(package="md_csd_tf")
class StepDecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`initial * factor ** (step // every_steps)`, never below `floor`: a recipe's
    `registry.StepDecay` as a Keras schedule (MesoNet's 1e-3 divided by 10 every 1000
    iterations down to 1e-6). Registered here, beside `GroupedAdam`, so a `.keras` file whose
    optimizer holds it loads wherever a model loads.
    """

    def __init__(self, initial: float, every_steps: int, factor: float, floor: float = 0.0):
        self.initial = float(initial)
        self.every_steps = int(every_steps)
        self.factor = float(factor)
        self.floor = float(floor)

    def __call__(self, step):
        decays = keras.ops.floor(keras.ops.cast(step, "float32") / self.every_steps)
        rate = self.initial * keras.ops.power(self.factor, decays)
        return keras.ops.maximum(rate, self.floor)

    def get_config(self):
        return {
            "initial": self.initial,
            "every_steps": self.every_steps,
            "factor": self.factor,
            "floor": self.floor,
        }
