"""Built-in converters' Arrow fast paths (convert_arrow) write what their convert writes."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.data.test_arrow_json import NASTY
from voltx.data.converter import Converter
from voltx.data.stream import stream
from voltx_plugins.converters.language import PawsConverter

WHITESPACE = [chr(c) for c in range(0x3001) if chr(c).isspace()]


class PawsRows(PawsConverter):
    convert_arrow = Converter.convert_arrow


def _paws_rows(n: int) -> list[dict]:
    text = [s for s in NASTY if s.strip()]
    pad = lambda k: WHITESPACE[k % len(WHITESPACE)]  # noqa: E731
    return [{"id": i, "sentence1": pad(i) + text[i % len(text)] + pad(i * 3), "sentence2": f"b {i}", "label": i % 2}
            for i in range(n)]


def _run(cls, src, out, **kw):
    conv = cls()
    conv.hub_name, conv.hub_config, conv.hub_data_files = "parquet", None, str(src)
    return stream(conv, "paraphrase", out, progress=False, **kw)


def test_paws_arrow_path_writes_what_convert_writes(tmp_path, monkeypatch):
    from voltx.data import arrow_json

    encoded = []
    real = arrow_json.encode_batch
    monkeypatch.setattr(arrow_json, "encode_batch", lambda b: encoded.append(b.num_rows) or real(b))
    src = tmp_path / "paws.parquet"
    pq.write_table(pa.Table.from_pylist(_paws_rows(2300)), src)
    r1 = _run(PawsRows, src, tmp_path / "rows.jsonl")
    r2 = _run(PawsConverter, src, tmp_path / "arrow.jsonl")
    assert encoded == [1000, 1000, 300]
    assert (tmp_path / "rows.jsonl").read_bytes() == (tmp_path / "arrow.jsonl").read_bytes()
    assert (r1.written, r2.written) == (2300, 2300)
    assert (tmp_path / "arrow.jsonl").read_bytes().startswith(b'{"a":"plain","b":"b 0","label":0,"source":"paws"}\n')


@pytest.mark.parametrize("bad", [{"label": 2}, {"sentence1": " \u3000 "}, {"sentence2": None}, {"label": None}])
def test_paws_bad_rows_reported_as_by_convert(tmp_path, bad):
    rows = _paws_rows(1500)
    rows[1234].update(bad)
    src = tmp_path / "paws.parquet"
    pq.write_table(pa.Table.from_pylist(rows), src)
    r1 = _run(PawsRows, src, tmp_path / "rows.jsonl", on_error="skip")
    r2 = _run(PawsConverter, src, tmp_path / "arrow.jsonl", on_error="skip")
    assert (tmp_path / "rows.jsonl").read_bytes() == (tmp_path / "arrow.jsonl").read_bytes()
    assert r1.skipped == r2.skipped == 1 and r1.reasons == r2.reasons and "#1234" in r2.reasons[0]


def test_paws_text_labels_take_the_row_path():
    table = pa.table({"sentence1": ["a"], "sentence2": ["b"], "label": ["1"]})
    assert PawsConverter().convert_arrow(table, "paraphrase", None) is None
