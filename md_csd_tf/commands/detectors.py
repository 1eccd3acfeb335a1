"""`md-csd detectors`: the registered detectors, their inputs, sizes, recipes and sources."""

from __future__ import annotations

import argparse

NAME = "detectors"
HELP = "list the registered detectors: input size, parameters, inputs, published weights, source"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--recipes", action="store_true",
        help="also print each full recipe and its model options",
    )  # fmt: skip


def format_listing(recipes: bool = False) -> str:
    """One line per detector (plus its recipe with `recipes`)."""
    import dataclasses

    from md_csd_tf.models.registry import get_entry, list_detectors, published_weights

    rows = [("detector", "size", "parameters", "inputs", "published weights", "source")]
    entries = [get_entry(name) for name in list_detectors()]
    for entry in entries:
        recipe = entry.recipe
        rows.append((
            entry.name, str(recipe.image_size),
            f"{recipe.parameters:,}" if recipe.parameters else "-",
            "+".join(recipe.inputs), ", ".join(published_weights(entry.name)) or "-",
            recipe.paper.split(":")[0],
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
             for r in rows]  # fmt: skip
    if recipes:
        for entry in entries:
            lines += ["", f"{entry.name}: {entry.summary}"]
            lines += [f"  {k}: {v}" for k, v in dataclasses.asdict(entry.recipe).items()]
            lines += ["  model options (--model-option NAME=VALUE):"]
            lines += [
                f"    {o.name}: {o.describe()}; default {o.default}. {o.help}"
                for o in entry.accepted().values()
            ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print(format_listing(args.recipes))
    return 0
