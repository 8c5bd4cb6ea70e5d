"""The streaming core behind ``voltx data stream|convert|generate`` (and ``mix``'s writer).

``stream(converter, fmt, output, ...)`` reads rows (Hub or local files), converts and
validates them, and writes JSONL in batches to a temporary file in the output's directory,
renamed over ``output`` only when everything succeeded: an error, ``--on-error fail`` on a
bad row, or Ctrl-C leaves no partial file and never touches an existing ``output``.
Converters with a columnar or Arrow fast path are written by :mod:`voltx.data.batched`, with
the same bytes and the same errors as the per-row path here.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from voltx.data.converter import Converter, RawRow, RowError, undecodable
from voltx.data.formats import FORMATS, RecordError, record_to_dict
from voltx.errors import CantCreateError, DataError, MissingInputError, UsageError, closest

WRITE_BATCH = 1000
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


# --- atomic output --------------------------------------------------------------------------

@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
    """A file handle on a temporary sibling of ``path``, renamed to ``path`` on success only."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
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
    from voltx.specs import resolve

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

def _where_of(exc: BaseException) -> str:
    return getattr(exc, "where", None) or ""


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
        # The batched fast paths live in voltx.data.batched, which builds on this module.
        from voltx.data.batched import read_batches, write_batches

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
                extra = f" ({count_of(result.skipped, 'bad row')} skipped: {'; '.join(result.reasons)})" if result.skipped else ""
                src = ", ".join(map(str, paths)) if paths else (f"hub:{converter.hub_name}" if converter.hub_name else converter.name)
                raise DataError(
                    f"no records produced from {src} (split {split!r}, format {fmt!r}){extra}. "
                    "Check --data-files/--split/--format, or pass --allow-empty to write an empty file."
                )
        ok = True
    finally:
        result.seconds = time.perf_counter() - t0
        bar.close(result.rows, result.written, result.skipped, ok=ok)
    return result


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
