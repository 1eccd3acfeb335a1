"""What an experiment script's flags mean for its runs: the settings given on the command line
and the data, output folder and profile they select (`commands.flags` defines the flags)."""

from __future__ import annotations


def given_settings(
    args,
    names=(
        "detector",
        "transform",
        "head",
        "image_size",
        "middle_blocks",
        "clip_frames",
        "weights",
        "epochs",
        "batch_size",
        "flip",
        "fakes",
    ),
) -> dict:
    """The TrainConfig fields among `names` that were given on the command line (not None),
    and the `--model-option`s: those with a former TrainConfig field's name (middle_blocks...)
    under that name, as their shorthand flags give them, so they win over a profile's; any
    other under "model_options"."""
    settings = {
        name: getattr(args, name) for name in names if getattr(args, name, None) is not None
    }
    if getattr(args, "model_option", None):
        from md_csd_tf.training.plan import SHORTHANDS, parse_model_options

        options = parse_model_options(args.model_option, getattr(args, "detector", None))
        settings.update({k: v for k, v in options.items() if k in SHORTHANDS})
        others = {k: v for k, v in options.items() if k not in SHORTHANDS}
        if others:
            settings["model_options"] = others
    if isinstance(settings.get("weights"), str) and settings["weights"].lower() == "none":
        settings["weights"] = None
    if settings.get("fakes") == "dataset":  # the default: keeps the paper-way runs' folder names
        del settings["fakes"]
    return settings


def experiment_inputs(args, fixed: tuple[str, ...] = ()) -> tuple[str, str, dict, str]:
    """`(out, manifest, settings, title_prefix)` for an experiment script's arguments.

    `--demo` or `--smoke` without `--data` make (or find) the stand-in data; with `--data` they
    choose the settings only. Flags given on the command line win over the profile's. `fixed`:
    settings the script decides itself (a table's detectors or transforms); giving one is an
    error rather than being silently ignored.
    """
    from md_csd_tf.errors import UserError
    from md_csd_tf.workflows.demo import demo_setup
    from md_csd_tf.workflows.runs import profile_settings
    from md_csd_tf.workflows.tables import STAND_IN

    given = given_settings(args)
    for name in fixed:
        if given.get(name) is not None:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag}: this script sets it itself (one run per table row); drop it")
    # A script that runs one detector passes it (and the transform) in its Run, not settings.
    given.pop("detector", None)
    given.pop("transform", None)
    if not args.data:
        if not (args.demo or args.smoke):
            raise UserError("--data is required (or use --demo, or --smoke)")
        out, manifest, settings = demo_setup(args.out, args.smoke, given)
        return out, manifest, settings, STAND_IN
    _, settings = profile_settings(args.demo, args.smoke, given)
    return args.out or ".", args.data, settings, STAND_IN if args.demo else ""
