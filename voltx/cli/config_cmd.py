"""``voltx config validate [FILE]``: check a config file against every phase's schema.

Every problem in the file is reported at once (file:line, key, what was expected and the
closest valid key or the default), exit 78; a file that is not TOML stops at its first
syntax error (the TOML parser cannot read past it)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("config", help="check or show configuration",
                       description="Validate a config file, or show the resolved config of a phase.")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    v = csub.add_parser("validate", help="validate a config file (default ./training_config.toml)",
                        description="Check a config file against every phase's schema and list every problem in it.")
    v.add_argument("file", nargs="?", default="training_config.toml", help="config file (default: %(default)s)")
    v.set_defaults(_run=validate)
    s = csub.add_parser("show", help="print the resolved config of a phase (preset and overrides applied)",
                        description="Print the config a run of PHASE would use (the file, then the preset, then the overrides).")
    s.add_argument("phase", help="phase name (see `voltx phases`)")
    s.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides, e.g. encoder.lr=3e-4 (default: none)")
    s.add_argument("--config", default=None, metavar="FILE", help="config file (default: ./training_config.toml when present, else the shipped one)")
    s.add_argument("--preset", default=None, metavar="NAME", help="a preset of the phase's table, e.g. quick (default: none)")
    s.set_defaults(_run=show)


def validate(args) -> int:
    from voltx.config import load_config

    cfg = load_config(args.file)  # against the installed phases' tables
    presets = sum(len(p) for p in cfg.presets.values())
    print(f"{args.file}: OK ({len(cfg.phases)} phase tables, {presets} presets)")
    return 0


def show(args) -> int:
    from voltx.config import build_config, default_config_file, load_config, resolve_for_phase, to_toml

    path = args.config or default_config_file()
    base = load_config(path) if path else build_config({})
    if args.phase not in base.phases:  # before the overrides, which are resolved against its table
        from voltx.errors import UsageError, closest

        hint = closest(args.phase, base.phases)
        raise UsageError(
            f"no table for phase {args.phase!r}" + (f" (did you mean {hint!r}?)" if hint else "")
            + f". Phases: {', '.join(base.phases)}."
        )
    cfg = resolve_for_phase(base, args.phase, preset=args.preset, overrides=args.overrides)
    settings = cfg.phases[args.phase]
    tables = {"paths": cfg.paths, "hardware": cfg.hardware, "run": cfg.run, args.phase: settings}
    # A curriculum runs other phases with its preset: show their tables as they will run (the data they read).
    for linked in getattr(settings, "phases", []) if hasattr(settings, "preset") else []:
        if linked in base.phases:
            tables[linked] = resolve_for_phase(base, linked, preset=settings.preset or None).phases[linked]
    print(to_toml(tables), end="")
    return 0
