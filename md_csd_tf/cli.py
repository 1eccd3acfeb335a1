"""The `md-csd` command: one sub-command per module in `md_csd_tf.commands`.

Each command module defines `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`.
Discovery keeps this file stable while commands are added, and heavy imports (TensorFlow) stay
inside `run` so that `md-csd --help` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from md_csd_tf import commands
from md_csd_tf._version import __version__
from md_csd_tf.errors import UserError


def _command_modules():
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "run"):
            yield module


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="md-csd",
        description="MD-CSDNetwork deepfake detection: prepare data, train, evaluate, predict.",
    )
    parser.add_argument("--version", action="version", version=f"md-csd-tf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def run_main(entry, argv: list[str] | None = None, prog: str = "md-csd") -> int:
    """Runs `entry(argv)`, turning a `UserError` into one line on stderr and exit status 2.

    Scripts in `experiments/` and `data_prep/` use it too, so every entry point reports bad
    input the same way, and an interrupt says that finished work is kept.
    """
    try:
        return int(entry(argv) or 0)
    except UserError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished work is kept, run again to resume.", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    return run_main(lambda _: args._run(args), prog=f"md-csd {args.command}")


if __name__ == "__main__":
    sys.exit(main())
