"""Reasoning datasets -> ``reasoning`` records: SCAN, COGS, CLUTRR and bAbI QA.

Each ``read_local`` parses the dataset's original file format into rows shaped like the
dataset's Hugging Face Hub rows, so one ``convert`` serves both sources:

* SCAN ``IN: <command> OUT: <actions>`` lines -> ``{commands, actions}`` (Hub ``scan``);
  steps are the interpretation of each sub-command, in execution order;
* COGS TSV ``sentence<TAB>logical_form<TAB>category`` -> ``{sentence, logical_form, category}``;
* CLUTRR CSV (id, story, query, target, text_target, f_comb, proof_state, ...) -> that row;
  steps come from ``proof_state`` when it parses, otherwise from ``f_comb``;
* bAbI QA v1.2 text (``ID text`` / ``ID question<TAB>answer<TAB>supporting ids``) -> one row
  per story in the Hub ``facebook/babi_qa`` shape ``{story: {id, type, text, supporting_ids,
  answer}}``; every question becomes one record (story so far + question -> answer, steps =
  the supporting sentences in story order).

A malformed line is reported by ``convert`` as ``RowError(reason, field)`` (reading never
stops half-way through a file); a file that is clearly another format raises ``DataError``
naming the file.
"""

from __future__ import annotations

import ast
import csv
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from voltx.data.converter import Converter, RawRow, RowError, open_text
from voltx.data.formats import Reasoning
from voltx.errors import DataError

# -- shared file helpers -------------------------------------------------------------------


def _first_line(path: Path) -> str:
    with open_text(path) as f:
        for line in f:
            if line.strip():
                return line.rstrip("\r\n")
    return ""


def _not_format(path: Path, what: str, first: str) -> DataError:
    shown = first if len(first) <= 80 else first[:77] + "..."
    return DataError(f"{path}: not a {what} file (first line: {shown!r})")


# -- SCAN ----------------------------------------------------------------------------------

SCAN_PRIMITIVES = {"jump": "I_JUMP", "walk": "I_WALK", "run": "I_RUN", "look": "I_LOOK"}
SCAN_TURNS = {"left": "I_TURN_LEFT", "right": "I_TURN_RIGHT"}
SCAN_ACTIONS = (*SCAN_PRIMITIVES.values(), *SCAN_TURNS.values())


def _scan_verb(words: list[str]) -> list[str]:
    """Actions of a SCAN V phrase: ``U``, ``U dir``, ``U opposite dir``, ``U around dir``."""
    if not words:
        raise ValueError("empty phrase")
    verb, rest = words[0], words[1:]
    if verb == "turn":
        if not rest:
            raise ValueError("'turn' needs a direction")
        act: list[str] = []
    elif verb in SCAN_PRIMITIVES:
        act = [SCAN_PRIMITIVES[verb]]
    else:
        raise ValueError(f"unknown verb {verb!r}")
    if not rest:
        return act
    if len(rest) == 1 and rest[0] in SCAN_TURNS:
        return [SCAN_TURNS[rest[0]], *act]
    if len(rest) == 2 and rest[0] in ("opposite", "around") and rest[1] in SCAN_TURNS:
        turn = SCAN_TURNS[rest[1]]
        if rest[0] == "opposite":
            return [turn, turn, *act]
        return [turn, *act] * 4
    raise ValueError(f"cannot parse {' '.join(words)!r}")


def scan_parts(command: str) -> list[tuple[str, list[str]]]:
    """The sub-commands of a SCAN command in execution order, each with its actions.

    ``x and y`` runs x then y, ``x after y`` runs y then x; ``twice``/``thrice`` repeat.
    Raises ValueError if ``command`` is not in the SCAN grammar.
    """
    words = command.split()
    for conj in ("and", "after"):
        if conj in words:
            i = words.index(conj)
            left, right = " ".join(words[:i]), " ".join(words[i + 1 :])
            if conj in words[i + 1 :] or not left or not right:
                raise ValueError(f"cannot parse {command!r}")
            first, second = (left, right) if conj == "and" else (right, left)
            return [*scan_parts(first), *scan_parts(second)]
    if not words:
        raise ValueError("empty command")
    times = {"twice": 2, "thrice": 3}.get(words[-1], 1)
    phrase = words[:-1] if times > 1 else words
    return [(" ".join(words), _scan_verb(phrase) * times)]


