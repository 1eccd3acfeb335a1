"""Table VI: MD-CSD with each frequency transform (FF++ c23, all methods; AUC).

    python experiments/ablation.py --table VI --data FACES/manifest.csv

The paper's AUC: dwt 0.9665, fft 0.98, dct 0.9929 (the paper's choice).

Cost: three trainings (the DCT row is Table II's c23 model, shared), about a day each on one
>= 16 GB GPU.
"""

from __future__ import annotations

from md_csd_tf.paper import paper_table, paper_value

TABLE = "VI"


def get_config() -> list[dict]:
    """One cell per transform, the paper's order (see `table1.get_config` for the keys)."""
    return [
        dict(
            name=f"table6_{transform}",
            run=dict(compression="c23", transform=transform),
            measure="ff_test",
            paper={"auc": paper_value("VI", transform, "auc")},
        )
        for transform in paper_table("VI")["rows"]  # dwt, fft, dct
    ]
