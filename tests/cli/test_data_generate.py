"""`voltx data generate` with the issue's family syntax (`scan --split length`)."""

from __future__ import annotations

import json


def test_generate_scan_length_split_by_family_name(cli_in_process, tmp_path):
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    assert cli_in_process("data", "generate", "scan", "--split", "length", "--output", str(train)).returncode == 0
    assert cli_in_process("data", "generate", "scan", "--split", "length", "--part", "test", "--output", str(test)).returncode == 0
    train_rows = [json.loads(l) for l in train.read_text().splitlines()]
    test_rows = [json.loads(l) for l in test.read_text().splitlines()]
    assert len(train_rows) == 16990 and len(test_rows) == 3920  # the published SCAN length split sizes
    assert max(len(r["output"].split()) for r in train_rows) <= 22 < min(len(r["output"].split()) for r in test_rows)


def test_generate_is_deterministic_and_unknown_variant_is_usage_error(cli_in_process, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (a, b):
        assert cli_in_process("data", "generate", "babi", "--split", "qa2", "--count", "5", "--seed", "7", "--output", str(path)).returncode == 0
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 0
    bad = cli_in_process("data", "generate", "scan", "--split", "lenght", "--output", str(tmp_path / "x.jsonl"))
    assert bad.returncode == 64 and "scan_length_gen" in bad.stderr and not (tmp_path / "x.jsonl").exists()