def scan_interpret(command: str) -> list[str]:
    """The action sequence of a SCAN command (``"jump twice"`` -> ``["I_JUMP", "I_JUMP"]``)."""
    return [a for _, acts in scan_parts(command) for a in acts]


def scan_steps(command: str) -> list[str]:
    """Reasoning steps: one ``"<sub-command> -> <actions>"`` line per sub-command run."""
    return [f"{part} -> {' '.join(acts)}" for part, acts in scan_parts(command)]


class ScanConverter(Converter):
    """SCAN (Lake & Baroni 2018): ``IN: ... OUT: ...`` text files or Hub ``scan``."""

    name = "scan"
    formats = ("reasoning",)
    hub_name = "scan"
    hub_config = "simple"  # Hub configs: simple, length, addprim_jump, ...
    splits = ("train", "test")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        for path in map(Path, paths):
            first = _first_line(path)
            if not first.startswith("IN: ") or " OUT: " not in first:
                raise _not_format(path, "SCAN ('IN: <command> OUT: <actions>')", first)
            with open_text(path) as f:
                for lineno, line in enumerate(f, start=1):
                    line = line.strip()
                    if not line:
                        continue
                    data: dict = {"line": line}
                    if line.startswith("IN: ") and " OUT: " in line:
                        cmd, acts = line[4:].split(" OUT: ", 1)
                        data = {"commands": cmd.strip(), "actions": acts.strip()}
                    yield RawRow(data, f"{path}:{lineno}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Reasoning]:
        d = row.data
        if "commands" not in d:
            raise RowError("expected 'IN: <command> OUT: <actions>'", "line")
        cmd, acts = d.get("commands"), d.get("actions")
        if not isinstance(cmd, str) or not cmd.strip():
            raise RowError("expected a non-empty command", "commands")
        if not isinstance(acts, str) or not acts.strip():
            raise RowError("expected a non-empty action sequence", "actions")
        cmd, acts = " ".join(cmd.split()), " ".join(acts.split())
        try:
            steps = scan_steps(cmd)
        except ValueError as e:
            raise RowError(f"not a SCAN command: {e}", "commands") from None
        unknown = sorted(set(acts.split()) - set(SCAN_ACTIONS))
        if unknown:
            raise RowError(f"unknown action(s) {', '.join(map(repr, unknown))} (a cut line?); SCAN actions are "
                           f"{', '.join(SCAN_ACTIONS)}", "actions")
        expected = scan_interpret(cmd)
        if " ".join(expected) != acts:
            # Every published SCAN split (simple, length, add-primitive, template) follows the grammar,
            # so a disagreement is a damaged line (e.g. cut at a token boundary), never a variant.
            raise RowError(f"the actions do not match the command {cmd!r}: expected {len(expected)} actions "
                           f"{' '.join(expected)!r}, got {len(acts.split())} (a cut or edited line?)", "actions")
        yield Reasoning(input=cmd, output=acts, steps=steps, task="scan", source=row.where)


# -- COGS ----------------------------------------------------------------------------------


class CogsConverter(Converter):
    """COGS (Kim & Linzen 2020): TSV ``sentence<TAB>logical_form<TAB>category``."""

    name = "cogs"
    formats = ("reasoning",)
    hub_name = None
    splits = ("train", "dev", "test", "gen")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        for path in map(Path, paths):
            first = _first_line(path)
            if len(first.split("\t")) != 3:
                raise _not_format(path, "COGS TSV ('sentence<TAB>logical_form<TAB>category')", first)
            with open_text(path) as f:
                for lineno, line in enumerate(f, start=1):
                    line = line.rstrip("\r\n")
                    if not line.strip():
                        continue
                    cols = line.split("\t")
                    data = {"sentence": cols[0], "logical_form": cols[1] if len(cols) > 1 else None,
                            "category": cols[2] if len(cols) > 2 else None, "columns": len(cols)}
                    yield RawRow(data, f"{path}:{lineno}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Reasoning]:
        d = row.data
        if d.get("columns", 3) != 3:
            raise RowError(f"expected 3 TAB-separated columns, got {d['columns']}", "logical_form")
        for field in ("sentence", "logical_form"):
            if not isinstance(d.get(field), str) or not d[field].strip():
                raise RowError("expected a non-empty string", field)
        category = d.get("category") or ""
        yield Reasoning(input=d["sentence"].strip(), output=d["logical_form"].strip(), steps=[], task="cogs",
                        meta={"category": category} if category else None, source=row.where)


# -- CLUTRR --------------------------------------------------------------------------------

# The EMNLP'19 release CSVs (pandas dumps: an unnamed index column, then id, story, query,
# text_query, target, text_target, clean_story, proof_state, f_comb, task_name, story_edges,
# edge_types, query_edge, genders, syn_story, node_mapping, task_split): ``target`` is the
# relation and ``text_target`` a list of sentences (often "[]"), never the answer. The Hub's
# CLUTRR/v1 rows carry a label index in ``target`` and the relation in ``target_text``.
CLUTRR_COLUMNS = ("story", "query", "target")
# CLUTRR/v1's label indices (its dataset card), to check target against target_text
CLUTRR_HUB_LABELS = (
    "aunt", "son-in-law", "grandfather", "brother", "sister", "father", "mother", "grandmother", "uncle",
    "daughter-in-law", "grandson", "granddaughter", "father-in-law", "mother-in-law", "nephew", "son", "daughter",
    "niece", "husband", "wife", "sister-in-law",
)
_RELATION = re.compile(r"^[a-z]+(?:-[a-z]+)*$")         # "sister", "son-in-law", "no-relation"
_CHAIN_LINK = re.compile(r"no-relation|[a-z]+-in-law|[a-z]+")  # one relation of an f_comb chain
_TASK_NAME = re.compile(r"^task_(\d+)\.(\d+)$")        # "task_1.3": task 1, chain length k = 3


def _literal(value):
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return value


def _clean_story(text: str) -> str:
    return " ".join(text.replace("[", "").replace("]", "").split())


def _proof_steps(proof) -> list[str] | None:
    """CLUTRR proof_state ``[{(h, r, t): [(h, r1, m), (m, r2, t)]}, ...]`` (goal first) as
    bottom-up composition steps ``"h -r1-> m, m -r2-> t => h -r-> t"``; None if it does not parse."""
    proof = _literal(proof)
    if not isinstance(proof, list) or not proof:
        return None
    steps = []
    try:
        for entry in reversed(proof):
            for goal, body in entry.items():
                parts = ", ".join(f"{h} -{r}-> {t}" for h, r, t in body)
                h, r, t = goal
                steps.append(f"{parts} => {h} -{r}-> {t}")
    except (AttributeError, TypeError, ValueError):
        return None
    return steps


def _chain(f_comb: str) -> list[str]:
    """The relations of an f_comb chain (``"son-wife-father-in-law"`` -> son, wife, father-in-law)."""
    links = _CHAIN_LINK.findall(f_comb)
    if not links or "-".join(links) != f_comb:
        raise RowError(f"expected relations joined by '-' like 'father-sister-son', got {f_comb!r}", "f_comb")
    return links


def _clutrr_answer(d: dict) -> str:
    """The relation: ``target`` in the release CSVs, ``target_text`` where ``target`` is a Hub label index."""
    target = d.get("target")
    if isinstance(target, int) or (isinstance(target, str) and target.strip().isdigit()):
        answer = d.get("target_text")
        index = int(target)
        if not isinstance(answer, str) or not answer.strip():
            raise RowError(f"target is the label index {index}; expected the relation in target_text", "target_text")
        answer = answer.strip()
        if index < len(CLUTRR_HUB_LABELS) and CLUTRR_HUB_LABELS[index] != answer:
            raise RowError(f"label index {index} is {CLUTRR_HUB_LABELS[index]!r} but target_text is {answer!r}", "target")
    else:
        answer = target.strip() if isinstance(target, str) else ""
    if not _RELATION.match(answer):
        raise RowError(f"expected a kinship relation like 'sister' or 'son-in-law', got {answer!r}"
                       " (a shifted or damaged row?)", "target")
    return answer


def _chain_length(d: dict) -> tuple[int, list[str]]:
    """k from task_name (``task_1.3`` -> 3), checked against the relations of f_comb; and those relations."""
    task_name = str(d.get("task_name") or "").strip()
    f_comb = str(d.get("f_comb") or "").strip()
    links = _chain(f_comb) if f_comb else []
    if task_name:
        m = _TASK_NAME.match(task_name)
        if m is None:
            raise RowError(f"expected 'task_<task>.<k>' like 'task_1.3', got {task_name!r}", "task_name")
        k = int(m.group(2))
        if links and len(links) != k:
            raise RowError(f"f_comb {f_comb!r} has {len(links)} relations but task_name {task_name!r} says k={k}",
                           "f_comb")
        return k, links
    if links:
        return len(links), links
    raise RowError("expected task_name like 'task_1.3' or f_comb like 'father-sister-son' (the chain length k)",
                   "task_name")


class ClutrrConverter(Converter):
    """CLUTRR (Sinha et al. 2019) release CSV or Hub ``CLUTRR/v1.0``: kinship story + query -> relation.

    Records: input = the story (names unbracketed) + "How is B related to A?", output = the
    relation, steps = the proof's compositions (from ``proof_state``, else one per f_comb prefix),
    meta = id, f_comb, task_name, task_split and ``k``, the chain length.
    """

    name = "clutrr"
    formats = ("reasoning",)
    hub_name = "CLUTRR/v1.0"
    hub_config = "gen_train234_test2to10"
    splits = ("train", "validation", "test")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow | RowError]:
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        for path in map(Path, paths):
            with open_text(path) as f:
                # strict: a quote left open by a cut row is an error, not a field swallowing later rows
                reader = csv.reader(f, strict=True)
                try:
                    header = next(reader, [])
                except csv.Error:
                    header = []
                if not all(c in header for c in CLUTRR_COLUMNS):
                    raise DataError(f"{path}: not a CLUTRR CSV (header needs columns {', '.join(CLUTRR_COLUMNS)};"
                                    f" got {', '.join(header[:8]) or 'nothing'})")
                yield from self._records(reader, header, path)

    @staticmethod
    def _records(reader, header: list[str], path: Path) -> Iterator[RawRow | RowError]:
        """Rows as dicts, each at the line it starts on; a cut or malformed record as a RowError."""
        end = reader.line_num
        while True:
            where = f"{path}:{end + 1}"
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as e:
                end = reader.line_num
                yield RowError(f"not a complete CSV record ({e}): the row is cut or its quotes are broken", "row",
                               where=where)
                continue
            end = reader.line_num
            if not values:
                continue
            if len(values) != len(header):
                yield RowError(f"expected {len(header)} comma-separated fields as in the header, got {len(values)}"
                               " (a row cut short, or a field with an unquoted comma?)", "row", where=where)
                continue
            yield RawRow(dict(zip(header, values)), where)

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Reasoning]:
        d = row.data
        story = d.get("story") or d.get("clean_story")
        if not isinstance(story, str) or not story.strip():
            raise RowError("expected a non-empty story", "story")
        query = _literal(d.get("query"))
        if not (isinstance(query, (tuple, list)) and len(query) == 2 and all(isinstance(q, str) for q in query)):
            raise RowError("expected a pair of names like \"('Ann', 'Bob')\"", "query")
        answer = _clutrr_answer(d)
        k, links = _chain_length(d)
        a, b = query
        proof = d.get("proof_state")
        steps = _proof_steps(proof) if proof not in (None, "") else None
        if steps is None and proof not in (None, ""):
            raise RowError(f"expected a proof like \"[{{('A', 'r', 'B'): [('A', 'r1', 'C'), ('C', 'r2', 'B')]}}]\", "
                           f"got {str(proof)[:60]!r}", "proof_state")
        if steps is None:
            steps = [f"{a} -{'-'.join(links[:i])}-> ?" for i in range(1, len(links) + 1)] + [f"{a} -{answer}-> {b}"]
        meta: dict = {key: str(d[key]) for key in ("id", "f_comb", "task_name", "task_split") if d.get(key) not in (None, "")}
        meta["k"] = k
        yield Reasoning(input=f"{_clean_story(story)} How is {b} related to {a}?", output=answer,
                        steps=steps, task=str(d.get("task_name") or "clutrr"), meta=meta, source=row.where)


