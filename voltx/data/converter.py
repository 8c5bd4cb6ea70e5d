"""The converter protocol (docs/data-contracts.md): one :class:`Converter` subclass per dataset.

A converter reads a dataset either from the Hugging Face Hub (:meth:`Converter.read_hub`,
streamed, default implementation here) or from local files in the dataset's ORIGINAL format
(:meth:`Converter.read_local`), and turns each :class:`RawRow` into 0..n records of a Volt
format (:meth:`Converter.convert`). The streaming core (:mod:`voltx.data.stream`) validates,
writes, counts and reports; converters only parse.

Bad rows: raise :class:`RowError` from ``convert`` (the core adds the row's ``file:line``), or
from ``read_local`` *yield* ``RowError(reason, field, where="file:17")`` so that reading goes
on in ``--on-error skip`` mode (a *raised* RowError ends that reader: Python cannot resume a
generator that raised). ``KeyError`` / ``ValueError`` / ``TypeError`` escaping ``convert`` are
treated as row errors too. A file that is not this dataset's format at all: raise
``DataError``. Bytes that are not UTF-8: the line helpers here (:func:`numbered_lines`,
:func:`lines`, :func:`tsv_rows`, :func:`open_text`) keep them as lone surrogates, and the core
treats a row holding any (:func:`undecodable`) as a bad row, so ``--on-error skip`` skips and
counts such lines and reading goes on; a ``UnicodeDecodeError`` from a reader that decodes
strictly is reported by the core with the file and byte offset.

Optional fast paths, one record per input row, same records as ``convert``:
:meth:`Converter.convert_arrow` (Arrow batches in, an Arrow table out; validated and encoded
vectorised by :mod:`voltx.data.arrow_json`) and :meth:`Converter.convert_batch` (Python columns).

Generators (``voltx data generate``) are converters with ``generator = True`` and
``hub_name = None``; their ``read_local([], split)`` produces rows from ``self.seed`` and
``self.count``.

Nothing here imports ``datasets`` at module top (``stream_hf`` imports it when called).
"""

from __future__ import annotations

import gzip
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from voltx.errors import DataError, MissingInputError, UsageError

HUB_BATCH_SIZE = 1000


class RowError(DataError):
    """One bad row: ``reason`` and the ``field`` at fault; the core adds ``where`` (file:line)."""

    def __init__(self, reason: str, field: str | None = None, *, where: str | None = None):
        self.reason = reason
        self.field = field
        self.where = where
        super().__init__(self.describe())

    def describe(self) -> str:
        parts = []
        if self.where:
            parts.append(self.where)
        if self.field:
            parts.append(f"field {self.field!r}")
        return ": ".join([*parts, self.reason])


@dataclass
class RawRow:
    """A row as read, with where it came from."""

    data: dict
    where: str
    """``"path/to/file.tsv:17"`` or ``"hub:scan/length/train#17"``."""


def _open_hf(path_or_name: str, config: str | None, split: str, data_files: Any):
    """``datasets.load_dataset(..., streaming=True)``, its failures as voltx errors (no traceback)."""
    import datasets  # heavy: only when a dataset is really read

    kwargs: dict[str, Any] = {"split": split, "streaming": True}
    if data_files is not None:
        kwargs["data_files"] = [str(p) for p in data_files] if isinstance(data_files, (list, tuple)) else str(data_files)
    try:
        return datasets.load_dataset(path_or_name, config, **kwargs)
    except FileNotFoundError as exc:
        raise MissingInputError(f"cannot open dataset {path_or_name!r}: {exc}") from None
    except (ConnectionError, OSError) as exc:
        raise MissingInputError(
            f"cannot reach dataset {path_or_name!r} on the Hugging Face Hub ({type(exc).__name__}: {exc}). "
            "Check the network, or download the original files and pass --data-files."
        ) from None
    except ValueError as exc:  # bad split / config names
        raise UsageError(f"cannot stream {path_or_name!r} (config {config!r}, split {split!r}): {exc}") from None
    except Exception as exc:  # DatasetNotFoundError and friends: no traceback for the user
        raise MissingInputError(f"cannot stream dataset {path_or_name!r} ({type(exc).__name__}: {exc})") from None


