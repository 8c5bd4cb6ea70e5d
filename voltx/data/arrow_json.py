"""Arrow-columnar validation and JSONL encoding for the streaming core's Arrow path.

A converter's :meth:`~voltx.data.converter.Converter.convert_arrow` returns its records as an
Arrow table (one column per output field, one row per record). :func:`records_ok` checks that
table against the record format with ``pyarrow.compute`` (nulls, empty or blank strings, types,
the paraphrase score/label rules); :func:`encode_batch` writes its JSONL lines without turning
a single value into a Python object, byte-identical to :func:`voltx.data.row_encoding.encode_record`
(orjson) of each record: compact separators, keys in column order, a null in an optional column
leaves that key out, strings escaped exactly as orjson escapes them (``\\"``, ``\\\\``,
``\\b \\f \\n \\r \\t``, other controls below 0x20 as ``\\u00xx`` in lower case, everything
else raw UTF-8, ``/`` and U+2028 included).

``records_ok`` is False for anything that is not certainly valid AND encodable here (floats,
whose shortest-repr formatting differs between Arrow and orjson; dicts and structs; an invalid
record): the caller then takes the Python path for that batch, which accepts or reports it
(file:line, field) as always. So this module only ever speeds up, never decides what is valid.
"""

from __future__ import annotations

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from voltx.data.formats import _T_INT, _T_LSTR, _T_NESTR, _T_NUM, _T_STR, _T_STRINT, FORMATS, Paraphrase, Record

# orjson's short escapes; backslash first so that later replacements are not escaped again.
_SHORT_ESCAPES = ((b"\\", "\\", "\\\\"), (b'"', '"', '\\"'), (b"\n", "\n", "\\n"), (b"\r", "\r", "\\r"),
                  (b"\t", "\t", "\\t"), (b"\x08", "\x08", "\\b"), (b"\x0c", "\x0c", "\\f"))
_OTHER_CONTROLS = [chr(c) for c in range(0x20) if chr(c) not in "\n\r\t\x08\x0c"]
# bytes.translate(None, this) keeps only the other control characters: a C-speed "any present?"
_ALL_BUT_OTHER = bytes(b for b in range(256) if chr(b) not in _OTHER_CONTROLS)


