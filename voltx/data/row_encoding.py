"""Rows to records, and records to JSONL bytes: the conversion every write path of
:mod:`voltx.data.stream` shares with the batched ones of :mod:`voltx.data.batched`.

:func:`convert_rows` is the per-row path, the one that decides about and reports bad rows
(file:line, field); :func:`encode_record` and :func:`encode_columns` write the same bytes for a
record given as a dict or as columns. Orchestration (reading, atomic output, progress) stays in
the two modules that import this one, so neither needs the other.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from voltx.data.converter import Converter, RawRow, RowError, undecodable
from voltx.data.formats import RecordError, record_to_dict
from voltx.errors import DataError, UsageError

MAX_REASONS = 5
_dumps = orjson.dumps  # compact, UTF-8 (no ASCII escaping), keys in dict order; returns bytes
_JSONEncodeError = orjson.JSONEncodeError
# What orjson declines (ints beyond 64 bits, float subclasses, non-str keys): the stdlib, compact
# too. Non-finite floats never get here: validation rejects them before encoding.
_FALLBACK = json.JSONEncoder(ensure_ascii=False, check_circular=False, allow_nan=False, separators=(",", ":"))


def encode_record(record: dict) -> bytes:
    """One JSONL record (no newline), as UTF-8 bytes: what both the per-row and the columnar
    paths write for it."""
    try:
        return _dumps(record)
    except _JSONEncodeError:
        return _FALLBACK.encode(record).encode("utf-8")

_ROW_SEP = orjson.Fragment(b"\x1e")


def _split_rows(rows: list[dict]) -> list[bytes]:
    """``[encode_record(r) for r in rows]`` in one orjson call: the rows interleaved with a raw
    ``\x1e`` fragment (orjson never writes a raw control byte itself), then split there. (Many
    small orjson results kept alive at once are slow to allocate; one big one is not.)"""
    out = [_ROW_SEP] * (2 * len(rows) - 1)
    out[::2] = rows
    try:
        return orjson.dumps(out)[1:-1].split(b",\x1e,")
    except orjson.JSONEncodeError:
        return [bytes(encode_record(r)) for r in rows]


def encode_columns(columns: dict[str, list], n: int) -> list[bytes]:
    """The JSONL lines (bytes, no newline) of ``n`` validated records given as columns,
    byte-identical to :func:`encode_record` of each record as a dict (keys in column order; a
    ``None`` in a column leaves that key out of that record)."""
    if not n:
        return []
    keys = list(columns)
    cols = list(columns.values())
    if any(None in col for col in cols):
        return _split_rows([{k: v for k, v in zip(keys, vals) if v is not None} for vals in zip(*cols)])
    # No dicts: one orjson call over the values interleaved with pre-encoded key fragments
    # marked by raw \x1e/\x1f bytes (never in orjson's own output), whose stray commas are
    # then cut: [\x1e{"k0":\x1f,v0,"k1":\x1f,v1,\x1e{"k0":\x1f,...,v1,\x1e] -> rows.
    m = len(cols)
    ks = [orjson.dumps(k) for k in keys]
    out = [orjson.Fragment(b"\x1e{" + ks[0] + b":\x1f")] * (2 * m * n)
    for j, col in enumerate(cols):
        out[2 * j + 1::2 * m] = col
        if j:
            out[2 * j::2 * m] = [orjson.Fragment(ks[j] + b":\x1f")] * n
    out.append(_ROW_SEP)
    try:
        text = orjson.dumps(out)
    except orjson.JSONEncodeError:
        return _split_rows([dict(zip(keys, vals)) for vals in zip(*cols)])
    return text.replace(b"\x1f,", b"").replace(b",\x1e", b"}\n")[2:-2].split(b"\n")


@dataclass
class StreamResult:
    output: Path
    written: int = 0
    rows: int = 0
    skipped: int = 0
    reasons: list[str] = field(default_factory=list)
    """The first few skipped rows: ``file:line: field 'x': reason``."""
    seconds: float = 0.0

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"output": str(self.output), "written": self.written, "rows": self.rows, "skipped": self.skipped,
                "reasons": self.reasons, "seconds": round(self.seconds, 3)}


# --- the per-row path ------------------------------------------------------------------------

def _where_of(exc: BaseException) -> str:
    return getattr(exc, "where", None) or ""


def _locate_undecodable(where: str) -> str:
    """``"file: byte offset N (line L): cannot decode ..."`` for the first undecodable byte at or
    after the line ``where`` ("file:line") names; ``where`` itself when that cannot be found."""
    path, _, line = where.rpartition(":")
    if not line.isdigit() or not Path(path).is_file():
        return where
    offset = 0
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            if n >= int(line):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    return (f"{path}: byte offset {offset + e.start} (line {n}): cannot decode byte(s) "
                            f"{raw[e.start:e.end]!r} as utf-8 ({e.reason})")
            offset += len(raw)
    return where


def convert_rows(
    converter: Converter,
    rows: Iterable[RawRow | RowError],
    fmt: str,
    *,
    language: str | None = None,
    on_error: str = "fail",
    result: StreamResult | None = None,
) -> Iterator[dict]:
    """Validated JSONL objects for ``rows``; bad rows raise (fail) or are counted (skip)."""
    if on_error not in ("fail", "skip"):
        raise UsageError(f"--on-error must be 'skip' or 'fail', got {on_error!r}")
    res = result if result is not None else StreamResult(Path("-"))
    skip = on_error == "skip"

    def bad(exc: Exception, where: str) -> None:
        if isinstance(exc, RowError):
            err = exc if exc.where else RowError(exc.reason, exc.field, where=where)
        elif isinstance(exc, RecordError):
            err = RowError(exc.reason, exc.field, where=where)
        elif isinstance(exc, KeyError):
            err = RowError("missing", str(exc.args[0]) if exc.args else None, where=where)
        else:
            err = RowError(f"{type(exc).__name__}: {exc}", None, where=where)
        if not skip:
            raise DataError(f"{err.describe()}. Fix the row, or pass --on-error skip to skip bad rows.") from None
        res.skipped += 1
        if len(res.reasons) < MAX_REASONS:
            res.reasons.append(err.describe())

    convert = converter.convert
    it = iter(rows)
    while True:
        try:
            row = next(it)
        except StopIteration:
            return
        except RowError as exc:  # raised by the reader: it cannot go on (yield RowError to continue)
            res.rows += 1
            bad(exc, _where_of(exc))
            print(f"voltx: warning: the reader of {converter.name!r} stopped after a bad row ({exc.describe()}); "
                  "later rows of that input were not read", file=sys.stderr)
            return
        res.rows += 1
        if isinstance(row, RowError):
            bad(row, row.where or "")
            continue
        raw = undecodable(row.data)
        if raw is not None:  # a line that is not UTF-8 (kept by the reader as lone surrogates)
            if not skip:
                raise DataError(f"{_locate_undecodable(row.where)}. Re-encode the file as UTF-8 (e.g. iconv -f latin1 "
                                "-t utf-8), or pass --on-error skip to skip the lines that are not UTF-8.")
            bad(RowError(f"not UTF-8: cannot decode byte(s) {raw!r}", None, where=row.where), row.where)
            continue
        try:
            for record in convert(row, fmt, language):
                yield record_to_dict(fmt, record)
        except (RowError, RecordError, KeyError, ValueError, TypeError, IndexError) as exc:
            if isinstance(exc, DataError) and not isinstance(exc, (RowError, RecordError)):
                raise
            bad(exc, row.where)
