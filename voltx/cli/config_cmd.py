"""``voltx config validate [FILE]``: check a config file against every phase's schema."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("config", help="check or show configuration")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    v = csub.add_parser("validate", help="validate a config file (default ./training_config.toml)")
    v.add_argument("file", nargs="?", default="training_config.toml")
    v.set_defaults(_run=validate)
    s = csub.add_parser("show", help="print the resolved config of a phase (preset and overrides applied)")
    s.add_argument("phase")
    s.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    s.add_argument("--config", default=None, metavar="FILE")
    s.add_argument("--preset", default=None)
    s.set_defaults(_run=show)


def validate(args) -> int:
    from voltx.config import load_config
    from voltx.plugins import load_plugins
    from voltx.train.runner import phase_classes

    plugins = load_plugins()
    cfg = load_config(args.file, phase_classes(plugins))
    presets = sum(len(p) for p in cfg.presets.values())
    print(f"{args.file}: OK ({len(cfg.phases)} phase tables, {presets} presets)")
    return 0


def show(args) -> int:
    from voltx.config import build_config, default_config_file, load_config, resolve_for_phase, to_toml
    from voltx.plugins import load_plugins
    from voltx.train.runner import phase_classes

    plugins = load_plugins()
    classes = phase_classes(plugins)
    path = args.config or default_config_file()
    base = load_config(path, classes) if path else build_config({}, classes)
    if args.phase not in base.phases:  # before the overrides, which are resolved against its table
        from voltx.errors import UsageError, closest

        hint = closest(args.phase, base.phases)
        raise UsageError(
            f"no table for phase {args.phase!r}" + (f" (did you mean {hint!r}?)" if hint else "")
            + f". Phases: {', '.join(base.phases)}."
        )
    cfg = resolve_for_phase(base, args.phase, preset=args.preset, overrides=args.overrides, phase_classes=classes)
    print(to_toml({"paths": cfg.paths, "hardware": cfg.hardware, "run": cfg.run, args.phase: cfg.phases[args.phase]}), end="")
    return 0
