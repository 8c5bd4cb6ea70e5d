"""The streaming core behind ``voltx data stream|convert|generate`` (and ``mix``'s writer).

``stream(converter, fmt, output, ...)`` reads rows (Hub or local files), converts and
validates them, and writes JSONL in batches to a temporary file in the output's directory,
renamed over ``output`` only when everything succeeded: an error, ``--on-error fail`` on a
bad row, or Ctrl-C leaves no partial file and never touches an existing ``output``.
Converters with a columnar or Arrow fast path are written by :mod:`voltx.data.batched`, with
the same bytes and the same errors as the per-row path; both convert and encode rows with
:mod:`voltx.data.row_encoding`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from voltx.data.batched import read_batches, write_batches
from voltx.data.converter import Converter, RawRow, RowError
from voltx.data.formats import FORMATS
from voltx.data.row_encoding import StreamResult, convert_rows, encode_record
from voltx.errors import CantCreateError, DataError, MissingInputError, UsageError, closest

WRITE_BATCH = 1000
_dumps = orjson.dumps  # the per-row fast path; encode_record takes what orjson declines
_JSONEncodeError = orjson.JSONEncodeError


# --- atomic output --------------------------------------------------------------------------

@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """A file handle on a temporary sibling of ``path``, renamed to ``path`` on success only."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        os.fchmod(fd, _new_file_mode())  # mkstemp makes 0600; a dataset gets the mode any new file would
    except OSError as exc:
        raise CantCreateError(f"cannot create {path}: {exc.strerror or exc}") from None
    try:
        kwargs = {"encoding": "utf-8", "newline": "\n"} if "b" not in mode else {}
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _new_file_mode() -> int:
    """0666 less the process umask: what ``open(path, "w")`` would have given the file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


# --- progress -------------------------------------------------------------------------------

class Progress:
    """Rows and rows/s on stderr: rich on a TTY, one plain line every few seconds otherwise."""

    def __init__(self, label: str, *, enabled: bool = True, stream=None, interval: float = 5.0):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interval = interval
        self.start = time.perf_counter()
        self._last = self.start
        self._rich = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import Progress as RichProgress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._rich = RichProgress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                      console=Console(file=self.stream), transient=False)
            self._rich.start()
            self._task = self._rich.add_task(label)

    def _text(self, rows: int, written: int, skipped: int) -> str:
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        text = f"{self.label}: {rows:,} rows, {written:,} records, {rows / elapsed:,.0f} rows/s"
        return text + (f", {skipped:,} skipped" if skipped else "")

    def update(self, rows: int, written: int, skipped: int) -> None:
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, description=self._text(rows, written, skipped))
            return
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            print(self._text(rows, written, skipped), file=self.stream, flush=True)

    def close(self, rows: int, written: int, skipped: int, *, ok: bool = True) -> None:
        """Stop the rich bar (plain mode prints nothing more: the caller prints the summary)."""
        if self._rich is not None:
            self._rich.update(self._task, description=self._text(rows, written, skipped))
            self._rich.stop()


# --- resolving names ------------------------------------------------------------------------

def get_converter(name: str, plugins=None) -> Converter:
    """Instantiate the registered converter ``name`` (UsageError listing the valid names)."""
    from voltx.plugins import load_plugins
    from voltx.plugin_specs import resolve

    ps = plugins if plugins is not None else load_plugins()
    try:
        spec = ps.get("converters", name)
    except UsageError as exc:
        raise UsageError(str(exc).replace("unknown converter", "unknown dataset", 1) + " See `voltx data list`.") from None
    conv = resolve(spec.factory)()
    if not getattr(conv, "name", ""):
        conv.name = spec.name
    if not getattr(conv, "formats", ()):
        conv.formats = tuple(spec.formats)
    if getattr(conv, "hub_name", None) is None and spec.hub_name:
        conv.hub_name = spec.hub_name
    return conv


def check_format(converter: Converter, fmt: str | None) -> str:
    """The format to write: ``fmt`` if this converter produces it, else its first format."""
    formats = tuple(converter.formats)
    if fmt is None:
        if not formats:
            raise UsageError(f"dataset {converter.name!r} declares no formats")
        return formats[0]
    if fmt not in formats:
        pool = formats if fmt in FORMATS else tuple(FORMATS)
        hint = closest(fmt, pool)
        what = f"dataset {converter.name!r} cannot produce format {fmt!r}" if fmt in FORMATS else f"unknown record format {fmt!r}"
        raise UsageError(
            what + (f" (did you mean {hint!r}?)" if hint else "")
            + f". Formats of {converter.name!r}: {', '.join(formats) or 'none'}; all formats: {', '.join(FORMATS)}."
        )
    return fmt


# --- the core -------------------------------------------------------------------------------

def _decode_error(exc: UnicodeDecodeError, paths: list[Path]) -> DataError:
    """A DataError naming the file, byte offset and line of the first undecodable byte."""
    codec = exc.encoding or "utf-8"
    for path in paths:
        try:
            data = Path(path).read_bytes()
            data.decode(codec)
        except UnicodeDecodeError as e:
            line = data.count(b"\n", 0, e.start) + 1
            return DataError(
                f"{path}: byte offset {e.start} (line {line}): cannot decode byte(s) {data[e.start:e.end]!r} as {codec} "
                f"({e.reason}). Re-encode the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)."
            )
        except (OSError, LookupError):
            continue
    return DataError(f"input is not valid {codec} at byte offset {exc.start}: {exc.reason}")


def read_rows(converter: Converter, split: str, data_files: list[Path] | None, language: str | None) -> Iterable:
    if data_files:
        missing = [str(p) for p in data_files if not Path(p).exists()]
        if missing:
            raise MissingInputError(f"no such file: {', '.join(missing)}")
        return converter.read_local([Path(p) for p in data_files], split)
    if getattr(converter, "generator", False):
        return converter.read_local([], split)
    return converter.read_hub(split, language)


def stream(
    converter: Converter,
    fmt: str | None,
    output: str | os.PathLike,
    *,
    split: str = "train",
    data_files: list[str | os.PathLike] | None = None,
    language: str | None = None,
    max_examples: int | None = None,
    on_error: str = "fail",
    allow_empty: bool = False,
    progress: bool | None = None,
    rows: Iterable[RawRow | RowError] | None = None,
) -> StreamResult:
    """Convert a dataset to ``output`` (JSONL), atomically. Returns counts and skipped reasons.

    ``progress``: None shows it (to stderr), False hides it. ``rows`` overrides the reader
    (tests, generators). ``max_examples`` caps the number of records written.
    """
    fmt = check_format(converter, fmt)
    splits = tuple(getattr(converter, "splits", ()) or ())
    if splits and split not in splits and not data_files:
        raise UsageError(f"dataset {converter.name!r} has no split {split!r}. Splits: {', '.join(splits)}.")
    if max_examples is not None and max_examples < 1:
        raise UsageError(f"--max-examples must be at least 1, got {max_examples}")
    paths = [Path(p) for p in data_files] if data_files else []
    output = Path(output)
    result = StreamResult(output)
    bar = Progress(f"{converter.name} -> {output.name}", enabled=progress is not False)
    t0 = time.perf_counter()
    ok = False
    try:
        batches = read_batches(converter, split, paths, language) if rows is None else None
        if batches is not None:
            if on_error not in ("fail", "skip"):
                raise UsageError(f"--on-error must be 'skip' or 'fail', got {on_error!r}")
            records = None
        else:
            source = rows if rows is not None else read_rows(converter, split, paths, language)
            records = convert_rows(converter, source, fmt, language=language, on_error=on_error, result=result)
        with atomic_output(output, "wb") as fh:
            # A bytearray, not a list: many small orjson results kept alive at once are slow.
            buf = bytearray()
            try:
                if records is not None:
                    _write_records(records, result, fh, buf, bar, max_examples)
                else:
                    write_batches(converter, batches, fmt, language, on_error, result, fh, buf, bar, max_examples)
            except UnicodeDecodeError as exc:
                raise _decode_error(exc, paths) from None
            finally:
                for it in (records, batches):
                    close = getattr(it, "close", None)
                    if close:
                        close()
            if buf:
                fh.write(buf)
            if result.written == 0 and not allow_empty:
                raise _nothing_written(converter, paths, split, fmt, result)
        ok = True
    finally:
        result.seconds = time.perf_counter() - t0
        bar.close(result.rows, result.written, result.skipped, ok=ok)
    return result


def _write_records(records: Iterable[dict], result: StreamResult, fh, buf: bytearray, bar: Progress,
                   max_examples: int | None) -> None:
    """The per-row path's writer (:func:`~voltx.data.batched.write_batches` is the batched one):
    JSONL lines into ``buf``, flushed to ``fh`` every ``WRITE_BATCH`` records."""
    for rec in records:
        try:
            buf += _dumps(rec)
        except _JSONEncodeError:
            buf += encode_record(rec)
        buf += b"\n"
        result.written += 1
        if not result.written % WRITE_BATCH:
            fh.write(buf)
            buf.clear()
            bar.update(result.rows, result.written, result.skipped)
        if max_examples is not None and result.written >= max_examples:
            break


def _nothing_written(converter: Converter, paths: list[Path], split: str, fmt: str, result: StreamResult) -> DataError:
    extra = f" ({count_of(result.skipped, 'bad row')} skipped: {'; '.join(result.reasons)})" if result.skipped else ""
    src = ", ".join(map(str, paths)) if paths else (f"hub:{converter.hub_name}" if converter.hub_name else converter.name)
    return DataError(
        f"no records produced from {src} (split {split!r}, format {fmt!r}){extra}. "
        "Check --data-files/--split/--format, or pass --allow-empty to write an empty file."
    )


def summary(result: StreamResult) -> str:
    """The final lines the CLI prints: counts, and the first skipped rows' reasons."""
    text = (f"wrote {count_of(result.written, 'record')} to {Path(result.output).resolve()} ({count_of(result.rows, 'row')}, "
            f"{result.rows_per_s:,.0f} rows/s)")
    if result.skipped:
        text += f"\nskipped {count_of(result.skipped, 'bad row')}; first reasons:\n" + "\n".join(f"  {r}" for r in result.reasons)
    return text


def count_of(n: int, noun: str) -> str:
    """``1 record`` / ``2,000 records``: a count a user reads."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
