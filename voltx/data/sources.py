"""Data sources: the entries of a phase's data list (``f1.srl_data``, ``f3.reasoning_eval`` ...).

Each entry is either a Volt JSONL file (``voltx data convert ...`` output) or a built-in
generator ``"gen:NAME"`` with optional options ``"gen:scan_length_gen?count=2000&seed=3"``. A
generator gives its ``train`` split in training lists and its ``test`` split in evaluation
lists, so held-out data is never a shuffled copy of training data. :func:`load_records`
reads a list into validated records; :func:`holdout` splits a file's records when no
evaluation list is given. No torch here: a phase's config validation may parse sources.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from voltx.data.formats import RecordError, format_classes, validate_dict
from voltx.errors import ConfigError, DataError, MissingInputError

GEN_PREFIX = "gen:"
_CONVERT_HINT = ("Convert a dataset with `voltx data convert --dataset NAME --data-files ... --output FILE.jsonl`, "
                 "or use a built-in generator such as \"gen:{example}\" (see `voltx data list`).")


@dataclass(frozen=True)
class Source:
    """One entry of a data list: a JSONL path or a generator with options."""

    text: str
    generator: str | None
    options: dict[str, Any]


def parse_source(text: str, key: str) -> Source:
    """``"path.jsonl"`` or ``"gen:NAME?opt=value&..."``; ``key`` names the config field in errors."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{key}: expected a JSONL path or \"gen:NAME\", got {text!r}")
    if not text.startswith(GEN_PREFIX):
        return Source(text, None, {})
    name, _, query = text[len(GEN_PREFIX):].partition("?")
    options: dict[str, Any] = {}
    for opt, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        try:
            options[opt] = json.loads(value)
        except json.JSONDecodeError:
            options[opt] = value
    if not name:
        raise ConfigError(f"{key}: {text!r} names no generator; expected \"gen:NAME\" (see `voltx data list`)")
    return Source(text, name, options)


def load_records(entries: list[str], fmt: str, *, split: str, key: str, example: str) -> list[dict]:
    """All records of ``entries`` in format ``fmt``, validated.

    ``split`` is the generator split (``train`` for training lists, ``test`` for
    evaluation lists). A file in another format fails on its first line with the file,
    line, field and the format that was expected.
    """
    records: list[dict] = []
    for entry in entries:
        src = parse_source(entry, key)
        if src.generator is not None:
            records.extend(_generate(src, fmt, split, key))
        else:
            records.extend(_read_jsonl(Path(src.text), fmt, key, example))
    return records


def _generate(src: Source, fmt: str, split: str, key: str) -> list[dict]:
    from voltx.data.row_encoding import convert_rows
    from voltx.data.stream import get_converter, read_rows
    from voltx.errors import UsageError

    converter = get_converter(src.generator)
    if not getattr(converter, "generator", False):
        raise ConfigError(f"{key}: {src.generator!r} is a converter for files, not a generator; convert its files with "
                          f"`voltx data convert --dataset {src.generator} ...` and list the JSONL output instead")
    if fmt not in converter.formats:
        raise ConfigError(f"{key}: generator {src.generator!r} makes {', '.join(converter.formats)} records, "
                          f"but this list needs {fmt} records")
    for opt, value in src.options.items():
        if not hasattr(converter, opt) or opt.startswith("_"):
            raise ConfigError(f"{key}: generator {src.generator!r} has no option {opt!r}")
        setattr(converter, opt, value)
    try:
        rows = read_rows(converter, split, None, None)
        return list(convert_rows(converter, rows, fmt))
    except UsageError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _read_jsonl(path: Path, fmt: str, key: str, example: str) -> list[dict]:
    if not path.exists():
        raise MissingInputError(f"{key}: {path}: no such file. " + _CONVERT_HINT.format(example=example))
    if path.is_dir():
        raise DataError(f"{key}: {path} is a directory; expected a JSONL file of {fmt} records")
    out: list[dict] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise DataError(f"{where}: not valid UTF-8 ({exc.reason}); expected JSONL {fmt} records") from None
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); expected JSONL {fmt} records") from None
            try:
                validate_dict(fmt, obj)
            except RecordError as exc:
                classes = format_classes()  # a plugin's format lists its fields too
                fields = ", ".join(f.name for f in dataclasses.fields(classes[fmt])) if fmt in classes else ""
                raise DataError(
                    f"{where}: field {exc.field or '?'}: {exc.reason}. {key} needs {fmt} records ({fields}). "
                    + _CONVERT_HINT.format(example=example)
                ) from None
            out.append(obj)
    if not out:
        raise DataError(f"{key}: {path} has no records; expected JSONL {fmt} records")
    return out


def holdout(items: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, held out): a seeded shuffle, at least one item in each when possible."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n = max(1, round(len(items) * fraction)) if len(items) > 1 else 0
    return [items[i] for i in order[n:]], [items[i] for i in order[:n]]
