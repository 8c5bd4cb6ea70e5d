"""Code converters (code_pairs and code_problems) on tiny fixtures in the real formats."""

import gzip
import json

import pytest

from voltx.data.converter import RawRow, RowError
from voltx.data.formats import CodePairRecord, CodeProblem
from voltx.data.stream import stream
from voltx.errors import DataError
from voltx_plugins.converters.code import (
    CodeAlpacaConverter,
    CodeInstructionsConverter,
    CodeSearchNetConverter,
    HumanEvalConverter,
    MbppConverter,
    TacoConverter,
    first_fenced_block,
)


def write_jsonl(path, rows, gz=False):
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def convert_all(conv, paths, language=None):
    records, errors = [], []
    for row in conv.read_local(paths, "train"):
        try:
            records.extend(conv.convert(row, conv.formats[0], language))
        except RowError as e:
            errors.append((row.where, e))
    for r in records:
        r.validate()
    return records, errors


# -- code_pairs --------------------------------------------------------------------------------

CSN_CODE = 'def add(a, b):\n    """Add two numbers.\n\n    More text."""\n    return a + b'


def test_codesearchnet_both_schemas(tmp_path):
    path = write_jsonl(tmp_path / "python_train_0.jsonl.gz", [
        {"code": CSN_CODE, "docstring": "Add two numbers.\n\nMore text.", "func_name": "add", "language": "python",
         "repo": "me/math", "path": "m.py"},
        {"func_code_string": CSN_CODE, "func_documentation_string": "Add two numbers.", "func_name": "add2",
         "language": "python", "repository_name": "me/x"},
        {"code": 'def f():\n    """Only a docstring."""\n', "docstring": "Only a docstring.", "language": "python"},
        {"code": 42, "docstring": "bad"},
        "not json",
    ], gz=True)
    records, errors = convert_all(CodeSearchNetConverter(), [path])
    assert len(records) == 2 and all(isinstance(r, CodePairRecord) for r in records)
    assert records[0].docstring == "Add two numbers." and '"""' not in records[0].code
    assert records[0].code == "def add(a, b):\n    return a + b" and records[0].name == "add"
    assert records[0].source == "me/math/m.py" and records[1].name == "add2"
    assert [e.field for _, e in errors] == ["code", "line"]
    assert convert_all(CodeSearchNetConverter(), [path], language="java")[0] == []


def test_jsonl_not_this_format(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("code\tdocstring\n")
    with pytest.raises(DataError, match="data.jsonl"):
        list(CodeSearchNetConverter().read_local([path], "train"))


def test_tiny_codes(tmp_path):
    from voltx_plugins.converters.code import TinyCodesConverter

    response = "Here is a function:\n\n```python\ndef double(x):\n    return 2 * x\n```\n\nAnd another:\n```js\nx\n```"
    path = write_jsonl(tmp_path / "tiny.jsonl", [
        {"prompt": "Write a function that doubles x.", "main_topic": "maths", "subtopic": "x",
         "adjective": "simple", "action_verb": "double", "scenario": "s", "target_audience": "beginners",
         "programming_language": "Python", "common_sense_topic": "c", "idx": 1, "response": response},
        {"prompt": "Explain recursion.", "programming_language": "Rust", "response": "Recursion is ..."},
    ])
    records, errors = convert_all(TinyCodesConverter(), [path])
    [rec] = records
    assert rec.code == "def double(x):\n    return 2 * x" and rec.language == "python" and rec.name == "double"
    assert rec.docstring == "Write a function that doubles x."
    assert len(errors) == 1 and errors[0][1].field == "response"


def test_fenced_block_language_aliases():
    assert first_fenced_block("```c++\nint main() {}\n```") == ("cpp", "int main() {}")
    assert first_fenced_block("no code") is None


@pytest.mark.parametrize("conv_class", [CodeAlpacaConverter, CodeInstructionsConverter])
def test_instruction_datasets(tmp_path, conv_class):
    rows = [
        {"instruction": "Create a list of the squares of 0..9.", "input": "", "output": "squares = [i * i for i in range(10)]"},
        {"instruction": "Reverse the string.", "input": "s = 'abc'", "output": "```python\nr = s[::-1]\n```",
         "prompt": "Below is an instruction ..."},
        {"instruction": "", "input": "", "output": "x = 1"},
    ]
    path = tmp_path / "code_alpaca_20k.json"
    path.write_text(json.dumps(rows))  # CodeAlpaca ships one JSON array
    records, errors = convert_all(conv_class(), [path])
    assert [r.code for r in records] == ["squares = [i * i for i in range(10)]", "r = s[::-1]"]
    assert records[1].docstring == "Reverse the string.\ns = 'abc'" and records[1].language == "python"
    assert len(errors) == 1 and errors[0][1].field == "instruction"


# -- code_problems ---------------------------------------------------------------------------

HE = {"task_id": "HumanEval/0", "prompt": 'def inc(x):\n    """Add one."""\n', "canonical_solution": "    return x + 1\n",
      "test": "def check(candidate):\n    assert candidate(1) == 2\n", "entry_point": "inc"}


def run_problem(p: CodeProblem) -> None:
    """Execute the solution and its tests (they must pass)."""
    for test in p.tests:
        exec(p.solution + "\n" + test, {})


def test_humaneval_gzip_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "HumanEval.jsonl.gz", [HE, {**HE, "task_id": "HumanEval/1", "test": None}], gz=True)
    records, errors = convert_all(HumanEvalConverter(), [path])
    [p] = records
    assert isinstance(p, CodeProblem) and p.id == "HumanEval/0" and p.entry_point == "inc"
    assert p.tests == [HE["test"] + "\ncheck(inc)"] and p.query == HE["prompt"]
    run_problem(p)
    assert len(errors) == 1 and errors[0][1].field == "test"


