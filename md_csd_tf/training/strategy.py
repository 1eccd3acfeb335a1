"""Choosing the tf.distribute strategy for the machine a run lands on."""

from __future__ import annotations

import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multi_worker")


def _cluster_configured() -> bool:
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except ValueError:
        return False
    cluster = config.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", [])) > 1


def make_strategy(name: str = "auto", devices: list[str] | None = None) -> tf.distribute.Strategy:
    """The strategy for `name`; "auto" picks as a user expects.

    "auto": `MultiWorkerMirroredStrategy` when `TF_CONFIG` describes a cluster of several
    workers, `MirroredStrategy` over all GPUs when there are any (one GPU included: it costs
    nothing and keeps code paths alike), else TensorFlow's default strategy (plain CPU).
    "mirrored" on a machine without GPUs mirrors over the logical CPU devices.
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; choose one of {STRATEGIES}.")
    if name == "auto":
        if _cluster_configured():
            name = "multi_worker"
        elif tf.config.list_physical_devices("GPU") or devices:
            name = "mirrored"
        else:
            name = "default"
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        # Without GPUs, mirror over the logical CPUs (one unless the CPU was split, as the tests
        # do) so the distributed code path can be exercised anywhere.
        devices = (
            devices
            or [d.name for d in tf.config.list_logical_devices("GPU")]
            or [d.name for d in tf.config.list_logical_devices("CPU")]
        )
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.get_strategy()


def is_chief() -> bool:
    """True on the worker that writes checkpoints and logs: the "chief" task if the cluster has
    one, else worker 0; always True without a cluster."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    except ValueError:
        return True
    task = config.get("task")
    if not task:
        return True
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type") == "worker" and int(task.get("index", 0)) == 0
