"""(code, docstring) corpora: CodeSearchNet reader, stdlib extraction + cache, stable split."""

import ast
import gzip
import json
import textwrap
import time

import pytest

from voltx.data.code_pairs import (
    CodePair,
    extract_stdlib_pairs,
    read_codesearchnet_jsonl,
    split_train_valid,
    strip_docstring,
)
from voltx.errors import DataError, MissingInputError

CSN_CODE = 'def add(a, b):\n    """Add two numbers.\n\n    More text."""\n    return a + b'


def write_jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def row(code=CSN_CODE, docstring="Add two numbers.\n\nMore text.", **extra):
    return {"code": code, "docstring": docstring, "func_name": "add", "language": "python", **extra}


# -- CodeSearchNet -------------------------------------------------------------------------


def test_reads_rows_and_strips_docstring(tmp_path):
    path = write_jsonl(tmp_path / "file.jsonl", [row(repo="o/r", path="m.py"), row(code="", docstring="x"),
                                                 row(docstring="   ")])
    pairs = read_codesearchnet_jsonl(path)
    assert len(pairs) == 1 and sum(pairs.skipped.values()) == 2
    p = pairs[0]
    assert p.code == "def add(a, b):\n    return a + b"
    assert p.docstring == "Add two numbers."
    assert (p.func_name, p.language, p.source) == ("add", "python", "o/r/m.py")
    ast.parse(p.code)


def test_gzip_and_max_examples(tmp_path):
    path = tmp_path / "file.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for _ in range(5):
            f.write(json.dumps(row()) + "\n")
    assert len(read_codesearchnet_jsonl(path, max_examples=3)) == 3


def test_not_json_line_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "file.jsonl", [row(), row(), "{not json"])
    with pytest.raises(DataError) as exc:
        read_codesearchnet_jsonl(path)
    assert "file.jsonl:3" in str(exc.value) and "not valid JSON" in str(exc.value)
    assert exc.value.exit_code == 65


@pytest.mark.parametrize(
    "bad, words",
    [({"docstring": "d"}, ["file.jsonl:2", "'code'"]),
     ({"code": "x = 1"}, ["file.jsonl:2", "'docstring'"]),
     ({"code": 3, "docstring": "d"}, ["file.jsonl:2", "'code'", "int"]),
     ([1, 2], ["file.jsonl:2", "JSON object"])],
)
def test_missing_or_wrong_fields(tmp_path, bad, words):
    path = write_jsonl(tmp_path / "file.jsonl", [row(), bad])
    with pytest.raises(DataError) as exc:
        read_codesearchnet_jsonl(path)
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="no usable"):
        read_codesearchnet_jsonl(empty)
    only_bad = write_jsonl(tmp_path / "bad.jsonl", [row(code=" ")])
    with pytest.raises(DataError, match="1 empty code or docstring"):
        read_codesearchnet_jsonl(only_bad)
    with pytest.raises(MissingInputError) as exc:
        read_codesearchnet_jsonl(tmp_path / "absent.jsonl")
    assert "absent.jsonl" in str(exc.value) and exc.value.exit_code == 66


def test_strip_docstring_edge_cases():
    assert strip_docstring("def f(:\n  broken") == ("def f(:\n  broken", False)  # unparseable: unchanged
    assert strip_docstring("def f():\n    return 1") == ("def f():\n    return 1", False)
    assert strip_docstring('def f(): "doc"; return 1') == ("def f(): return 1", False)
    assert strip_docstring('def f():\n    """doc"""\n')[1] is True  # nothing but the docstring
    code, _ = strip_docstring('class A:\n    """Doc."""\n    x = 1')
    assert code == "class A:\n    x = 1"


# -- standard library corpus ----------------------------------------------------------------