def _is_str(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _is_int(t: pa.DataType) -> bool:
    return pa.types.is_integer(t)


def _any(mask: pa.Array) -> bool:
    return bool(pc.any(mask).as_py())


def _blank(arr: pa.Array) -> bool:
    """True if some non-null value is empty or whitespace-only: what ``str.isspace`` calls
    whitespace, which ``utf8_is_space`` matches code point for code point (a test proves it)."""
    return _any(pc.utf8_is_space(arr)) or pc.min(pc.binary_length(arr)).as_py() == 0


def _column_ok(arr: pa.Array, tag: str, required: bool) -> bool:
    """True if every value is valid for ``tag`` AND encodable here (else: the Python path decides)."""
    if required and arr.null_count:
        return False
    t = arr.type
    if pa.types.is_null(t):
        return not required
    if tag == _T_STR:
        return _is_str(t)
    if tag == _T_NESTR:
        return _is_str(t) and not _blank(arr)
    if tag == _T_INT or tag == _T_NUM:  # integers only: float formatting differs from orjson's
        return _is_int(t)
    if tag == _T_STRINT:
        return _is_str(t) or _is_int(t)
    if tag == _T_LSTR:  # list<string> without null items
        return ((pa.types.is_list(t) or pa.types.is_large_list(t)) and _is_str(t.value_type)
                and pc.list_flatten(arr).null_count == 0)
    return False  # "dict" (and anything unusual): the Python path


def records_ok(fmt: str, batch: pa.RecordBatch) -> bool:
    """True if every row of ``batch`` is a valid ``fmt`` record that :func:`encode_batch` writes
    exactly as orjson would; False sends the batch to the Python path (which may still accept it)."""
    cls = FORMATS[fmt]
    names = batch.schema.names
    if len(set(names)) != len(names) or any(name not in names for name in cls.REQUIRED):
        return False
    for name, arr in zip(names, batch.columns):
        tag = cls.REQUIRED.get(name)
        required = tag is not None
        tag = tag or cls.OPTIONAL.get(name)
        if tag is None or not _column_ok(arr, tag, required):
            return False
    if cls is Paraphrase:  # the checks of Paraphrase._extra_checks, column-wise
        n = batch.num_rows
        score = batch.column("score") if "score" in names else pa.nulls(n)
        label = batch.column("label") if "label" in names else pa.nulls(n)
        if _any(pc.and_(pc.is_null(score), pc.is_null(label))):
            return False
        if len(score) != score.null_count:
            lo, hi = pc.min_max(score).values()
            if lo.as_py() < 0 or hi.as_py() > 5:
                return False
        labels = pc.drop_null(label)
        if len(labels) and not pc.all(pc.is_in(labels, pa.array([0, 1], label.type))).as_py():
            return False
        return True
    # A format check without an Arrow twin (slots of slot_annotated are dicts, rejected above).
    return cls._extra_checks.__func__ is Record._extra_checks.__func__


def _data(arr: pa.Array) -> memoryview:
    """The bytes of a string array's values, back to back (its data buffer's used span)."""
    width = 8 if pa.types.is_large_string(arr.type) else 4
    offsets = arr.buffers()[1]
    first = int.from_bytes(offsets[arr.offset * width:(arr.offset + 1) * width], "little")
    last_at = (arr.offset + len(arr)) * width
    last = int.from_bytes(offsets[last_at:last_at + width], "little")
    data = arr.buffers()[2]
    return memoryview(data)[first:last] if data is not None else memoryview(b"")


def escape_strings(arr: pa.Array) -> pa.Array:
    """Each string JSON-escaped as orjson escapes it, without the quotes (nulls stay null).

    Which characters occur is found by scanning the column's data buffer once per character
    (memchr speed); only those are replaced, column-wise. Most text needs no pass at all.
    """
    data = bytes(_data(arr))
    for raw, char, escaped in _SHORT_ESCAPES:
        if raw in data:
            arr = pc.replace_substring(arr, char, escaped)
    if data.translate(None, _ALL_BUT_OTHER):  # rare: a pass per control character present
        for char in _OTHER_CONTROLS:
            if char.encode() in data:
                arr = pc.replace_substring(arr, char, f"\\u{ord(char):04x}")
    return arr


def _json_values(arr: pa.Array) -> pa.Array:
    """The JSON text of each value of a column :func:`records_ok` accepted (nulls stay null)."""
    t = arr.type
    if _is_str(t):
        return pc.binary_join_element_wise('"', escape_strings(arr), '"', "")
    if _is_int(t):
        return pc.cast(arr, pa.string())
    # list<string>: escape the items, keep the list structure, join each list with commas; the
    # nulls are put back afterwards (from_arrays takes no null mask on a sliced array)
    items = pc.binary_join_element_wise('"', escape_strings(arr.values), '"', "")
    lists = pa.ListArray.from_arrays(arr.offsets, items)
    out = pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", "")
    return pc.if_else(pc.is_valid(arr), out, pa.scalar(None, pa.string())) if arr.null_count else out


def encode_batch(batch: pa.RecordBatch) -> pa.Array:
    """One string per row: its JSONL line including the newline (see the module docstring).

    One ``binary_join_element_wise`` over literal text and value columns: a never-null string
    column is spliced in between literal quotes; a column with nulls becomes a ``,"key":value``
    fragment, empty where null (the key left out).
    """
    pieces: list = []
    literal = ""  # text pending before the next column
    opened = comma_first = False
    for name, arr in zip(batch.schema.names, batch.columns):
        if pa.types.is_null(arr.type):
            continue  # an optional field that is null in every row: left out everywhere
        if pa.types.is_large_string(arr.type) or pa.types.is_large_list(arr.type):
            # one offset width for the joins below (a batch never nears 2 GiB; if it did, the
            # cast raises and the caller takes the Python path)
            arr = arr.cast(pa.string() if _is_str(arr.type) else pa.list_(pa.string()))
        key = orjson.dumps(name).decode("utf-8") + ":"
        if arr.null_count:
            comma_first = comma_first or not opened
            pieces += [literal, pc.fill_null(pc.binary_join_element_wise("," + key, _json_values(arr), ""), "")]
            literal = ""
        elif _is_str(arr.type):
            pieces += [literal + ("," if opened else "{") + key + '"', escape_strings(arr)]
            literal = '"'
        else:
            pieces += [literal + ("," if opened else "{") + key, _json_values(arr)]
            literal = ""
        opened = True
    lines = pc.binary_join_element_wise(*pieces, literal + "}\n", "")
    if comma_first:
        # The first key is absent in some rows, so every line starts with a comma (a required,
        # never-null field comes later): that comma becomes the opening brace.
        lines = pc.binary_replace_slice(lines, 0, 1, "{")
    return lines


def lines_bytes(lines: pa.Array) -> memoryview:
    """The JSONL lines of :func:`encode_batch`, back to back, without copying."""
    return _data(lines)
