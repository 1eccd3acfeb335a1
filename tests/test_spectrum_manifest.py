"""Which manifest rows the spectrum and t-SNE figures use: one dataset and one quality level."""

import pandas as pd
import pytest

from md_csd_tf.data.manifest import MANIFEST_COLUMNS
from md_csd_tf.errors import UserError
from md_csd_tf.inference.spectrum import load_manifest


@pytest.fixture
def mixed_manifest(tmp_path):
    rows = []
    for dataset, compression in (("ffpp", "c23"), ("ffpp", "c40"), ("celebdf", "original")):
        for label in (0, 1):
            rows.append(
                dict(
                    dataset=dataset,
                    split="test",
                    method="real" if label == 0 else "X",
                    compression=compression,
                    video_id="000",
                    frame_index=0,
                    path=f"{dataset}/{compression}/{label}.png",
                    label=label,
                )
            )
    path = tmp_path / "manifest.csv"
    pd.DataFrame(rows).reindex(columns=list(MANIFEST_COLUMNS)).to_csv(path, index=False)
    return path


def test_a_mix_needs_a_choice_and_the_choice_is_applied(mixed_manifest):
    with pytest.raises(UserError, match="--dataset"):
        load_manifest(mixed_manifest)
    with pytest.raises(UserError, match="--compression"):
        load_manifest(mixed_manifest, dataset="ffpp")
    # Celeb-DF has one quality level: no --compression needed.
    celebdf = load_manifest(mixed_manifest, dataset="celebdf")
    assert set(celebdf["compression"]) == {"original"} and len(celebdf) == 2
    c40 = load_manifest(mixed_manifest, dataset="ffpp", compression="c40")
    assert len(c40) == 2 and all(p.startswith(str(mixed_manifest.parent)) for p in c40["path"])
