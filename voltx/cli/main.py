"""``voltx`` command line: argparse with one module per subcommand, imported lazily.

Only this module and the subcommand modules' ``add_parser`` functions run for
``voltx --help``; nothing here imports torch or textual (a test proves it).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from voltx import __version__
from voltx.cli.run import phase_options
from voltx.errors import EXIT_CODES, EXIT_USAGE, VoltxError

# subcommand name -> module in voltx.cli (each has add_parser(subparsers) and run(args))
BUILTIN_COMMANDS = ("run", "phases", "plugins", "status", "logs", "report", "config_cmd", "think", "data", "doctor", "export", "attach")


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors use EX_USAGE (64), not argparse's 2
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def exit_code_epilog() -> str:
    rows = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
    return f"exit codes:\n{rows}"


def build_parser(plugins=None) -> Parser:
    parser = Parser(
        prog="voltx",
        description="Train and run the Volt X architecture: curriculum phases, run store, plugins.",
        epilog=exit_code_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"voltx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in BUILTIN_COMMANDS:
        importlib.import_module(f"voltx.cli.{name}").add_parser(sub)
    if plugins is not None:
        for spec in plugins.specs("commands").values():
            cmd = sub.add_parser(spec.name, help=spec.help, description=spec.help, aliases=list(spec.aliases))
            if spec.configure:
                spec.configure(cmd)
            cmd.set_defaults(_plugin_handler=spec.handler)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        from voltx.plugins import load_plugins

        plugins = load_plugins()
        parser = build_parser(plugins)
        args, extra = parser.parse_known_args(argv)
        # argparse stops filling a nargs="*" positional at the first option, so
        # `voltx run f2 --preset quick encoder.lr=1e-3` leaves the override over: take it back.
        folded = phase_options(args.phase, extra, plugins) if extra and args.command == "run" else None
        if extra and hasattr(args, "overrides") and all("=" in e and not e.startswith("-") for e in extra):
            args.overrides = [*args.overrides, *extra]
        elif folded is not None:  # `voltx run trio --role creative`: an option naming a key of the phase's table
            args.overrides = [*args.overrides, *folded]
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        args._argv = argv
        handler = getattr(args, "_plugin_handler", None)
        if handler is not None:
            from voltx.plugin_specs import resolve

            code = resolve(handler)(args)
        else:
            code = args._run(args)
        return int(code or 0)
    except VoltxError as exc:
        print(f"voltx: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `voltx logs | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