# -- bAbI QA -------------------------------------------------------------------------------

_BABI_LINE = re.compile(r"^(\d+) (.*)$")
_BABI_TASK = re.compile(r"qa(\d+)")


def _babi_task(path: Path) -> str:
    m = _BABI_TASK.search(path.name)
    return f"qa{int(m.group(1))}" if m else "babi"


class BabiConverter(Converter):
    """bAbI QA v1.2 text files or Hub ``facebook/babi_qa`` (configs ``en-qa1`` ...)."""

    name = "babi"
    formats = ("reasoning",)
    hub_name = "facebook/babi_qa"
    hub_config = "en-qa1"
    splits = ("train", "test")

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        for path in map(Path, paths):
            first = _first_line(path)
            if not first.startswith("1 "):
                raise _not_format(path, "bAbI QA ('<id> <sentence>', ids from 1 per story)", first)
            task = _babi_task(path)
            story: dict | None = None
            start = 0
            with open_text(path) as f:
                for lineno, line in enumerate(f, start=1):
                    line = line.rstrip("\r\n")
                    if not line.strip():
                        continue
                    m = _BABI_LINE.match(line)
                    if m is None:
                        if story is None:
                            story, start = self._empty(task), lineno
                        story.setdefault("errors", []).append((f"line {lineno}: expected '<id> <text>'", "id"))
                        continue
                    if m.group(1) == "1" and story is not None:
                        yield RawRow(story, f"{path}:{start}")
                        story = None
                    if story is None:
                        story, start = self._empty(task), lineno
                    s = story["story"]
                    text, *qa = m.group(2).split("\t")
                    s["id"].append(m.group(1))
                    s["text"].append(text.strip())
                    if not qa:
                        s["type"].append(0)
                        s["answer"].append("")
                        s["supporting_ids"].append([])
                        continue
                    s["type"].append(1)
                    s["answer"].append(qa[0].strip())
                    s["supporting_ids"].append((qa[1] if len(qa) > 1 else "").split())
                    if len(qa) < 2:
                        story.setdefault("errors", []).append(
                            (f"line {lineno}: a question needs '<TAB>answer<TAB>supporting ids'", "supporting_ids"))
            if story is not None:
                yield RawRow(story, f"{path}:{start}")

    @staticmethod
    def _empty(task: str) -> dict:
        return {"task": task, "story": {"id": [], "type": [], "text": [], "supporting_ids": [], "answer": []}}

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Reasoning]:
        d = row.data
        if d.get("errors"):
            reason, field = d["errors"][0]
            raise RowError(reason, field)
        s = d.get("story")
        keys = ("id", "type", "text", "supporting_ids", "answer")
        if not isinstance(s, dict) or not all(isinstance(s.get(k), list) for k in keys):
            raise RowError(f"expected an object with lists {', '.join(keys)}", "story")
        if len({len(s[k]) for k in keys}) != 1:
            raise RowError("story lists differ in length", "story")
        task = d.get("task") or (self.hub_config or "babi").split("-")[-1]
        facts: list[str] = []
        by_id: dict[str, str] = {}
        records = []
        for i, (sid, kind, text, support, answer) in enumerate(zip(*(s[k] for k in keys))):
            sid = str(sid)
            if kind in (0, "0", "context"):
                facts.append(text)
                by_id[sid] = text
                continue
            if not isinstance(answer, str) or not answer.strip():
                raise RowError(f"question {sid}: expected an answer", "answer")
            try:
                ids = sorted({int(x) for x in support})
            except (TypeError, ValueError):
                raise RowError(f"question {sid}: supporting ids must be integers, got {support!r}",
                               "supporting_ids") from None
            missing = [x for x in ids if str(x) not in by_id]
            if not ids or missing:
                raise RowError(f"question {sid}: supporting ids {missing or 'none'} are not earlier statements",
                               "supporting_ids")
            records.append(Reasoning(
                input=" ".join([*facts, text]), output=answer.strip(), steps=[by_id[str(x)] for x in ids],
                task=task, meta={"question_id": sid, "supporting_ids": [str(x) for x in support]},
                source=f"{row.where}#{sid}" if row.where else None,
            ))
        return records
