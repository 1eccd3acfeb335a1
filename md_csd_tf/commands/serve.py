"""`md-csd serve`: a local web app to upload videos and images and read their verdicts."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from md_csd_tf.commands._options import float_range, int_range, positive

NAME = "serve"
HELP = (
    "a local web app: upload videos or images, watch the progress, read the verdict and the "
    "report; a JSON API for scripts (needs the extra md-csd-tf[serve]; docs/serve.md)"
)
DEFAULT_DATA = "md-csd-serve"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="a .keras model saved by md-csd-tf (default: the shipped detector)"
    )
    parser.add_argument(
        "--detector", default=None,
        help="with --weights: a registered detector and its published weights",
    )  # fmt: skip
    parser.add_argument("--weights", default=None, help="published weights name or file")
    parser.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; the server has no "
        "login, so another address lets anyone who can reach it upload and read results)",
    )  # fmt: skip
    parser.add_argument("--port", type=int_range(0, 65535), default=8765, help="default 8765")
    parser.add_argument(
        "--data", default=DEFAULT_DATA, metavar="DIR",
        help=f"jobs.sqlite3, uploads/ and reports/ (default ./{DEFAULT_DATA}); jobs queued or "
        "running there when the server stopped are run again",
    )  # fmt: skip
    parser.add_argument(
        "--workers", type=positive, default=1,
        help="jobs scored at once, sharing one loaded model (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--max-upload-mb", type=float_range(0.0, low_open=True), default=200.0,
        help="largest upload accepted, in MB (default 200)",
    )  # fmt: skip
    parser.add_argument(
        "--retention-hours", type=float_range(0.0, low_open=True), default=24.0,
        help="finished jobs, their uploads and reports are deleted after this (default 24)",
    )  # fmt: skip
    parser.add_argument(
        "--frames", type=positive, default=None,
        help="evenly spaced frames scored per video (default 32, as md-csd predict)",
    )  # fmt: skip


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def run(args: argparse.Namespace) -> int:
    from md_csd_tf.errors import UserError
    from md_csd_tf.files import OutputLock, check_writable

    try:
        import flask  # noqa: F401
        import waitress
    except ImportError as missing:
        raise UserError(
            f"md-csd serve needs Flask and waitress ({missing}): pip install 'md-csd-tf[serve]'"
        ) from None
    check_writable(args.data, "folder", "--data")
    if not is_loopback(args.host):
        print(
            f"md-csd serve: warning: listening on {args.host}, not only this machine: anyone who "
            "can reach it can upload files and read every result (there is no login)",
            file=sys.stderr,
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from md_csd_tf.commands.predict import _load_detector, _model_name
    from md_csd_tf.serve.app import create_app

    # predict's defaults for what serve does not offer, so a job's row is predict's.
    options = argparse.Namespace(
        **vars(args), batch_size=32, detect_max_side=None, threshold=None,  # None: "model"
        runtime="keras", precision="float32",
    )  # fmt: skip
    # Taken before the model loads, so a second server on the folder is refused at once, not
    # after the load; the service releases it on stop, and here if it never starts.
    lock = OutputLock(args.data, "md-csd serve").acquire()
    try:
        detector = _load_detector(options)
        app = create_app(
            detector,
            args.data,
            workers=args.workers,
            max_upload_mb=args.max_upload_mb,
            retention_hours=args.retention_hours,
            frames=args.frames,
            model_name=_model_name(options),
            loopback=is_loopback(args.host),
            lock=lock,
        )
    except BaseException:
        lock.release()
        raise
    # waitress spools a request body before Flask sees it, so its own cap bounds the disk a
    # client can fill; it is above Flask's so that an upload a little too large gets Flask's
    # JSON 413 (waitress answers a body over its cap with a plain-text 413).
    server = waitress.create_server(
        app,
        host=args.host,
        port=args.port,
        threads=8,  # HTTP threads: polls and uploads; scoring runs in --workers
        max_request_body_size=2 * app.config["MAX_CONTENT_LENGTH"],
    )
    host = f"[{args.host}]" if ":" in args.host else args.host  # an IPv6 address in a URL
    print(
        f"md-csd serve: http://{host}:{server.effective_port}/ (model {_model_name(options)}; "
        f"data in {args.data}; Ctrl+C stops)",
        flush=True,
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        # A job cut off here stays "running" in the table and is run again at the next start.
        app.extensions["md_csd"].stop(wait=False)
    return 0
