"""voltx.data.arrow_json: column-wise checks and vectorised JSONL, byte-identical to orjson."""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from voltx.data import arrow_json
from voltx.data.formats import validate_dict
from voltx.data.row_encoding import encode_record

NASTY = [
    "plain", "", 'say "hi"', "back\\slash", "\\\"\\", "line\nbreak", "tab\there", "cr\r\n", "\x08\x0c",
    "".join(map(chr, range(0x20))), "del \x7f", "héllo wörld", "日本語", "emoji 😀👍🏽", "sep \u2028\u2029",
    "\u00a0nbsp", "a/b", "{\"json\": [1]}", "\x00nul", "\x1f", " ", "\\u0041",
]


def _expected(batch: pa.RecordBatch) -> bytes:
    """What the per-row path writes: encode_record of each row as a dict, None keys left out."""
    names = batch.schema.names
    cols = [c.to_pylist() for c in batch.columns]
    return b"".join(encode_record({k: v for k, v in zip(names, row) if v is not None}) + b"\n" for row in zip(*cols))


def _encoded(batch: pa.RecordBatch) -> bytes:
    return bytes(arrow_json.lines_bytes(arrow_json.encode_batch(batch)))


def test_python_whitespace_is_arrows():
    # _blank relies on utf8_is_space agreeing with str.isspace (the row path's definition).
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    flags = pc.utf8_is_space(pa.array(chars)).to_pylist()
    assert [c for c, f in zip(chars, flags) if f != c.isspace()] == []


def test_strings_are_escaped_exactly_as_orjson():
    batch = pa.record_batch({"head": pa.array(NASTY), "relation": pa.array(NASTY[::-1])})
    assert _encoded(batch) == _expected(batch)
    assert b'"\\u0000\\u0001' in _encoded(batch) and "😀".encode() in _encoded(batch)


def test_random_strings_match(tmp_path):
    rng = random.Random(7)
    alphabet = [chr(c) for c in range(0x20)] + list('"\\/ abcé😀\u2028\x7f')
    vals = ["".join(rng.choice(alphabet) for _ in range(rng.randrange(12))) for _ in range(3000)]
    batch = pa.record_batch({"a": pa.array(vals), "b": pa.array(vals[::-1], pa.large_string())})
    assert _encoded(batch) == _expected(batch)


def test_nulls_leave_keys_out_including_the_first_key():
    batch = pa.record_batch({
        "source": pa.array([None, "s", None, "t"]),
        "head": pa.array(["a", "b\n", "c", "d"]),
        "weight": pa.array([1, None, -3, None], pa.int8()),
        "tail": pa.array(["x", "y", "z", "w"]),
        "meta": pa.nulls(4, pa.string()),
        "gone": pa.nulls(4),
    })
    out = _encoded(batch)
    assert out == _expected(batch)
    assert out.splitlines()[0] == b'{"head":"a","weight":1,"tail":"x"}'


def test_integers_lists_sliced_and_large_arrays():
    batch = pa.record_batch({
        "id": pa.array(["1", "2", "3", "4", "5"]),
        "n": pa.array([0, -1, 2**63 - 1, -(2**63), 7], pa.int64()),
        "u": pa.array([2**64 - 1, 0, 1, 2, 3], pa.uint64()),
        "tests": pa.array([["a", 'b"'], [], None, ["\t"], ["x", "y", "z"]], pa.list_(pa.string())),
        "big": pa.array([["é"], None, [], ["q\\"], ["r"]], pa.large_list(pa.large_string())),
    })
    assert _encoded(batch) == _expected(batch)
    part = batch.slice(1, 3)  # offsets into shared buffers
    assert _encoded(part) == _expected(part)


def _batch(cols: dict) -> pa.RecordBatch:
    return pa.record_batch({k: (v if isinstance(v, pa.Array) else pa.array(v)) for k, v in cols.items()})


def _ok(fmt, **cols):
    return arrow_json.records_ok(fmt, _batch(cols))


def test_records_ok_accepts_only_what_the_row_path_accepts_and_it_can_encode():
    tr = {"head": ["a", "b"], "relation": ["r", "r"], "tail": ["t", "u"]}
    assert _ok("triples", **tr)
    assert _ok("triples", **tr, source=["s", None], weight=pa.array([1, None], pa.int32()))
    assert not _ok("triples", **{**tr, "tail": ["t", ""]})  # empty
    assert not _ok("triples", **{**tr, "tail": ["t", " \u3000\t"]})  # whitespace only
    assert not _ok("triples", **{**tr, "tail": ["t", None]})  # null in a required field
    assert not _ok("triples", **{**tr, "tail": [1, 2]})  # wrong type
    assert not _ok("triples", head=["a"], relation=["r"])  # missing field
    assert not _ok("triples", **tr, extra=["x", "y"])  # unknown field
    assert not _ok("triples", **tr, weight=[0.5, 1.0])  # float: the Python path encodes it
    assert not _ok("triples", **tr, weight=[True, False])  # bool is not a number
    assert _ok("paraphrase", a=["x", "y"], b=["u", "v"], label=[0, 1])
    assert _ok("paraphrase", a=["x", "y"], b=["u", "v"], score=[0, 5])
    assert not _ok("paraphrase", a=["x", "y"], b=["u", "v"], label=[0, 2])
    assert not _ok("paraphrase", a=["x", "y"], b=["u", "v"], score=[0, 6])
    assert not _ok("paraphrase", a=["x", "y"], b=["u", "v"], score=pa.array([1, None]),
                   label=pa.array([None, None], pa.int64()))
    assert not _ok("paraphrase", a=["x"], b=["u"])
    problems = {"id": ["1"], "query": ["q"], "solution": [""], "tests": [["assert f()"]]}
    assert _ok("code_problems", **problems, difficulty=[3])
    assert _ok("code_problems", **problems, difficulty=["hard"])
    assert not _ok("code_problems", **{**problems, "tests": [["a", None]]})
    assert not _ok("reasoning", input=["i"], output=["o"], steps=[[]], task=["t"], meta=[{"k": 1}])  # dict


@pytest.mark.parametrize("fmt, cols", [
    ("triples", {"head": ["a", "b"], "relation": ["r", "r"], "tail": ["t", "u"],
                 "weight": pa.array([3, None], pa.int16())}),
    ("code_problems", {"id": ["1", "2"], "query": ["q\n", "é"], "solution": ["", "s"], "tests": [["x"], []],
                       "entry_point": [None, "f"], "difficulty": ["easy", None]}),
    ("code_pairs", {"code": ["def f():\n\treturn '\"'"], "docstring": [""], "language": ["python"], "name": ["f"]}),
])
def test_accepted_batches_are_valid_records_written_identically(fmt, cols):
    batch = _batch(cols)
    assert arrow_json.records_ok(fmt, batch)
    for row in zip(*[c.to_pylist() for c in batch.columns]):
        validate_dict(fmt, {k: v for k, v in zip(batch.schema.names, row) if v is not None})
    assert _encoded(batch) == _expected(batch)