def _nonempty_batches(batches: Iterator, size_of, path_or_name: str, split: str, data_files: Any) -> Iterator:
    """``batches`` without empty ones; a failure mid-stream as a DataError (no traceback)."""
    n = 0
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # a corrupt file or a dropped connection mid-stream: no traceback
            where = f"{data_files}" if data_files is not None else f"hub:{path_or_name}"
            raise DataError(f"reading {where} (split {split!r}) failed after {n} rows: {type(exc).__name__}: {exc}") from None
        size = size_of(batch)
        if not size:
            continue
        n += size
        yield batch


def stream_hf_batches(
    path_or_name: str,
    config: str | None,
    split: str,
    data_files: Any = None,
    *,
    batch_size: int = HUB_BATCH_SIZE,
) -> Iterator[dict[str, list]]:
    """Batches (``{column: [values]}``, as ``ds.iter(batch_size=...)`` yields them) of a ``datasets``
    streaming dataset; empty batches are left out.

    ``path_or_name`` is a Hub id, or a packaged builder (``"json"``, ``"parquet"``, ``"csv"``)
    with ``data_files`` pointing at local files: the same code path either way.
    """
    ds = _open_hf(path_or_name, config, split, data_files)
    size_of = lambda batch: len(next(iter(batch.values()))) if batch else 0  # noqa: E731
    yield from _nonempty_batches(ds.iter(batch_size=batch_size), size_of, path_or_name, split, data_files)


def stream_hf_arrow(
    path_or_name: str,
    config: str | None,
    split: str,
    data_files: Any = None,
    *,
    batch_size: int = HUB_BATCH_SIZE,
) -> Iterator[tuple[Any, Callable[[Any], dict[str, list]]]]:
    """The same stream as :func:`stream_hf_batches` (same ``load_dataset`` call, same batches), as
    ``pyarrow.Table`` batches (``ds.with_format("arrow").iter(...)``): no value becomes a Python
    object unless asked. Yields ``(table, to_columns)``; ``to_columns(table)`` is the batch as
    :func:`stream_hf_batches` gives it (``datasets``' Python formatter, features decoded).
    """
    from datasets.formatting import PythonFormatter

    ds = _open_hf(path_or_name, config, split, data_files)
    to_columns = PythonFormatter(features=ds.features).format_batch
    tables = ds.with_format("arrow").iter(batch_size=batch_size)
    for table in _nonempty_batches(tables, lambda t: t.num_rows, path_or_name, split, data_files):
        yield table, to_columns


def stream_hf(
    path_or_name: str,
    config: str | None,
    split: str,
    data_files: Any = None,
    *,
    batch_size: int = HUB_BATCH_SIZE,
) -> Iterator[dict]:
    """Rows (dicts) of a ``datasets`` streaming dataset, read in batches of ``batch_size``
    (see :func:`stream_hf_batches`)."""
    for batch in stream_hf_batches(path_or_name, config, split, data_files, batch_size=batch_size):
        keys = list(batch)
        for values in zip(*batch.values()):
            yield dict(zip(keys, values))


def batch_rows(columns: dict[str, list], prefix: str, start: int) -> Iterator[RawRow]:
    """The RawRows of one batch of columns (row ``i`` is at ``f"{prefix}{start + i}"``)."""
    keys = list(columns)
    for i, values in enumerate(zip(*columns.values()), start):
        yield RawRow(dict(zip(keys, values)), f"{prefix}{i}")


# Undecodable bytes survive reading as lone surrogates U+DC80..U+DCFF (errors="surrogateescape"),
# so one bad line does not end the reader; the core rejects or skips the row that holds them.
_ESCAPED = re.compile("[\udc80-\udcff]+")


def open_text(path: str | os.PathLike) -> io.TextIOBase:
    """A text handle on ``path`` (gzip if it ends in .gz), UTF-8 with undecodable bytes kept
    as lone surrogates (see :func:`undecodable`); MissingInputError if absent."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: no such file")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="surrogateescape", newline="")
    return open(path, encoding="utf-8", errors="surrogateescape", newline="")


def undecodable(value: Any) -> bytes | None:
    """The first run of undecodable bytes in a row's strings (nested dicts/lists/tuples
    searched), or None when every string is clean text."""
    if isinstance(value, str):
        if value.isascii():
            return None
        m = _ESCAPED.search(value)
        return m.group().encode("utf-8", "surrogateescape") if m else None
    if isinstance(value, dict):
        value = value.values()
    elif not isinstance(value, (list, tuple)):
        return None
    for item in value:
        if isinstance(item, str) and item.isascii():
            continue  # the common case, without a call per value
        found = undecodable(item)
        if found is not None:
            return found
    return None


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 text file, newline stripped (undecodable bytes kept
    as lone surrogates: see :func:`undecodable`)."""
    with open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            yield n, line.rstrip("\r\n")


