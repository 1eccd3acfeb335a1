"""Table IV: the FF++ c23 model (Table II) scored on Google's DeepFakeDetection (DFD).

    python experiments/cross_dataset.py --data FACES/manifest.csv --dataset dfd

The paper's number: AUC 0.8951.

Cost: scoring only (it reuses the Table II c23 model): ~2 min on one GPU, ~40 min on 2 CPU cores.
"""

from __future__ import annotations

from md_csd_tf.paper import OURS, paper_value

TABLE = "IV"


def get_config() -> list[dict]:
    """The one cell (see `table1.get_config` for the cell's keys)."""
    return [
        dict(
            name="table4_dfd",
            run=dict(compression="c23"),
            measure="dfd",
            paper={"auc": paper_value("IV", OURS, "dfd")},
        )
    ]
