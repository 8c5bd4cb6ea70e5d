"""What every offline generator (``voltx data generate``) shares: the :class:`_Generator` mixin
and :func:`wordlist`, which reads the word lists shipped as package data in ``wordlists/``."""

from __future__ import annotations

from importlib import resources

from voltx.errors import UsageError


def wordlist(name: str) -> list[str]:
    """The entries of ``wordlists/<name>.txt``, one a line, in file order (``#`` lines and blank
    lines left out). The order is part of every generated record: never sort these files."""
    text = (resources.files(__package__) / "wordlists" / f"{name}.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


class _Generator:
    """Mixin: ``generator = True``, no Hub copy, attributes settable as keyword arguments."""

    generator = True
    hub_name = None
    hub_config = None
    seed: int = 0
    count: int | None = None

    def __init__(self, **options):
        for key, value in options.items():
            if not hasattr(self, key):
                raise UsageError(f"{type(self).__name__} has no option {key!r}")
            setattr(self, key, value)

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise UsageError(f"generator {self.name!r} has no split {split!r}. Splits: {', '.join(self.splits)}.")
