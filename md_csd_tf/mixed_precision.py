"""Run options for accelerators: the mixed-precision policy by name.

Float16 compute with float32 weights is Keras' `mixed_float16` (loss scaling by the optimizer
wrapper Keras adds); bfloat16 needs no loss scaling (float32's exponent range) and is the
native format of TPUs and of NVIDIA Ampere and later. Layers that must stay float32 say so
themselves (the in-model `Spectrum`, the `fake_probability` output).
"""

from __future__ import annotations

from md_csd_tf.errors import UserError

# The names `TrainConfig.mixed_precision` and `md-csd train --mixed-precision` accept.
POLICIES = {"float32": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def policy_name(value: bool | str | None) -> str:
    """The Keras dtype policy of a `mixed_precision` setting.

    Args:
        value: False/None/"float32" (off), True or "float16" (the setting's older boolean
            form meant float16), or "bfloat16".
    """
    if value in (None, False):
        return "float32"
    if value is True:
        return POLICIES["float16"]
    if value not in POLICIES:
        raise UserError(f"--mixed-precision {value}: choose one of {', '.join(POLICIES)}")
    return POLICIES[value]
