"""Every flag and positional of every command (built-in and the built-in plugins' commands,
e.g. the seed's train-*) has help that states its default; every command has a description."""

from __future__ import annotations

import argparse

import pytest

from voltx.cli.main import build_parser
from voltx.plugins import load_plugins

NO_DEFAULT_NEEDED = (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction,
                     argparse._VersionAction, argparse._SubParsersAction)


def every_parser(parser: argparse.ArgumentParser, path=("voltx",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:  # aliases share a parser
                    seen.add(id(sub))
                    yield from every_parser(sub, (*path, name))


def console_parser():
    from voltx.console.app import build_parser as console

    return console()


PARSERS = [*every_parser(build_parser(load_plugins())), *every_parser(console_parser(), ("voltx-console",))]


def test_the_walk_covers_the_seed_and_data_commands():
    names = {" ".join(p) for p, _ in PARSERS}
    assert {"voltx train-tokenizer", "voltx train-encoder", "voltx train-decoder", "voltx data generate",
            "voltx data mix", "voltx run", "voltx phases", "voltx plugins", "voltx codebook init"} <= names


@pytest.mark.parametrize(("path", "parser"), PARSERS, ids=[" ".join(p) for p, _ in PARSERS])
def test_every_argument_has_help_with_its_default(path, parser):
    missing = []
    for action in parser._actions:
        if isinstance(action, NO_DEFAULT_NEEDED) or action.help == argparse.SUPPRESS:
            continue
        name = "/".join(action.option_strings) or action.dest
        if not action.help:
            missing.append(f"{name}: no help")
            continue
        optional_value = action.option_strings and not action.required
        optional_positional = not action.option_strings and action.nargs in ("?", "*")
        if (optional_value or optional_positional) and "default" not in action.help.lower():
            missing.append(f"{name}: help does not say the default ({action.help!r})")
    assert not missing, f"{' '.join(path)}: " + "; ".join(missing)


COMMANDS = [(p, parser) for p, parser in PARSERS if p != ("voltx",)]


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_a_description(path, parser):
    assert parser.description, f"`{' '.join(path)} --help` shows no description"


def test_runs_dir_help_states_the_real_precedence(monkeypatch, tmp_path):
    """The help says what runs_root does: --runs-dir > VOLTX_RUNS_DIR > [paths].runs_dir > ./runs."""
    from voltx.runs.layout import runs_root

    helps = {" ".join(p): a.help for p, parser in PARSERS for a in parser._actions if "--runs-dir" in a.option_strings}
    assert {"voltx run", "voltx status", "voltx doctor", "voltx train-encoder", "voltx-console"} <= set(helps)
    for where, text in helps.items():
        env, cfg = text.find("VOLTX_RUNS_DIR"), text.find("[paths].runs_dir")
        assert 0 <= env < cfg < text.find("./runs"), (where, text)
    monkeypatch.setenv("VOLTX_RUNS_DIR", str(tmp_path / "env"))
    assert runs_root(None, str(tmp_path / "cfg")) == tmp_path / "env"
    assert runs_root(str(tmp_path / "flag"), str(tmp_path / "cfg")) == tmp_path / "flag"
