"""The `md-csd` command: one sub-command per module in `md_csd_tf.commands`.

Each command module defines `NAME`, `HELP`, `add_arguments(parser)` and `run(args) -> int`.
Discovery keeps this file stable while commands are added. Only the chosen command's arguments
are built (their choices come from registries that may import TensorFlow), and heavy imports
stay inside `run`, so `md-csd --help` and `md-csd prepare` never load TensorFlow.

TensorFlow's C++ start-up lines (oneDNN, `cpu_feature_guard`, `absl::InitializeLog`) are hidden
unless `--verbose` is given or `MD_CSD_VERBOSE=1` is set (`quiet_tensorflow`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys
import tempfile

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


def quiet_tensorflow(verbose: bool = False) -> None:
    """Imports TensorFlow now with its C++ start-up chatter hidden, unless `verbose`.

    `TF_CPP_MIN_LOG_LEVEL` hides most C++ logging, but the oneDNN notice and the
    `absl::InitializeLog` warning are written to file descriptor 2 before that setting is read,
    once at import and once when the runtime starts. So both happen here with fd 2 pointed at a
    temporary file, whose text is replayed if they fail (a broken install must still say why).
    Under a `TF_CONFIG` cluster the runtime is not started here: `MultiWorkerMirroredStrategy`
    must be created before it is.
    """
    verbose = verbose or os.environ.get("MD_CSD_VERBOSE", "") not in ("", "0")
    if verbose or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(sink.fileno(), 2)
            try:
                import tensorflow

                if "TF_CONFIG" not in os.environ:
                    tensorflow.constant(0)  # starts the runtime, which logs its own lines
            finally:
                os.dup2(saved, 2)
        except BaseException:
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.close(saved)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `md-csd` parser; with `command`, only that command's arguments are built."""
    parser = argparse.ArgumentParser(
        prog="md-csd",
        description="MD-CSDNetwork deepfake detection: prepare data, train, evaluate, predict.",
    )
    parser.add_argument("--version", action="version", version=f"md-csd-tf {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show TensorFlow's start-up messages"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        sub_parser = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        if command is None or command == module.NAME:
            module.add_arguments(sub_parser)
        sub_parser.set_defaults(
            _run=module.run, _tensorflow=getattr(module, "USES_TENSORFLOW", True)
        )
    return parser


def run_main(
    entry, argv: list[str] | None = None, prog: str = "md-csd", tensorflow: bool = True
) -> int:
    """Runs `entry(argv)`, turning a `UserError` into one line on stderr and exit status 2.

    Scripts in `experiments/` and `data_prep/` use it too, so every entry point reports bad
    input the same way, and an interrupt says that finished work is kept. With `tensorflow`,
    TensorFlow is imported first without its start-up chatter (`quiet_tensorflow`).
    """
    try:
        if tensorflow:
            words = sys.argv if argv is None else argv
            with contextlib.suppress(ImportError):  # a missing TensorFlow is reported later
                quiet_tensorflow("--verbose" in words or "-v" in words)
        return int(entry(argv) or 0)
    except UserError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; finished work is kept, run again to resume.", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    command = next((w for w in words if not w.startswith("-")), None)
    module = next((m for m in _command_modules() if command == m.NAME), None)
    if module is not None and getattr(module, "USES_TENSORFLOW", True):
        # Before the parser: a command's choices may come from registries importing TensorFlow.
        with contextlib.suppress(ImportError):
            quiet_tensorflow("--verbose" in words or "-v" in words)
    parser = build_parser(command or "")  # no command: only the list of commands is needed
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    if args.verbose:
        os.environ["MD_CSD_VERBOSE"] = "1"
    return run_main(
        lambda _: args._run(args), prog=f"md-csd {args.command}", tensorflow=args._tensorflow
    )


if __name__ == "__main__":
    sys.exit(main())
