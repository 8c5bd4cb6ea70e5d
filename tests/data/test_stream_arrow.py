"""The Arrow fast path of the streaming core (Converter.convert_arrow): same bytes, same errors."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.data.test_arrow_json import NASTY
from voltx.data.converter import Converter, stream_hf_arrow, stream_hf_batches
from voltx.data.formats import Paraphrase, Triple
from voltx.data.stream import stream
from voltx.errors import DataError


class RowTriples(Converter):
    name = "trip"
    formats = ("triples",)
    hub_name = "parquet"

    def convert(self, row, fmt, language):
        d = row.data
        yield Triple(head=d["h"], relation=d["r"], tail=d["t"], weight=d.get("w"), source=d.get("src"))


class ArrowTriples(RowTriples):
    calls = 0

    def convert_arrow(self, table, fmt, language):
        type(self).calls += 1
        n = table.num_rows
        col = lambda name: table.column(name) if name in table.column_names else pa.nulls(n)  # noqa: E731
        return pa.table({"head": col("h"), "relation": col("r"), "tail": col("t"), "weight": col("w"),
                         "source": col("src")})


TEXT = [s for s in NASTY if s and not s.isspace()]  # valid where a non-empty string is required


def _rows(n: int) -> list[dict]:
    return [{"h": TEXT[i % len(TEXT)], "r": f"rel {i % 7}", "t": TEXT[(i * 5) % len(TEXT)],
             "w": (i % 3 if i % 4 else None), "src": (None if i % 5 else f"s{i}")} for i in range(n)]


def _write(path, rows):
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=700)
    else:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture
def vectorised(monkeypatch):
    """How many batches the Arrow writer encoded (the fast path really taken, not a fallback)."""
    from voltx.data import arrow_json

    calls = []
    real = arrow_json.encode_batch
    monkeypatch.setattr(arrow_json, "encode_batch", lambda batch: calls.append(batch.num_rows) or real(batch))
    return calls


def _run(cls, src, out, **kw):
    conv = cls()
    conv.hub_name = "parquet" if src.suffix == ".parquet" else "json"
    conv.hub_data_files = str(src)
    return stream(conv, "triples", out, progress=False, **kw)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_arrow_and_row_paths_write_the_same_bytes(tmp_path, suffix, vectorised):
    src = tmp_path / f"rows{suffix}"
    _write(src, _rows(3500))
    ArrowTriples.calls = 0
    r1 = _run(RowTriples, src, tmp_path / "rows.out")
    r2 = _run(ArrowTriples, src, tmp_path / "arrow.out")
    assert ArrowTriples.calls == 4 and vectorised == [1000, 1000, 1000, 500]
    assert (tmp_path / "rows.out").read_bytes() == (tmp_path / "arrow.out").read_bytes()
    assert (r1.rows, r1.written, r1.skipped) == (r2.rows, r2.written, r2.skipped) == (3500, 3500, 0)
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.parametrize("cap", [1, 999, 1000, 1234, 3500, 9999])
def test_max_examples(tmp_path, cap, vectorised):
    src = tmp_path / "rows.parquet"
    _write(src, _rows(3500))
    r1 = _run(RowTriples, src, tmp_path / "rows.out", max_examples=cap)
    r2 = _run(ArrowTriples, src, tmp_path / "arrow.out", max_examples=cap)
    assert (tmp_path / "rows.out").read_bytes() == (tmp_path / "arrow.out").read_bytes()
    assert (r1.rows, r1.written) == (r2.rows, r2.written) == (min(cap, 3500),) * 2
    assert sum(vectorised) == min(cap, 3500)


BAD = [{"t": ""}, {"t": " \u3000\t"}, {"t": None}, {"h": "\n"}]


@pytest.mark.parametrize("bad", BAD)
def test_bad_rows_are_reported_as_the_row_path_reports_them(tmp_path, bad, vectorised):
    rows = _rows(2600)
    rows[1500].update(bad)
    rows[2550].update(bad)
    src = tmp_path / "rows.parquet"
    _write(src, rows)
    r1 = _run(RowTriples, src, tmp_path / "rows.out", on_error="skip")
    r2 = _run(ArrowTriples, src, tmp_path / "arrow.out", on_error="skip")
    assert (tmp_path / "rows.out").read_bytes() == (tmp_path / "arrow.out").read_bytes()
    assert r1.skipped == r2.skipped == 2 and r1.reasons == r2.reasons and r2.rows == 2600
    assert "#1500" in r2.reasons[0] and "#2550" in r2.reasons[1]
    assert vectorised == [1000]  # the first batch; the two with a bad row went row by row
    errors = []
    for cls, name in ((RowTriples, "f1.out"), (ArrowTriples, "f2.out")):
        with pytest.raises(DataError) as ei:
            _run(cls, src, tmp_path / name)
        errors.append(str(ei.value))
        assert not (tmp_path / name).exists()
    assert errors[0] == errors[1] and "#1500" in errors[0]


def test_a_record_batch_or_a_chunked_table_is_accepted(tmp_path, vectorised):
    class BatchOut(ArrowTriples):
        def convert_arrow(self, table, fmt, language):
            return super().convert_arrow(table, fmt, language).combine_chunks().to_batches()[0]

    class ChunkedOut(ArrowTriples):
        def convert_arrow(self, table, fmt, language):
            out = super().convert_arrow(table, fmt, language)
            return pa.concat_tables([out.slice(0, 10), out.slice(10)])

    src = tmp_path / "rows.parquet"
    _write(src, _rows(1500))
    _run(RowTriples, src, tmp_path / "rows.out")
    for cls in (BatchOut, ChunkedOut):
        _run(cls, src, tmp_path / "out.out")
        assert (tmp_path / "out.out").read_bytes() == (tmp_path / "rows.out").read_bytes()
    assert vectorised == [1000, 500, 1000, 500]


def test_a_bad_row_beyond_max_examples_does_not_matter(tmp_path):
    rows = _rows(2000)
    rows[1900]["t"] = ""
    src = tmp_path / "rows.parquet"
    _write(src, rows)
    r = _run(ArrowTriples, src, tmp_path / "arrow.out", max_examples=1500)
    assert (r.written, r.skipped) == (1500, 0)


class FloatTriples(RowTriples):
    """Float weights: the Arrow writer declines them, the Python columns path writes them."""

    def convert_arrow(self, table, fmt, language):
        return table.select(["h", "r", "t"]).rename_columns(["head", "relation", "tail"]).append_column(
            "weight", pc.divide(pc.cast(table.column("w"), pa.float64()), 3.0))


class DecliningTriples(RowTriples):
    def convert_arrow(self, table, fmt, language):
        return None


class BrokenTriples(RowTriples):
    def convert_arrow(self, table, fmt, language):
        return table.slice(1)  # one record short: a contract breach the core does not trust


def test_floats_declines_and_breaches_fall_back_to_identical_output(tmp_path):
    src = tmp_path / "rows.parquet"
    rows = _rows(2100)
    _write(src, rows)

    class FloatRows(RowTriples):
        def convert(self, row, fmt, language):
            d = row.data
            yield {"head": d["h"], "relation": d["r"], "tail": d["t"],
                   **({"weight": d["w"] / 3.0} if d["w"] is not None else {})}

    _run(FloatRows, src, tmp_path / "float-rows.out")
    _run(FloatTriples, src, tmp_path / "float-arrow.out")
    assert (tmp_path / "float-rows.out").read_bytes() == (tmp_path / "float-arrow.out").read_bytes()
    assert b'"weight":0.3333333333333333' in (tmp_path / "float-arrow.out").read_bytes()
    _run(RowTriples, src, tmp_path / "rows.out")
    for cls in (DecliningTriples, BrokenTriples):
        _run(cls, src, tmp_path / "other.out")
        assert (tmp_path / "other.out").read_bytes() == (tmp_path / "rows.out").read_bytes()


def test_paraphrase_labels_through_the_arrow_writer(tmp_path):
    class RowPara(Converter):
        name, formats, hub_name = "para", ("paraphrase",), "json"

        def convert(self, row, fmt, language):
            d = row.data
            yield Paraphrase(a=d["s1"], b=d["s2"], label=d["label"])

    class ArrowPara(RowPara):
        def convert_arrow(self, table, fmt, language):
            return table.select(["s1", "s2", "label"]).rename_columns(["a", "b", "label"])

    src = tmp_path / "para.jsonl"
    _write(src, [{"s1": f"a {i} \"q\"", "s2": "b\u00e9", "label": i % 2} for i in range(1500)])
    for cls in (RowPara, ArrowPara):
        conv = cls()
        conv.hub_data_files = str(src)
        stream(conv, "paraphrase", tmp_path / f"{cls.__name__}.out", progress=False)
    assert (tmp_path / "RowPara.out").read_bytes() == (tmp_path / "ArrowPara.out").read_bytes()


def test_stream_hf_arrow_is_the_same_stream_as_the_python_batches(tmp_path):
    src = tmp_path / "rows.parquet"
    _write(src, _rows(2500))
    arrow = list(stream_hf_arrow("parquet", None, "train", str(src)))
    python = list(stream_hf_batches("parquet", None, "train", str(src)))
    assert [t.num_rows for t, _ in arrow] == [len(b["h"]) for b in python] == [1000, 1000, 500]
    assert [to_columns(t) for t, to_columns in arrow] == python
