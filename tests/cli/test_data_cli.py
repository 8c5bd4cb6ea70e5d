"""``voltx data ...`` end to end: a fake converter plugin, exit codes, messages, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from voltx.testing import fake_plugin_dist, plugin_env

from voltx.cli.main import main
from voltx.plugins import load_plugins

PLUGIN = '''
from voltx import hookimpl
from voltx.data.converter import Converter, RawRow, RowError, lines
from voltx.plugin_specs import ConverterSpec


class FakeTsv(Converter):
    formats = ("triples",)

    def read_local(self, paths, split):
        for path in paths:
            for where, line in lines(path):
                cols = line.split("\\t")
                if len(cols) != 3:
                    yield RowError(f"expected 3 columns, got {len(cols)}", "line", where=where)
                    continue
                yield RawRow(dict(zip(("head", "relation", "tail"), cols)), where)

    def convert(self, row, fmt, language):
        if row.data["head"] == "STOP":
            raise KeyboardInterrupt
        yield dict(row.data)


class Counter(Converter):
    formats = ("reasoning",)
    generator = True
    count = 3

    def read_local(self, paths, split):
        import random
        rng = random.Random(self.seed)
        for i in range(self.count):
            yield RawRow({"n": rng.randrange(1000)}, f"gen:{split}#{i}")

    def convert(self, row, fmt, language):
        yield {"input": f"count {row.data['n']}", "output": str(row.data["n"]), "steps": [], "task": "count"}


@hookimpl
def register_converters(register):
    register(ConverterSpec("faketsv", "a tab-separated test dataset", ("triples",), factory=FakeTsv, hub_name=None))
    register(ConverterSpec("counter", "a generator", ("reasoning",), factory=Counter))
'''


@pytest.fixture
def plugin(tmp_path):
    import types

    mod = types.ModuleType("fake_data_plugin")
    exec(compile(PLUGIN, "fake_data_plugin", "exec"), mod.__dict__)
    load_plugins(extra=[("fake_data", mod)], refresh=True)
    return mod


@pytest.fixture
def tsv(tmp_path) -> Path:
    p = tmp_path / "in.tsv"
    p.write_text("dog\tIsA\tanimal\nbroken\nshoe\tPartOf\toutfit\n", encoding="utf-8")
    return p


def test_convert_skip_reports_count_and_file_line(plugin, tsv, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    code = main(["data", "convert", "--dataset", "faketsv", "--output", str(out), "--data-files", str(tsv), "--on-error", "skip"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert len(out.read_text().splitlines()) == 2
    assert "skipped 1 bad row;" in err and f"{tsv}:2: field 'line'" in err


def test_convert_fail_exits_65_and_keeps_old_output(plugin, tsv, tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    code = main(["data", "stream", "--dataset", "faketsv", "--format", "triples", "--output", str(out), "--data-files", str(tsv)])
    err = capsys.readouterr().err
    assert code == 65 and f"{tsv}:2" in err and "Traceback" not in err
    assert out.read_text() == "old\n" and not [p for p in tmp_path.iterdir() if p.suffix == ".part"]


def test_keyboard_interrupt_exits_130_without_partial_output(plugin, tmp_path):
    src = tmp_path / "in.tsv"
    src.write_text("".join(f"h{i}\tr\tt\n" for i in range(3000)) + "STOP\tr\tt\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["data", "convert", "--dataset", "faketsv", "-o", str(out), "--data-files", str(src)]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tsv"]  # no output, no temp file


def test_wrong_encoding_and_empty_input(plugin, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"a\tb\tc\n\xff\xfe\tb\tc\n")
    assert main(["data", "convert", "--dataset", "faketsv", "-o", str(tmp_path / "o.jsonl"), "--data-files", str(bad)]) == 65
    err = capsys.readouterr().err
    assert str(bad) in err and "byte offset 6" in err
    empty = tmp_path / "empty.tsv"
    empty.write_text("")
    assert main(["data", "convert", "--dataset", "faketsv", "-o", str(tmp_path / "o.jsonl"), "--data-files", str(empty)]) == 65
    assert "no records produced" in capsys.readouterr().err
    assert main(["data", "convert", "--dataset", "faketsv", "-o", str(tmp_path / "o.jsonl"), "--data-files", str(empty), "--allow-empty"]) == 0
    assert (tmp_path / "o.jsonl").read_text() == ""


def test_unknown_dataset_and_format_list_the_valid_ones(plugin, tsv, tmp_path, capsys):
    assert main(["data", "convert", "--dataset", "faketvs", "-o", "o.jsonl", "--data-files", str(tsv)]) == 64
    err = capsys.readouterr().err
    assert "unknown dataset 'faketvs'" in err and "did you mean 'faketsv'" in err and "counter" in err
    assert main(["data", "convert", "--dataset", "faketsv", "--format", "slots", "-o", "o.jsonl", "--data-files", str(tsv)]) == 64
    err = capsys.readouterr().err
    assert "unknown record format 'slots'" in err and "slot_annotated" in err
    assert main(["data", "stream", "--dataset", "faketsv", "-o", "o.jsonl"]) == 64  # no Hub copy: asks for files
    assert "--data-files" in capsys.readouterr().err


def test_list_json_includes_every_registered_converter(plugin, capsys):
    assert main(["data", "list", "--json"]) == 0
    listed = {c["name"]: c for c in json.loads(capsys.readouterr().out)["converters"]}
    assert set(listed) == set(load_plugins().specs("converters"))  # the built-ins too, whatever they are
    assert listed["faketsv"]["formats"] == ["triples"] and listed["faketsv"]["hub_name"] is None
    assert main(["data", "list"]) == 0 and "faketsv" in capsys.readouterr().out


def test_generate_is_seeded(plugin, tmp_path, capsys):
    outs = []
    for name, seed in (("g1", 5), ("g2", 5), ("g3", 6)):
        assert main(["data", "generate", "counter", "-o", str(tmp_path / f"{name}.jsonl"), "--seed", str(seed), "--count", "4"]) == 0
        outs.append((tmp_path / f"{name}.jsonl").read_bytes())
    assert outs[0] == outs[1] != outs[2] and len(outs[0].splitlines()) == 4
    assert main(["data", "generate", "faketsv", "-o", str(tmp_path / "x.jsonl")]) == 64
    assert "not a generator" in capsys.readouterr().err


def test_mix_cli(tmp_path, capsys):
    for tag, n in (("a", 60), ("b", 40)):
        (tmp_path / f"{tag}.jsonl").write_text("".join(json.dumps({"t": tag, "i": i}) + "\n" for i in range(n)))
    args = ["data", "mix", f"{tmp_path}/a.jsonl:0.6", f"{tmp_path}/b.jsonl:0.4", "--total", "50", "--seed", "3"]
    assert main([*args, "-o", str(tmp_path / "m1.jsonl")]) == 0
    assert main([*args, "-o", str(tmp_path / "m2.jsonl")]) == 0
    assert (tmp_path / "m1.jsonl").read_bytes() == (tmp_path / "m2.jsonl").read_bytes()
    assert "wrote 50 records" in capsys.readouterr().err


def test_real_process_no_traceback_and_stays_light(tmp_path):
    """Through the entry point, in a fresh interpreter: exit 65, one message, no torch/datasets for `data list`."""
    site = fake_plugin_dist(tmp_path / "site", "voltx-fakedata", "fake_data_plugin", PLUGIN)
    env = plugin_env(site)
    bad = tmp_path / "in.tsv"
    bad.write_text("a\tb\tc\nbroken\n")
    proc = run_cli("data", "convert", "--dataset", "faketsv", "-o", str(tmp_path / "o.jsonl"), "--data-files", str(bad), env=env, timeout=120)
    assert proc.returncode == 65 and "Traceback" not in proc.stderr and f"{bad}:2" in proc.stderr
    probe = ("import json, sys; from voltx.cli.main import main; main(['data', 'list', '--json']);"
             "print(json.dumps({m: m in sys.modules for m in ('torch', 'datasets')}))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={**__import__('os').environ, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"torch": False, "datasets": False}
    assert "faketsv" in proc.stdout


def test_skip_mode_skips_undecodable_lines_instead_of_stopping(plugin, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_bytes(b"a\tb\tc\n\xff\xfe\tb\tc\nd\te\tf\n")
    out = tmp_path / "o.jsonl"
    code = main(["data", "convert", "--dataset", "faketsv", "-o", str(out), "--data-files", str(bad), "--on-error", "skip"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert [json.loads(x)["head"] for x in out.read_text().splitlines()] == ["a", "d"]
    assert "skipped 1 bad row;" in err and f"{bad}:2:" in err and "UTF-8" in err


def test_output_says_where_it_wrote_and_creates_missing_folders(plugin, tsv, tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "out.jsonl"
    code = main(["data", "convert", "--dataset", "faketsv", "-o", "new/deeper/out.jsonl", "--data-files", str(tsv),
                 "--on-error", "skip"])
    err = capsys.readouterr().err
    assert code == 0 and out.is_file()
    assert f"to {out.resolve()}" in err and f"created folder {(tmp_path / 'new').resolve()}" in err
    assert main(["data", "generate", "counter", "-o", "new/g.jsonl"]) == 0
    err = capsys.readouterr().err
    assert f"to {(tmp_path / 'new' / 'g.jsonl').resolve()}" in err and "created" not in err  # it existed


@pytest.mark.parametrize("sub", ["convert", "stream", "generate", "mix"])
def test_help_says_missing_output_folders_are_created(sub, capsys):
    with pytest.raises(SystemExit):
        main(["data", sub, "--help"])
    assert "missing folders are created" in " ".join(capsys.readouterr().out.split())


def test_mix_refuses_a_total_that_would_invert_the_ratio(tmp_path, capsys):
    (tmp_path / "a.jsonl").write_text("".join(json.dumps({"t": "a", "i": i}) + "\n" for i in range(250)))
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"t": "b", "i": i}) + "\n" for i in range(400)))
    args = ["data", "mix", f"{tmp_path}/a.jsonl:0.6", f"{tmp_path}/b.jsonl:0.4", "-o", str(tmp_path / "m.jsonl")]
    assert main([*args, "--total", "1000"]) == 64
    err = capsys.readouterr().err
    assert "--total 416" in err and "--replace" in err and not (tmp_path / "m.jsonl").exists()
    assert main([*args, "--total", "1000", "--replace"]) == 0
    assert "wrote 1,000 records" in capsys.readouterr().err
