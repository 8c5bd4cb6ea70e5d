"""The batched paths of :func:`voltx.data.stream.stream`, for converters with a fast path.

Two tiers, tried per batch, each falling back to the next and finally to the per-row path
(:func:`voltx.data.stream.convert_rows`), which is the one that decides about and reports bad
rows (file:line, field) — so every tier writes the same bytes and the same errors:

1. Arrow (``Converter.convert_arrow`` over ``datasets``' Arrow batches): the output table is
   validated with ``pyarrow.compute`` and encoded to JSONL without Python objects
   (:mod:`voltx.data.arrow_json`); a table with floats or dicts goes through tier 2's checks
   and encoder instead.
2. Python columns (``Converter.convert_batch`` over ``{column: [values]}`` batches):
   :func:`~voltx.data.formats.check_columns` + :func:`encode_columns` (orjson).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import orjson

from voltx.data.converter import Converter, batch_rows
from voltx.data.formats import check_columns
from voltx.data.stream import convert_rows, encode_record
from voltx.errors import MissingInputError

WRITE_BUFFER = 1 << 16  # bytes buffered before a write

Batch = tuple[Any, str, int, Callable | None]
"""``(data, where_prefix, start, to_columns)``: ``data`` is a pyarrow Table when ``to_columns``
(Table -> Python columns) is given, else already ``{column: [values]}``."""


# --- the Python columns' encoder -----------------------------------------------------------------

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


# --- reading and writing batches ---------------------------------------------------------------

def _overrides(converter: Converter, method: str) -> bool:
    return getattr(type(converter), method, None) not in (None, getattr(Converter, method))


def _as_batches(columns_batches: Iterator[tuple[dict, str, int]]) -> Iterator[Batch]:
    for columns, prefix, start in columns_batches:
        yield columns, prefix, start, None


def read_batches(converter: Converter, split: str, data_files: list[Path] | None,
                 language: str | None) -> Iterator[Batch] | None:
    """Batches when ``converter`` has a fast path (``convert_arrow`` / ``convert_batch``) and its
    source is a ``datasets`` stream (Arrow batches preferred); None: read row by row."""
    arrow, columnar = _overrides(converter, "convert_arrow"), _overrides(converter, "convert_batch")
    if not (arrow or columnar):
        return None
    if data_files:
        missing = [str(p) for p in data_files if not Path(p).exists()]
        if missing:
            raise MissingInputError(f"no such file: {', '.join(missing)}")
        paths = [Path(p) for p in data_files]
        readers = [("read_local_arrow", False), ("read_local_batches", True)]
        args: tuple = (paths, split)
    elif getattr(converter, "generator", False):
        return None
    else:
        readers = [("read_hub_arrow", False), ("read_hub_batches", True)]
        args = (split, language)
    for method, wrap in readers:
        reader = getattr(converter, method, None)
        if reader is None or (not wrap and not arrow):
            continue
        batches = reader(*args)
        if batches is not None:
            return _as_batches(batches) if wrap else batches
    return None


def write_batches(converter, batches: Iterator[Batch], fmt, language, on_error, result, fh, buf: bytearray, bar,
                  max_examples: int | None) -> None:
    """Convert, check and write every batch (see the module docstring); stops at ``max_examples``."""
    for data, prefix, start, to_columns in batches:
        n = data.num_rows if to_columns is not None else (len(next(iter(data.values()))) if data else 0)
        if not n:
            continue
        if to_columns is not None:
            # One record per row: a capped batch converts only the rows it needs.
            cut = n if max_examples is None else min(n, max_examples - result.written)
            if not _write_arrow(converter, data.slice(0, cut) if cut < n else data, cut, fmt, language, result, buf):
                _write_columns(converter, to_columns(data), n, prefix, start, fmt, language, on_error, result, buf,
                               max_examples)
        else:
            _write_columns(converter, data, n, prefix, start, fmt, language, on_error, result, buf, max_examples)
        if len(buf) >= WRITE_BUFFER:
            fh.write(buf)
            buf.clear()
            bar.update(result.rows, result.written, result.skipped)
        if max_examples is not None and result.written >= max_examples:
            return


def _write_arrow(converter, table, n: int, fmt, language, result, buf: bytearray) -> bool:
    """Tier 1 for one Arrow batch of ``n`` rows; False (nothing written): take the per-row path."""
    from voltx.data import arrow_json  # pyarrow: only on this path (generators never need it)

    try:
        out = converter.convert_arrow(table, fmt, language)
        if out is None:
            return False
        if hasattr(out, "combine_chunks"):  # a Table: one RecordBatch of contiguous columns
            out = out.combine_chunks()
            batches = out.to_batches()
            out = batches[0] if len(batches) == 1 else None
        if out is None or out.num_rows != n:
            return False
        if arrow_json.records_ok(fmt, out):
            buf += arrow_json.lines_bytes(arrow_json.encode_batch(out))
        else:  # floats, dicts, or an invalid record: the Python columns' checks and encoder decide
            columns = out.to_pydict()
            if not check_columns(fmt, columns, n):
                return False
            buf += b"\n".join(encode_columns(columns, n))
            buf += b"\n"
    except Exception:  # noqa: BLE001 - the per-row path reports (or re-raises) it precisely
        return False
    result.rows += n
    result.written += n
    return True


def _write_columns(converter, columns: dict, n: int, prefix: str, start: int, fmt, language, on_error, result,
                   buf: bytearray, max_examples: int | None) -> None:
    """Tier 2 for one batch of Python columns, else the per-row path for it."""
    try:
        out = converter.convert_batch(columns, fmt, language)
    except Exception:  # noqa: BLE001 - the per-row path reports (or re-raises) it precisely
        out = None
    if out is not None and check_columns(fmt, out, n):
        lines = encode_columns(out, n)
        if max_examples is not None and max_examples - result.written < n:
            lines = lines[: max_examples - result.written]
        result.rows += len(lines)
        result.written += len(lines)
        buf += b"\n".join(lines)
        buf += b"\n"
        return
    records = convert_rows(converter, batch_rows(columns, prefix, start), fmt, language=language,
                           on_error=on_error, result=result)
    try:
        for rec in records:
            buf += encode_record(rec)
            buf += b"\n"
            result.written += 1
            if max_examples is not None and result.written >= max_examples:
                break
    finally:
        records.close()
