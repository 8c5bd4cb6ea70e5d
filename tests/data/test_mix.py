"""``voltx data mix``: deterministic, weighted, without replacement unless asked, atomic."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from voltx.data.mix import mix, parse_source, quotas
from voltx.errors import DataError, MissingInputError, UsageError


def jsonl(path: Path, tag: str, n: int) -> Path:
    path.write_text("".join(json.dumps({"src": tag, "i": i}) + "\n" for i in range(n)), encoding="utf-8")
    return path


@pytest.fixture
def sources(tmp_path):
    return jsonl(tmp_path / "a.jsonl", "a", 300), jsonl(tmp_path / "b.jsonl", "b", 200)


def tags(path: Path) -> Counter:
    return Counter(json.loads(line)["src"] for line in path.read_text(encoding="utf-8").splitlines())


def test_same_seed_same_bytes_other_seed_other_order(sources, tmp_path):
    a, b = sources
    outs = []
    for name, seed in (("m1", 7), ("m2", 7), ("m3", 8)):
        mix([(a, 0.6), (b, 0.4)], tmp_path / f"{name}.jsonl", total=200, seed=seed)
        outs.append((tmp_path / f"{name}.jsonl").read_bytes())
    assert outs[0] == outs[1] and outs[0] != outs[2]


def test_proportions_and_normalised_weights(sources, tmp_path):
    a, b = sources
    result = mix([(a, 3), (b, 2)], tmp_path / "m.jsonl", total=250, seed=1)
    assert result.counts == {str(a): 150, str(b): 100}
    assert tags(tmp_path / "m.jsonl") == {"a": 150, "b": 100}


def test_without_replacement_no_duplicates(sources, tmp_path):
    a, b = sources
    out = tmp_path / "m.jsonl"
    result = mix([(a, 0.6), (b, 0.4)], out, total=500, seed=0)  # exactly every record of both
    assert result.counts == {str(a): 300, str(b): 200}
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(set(lines)) == 500


def test_total_beyond_the_sources_never_inverts_the_ratio(tmp_path):
    a, b = jsonl(tmp_path / "a.jsonl", "a", 250), jsonl(tmp_path / "b.jsonl", "b", 400)
    out = tmp_path / "m.jsonl"
    out.write_text("old\n")
    # 1000 at 0.6/0.4 needs 600 of a's 250 records: refused (it used to write 250/400 = 0.39/0.61)
    with pytest.raises(UsageError) as exc:
        mix([(a, 0.6), (b, 0.4)], out, total=1000, seed=0)
    msg = str(exc.value)
    assert "--total 416" in msg and "--replace" in msg and f"{a}" in msg and "600" in msg and "250" in msg
    assert out.read_text() == "old\n"
    largest = mix([(a, 0.6), (b, 0.4)], out, total=416, seed=0)  # the suggested total works and keeps 0.6/0.4
    assert largest.counts == {str(a): 250, str(b): 166}
    resampled = mix([(a, 0.6), (b, 0.4)], out, total=1000, seed=0, replace=True)
    assert resampled.counts == {str(a): 600, str(b): 400} and tags(out) == {"a": 600, "b": 400}


def test_with_replacement_reaches_the_total(sources, tmp_path):
    a, b = sources
    result = mix([(a, 0.5), (b, 0.5)], tmp_path / "m.jsonl", total=1000, seed=0, replace=True)
    assert result.counts == {str(a): 500, str(b): 500}


def test_default_total_keeps_proportions(sources, tmp_path):
    a, b = sources
    result = mix([(a, 0.5), (b, 0.5)], tmp_path / "m.jsonl", seed=0)
    assert result.counts == {str(a): 200, str(b): 200}


def test_bad_lines_name_file_and_line(sources, tmp_path):
    a, _ = sources
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"ok": 1}\n[1, 2]\n', encoding="utf-8")
    out = tmp_path / "m.jsonl"
    out.write_text("old\n")
    with pytest.raises(DataError, match=rf"{bad}:2: expected a JSON object"):
        mix([(a, 1), (bad, 1)], out)
    bad.write_text('{"ok": 1}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"{bad}:2: not valid JSON"):
        mix([(a, 1), (bad, 1)], out)
    assert out.read_text() == "old\n"
    with pytest.raises(MissingInputError):
        mix([(tmp_path / "nope.jsonl", 1)], out)


def test_parse_source_and_quotas():
    assert parse_source("a.jsonl:0.6") == (Path("a.jsonl"), 0.6)
    assert parse_source("a.jsonl") == (Path("a.jsonl"), 1.0)
    with pytest.raises(UsageError):
        parse_source("a.jsonl:-1")
    assert quotas(10, [1 / 3, 1 / 3, 1 / 3]) == [4, 3, 3]
    assert sum(quotas(997, [0.6, 0.3, 0.1])) == 997
