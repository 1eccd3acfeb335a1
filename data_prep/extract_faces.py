"""Face crops + manifest from FF++, DFD or Celeb-DF v2; the same as `md-csd prepare`.

    python data_prep/extract_faces.py --dataset ffpp --root /data/FaceForensics++ --out /data/crops

See docs/data-preparation.md for all options, the output layout and the expected disk use.
"""

import argparse
import sys

from md_csd_tf.cli import main as cli_main
from md_csd_tf.commands import prepare

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="extract_faces.py", description=prepare.HELP)
    prepare.add_arguments(parser)
    parser.parse_args()  # validates and answers --help with this script's name
    sys.exit(cli_main(["prepare", *sys.argv[1:]]))
