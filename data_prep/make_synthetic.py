"""Write the small stand-in dataset (FF++, DFD and Celeb-DF v2 layouts) for the demo and tests.

    python data_prep/make_synthetic.py --out data/demo [--videos 20] [--seed 0]

Same as `md-csd make-demo-data`; see `md_csd_tf/prep/synthetic.py` and docs/demo-data.md.
About 23 s on one CPU core for the default size (20 FF++ real videos, 242 videos in all).
"""

import sys

from md_csd_tf.cli import main

if __name__ == "__main__":
    sys.exit(main(["make-demo-data", *sys.argv[1:]]))