def test_mbpp_sanitized_and_original(tmp_path):
    sanitized = {"task_id": "MbppEval/2", "prompt": "def sq(n):\n    '''\n    Square n.\n    '''\n",
                 "entry_point": "sq", "canonical_solution": "  return n * n\n",  # 2 spaces, as in the real file
                 "test": "def check(candidate):\n    assert sq(3) == 9\n"}
    original = {"task_id": 11, "text": "Write a function to square n.", "code": "def square(n):\n    return n * n",
                "test_list": ["assert square(2) == 4", "assert square(3) == 9"], "test_setup_code": "",
                "challenge_test_list": []}
    bad = {"task_id": 12, "text": "Broken.", "code": "def f(): pass", "test_list": "assert f() is None"}
    path = write_jsonl(tmp_path / "mbpp.jsonl", [sanitized, original, bad])
    records, errors = convert_all(MbppConverter(), [path])
    s, o = records
    assert s.id == "MbppEval/2" and s.tests[0].endswith("\ncheck(sq)")
    assert o.id == "mbpp/11" and o.entry_point == "square" and o.tests == original["test_list"]
    for p in records:
        run_problem(p)
    assert len(errors) == 1 and errors[0][1].field == "test_list"


def test_taco(tmp_path):
    good = {"question": "Read n and print n squared.", "solutions": json.dumps(["n = int(input())\nprint(n * n)"]),
            "input_output": json.dumps({"inputs": ["3\n", "4\n"], "outputs": ["9\n", "16\n"]}),
            "difficulty": "EASY", "source": "codeforces", "tags": "[]"}
    bad = {**good, "solutions": "[not json"}
    path = write_jsonl(tmp_path / "taco.jsonl", [good, bad])
    records, errors = convert_all(TacoConverter(), [path])
    [p] = records
    assert p.solution.startswith("n = int(input())") and p.difficulty == "EASY"
    assert [json.loads(t) for t in p.tests] == [{"input": "3\n", "output": "9\n"}, {"input": "4\n", "output": "16\n"}]
    assert len(errors) == 1 and errors[0][1].field == "solutions"
    hub = TacoConverter().convert(RawRow(good, "hub:BAAI/TACO/train#7"), "code_problems", None)
    assert [q.id for q in hub] == ["taco/7"]


def test_humaneval_through_the_stream_core(tmp_path):
    path = write_jsonl(tmp_path / "HumanEval.jsonl.gz", [HE], gz=True)
    out = tmp_path / "he.jsonl"
    res = stream(HumanEvalConverter(), "code_problems", out, split="test", data_files=[path], progress=False)
    assert res.written == 1 and json.loads(out.read_text())["entry_point"] == "inc"
