"""The columnar fast path of the streaming core (Converter.convert_batch): same bytes, same errors."""

from __future__ import annotations

import json

import pytest

from voltx.data.converter import Converter
from voltx.data.formats import Paraphrase, check_columns
from voltx.data.row_encoding import encode_columns, encode_record
from voltx.data.stream import stream
from voltx.errors import DataError


class RowPara(Converter):
    name = "para"
    formats = ("paraphrase",)
    hub_name = "json"

    def convert(self, row, fmt, language):
        d = row.data
        yield Paraphrase(a=d["a"], b=d["b"], score=d.get("score"), label=d.get("label"), source=d.get("src"))


class BatchPara(RowPara):
    calls = 0

    def convert_batch(self, columns, fmt, language):
        type(self).calls += 1
        n = len(columns["a"])
        none = [None] * n
        return {"a": columns["a"], "b": columns["b"], "score": columns.get("score", none),
                "label": columns.get("label", none), "source": columns.get("src", none)}


ROWS = [
    {"a": "héllo wörld", "b": "日本語 \"quoted\" \\ back/slash", "score": 2.5, "label": None, "src": "x"},
    {"a": "tab\there", "b": "emoji 😀 and \u2028 sep", "score": 0.1 + 0.2, "label": 1, "src": None},
    {"a": "control \x01 char", "b": "newline\nin", "score": 5, "label": 0, "src": "s"},
    {"a": "big", "b": "small", "score": 1e-7, "label": None, "src": None},
    {"a": "only label", "b": "b", "score": None, "label": 1, "src": "z"},
]


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _run(conv_cls, src, out, **kw):
    conv = conv_cls()
    conv.hub_data_files = str(src)
    return stream(conv, "paraphrase", out, progress=False, **kw)


def test_batch_and_row_paths_write_the_same_bytes(tmp_path):
    src = tmp_path / "rows.jsonl"
    rows = ROWS * 500  # several batches of 1000
    _write(src, rows)
    BatchPara.calls = 0
    r1 = _run(RowPara, src, tmp_path / "rows.out")
    r2 = _run(BatchPara, src, tmp_path / "batch.out")
    assert BatchPara.calls >= 3
    one, two = (tmp_path / "rows.out").read_bytes(), (tmp_path / "batch.out").read_bytes()
    assert one == two
    assert (r1.rows, r1.written, r1.skipped) == (r2.rows, r2.written, r2.skipped) == (len(rows), len(rows), 0)
    first = json.loads(two.splitlines()[0])
    assert list(first) == ["a", "b", "score", "source"] and first["b"].startswith("日本語")


def test_batch_path_max_examples(tmp_path):
    src = tmp_path / "rows.jsonl"
    _write(src, ROWS * 500)
    r1 = _run(RowPara, src, tmp_path / "rows.out", max_examples=1234)
    r2 = _run(BatchPara, src, tmp_path / "batch.out", max_examples=1234)
    assert (tmp_path / "rows.out").read_bytes() == (tmp_path / "batch.out").read_bytes()
    assert (r1.rows, r1.written) == (r2.rows, r2.written) == (1234, 1234)


@pytest.mark.parametrize("bad", [{"a": "", "b": "x", "score": 1.0}, {"a": "x", "b": "y", "score": 7.0},
                                 {"a": "x", "b": 3, "score": 1.0}, {"a": "x", "b": "y", "score": float("nan")}])
def test_bad_row_in_a_batch_falls_back_with_the_same_errors(tmp_path, bad):
    src = tmp_path / "rows.jsonl"
    rows = [dict(r) for r in ROWS * 400]
    rows[1500] = bad
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    r1 = _run(RowPara, src, tmp_path / "rows.out", on_error="skip")
    r2 = _run(BatchPara, src, tmp_path / "batch.out", on_error="skip")
    assert (tmp_path / "rows.out").read_bytes() == (tmp_path / "batch.out").read_bytes()
    assert r1.skipped == r2.skipped == 1 and r1.reasons == r2.reasons
    assert "#1500" in r2.reasons[0]
    errors = []
    for cls, name in ((RowPara, "f1.out"), (BatchPara, "f2.out")):
        with pytest.raises(DataError) as ei:
            _run(cls, src, tmp_path / name)
        errors.append(str(ei.value))
        assert not (tmp_path / name).exists()
    assert errors[0] == errors[1]


def test_check_columns():
    ok = {"head": ["a", "b"], "relation": ["r", "r"], "tail": ["t", "u"], "weight": [1.0, None]}
    assert check_columns("triples", ok, 2)
    assert not check_columns("triples", {**ok, "tail": ["t", " "]}, 2)
    assert not check_columns("triples", {**ok, "weight": [True, None]}, 2)
    assert not check_columns("triples", {**ok, "weight": [float("inf"), None]}, 2)
    assert not check_columns("triples", {**ok, "extra": [1, 2]}, 2)
    assert not check_columns("triples", {"head": ["a"], "relation": ["r"]}, 1)
    assert check_columns("reasoning", {"input": ["i"], "output": [""], "steps": [["s"]], "task": ["t"]}, 1)
    assert not check_columns("reasoning", {"input": ["i"], "output": [""], "steps": [["s", 1]], "task": ["t"]}, 1)
    assert not check_columns("slot_annotated", {"text": ["t"], "slots": [{"S99": "x"}]}, 1)


def test_encode_columns_matches_the_encoder():
    cols = {"id": ["1", "2"], "query": ["q/é", "q"], "solution": ["", "s"], "tests": [["a", "ü"], []],
            "difficulty": [3, "hard"], "source": [None, "x"]}
    recs = [{k: v[i] for k, v in cols.items() if v[i] is not None} for i in range(2)]
    assert encode_columns(cols, 2) == [encode_record(r) for r in recs]


def test_stsb_convert_batch_matches_convert(tmp_path):
    from voltx_plugins.converters.language import StsbConverter

    class StsbRows(StsbConverter):
        convert_batch = Converter.convert_batch

    src = tmp_path / "stsb.jsonl"
    rows = [{"sentence1": f"A man ñ {i}", "sentence2": "Un hombre", "score": (i % 101) / 100} for i in range(2500)]
    _write(src, rows)
    outs = []
    for cls in (StsbConverter, StsbRows):
        conv = cls()
        conv.hub_name, conv.hub_data_files = "json", str(src)
        out = tmp_path / f"{cls.__name__}.jsonl"
        assert stream(conv, "paraphrase", out, progress=False).written == 2500
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert StsbConverter().convert_batch({"sentence1": ["a"], "sentence2": [" "], "score": [0.5]}, "paraphrase", None) is None