def test_stdlib_pairs(stdlib_pairs):
    pairs, _ = stdlib_pairs
    assert len(pairs) > 1000
    assert len({(p.code, p.docstring) for p in pairs}) == len(pairs)
    unparseable = 0
    for p in pairs:
        assert p.docstring.strip() and p.code.strip() and p.func_name and p.source.endswith(".py")
        assert p.docstring not in p.code
        assert not p.source.startswith(("test/", "idlelib/", "lib2to3/", "turtledemo/", "site-packages/"))
        try:
            ast.parse(p.code)
        except SyntaxError:
            unparseable += 1
    assert unparseable <= len(pairs) // 100
    methods = [p for p in pairs if "." in p.func_name and "<locals>" not in p.func_name]
    assert methods and all(m.code.startswith(("def ", "async def ")) for m in methods)


def test_stdlib_cache_is_reused(stdlib_pairs):
    pairs, cache = stdlib_pairs
    assert len(list(cache.glob("stdlib_pairs-*.jsonl"))) == 1
    start = time.perf_counter()
    assert extract_stdlib_pairs(cache_dir=cache) == pairs
    assert time.perf_counter() - start < 2.0
    assert extract_stdlib_pairs(cache_dir=cache, max_examples=10) == pairs[:10]


def test_extraction_rules_on_small_tree(tmp_path):
    src = tmp_path / "lib"
    (src / "tests").mkdir(parents=True)
    (src / "tests" / "t.py").write_text('def t():\n    """Skipped dir."""\n    return 1\n')
    (src / "bad.py").write_text("def (:\n")
    (src / "mod.py").write_text(textwrap.dedent('''\
        def documented(x):
            """Double x.

            Second paragraph is dropped.
            """
            return x * 2

        def undocumented():
            return 1

        def trivial():
            """Abstract."""
            raise NotImplementedError

        class K:
            @property
            def meth(self):
                """Method doc."""
                s = """
        flush left"""
                return s
        '''))
    pairs = extract_stdlib_pairs(src, cache_dir=tmp_path / "cache")
    by_name = {p.func_name: p for p in pairs}
    assert set(by_name) == {"documented", "K.meth"}
    assert by_name["documented"] == CodePair("def documented(x):\n    return x * 2", "Double x.", "documented",
                                             "python", "mod.py")
    meth = by_name["K.meth"].code
    assert meth.startswith("def meth(self):\n    s = ") and "Method doc" not in meth
    ast.parse(meth)
    # The cache is keyed per root; a truncated (count mismatch) or garbage cache is rebuilt.
    (cache_file,) = (tmp_path / "cache").glob("stdlib_pairs-*.jsonl")
    assert json.loads(cache_file.read_text().splitlines()[0])["count"] == 2
    cache_file.write_text(cache_file.read_text().splitlines()[0] + "\n")
    assert extract_stdlib_pairs(src, cache_dir=tmp_path / "cache") == pairs
    cache_file.write_text("garbage")
    assert extract_stdlib_pairs(src, cache_dir=tmp_path / "cache") == pairs
    assert len(cache_file.read_text().splitlines()) == 3
    with pytest.raises(MissingInputError):
        extract_stdlib_pairs(tmp_path / "nowhere", cache_dir=tmp_path / "cache")


# -- split ------------------------------------------------------------------------------------


def test_split_is_stable_and_disjoint():
    pairs = [CodePair(f"code{i}", f"doc{i}", f"f{i}", source=f"m{i % 7}.py") for i in range(2000)]
    train, valid = split_train_valid(pairs, 0.1, seed=42)
    assert len(train) + len(valid) == 2000 and not set(train) & set(valid)
    assert 140 < len(valid) < 260
    assert split_train_valid(list(reversed(pairs)), 0.1, 42)[1] == list(reversed(valid))
    assert split_train_valid(pairs, 0.1, seed=7)[1] != valid
    assert split_train_valid(pairs[:2], 0.1)[1] and split_train_valid(pairs[:2], 0.1)[0]
    assert split_train_valid(pairs, 0.0) == (pairs, [])
    with pytest.raises(ValueError):
        split_train_valid(pairs, 1.0)
