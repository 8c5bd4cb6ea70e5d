"""Append-only JSONL: the buffered writer thread and the tolerant, incremental reader."""

from __future__ import annotations

import json
import threading

import pytest

from voltx.runs.jsonl import BufferedWriter, drop_superseded, dumps, read_jsonl


@pytest.fixture
def writer():
    w = BufferedWriter(flush_interval=0.05)
    yield w
    w.close()


def lines_of(path):
    return path.read_bytes().decode("utf-8").splitlines()


def test_records_arrive_in_order_after_flush(tmp_path, writer):
    path = tmp_path / "sub" / "metrics.jsonl"  # the parent is created on first write
    for i in range(200):
        writer.write(path, {"step": i, "loss": 1.0 / (i + 1)})
    writer.flush()
    got = read_jsonl(path)
    assert [r["step"] for r in got.records] == list(range(200))
    assert got.corrupt_lines == [] and not got.truncated_tail
    assert path.read_bytes().endswith(b"\n")


def test_strings_are_written_as_lines(tmp_path, writer):
    path = tmp_path / "stdout.log"
    writer.write(path, "first")
    writer.write(path, "second\n")
    writer.flush()
    assert path.read_text() == "first\nsecond\n"


def test_several_files_through_one_writer(tmp_path, writer):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for i in range(5):
        writer.write(a, {"i": i})
        writer.write(b, {"j": i})
    writer.flush()
    assert [r["i"] for r in read_jsonl(a).records] == list(range(5))
    assert [r["j"] for r in read_jsonl(b).records] == list(range(5))


def test_concurrent_writes_from_two_threads_all_land(tmp_path, writer):
    path = tmp_path / "events.jsonl"
    n = 2000
    start = threading.Barrier(2)

    def produce(name):
        start.wait()
        for i in range(n):
            writer.write(path, {"thread": name, "i": i})

    threads = [threading.Thread(target=produce, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.flush()
    got = read_jsonl(path)
    assert got.corrupt_lines == [] and not got.truncated_tail
    assert len(got.records) == 2 * n
    for name in ("a", "b"):  # each thread's records whole and in its own order
        assert [r["i"] for r in got.records if r["thread"] == name] == list(range(n))


def test_close_flushes_and_releases_files(tmp_path):
    path = tmp_path / "m.jsonl"
    w = BufferedWriter(flush_interval=10)  # no timed flush: only close() can write it out
    w.write(path, {"step": 1})
    w.close()
    assert read_jsonl(path).records == [{"step": 1}]
    assert not w._thread.is_alive()


def test_next_record_starts_a_new_line_after_a_truncated_tail(tmp_path, writer):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step":1}\n{"step":2,"lo')  # a writer killed mid-line
    writer.write(path, {"step": 3})
    writer.flush()
    assert lines_of(path) == ['{"step":1}', '{"step":2,"lo', '{"step":3}']
    got = read_jsonl(path)
    assert [r["step"] for r in got.records] == [1, 3]
    assert got.corrupt_lines == [2]


def test_existing_complete_file_is_appended_to(tmp_path, writer):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step":1}\n')
    writer.write(path, {"step": 2})
    writer.flush()
    assert lines_of(path) == ['{"step":1}', '{"step":2}']


def test_write_error_surfaces_on_flush(tmp_path, writer):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    good = tmp_path / "good.jsonl"
    writer.write(blocker / "m.jsonl", {"step": 1})  # its parent is a file: the open fails
    writer.write(good, {"step": 1})
    with pytest.raises(OSError):
        writer.flush()
    assert read_jsonl(good).records == [{"step": 1}]  # other files keep being written


def test_nan_and_inf_are_written_as_null(tmp_path, writer):
    path = tmp_path / "metrics.jsonl"
    writer.write(path, {"step": 1, "loss": float("nan"), "losses": {"a": float("inf"), "b": 0.5}, "l": [float("-inf"), 1.0]})
    writer.flush()
    line = lines_of(path)[0]
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line) == {"step": 1, "loss": None, "losses": {"a": None, "b": 0.5}, "l": [None, 1.0]}
    assert json.loads(dumps({"x": float("nan")})) == {"x": None}


def test_read_skips_truncated_tail_and_reports_corrupt_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"step":1}\nnot json\n\n[1,2]\n{"step":2}\n\xff\xfe\n{"step":3}\n{"step":4,')
    got = read_jsonl(path)
    assert [r["step"] for r in got.records] == [1, 2, 3]
    assert got.corrupt_lines == [2, 4, 6]  # a non-object line counts as corrupt; blank lines are skipped
    assert got.truncated_tail
    assert got.offset == path.read_bytes().rfind(b"\n") + 1


def test_read_missing_file_is_empty(tmp_path):
    got = read_jsonl(tmp_path / "absent.jsonl")
    assert got.records == [] and got.offset == 0 and not got.truncated_tail


def test_incremental_read_from_offset(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"step":1}\n{"step":2}\n{"step":3,"lo')
    first = read_jsonl(path)
    assert [r["step"] for r in first.records] == [1, 2]
    with open(path, "ab") as fh:  # the writer finishes the partial line and adds more
        fh.write(b'ss":0.5}\nbroken\n{"step":4}\n')
    second = read_jsonl(path, offset=first.offset, first_line=first.next_line)
    assert second.records == [{"step": 3, "loss": 0.5}, {"step": 4}]
    assert second.corrupt_lines == [4]  # numbered in the file, not from the offset
    assert not second.truncated_tail
    third = read_jsonl(path, offset=second.offset, first_line=second.next_line)
    assert third.records == [] and third.offset == second.offset == path.stat().st_size


def test_read_with_limit_bytes_stops_at_a_whole_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(b"".join(b'{"step":%d}\n' % i for i in range(100)))
    offset, steps = 0, []
    while True:
        got = read_jsonl(path, offset=offset, limit_bytes=50)
        if got.offset == offset:
            break
        steps += [r["step"] for r in got.records]
        offset = got.offset
    assert steps == list(range(100))


def test_drop_superseded_keeps_the_latest_attempt():
    records = [{"step": s, "attempt": 1} for s in (10, 20, 30, 40)]
    records += [{"step": s, "attempt": 2} for s in (30, 40, 50)]  # resumed from the step-20 checkpoint
    out = drop_superseded(records)
    assert [(r["step"], r["attempt"]) for r in out] == [(10, 1), (20, 1), (30, 2), (40, 2), (50, 2)]


def test_drop_superseded_resume_to_an_earlier_step_and_records_without_step():
    records = [{"step": 1}, {"step": 2}, {"note": "x"}, {"step": 3}, {"step": 2, "again": True}, {"step": 3, "again": True}]
    out = drop_superseded(records)
    # the step-less record was logged after step 2 by the superseded attempt: dropped with it
    assert out == [{"step": 1}, {"step": 2, "again": True}, {"step": 3, "again": True}]
    assert drop_superseded([]) == []
