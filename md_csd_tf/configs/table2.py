"""Table II: MD-CSD trained and tested on all four FF++ manipulations together.

    python experiments/run_ff.py --data FACES/manifest.csv --compression c23 --manipulation all
    python experiments/run_ff.py --data FACES/manifest.csv --compression c40 --manipulation all

The paper's numbers:

    compression  accuracy (%)  AUC
    c23 (HQ)     97.28         0.9929
    c40 (LQ)     87.57         0.8901

Cost: two MD-CSD trainings, each about a day on one >= 16 GB GPU. The c23 model is also the one
Tables III, IV, V (row 5) and VI (DCT row) read: trained once, shared by its run folder.
"""

from __future__ import annotations

from md_csd_tf.names import COMPRESSIONS
from md_csd_tf.paper import OURS, paper_value

TABLE = "II"


def get_config() -> list[dict]:
    """One cell per compression (see `table1.get_config` for the cell's keys)."""
    return [
        dict(
            name=f"table2_{compression}",
            run=dict(compression=compression),
            measure="ff_test",
            paper={k: paper_value("II", OURS, compression, k) for k in ("acc", "auc")},
        )
        for compression in COMPRESSIONS
    ]