def tsv_rows(path: Path, ok, what: str, skip_header=None) -> Iterator["RawRow"]:
    """Tab-separated lines, quoting off, as RawRow({"fields": [...]}); blank lines skipped.

    The first 20 data lines are sniffed: if none satisfies ``ok(fields)`` the file is not
    this format (DataError naming it). Malformed lines later on are yielded as they are and
    the converter's ``convert`` raises RowError for them, so skip mode keeps reading.
    ``skip_header(fields)`` drops a header line when it returns True for the first line.
    """
    head: list[tuple[int, list[str]]] = []
    checked, first = False, True

    def sniff() -> None:
        if head and not any(ok(f) for _, f in head):
            raise DataError(f"{path}: not {what} (first line: {chr(9).join(head[0][1])[:80]!r})")

    for n, line in numbered_lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if first:
            first = False
            if skip_header is not None and skip_header(fields):
                continue
        if checked:
            yield RawRow({"fields": fields}, f"{path}:{n}")
            continue
        head.append((n, fields))
        if len(head) >= 20:
            sniff()
            checked = True
            for hn, hf in head:
                yield RawRow({"fields": hf}, f"{path}:{hn}")
    if not checked:
        sniff()
        for hn, hf in head:
            yield RawRow({"fields": hf}, f"{path}:{hn}")


def require_format(conv: "Converter", fmt: str) -> None:
    """DataError unless ``conv`` produces ``fmt``."""
    if fmt not in conv.formats:
        raise DataError(f"converter {conv.name!r} cannot produce format {fmt!r}; it produces {', '.join(conv.formats)}")


