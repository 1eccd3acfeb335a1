"""Table V: the ablation of MD-CSD's branches and cross-stitches (FF++ c23, all methods; AUC).

    python experiments/ablation.py --table V --data FACES/manifest.csv

The paper's AUC, in its row order:

    rgb (Xception on pixels)         0.9509
    freq (Xception on the log-DCT)   0.8114
    concat (both, no stitches)       0.9789
    one_stitch (after block2)        0.99
    md_csd (four stitches)           0.9929

Cost: five trainings (the md_csd row is Table II's c23 model, shared); the single-branch rows
are half of MD-CSD's compute. About a day each on one >= 16 GB GPU.
"""

from __future__ import annotations

from md_csd_tf.models.variants import VARIANTS
from md_csd_tf.paper import paper_value

TABLE = "V"


def get_config() -> list[dict]:
    """One cell per variant, the paper's order (see `table1.get_config` for the cell's keys).
    A variant is the registered detector `md_csd_<variant>` (`md_csd` itself for the full
    model)."""
    return [
        dict(
            name=f"table5_{variant}",
            run=dict(
                compression="c23",
                detector="md_csd" if variant == "md_csd" else f"md_csd_{variant}",
            ),
            measure="ff_test",
            paper={"auc": paper_value("V", variant, "auc")},
        )
        for variant in VARIANTS
    ]
