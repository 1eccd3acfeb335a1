"""Model builders: the Xception spec, the MD-CSD variants of Table V, the other detectors of
the registry, saving and loading.

`import_all()` imports every module of this package once: each detector module adds its
registry entries and registers its Keras classes, which loading a saved model needs. Both
`registry` (to list detectors) and `saving` (to load them) call it, so neither imports the other.
"""

from __future__ import annotations

import importlib
import pkgutil


def import_all() -> None:
    """Imports every module of `md_csd_tf.models` (once), registering their detectors."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
