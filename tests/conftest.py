"""Test-wide TensorFlow set-up.

The CPU is split into two logical devices before TensorFlow initialises, so that
`tf.distribute.MirroredStrategy` runs with two replicas on a machine without GPUs. This has to
happen before any op runs, hence here, at import time of the first conftest.
"""

import contextlib
import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# The stand-in data from the two bundled photographs: tests never reach for the network (the
# fetch of the many-people media is tested on local archives, tests/test_demo_people.py).
os.environ.setdefault("MD_CSD_DEMO_FACES", "bundled")

import tensorflow as tf  # noqa: E402

_cpus = tf.config.list_physical_devices("CPU")
# RuntimeError: already initialised by another plugin; single-device tests still run.
with contextlib.suppress(RuntimeError):
    tf.config.set_logical_device_configuration(
        _cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2
    )


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _collect_garbage():
    # Keras models hold reference cycles; collecting after each test keeps the suite's memory
    # flat (it grew past 12 GB on a 24 GB machine without this).
    yield
    gc.collect()
