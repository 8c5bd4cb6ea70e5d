"""voltx-trio: the Trio document's role adapters as a voltx plugin.

Registers the ``trio`` phase (``voltx run trio --role creative``), the ``instruction`` record
format and the ``voltx trio ask`` command. Import-light: torch, transformers and peft are
imported only by the run and the command.
"""

from __future__ import annotations

from voltx import hookimpl
from voltx.plugin_specs import CommandSpec

__version__ = "0.1.0"


@hookimpl
def register_phases(register):
    from voltx_trio.phase import PHASE

    register(PHASE)


@hookimpl
def register_record_formats(register):
    from voltx_trio.records import INSTRUCTION

    register(INSTRUCTION)


def _configure_trio(parser):
    from voltx_trio.ask_cli import configure

    configure(parser)


@hookimpl
def register_commands(register):
    register(CommandSpec("trio", "the trio's adapters in turn: thesis -> antithesis -> synthesis (voltx trio ask \"...\")",
                         "voltx_trio.ask_cli:handle", _configure_trio))
