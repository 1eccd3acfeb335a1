"""Argument types for numeric options: every command checks its numbers the same way.

Each type parses one value and, when it is out of range, raises `argparse.ArgumentTypeError`
with the accepted range, so argparse prints one line (`argument --epochs: expected ...`) and
exits with status 2 before any work starts. A value that is in range but meaningless in context
(an empty dataset, a model that does not exist) is the command's job, not these types'.
"""

from __future__ import annotations

import argparse
import math


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def int_range(low: int | None = None, high: int | None = None):
    """An integer type accepting `low <= value <= high` (either bound may be None)."""
    if low is not None and high is not None:
        what = f"an integer from {low} to {high}"
    elif low is not None:
        what = {0: "an integer >= 0", 1: "a positive integer"}.get(low, f"an integer >= {low}")
    else:
        what = f"an integer <= {high}"

    def parse(text: str) -> int:
        value = _number(text, int, what)
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = "integer"  # argparse names the type in "invalid <name> value" messages
    return parse


def float_range(low: float | None = None, high: float | None = None, low_open: bool = False):
    """A finite float type accepting `low <= value <= high` (`low < value` with `low_open`)."""
    left = "(" if low_open else "["
    what = f"a number in {left}{low if low is not None else '-inf'}, "
    what += f"{high if high is not None else 'inf'}]" if high is not None else "inf)"

    def parse(text: str) -> float:
        value = _number(text, float, what)
        too_low = low is not None and (value <= low if low_open else value < low)
        if too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


positive = int_range(1)  # counts: frames, epochs, batch sizes, workers, videos
non_negative = int_range(0)  # seeds; sizes where 0 means "off"
probability = float_range(0.0, 1.0)  # thresholds and augmentation probabilities
learning_rate = float_range(0.0, low_open=True)
jpeg_quality = int_range(1, 100)  # OpenCV's JPEG encoder accepts 0..100; 0 is not an image


def aggregates() -> list[str]:
    """The `--aggregate` choices (`evaluation.metrics.AGGREGATES`), imported only when a
    command's parser is built: metrics pulls in pandas and scikit-learn."""
    from md_csd_tf.evaluation.metrics import AGGREGATES

    return list(AGGREGATES)


def fakes(text: str) -> str:
    """Training fakes: dataset, sbi, fwa, xray or a mix such as dataset+sbi (`--fakes`)."""
    from md_csd_tf.data.pseudo_fakes import parse_fakes
    from md_csd_tf.errors import UserError

    try:
        return "+".join(parse_fakes(text))
    except UserError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
