"""The streaming core: a fake TSV converter (defined here), atomic output, error modes, hub path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from voltx.data.converter import Converter, RawRow, RowError, lines, stream_hf
from voltx.data.formats import Triple
from voltx.data.stream import atomic_output, stream, summary
from voltx.errors import DataError, MissingInputError, UsageError


class FakeTsv(Converter):
    """head<TAB>relation<TAB>tail; a line with the wrong column count is a bad row."""

    name = "faketsv"
    formats = ("triples", "paraphrase")
    splits = ("train", "test")

    def read_local(self, paths, split):
        for path in paths:
            for where, line in lines(path):
                if not line:
                    continue
                cols = line.split("\t")
                if len(cols) != 3:
                    yield RowError(f"expected 3 tab-separated columns, got {len(cols)}", "line", where=where)
                    continue
                yield RawRow(dict(zip(("head", "relation", "tail"), cols)), where)

    def convert(self, row, fmt, language):
        d = row.data
        if not d["head"]:
            raise RowError("empty", "head")
        if fmt == "paraphrase":
            yield {"a": d["head"], "b": d["tail"], "label": 1}
        else:
            yield Triple(d["head"], d["relation"], d["tail"], source="fake")


def write_tsv(path: Path, rows: list[str]) -> Path:
    path.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    return path


GOOD = ["dog\tIsA\tanimal", "cat\tIsA\tanimal", "car\tHasA\twheel"]


@pytest.fixture
def tsv(tmp_path):
    # line 3 has two columns, line 5 an empty head
    return write_tsv(tmp_path / "in.tsv", [GOOD[0], GOOD[1], "broken\tline", GOOD[2], "\tIsA\tthing"])


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))


def test_good_file_converts(tmp_path):
    src = write_tsv(tmp_path / "ok.tsv", GOOD)
    out = tmp_path / "out" / "triples.jsonl"
    result = stream(FakeTsv(), None, out, data_files=[src], progress=False)
    assert (result.written, result.rows, result.skipped) == (3, 3, 0)
    assert read_jsonl(out)[0] == {"head": "dog", "relation": "IsA", "tail": "animal", "source": "fake"}
    assert "wrote 3 records" in summary(result)


def test_second_format_and_max_examples(tmp_path):
    src = write_tsv(tmp_path / "ok.tsv", GOOD)
    out = tmp_path / "p.jsonl"
    result = stream(FakeTsv(), "paraphrase", out, data_files=[src], max_examples=2, progress=False)
    assert result.written == 2 and read_jsonl(out) == [{"a": "dog", "b": "animal", "label": 1}, {"a": "cat", "b": "animal", "label": 1}]


def test_skip_mode_counts_and_reports_file_line(tsv, tmp_path):
    out = tmp_path / "out.jsonl"
    result = stream(FakeTsv(), "triples", out, data_files=[tsv], on_error="skip", progress=False)
    assert (result.written, result.skipped, result.rows) == (3, 2, 5)
    assert result.reasons[0].startswith(f"{tsv}:3: field 'line'")
    assert result.reasons[1].startswith(f"{tsv}:5: field 'head'")
    text = summary(result)
    assert "skipped 2 bad rows;" in text and f"{tsv}:3" in text
    assert len(read_jsonl(out)) == 3


def test_fail_mode_leaves_no_output_and_keeps_the_old_file(tsv, tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n", encoding="utf-8")
    with pytest.raises(DataError) as err:
        stream(FakeTsv(), "triples", out, data_files=[tsv], progress=False)
    assert err.value.exit_code == 65
    assert f"{tsv}:3" in str(err.value) and "--on-error skip" in str(err.value)
    assert out.read_text(encoding="utf-8") == "precious\n"
    assert leftovers(tmp_path) == []


def test_fail_mode_without_a_previous_file_writes_nothing(tsv, tmp_path):
    out = tmp_path / "new.jsonl"
    with pytest.raises(DataError):
        stream(FakeTsv(), "triples", out, data_files=[tsv], progress=False)
    assert not out.exists() and leftovers(tmp_path) == []


def test_keyboard_interrupt_mid_stream_leaves_no_partial_file(tmp_path):
    src = write_tsv(tmp_path / "big.tsv", [f"h{i}\tr\tt{i}" for i in range(5000)])

    class Interrupted(FakeTsv):
        def convert(self, row, fmt, language):
            if row.where.endswith(":3500"):
                raise KeyboardInterrupt
            yield from super().convert(row, fmt, language)

    out = tmp_path / "out.jsonl"
    out.write_text("old\n", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        stream(Interrupted(), "triples", out, data_files=[src], progress=False)
    assert out.read_text(encoding="utf-8") == "old\n"  # batches were written to the temp file, never here
    assert leftovers(tmp_path) == []


def test_wrong_encoding_names_file_and_byte_offset(tmp_path):
    src = tmp_path / "latin1.tsv"
    src.write_bytes(b"dog\tIsA\tanimal\ncaf\xe9\tIsA\tplace\n")
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError) as err:
        stream(FakeTsv(), "triples", out, data_files=[src], progress=False)
    msg = str(err.value)
    assert str(src) in msg and "byte offset 18" in msg and "line 2" in msg
    assert not out.exists() and leftovers(tmp_path) == []


def test_empty_input_is_an_error_unless_allowed(tmp_path):
    src = write_tsv(tmp_path / "empty.tsv", [])
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match="no records produced"):
        stream(FakeTsv(), "triples", out, data_files=[src], progress=False)
    assert not out.exists()
    result = stream(FakeTsv(), "triples", out, data_files=[src], allow_empty=True, progress=False)
    assert result.written == 0 and out.read_bytes() == b""


def test_all_rows_bad_in_skip_mode_is_empty_too(tmp_path):
    src = write_tsv(tmp_path / "bad.tsv", ["a\tb", "c"])
    with pytest.raises(DataError, match="2 bad rows skipped"):
        stream(FakeTsv(), "triples", tmp_path / "o.jsonl", data_files=[src], on_error="skip", progress=False)


def test_invalid_record_from_the_converter_is_a_row_error(tmp_path):
    class Sloppy(FakeTsv):
        def convert(self, row, fmt, language):
            yield {"head": row.data["head"], "relation": row.data["relation"]}  # no tail

    src = write_tsv(tmp_path / "ok.tsv", GOOD)
    with pytest.raises(DataError) as err:
        stream(Sloppy(), "triples", tmp_path / "o.jsonl", data_files=[src], progress=False)
    assert f"{src}:1: field 'tail': missing" in str(err.value)


def test_key_error_in_convert_names_the_field(tmp_path):
    class Careless(FakeTsv):
        def convert(self, row, fmt, language):
            yield Triple(row.data["subject"], "r", "t")

    src = write_tsv(tmp_path / "ok.tsv", GOOD)
    result = stream(Careless(), "triples", tmp_path / "o.jsonl", data_files=[src], on_error="skip", progress=False, allow_empty=True)
    assert result.skipped == 3 and "field 'subject'" in result.reasons[0]


def test_file_in_the_wrong_format_is_a_data_error(tmp_path):
    class Strict(FakeTsv):
        def read_local(self, paths, split):
            raise DataError(f"{paths[0]}: not a TSV file (no tabs on line 1)")
            yield  # pragma: no cover

    src = tmp_path / "x.xml"
    src.write_text("<xml/>", encoding="utf-8")
    with pytest.raises(DataError, match="not a TSV"):
        stream(Strict(), "triples", tmp_path / "o.jsonl", data_files=[src], progress=False)


def test_missing_input_file(tmp_path):
    with pytest.raises(MissingInputError, match="nope.tsv"):
        stream(FakeTsv(), "triples", tmp_path / "o.jsonl", data_files=[tmp_path / "nope.tsv"], progress=False)


def test_unknown_format_and_split_list_the_valid_ones(tmp_path):
    with pytest.raises(UsageError) as err:
        stream(FakeTsv(), "code_pairs", tmp_path / "o.jsonl", progress=False)
    assert "triples, paraphrase" in str(err.value)
    with pytest.raises(UsageError, match="did you mean 'triples'"):
        stream(FakeTsv(), "tripels", tmp_path / "o.jsonl", progress=False)
    with pytest.raises(UsageError, match="Splits: train, test"):
        stream(FakeTsv(), "triples", tmp_path / "o.jsonl", split="dev", progress=False)


def test_atomic_output_replaces_only_on_success(tmp_path):
    out = tmp_path / "f.txt"
    with atomic_output(out) as fh:
        fh.write("one")
    with pytest.raises(RuntimeError):
        with atomic_output(out) as fh:
            fh.write("two")
            raise RuntimeError
    assert out.read_text() == "one" and leftovers(tmp_path) == []



def test_atomic_output_gets_the_mode_of_any_new_file(tmp_path):
    import os
    import stat

    mask = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "d.jsonl") as fh:  # mkstemp alone would leave it 0600
            fh.write("{}\n")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "d.jsonl").stat().st_mode) == 0o644

def test_plain_progress_lines_go_to_stderr(tmp_path, capsys, monkeypatch):
    import voltx.data.stream as core

    monkeypatch.setattr(core, "WRITE_BATCH", 10)
    src = write_tsv(tmp_path / "ok.tsv", [f"h{i}\tr\tt" for i in range(50)])
    orig = core.Progress.__init__
    monkeypatch.setattr(core.Progress, "__init__", lambda self, label, **kw: orig(self, label, **{**kw, "interval": 0.0}))
    stream(FakeTsv(), "triples", tmp_path / "o.jsonl", data_files=[src])
    err = capsys.readouterr().err
    assert "rows/s" in err and "\x1b[" not in err


# --- the Hub path, pointed at local files ----------------------------------------------------

class HubTriples(Converter):
    name = "hubtriples"
    formats = ("triples",)

    def convert(self, row, fmt, language):
        yield {"head": row.data["h"], "relation": "r", "tail": str(row.data["t"])}


def test_stream_hf_reads_local_jsonl_in_batches(tmp_path):
    src = tmp_path / "rows.jsonl"
    src.write_text("".join(json.dumps({"h": f"h{i}", "t": i}) + "\n" for i in range(2500)), encoding="utf-8")
    rows = list(stream_hf("json", None, "train", data_files=str(src), batch_size=1000))
    assert len(rows) == 2500 and rows[0] == {"h": "h0", "t": 0} and rows[-1]["t"] == 2499


@pytest.mark.parametrize("kind", ["json", "parquet"])
def test_read_hub_default_on_local_files(tmp_path, kind):
    if kind == "json":
        src = tmp_path / "rows.jsonl"
        src.write_text("".join(json.dumps({"h": f"h{i}", "t": i}) + "\n" for i in range(1200)), encoding="utf-8")
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        src = tmp_path / "rows.parquet"
        pq.write_table(pa.table({"h": [f"h{i}" for i in range(1200)], "t": list(range(1200))}), src)
    conv = HubTriples()
    conv.hub_name, conv.hub_data_files = kind, str(src)
    first = next(iter(conv.read_hub("train", None)))
    assert first.data == {"h": "h0", "t": 0} and first.where == f"hub:{kind}/train#0"
    out = tmp_path / "out.jsonl"
    result = stream(conv, None, out, progress=False)
    assert result.written == 1200 and read_jsonl(out)[1199] == {"head": "h1199", "relation": "r", "tail": "1199"}


def test_hub_failure_is_a_clear_error(tmp_path):
    conv = HubTriples()
    conv.hub_name, conv.hub_data_files = "json", str(tmp_path / "missing-*.jsonl")
    with pytest.raises((MissingInputError, UsageError)):
        stream(conv, None, tmp_path / "o.jsonl", progress=False)
    assert not (tmp_path / "o.jsonl").exists()


def test_dataset_without_hub_copy_asks_for_files(tmp_path):
    with pytest.raises(UsageError, match="--data-files"):
        stream(FakeTsv(), "triples", tmp_path / "o.jsonl", progress=False)


def test_corrupt_file_on_the_hub_path_is_a_data_error(tmp_path):
    src = tmp_path / "rows.jsonl"
    src.write_text('{"h": "a", "t": 1}\n{not json\n', encoding="utf-8")
    conv = HubTriples()
    conv.hub_name, conv.hub_data_files = "json", str(src)
    out = tmp_path / "o.jsonl"
    with pytest.raises(DataError, match="rows.jsonl"):
        stream(conv, None, out, progress=False)
    assert not out.exists() and leftovers(tmp_path) == []
