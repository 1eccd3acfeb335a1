"""Table III: the FF++ c23 model (Table II) scored on Celeb-DF, unseen in training.

    python experiments/cross_dataset.py --data FACES/manifest.csv --dataset celebdf

The paper's numbers: AUC 0.6877 on Celeb-DF, beside 0.997 on FF++'s Deepfakes class.

Cost: scoring only (it reuses the Table II c23 model): ~2 min on one GPU, ~40 min on 2 CPU
cores. The paper does not say which FF++ model it tested across datasets; the Table II c23 model
(all four methods) is the one its first column (FF++ Deepfakes AUC) implies.
"""

from __future__ import annotations

from md_csd_tf.paper import OURS, paper_value

TABLE = "III"


def get_config() -> list[dict]:
    """The one cell (see `table1.get_config` for the cell's keys)."""
    return [
        dict(
            name="table3_celebdf",
            run=dict(compression="c23"),
            measure="celebdf",
            paper={
                "ff++ Deepfakes auc": paper_value("III", OURS, "ff++"),
                "auc": paper_value("III", OURS, "celebdf"),
            },
        )
    ]
