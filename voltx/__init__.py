"""voltx: training console and engine for the Volt X architecture.

Import-light on purpose: ``voltx --help``, ``voltx plugins`` and every plugin's
entry-point module import this package, so nothing here may pull in torch or textual.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("voltx")
"""Decorator plugins use to implement a voltx hook (see docs/plugins.md)."""

__all__ = ["__version__", "hookimpl"]
