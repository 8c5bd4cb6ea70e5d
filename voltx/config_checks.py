"""Checks a phase's own config table runs on its settings (public: plugin phases use them).

A phase's dataclass checks its settings in ``__post_init__`` (or its ``PhaseSpec.check``) and
raises :class:`voltx.errors.ConfigError` (exit 78) naming ``<table>.<setting>``, what it got and
what is expected. The checks every phase repeats live here, one message each, so that the same
mistake reads the same in every phase.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from voltx.errors import ConfigError


def _named(settings: object, names: Iterable[str] | None) -> list[tuple[str, Any]]:
    """(name, value) of ``names`` read from a settings object, or from a mapping (every key when ``names`` is None)."""
    if isinstance(settings, Mapping):
        return [(n, settings[n]) for n in (settings if names is None else names)]
    return [(n, getattr(settings, n)) for n in names or ()]


def require_at_least(table: str, settings: object, names: Iterable[str] | None = None, least: float = 1) -> None:
    """ConfigError ``<table>.<name> must be at least <least>, got <value>`` for the first of
    ``names`` whose value on ``settings`` (a dataclass, or a mapping of name -> value) is below ``least``."""
    for name, value in _named(settings, names):
        if value < least:
            raise ConfigError(f"{table}.{name} must be at least {least:g}, got {value}")


def require_fraction(table: str, settings: object, names: Iterable[str] | None = None) -> None:
    """ConfigError ``<table>.<name> must be in [0, 1), got <value>`` for the first of ``names``
    outside [0, 1) (a share held out or dropped: all of it leaves nothing)."""
    for name, value in _named(settings, names):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{table}.{name} must be in [0, 1), got {value}")


def require_mix_weights(key: str, entries: list[str], example: str) -> None:
    """ConfigError unless ``entries`` (a data mix written ``SOURCE:WEIGHT``, as ``voltx data mix``
    reads it) is non-empty with weights summing to 1; ``key`` names the setting
    (``cognate.data``), ``example`` is a valid mix for the message."""
    from voltx.data.mix import parse_source  # the data package: only when a mix is checked

    weights = [parse_source(entry)[1] for entry in entries]
    if not entries or abs(sum(weights) - 1.0) > 1e-6:
        raise ConfigError(
            f"{key}: the mix weights must sum to 1, got {' + '.join(f'{w:g}' for w in weights) or 'none'} = "
            f"{sum(weights):g} in {entries!r}. Write them as SOURCE:WEIGHT, e.g. {example}.")
