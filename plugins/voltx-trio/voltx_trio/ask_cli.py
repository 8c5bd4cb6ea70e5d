"""``voltx trio ask "..."``: the three role adapters in turn on one base model (import-light part)."""

from __future__ import annotations

from voltx_trio.phase import ROLE_NAMES


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="trio_command", metavar="SUBCOMMAND", required=True)
    ask = sub.add_parser("ask", help="thesis (creative) -> antithesis (logical) -> synthesis (dialectical), each printed",
                         description="Run the creative, logical and dialectical adapters in turn on one base model: "
                         "each sees the question and the answers before it.")
    ask.add_argument("question", help="what to ask the trio")
    for role in ROLE_NAMES:
        ask.add_argument(f"--{role}", metavar="PATH",
                         help=f"the {role} adapter: a trio run directory or its artifacts/trio-{role} folder "
                              f"(default: [paths].checkpoints_dir/trio-{role}, where a finished non-preset run publishes it)")
    ask.add_argument("--base", metavar="MODEL", help="base model id or directory (default: the one the creative adapter was trained on)")
    ask.add_argument("--max-new-tokens", type=int, default=64, help="tokens generated per role (default: 64)")
    ask.add_argument("--config", metavar="FILE", help="config file for [paths].checkpoints_dir (default: ./training_config.toml when present)")


def handle(args) -> int:
    from voltx_trio.ask import ask

    return ask(args)
