"""The batched paths of :func:`voltx.data.stream.stream`, for converters with a fast path.

Two tiers, tried per batch, each falling back to the next and finally to the per-row path
(:func:`voltx.data.row_encoding.convert_rows`), which is the one that decides about and reports bad
rows (file:line, field) — so every tier writes the same bytes and the same errors:

1. Arrow (``Converter.convert_arrow`` over ``datasets``' Arrow batches): the output table is
   validated with ``pyarrow.compute`` and encoded to JSONL without Python objects
   (:mod:`voltx.data.arrow_json`); a table with floats or dicts goes through tier 2's checks
   and encoder instead.
2. Python columns (``Converter.convert_batch`` over ``{column: [values]}`` batches):
   :func:`~voltx.data.formats.check_columns` +
   :func:`~voltx.data.row_encoding.encode_columns` (orjson).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

from voltx.data.converter import Converter, batch_rows
from voltx.data.formats import check_columns
from voltx.data.row_encoding import convert_rows, encode_columns, encode_record
from voltx.errors import MissingInputError

WRITE_BUFFER = 1 << 16  # bytes buffered before a write

Batch = tuple[Any, str, int, Callable | None]
"""``(data, where_prefix, start, to_columns)``: ``data`` is a pyarrow Table when ``to_columns``
(Table -> Python columns) is given, else already ``{column: [values]}``."""


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
