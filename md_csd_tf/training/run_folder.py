"""The run folder of a training run: resuming it (its config must match the plan's), reading
its JSON and last.keras with errors that say how to go on, and `RunCheckpoint`, which writes
last.keras, best.keras and state.json at the end of every epoch.

    config.json   the plan's settings and the versions      state.json   where the run stands
    best.keras    the best epoch's model                     last.keras   the latest, with its
                                                                          optimizer state
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np

from md_csd_tf.errors import UserError
from md_csd_tf.files import atomic_write_json
from md_csd_tf.models.saving import load_model, save_model
from md_csd_tf.optimizers import unwrap_optimizer
from md_csd_tf.training.callbacks import ReduceBothLROnPlateau
from md_csd_tf.training.plan import RunPlan


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(
            f"{path}: unreadable ({error}); delete the run folder's state.json to start afresh, "
            "or use a new --out."
        ) from error


def prepare_run_dir(plan: RunPlan) -> tuple[Path, dict | None]:
    out = Path(plan.config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / "state.json"
    if not (state_path.is_file() and (out / "last.keras").is_file()):
        return out, None
    state = read_json(state_path)
    changed = plan.changed_from(read_json(out / "config.json").get("config", {}))
    if changed:
        hint = " (--constant-lr: it trained without the recipe's decay)"
        raise UserError(
            f"{out}: holds a run with different {', '.join(changed)}; resume with the same "
            f"settings{hint if 'constant_lr' in changed else ''}, or use a new --out to start "
            "afresh."
        )
    return out, state


def load_last(path: Path) -> keras.Model:
    try:
        return load_model(path)
    except UserError as error:
        raise UserError(
            f"{error} To go on: delete {path.name} and state.json in {path.parent} to start "
            f"afresh, or copy best.keras over {path.name} to resume from the best epoch."
        ) from error


def _as_float(value) -> float:
    # Optimizer variables are MirroredVariables under tf.distribute; read them through Keras.
    return float(keras.ops.convert_to_numpy(value))


class RunCheckpoint(keras.callbacks.Callback):
    """Writes last.keras + state.json every epoch and best.keras on a new best val accuracy."""

    def __init__(
        self,
        out_dir: Path,
        plateau: ReduceBothLROnPlateau,
        state: dict,
        write: bool,
        metric: str = "val_accuracy",
    ):
        super().__init__()
        self.out_dir = out_dir
        self.plateau = plateau
        self.state = state
        self.write = write
        self.metric = metric

    def on_epoch_end(self, epoch, logs=None):
        # np.mean: a multi-worker run logs length-1 vectors (see MDCSDNetwork.train_step).
        logs = {k: float(np.mean(v)) for k, v in (logs or {}).items()}
        self.state["history"].append({"epoch": epoch + 1, **logs})
        accuracy = logs.get("val_accuracy", -math.inf)
        value = logs.get(self.metric, -math.inf)
        best = self.state.get("best_selected", self.state["best_val_accuracy"])
        improved = value > best
        if improved:
            self.state["best_val_accuracy"] = accuracy
            self.state["best_selected"] = value
            self.state["selected_by"] = self.metric
            self.state["best_epoch"] = epoch + 1
        self.state["epoch"] = epoch + 1
        self.state["plateau"] = self.plateau.get_state() if self.plateau else {}
        optimizer = unwrap_optimizer(self.model.optimizer)
        self.state["learning_rate"] = _as_float(optimizer.learning_rate)
        self.state["stitch_learning_rate"] = _as_float(optimizer.stitch_learning_rate)
        if not self.write:
            return
        if improved:
            save_model(self.model, self.out_dir / "best.keras")
        save_model(self.model, self.out_dir / "last.keras")
        atomic_write_json(self.out_dir / "state.json", self.state)  # last: vouches for last.keras
