"""Table I: MD-CSD trained and tested on one FF++ manipulation at a time (accuracy, %).

    python experiments/run_ff.py --data FACES/manifest.csv --compression c23 --manipulation Deepfakes
    python experiments/run_ff.py --data FACES/manifest.csv --compression c40 --manipulation FaceSwap
    ...                                            # one run per compression and manipulation
    python experiments/tables.py --out .           # the table, from the finished runs

The paper's accuracy:

    compression  Deepfakes  Face2Face  FaceSwap  NeuralTextures
    c23 (HQ)     98.82      99.19      99.1      94.55
    c40 (LQ)     97.34      93.57      94.64     81.78

Cost: eight MD-CSD trainings at 299 px, batch 32, 20 epochs; each about a day on one >= 16 GB
GPU (the paper: ~4000 s per epoch on three V100s). `--demo` / `--smoke` shrink them
(`workflows.paper_configs.DEMO`, `SMOKE`).
"""

from __future__ import annotations

from md_csd_tf.names import COMPRESSIONS, FFPP_METHODS
from md_csd_tf.paper import OURS, paper_value

TABLE = "I"


def get_config() -> list[dict]:
    """The table's cells: name, the run it trains (`paper_configs.Run` fields), what it
    measures and the paper's numbers (read from `md_csd_tf.paper`, as the docstring quotes)."""
    return [
        dict(
            name=f"table1_{compression}_{method}",
            run=dict(compression=compression, manipulation=method),
            measure="ff_test",  # the FF++ test split of the same compression and method
            paper={"acc": paper_value("I", OURS, method, compression)},
        )
        for compression in COMPRESSIONS
        for method in FFPP_METHODS
    ]
