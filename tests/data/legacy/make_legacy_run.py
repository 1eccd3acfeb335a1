"""Writes run_meso4/: a one-epoch Meso-4 run folder of the code at commit 02d044e.

Run from a checkout of that commit (`git worktree add /tmp/old_tree 02d044e`):
    PYTHONPATH=/tmp/old_tree python tests/data/legacy/make_legacy_run.py
then copy config.json, state.json, history.csv, best.keras and last.keras of
/tmp/legacy_run/run_meso4 here. The tests never run it.
"""

import shutil
import sys
from pathlib import Path

sys.path.insert(0, "/tmp/old_tree/tests")

from data_fixtures import tiny_train_config, write_crop_manifest  # noqa: E402

from md_csd_tf.training.trainer import train  # noqa: E402

root = Path("/tmp/legacy_run")
shutil.rmtree(root, ignore_errors=True)
root.mkdir()
manifest = write_crop_manifest(root / "crops", size=32)
config = tiny_train_config(
    manifest, root / "run_meso4", detector="meso4", image_size=32, middle_blocks=None
)
print(train(config).epochs_done)