def require_str(value, field: str) -> str:
    """``value`` stripped, or RowError naming ``field`` when it is not a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise RowError(f"expected a non-empty string, got {value!r}", field)
    return value.strip()


def lines(path: Path, encoding: str = "utf-8") -> Iterator[tuple[str, str]]:
    """``(where, line)`` for each line of a text file (line numbers from 1, newline stripped).

    A helper for ``read_local``: ``for where, line in lines(path): ...``. Undecodable bytes are
    kept as lone surrogates, and the core rejects (or under ``--on-error skip`` skips) the row
    that holds them.
    """
    with open(path, encoding=encoding, errors="surrogateescape", newline="") as fh:
        for i, line in enumerate(fh, 1):
            yield f"{path}:{i}", line.rstrip("\r\n")


class Converter:
    """Base class; one subclass per dataset. See the module docstring for the error protocol."""

    name: str = ""
    """Registered name (``scan``, ``stsb``, ...)."""
    formats: tuple[str, ...] = ()
    """Formats it can produce; the first is the default."""
    hub_name: str | None = None
    """Hugging Face Hub id for streaming, if any."""
    hub_config: str | None = None
    hub_data_files: Any = None
    """Passed to ``load_dataset(data_files=...)`` by the default ``read_hub`` (tests point it at local files)."""
    splits: tuple[str, ...] = ("train",)
    generator: bool = False
    """True for ``voltx data generate`` sources: ``read_local([], split)`` makes rows from seed/count."""
    seed: int = 0
    count: int | None = None

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow | RowError]:
        """Parse the dataset's ORIGINAL files (TSV/CSV/XML/CoNLL-U/text) into RawRows."""
        raise UsageError(f"dataset {self.name!r} cannot read local files; stream it from the Hub (leave out --data-files)")

    def read_hub(self, split: str, language: str | None) -> Iterator[RawRow]:
        """Stream ``hub_name`` / ``hub_config`` / ``split`` from the Hub, in batches of 1000."""
        if not self.hub_name:
            raise UsageError(f"dataset {self.name!r} has no Hugging Face Hub copy; pass its files with --data-files")
        prefix = self._hub_prefix(split)
        for i, row in enumerate(stream_hf(self.hub_name, self.hub_config, split, self.hub_data_files)):
            yield RawRow(row, f"{prefix}{i}")

    def _hub_prefix(self, split: str) -> str:
        return f"hub:{self.hub_name}/{self.hub_config + '/' if self.hub_config else ''}{split}#"

    def read_hub_batches(self, split: str, language: str | None) -> Iterator[tuple[dict[str, list], str, int]] | None:
        """The columnar twin of :meth:`read_hub`: ``(columns, where_prefix, start_index)`` per batch,
        row ``i`` of a batch being at ``f"{where_prefix}{start_index + i}"`` (the same ``where`` as
        read_hub gives it). None when this converter's Hub rows are not a plain ``datasets`` stream
        (a subclass that overrides ``read_hub`` but not this): the core then reads row by row.
        """
        if type(self).read_hub is not Converter.read_hub:
            return None
        if not self.hub_name:
            raise UsageError(f"dataset {self.name!r} has no Hugging Face Hub copy; pass its files with --data-files")
        return self._hub_batches(split)

    def _hub_batches(self, split: str) -> Iterator[tuple[dict[str, list], str, int]]:
        prefix = self._hub_prefix(split)
        start = 0
        for batch in stream_hf_batches(self.hub_name, self.hub_config, split, self.hub_data_files):  # type: ignore[arg-type]
            yield batch, prefix, start
            start += len(next(iter(batch.values())))

    def read_hub_arrow(self, split: str, language: str | None) -> Iterator[tuple[Any, str, int, Callable]] | None:
        """The Arrow twin of :meth:`read_hub_batches` (same stream, see :func:`stream_hf_arrow`):
        ``(table, where_prefix, start_index, to_columns)`` per batch. None when the Hub rows are not
        a plain ``datasets`` stream (``read_hub`` overridden)."""
        if type(self).read_hub is not Converter.read_hub:
            return None
        if not self.hub_name:
            raise UsageError(f"dataset {self.name!r} has no Hugging Face Hub copy; pass its files with --data-files")
        return self._hub_arrow(split)

    def _hub_arrow(self, split: str) -> Iterator[tuple[Any, str, int, Callable]]:
        prefix = self._hub_prefix(split)
        start = 0
        for table, to_columns in stream_hf_arrow(self.hub_name, self.hub_config, split, self.hub_data_files):  # type: ignore[arg-type]
            yield table, prefix, start, to_columns
            start += table.num_rows

    def read_local_arrow(self, paths: list[Path], split: str) -> Iterator[tuple[Any, str, int, Callable]] | None:
        """Arrow twin of :meth:`read_local_batches`; None (the default): no Arrow path for local files."""
        return None

    def read_local_batches(self, paths: list[Path], split: str) -> Iterator[tuple[dict[str, list], str, int]] | None:
        """Columnar twin of :meth:`read_local` for converters whose local files are read with
        ``stream_hf`` (json/parquet/csv); None (the default): read row by row."""
        return None

    def convert_batch(self, columns: dict[str, list], fmt: str, language: str | None) -> dict[str, list] | None:
        """Optional columnar fast path: a batch of input columns (as ``ds.iter(batch_size=N)`` yields
        them) -> output columns of format ``fmt``, exactly ONE record per input row, columns in the
        key order :meth:`convert` gives its records (a ``None`` in an optional column leaves that key
        out, like a dataclass record's ``to_dict``). The records must be the ones ``convert`` would
        produce for the same rows: the core writes the same bytes either way.

        Return None (the default: no fast path) to have that batch converted row by row, e.g. when
        some row is bad (``convert`` then reports it with its file:line and field) or does not map
        to exactly one record. The core validates the output columns and falls back to the per-row
        path for any batch with an invalid record.
        """
        return None

    def convert_arrow(self, table: Any, fmt: str, language: str | None) -> Any:
        """Optional Arrow-columnar fast path, tried before :meth:`convert_batch`: a ``pyarrow.Table``
        batch of input rows -> a ``pyarrow.Table`` or ``RecordBatch`` of output fields of ``fmt``,
        exactly ONE record per input row, columns in the key order :meth:`convert` gives its records
        (a null in an optional column leaves that key out). Meant for mappings that are column
        selection, renaming or ``pyarrow.compute`` expressions; the records must be the ones
        ``convert`` would produce for the same rows (the core writes the same bytes either way).

        The core validates the output column-wise and encodes it without Python objects where it
        can (strings, integers, lists of strings), through the Python columnar path otherwise
        (floats, dicts), and converts any batch with an invalid record row by row, which reports
        it with its file:line and field. Return None to have a batch converted row by row.
        """
        return None

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Any]:
        """0..n records (dataclasses of ``fmt`` from voltx.data.formats, or plain dicts) for one row."""
        raise NotImplementedError(f"{type(self).__name__}.convert")
