"""Reasoning datasets -> ``reasoning`` records: SCAN, COGS and bAbI QA (CLUTRR: :mod:`.clutrr`).

Each ``read_local`` parses the dataset's original file format into rows shaped like the
dataset's Hugging Face Hub rows, so one ``convert`` serves both sources:

* SCAN ``IN: <command> OUT: <actions>`` lines -> ``{commands, actions}`` (Hub ``scan``);
  steps are the intermediate parses rendered in actions (:func:`scan_chain`), the output the
  full action sequence;
* COGS TSV ``sentence<TAB>logical_form<TAB>category`` -> ``{sentence, logical_form, category}``;
  no steps (sentence -> logical form in one move);
* CLUTRR: :mod:`.clutrr`;
* bAbI QA v1.2 text (``ID text`` / ``ID question<TAB>answer<TAB>supporting ids``) -> one row
  per story in the Hub ``facebook/babi_qa`` shape ``{story: {id, type, text, supporting_ids,
  answer}}``; every question becomes one record (story so far + question -> answer, steps =
  the supporting sentences in the order the ids are given, which is the reasoning order).

A record's reasoning chain is ``[input, *steps, output]``: every step is a text of its own
(a sentence, or an action sequence for SCAN), never the output again.

A malformed line is reported by ``convert`` as ``RowError(reason, field)`` (reading never
stops half-way through a file); a file that is clearly another format raises ``DataError``
naming the file.
"""

from __future__ import annotations

import re
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


def _scan_conjuncts(command: str) -> list[str]:
    """The S phrases of a SCAN command in execution order: ``x and y`` runs x then y, ``x after y``
    runs y then x (the grammar has at most one conjunction). Raises ValueError outside the grammar."""
    words = command.split()
    if not words:
        raise ValueError("empty command")
    at = [i for i, w in enumerate(words) if w in ("and", "after")]
    if not at:
        return [command]
    i = at[0]
    left, right = " ".join(words[:i]), " ".join(words[i + 1 :])
    if len(at) > 1 or not left or not right:
        raise ValueError(f"cannot parse {command!r}: expected 'S', 'S and S' or 'S after S'")
    return [left, right] if words[i] == "and" else [right, left]


def _scan_repeat(phrase: str) -> tuple[list[str], int]:
    """An S phrase as (the actions of its V phrase, how many times V runs): ``V``, ``V twice``, ``V thrice``."""
    words = phrase.split()
    times = {"twice": 2, "thrice": 3}.get(words[-1], 1)
    return _scan_verb(words[:-1] if times > 1 else words), times


def scan_chain(command: str) -> list[str]:
    """The action texts the interpretation of a SCAN command passes through, the last being the full
    action sequence.

    The command's parse is interpreted bottom-up in execution order; after each sub-command the
    actions so far are rendered: a repeated phrase first once (``"jump"`` in ``"jump twice"``),
    then repeated, then the next conjunct appended. ``"jump twice and walk"`` -> ``["I_JUMP",
    "I_JUMP I_JUMP", "I_JUMP I_JUMP I_WALK"]``; ``"walk after run"`` -> ``["I_RUN", "I_RUN I_WALK"]``.
    Raises ValueError if ``command`` is not in the SCAN grammar.
    """
    done: list[str] = []
    chain: list[str] = []
    for phrase in _scan_conjuncts(command):
        acts, times = _scan_repeat(phrase)
        if times > 1:
            chain.append(" ".join(done + acts))
        done += acts * times
        chain.append(" ".join(done))
    return chain


def scan_interpret(command: str) -> list[str]:
    """The action sequence of a SCAN command (``"jump twice"`` -> ``["I_JUMP", "I_JUMP"]``)."""
    return scan_chain(command)[-1].split()


def scan_steps(command: str) -> list[str]:
    """A SCAN record's steps: its interpretation's intermediate action texts (:func:`scan_chain`
    without the last, which is the record's output); none for a command of one unrepeated phrase."""
    return scan_chain(command)[:-1]


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
            chain = scan_chain(cmd)
        except ValueError as e:
            raise RowError(f"not a SCAN command: {e}", "commands") from None
        unknown = sorted(set(acts.split()) - set(SCAN_ACTIONS))
        if unknown:
            raise RowError(f"unknown action(s) {', '.join(map(repr, unknown))} (a cut line?); SCAN actions are "
                           f"{', '.join(SCAN_ACTIONS)}", "actions")
        expected = chain[-1].split()
        if chain[-1] != acts:
            # Every published SCAN split (simple, length, add-primitive, template) follows the grammar,
            # so a disagreement is a damaged line (e.g. cut at a token boundary), never a variant.
            raise RowError(f"the actions do not match the command {cmd!r}: expected {len(expected)} actions "
                           f"{' '.join(expected)!r}, got {len(acts.split())} (a cut or edited line?)", "actions")
        yield Reasoning(input=cmd, output=acts, steps=chain[:-1], task="scan", source=row.where)


# -- COGS ----------------------------------------------------------------------------------


class CogsConverter(Converter):
    """COGS (Kim & Linzen 2020): TSV ``sentence<TAB>logical_form<TAB>category``.

    input = the sentence, output = its logical form, steps = none: COGS gives no intermediate
    derivation, so the chain is sentence -> logical form in one move. ``meta.category`` is the
    generalisation category (``in_distribution``, ``subj_to_obj_proper``, ...).
    """

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


# CLUTRR: clutrr.py


# -- bAbI QA -------------------------------------------------------------------------------

_BABI_LINE = re.compile(r"^(\d+) (.*)$")
_BABI_TASK = re.compile(r"qa(\d+)")


def _babi_task(path: Path) -> str:
    m = _BABI_TASK.search(path.name)
    return f"qa{int(m.group(1))}" if m else "babi"


class BabiConverter(Converter):
    """bAbI QA v1.2 text files or Hub ``facebook/babi_qa`` (configs ``en-qa1`` ...).

    One record per question: input = the story's statements so far + the question, steps = the
    supporting facts in the order their ids are given, which is the reasoning order of the
    published files (qa2 ``12 6``: "Mary dropped the football." then "Mary went back to the
    garden."; qa3: the object's fact, the place it went to, then the place before, the answer),
    output = the answer. A bad question fails its whole story, at the question's line.
    """

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
                        story.setdefault("errors", []).append(("expected '<id> <text>'", "id", lineno))
                        continue
                    if m.group(1) == "1" and story is not None:
                        yield RawRow(story, f"{path}:{start}")
                        story = None
                    if story is None:
                        story, start = self._empty(task), lineno
                    s = story["story"]
                    story["lines"].append(lineno)
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
                            ("a question needs '<TAB>answer<TAB>supporting ids'", "supporting_ids", lineno))
            if story is not None:
                yield RawRow(story, f"{path}:{start}")

    @staticmethod
    def _empty(task: str) -> dict:
        """A story as the Hub has it, plus the file line of each entry (``lines``) for errors."""
        return {"task": task, "story": {"id": [], "type": [], "text": [], "supporting_ids": [], "answer": []},
                "lines": []}

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[Reasoning]:
        d = row.data
        lines = d.get("lines")
        file = row.where.rsplit(":", 1)[0] if lines is not None and row.where else None

        def at(line: int | None) -> str | None:
            """Where a bad question is: its own line in a local file (the story's start otherwise)."""
            return f"{file}:{line}" if file and line else None

        if d.get("errors"):
            reason, field, line = d["errors"][0]
            raise RowError(reason, field, where=at(line))
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
            line = lines[i] if lines and i < len(lines) else None
            if not isinstance(answer, str) or not answer.strip():
                raise RowError(f"question {sid}: expected an answer", "answer", where=at(line))
            try:  # in the order given: the file's reasoning order (qa2: the object's fact, then its carrier's place)
                ids = list(dict.fromkeys(int(x) for x in support))
            except (TypeError, ValueError):
                raise RowError(f"question {sid}: supporting ids must be integers, got {support!r}",
                               "supporting_ids", where=at(line)) from None
            missing = [x for x in ids if str(x) not in by_id]
            if not ids or missing:
                raise RowError(f"question {sid}: supporting ids {missing or 'none'} are not earlier statements",
                               "supporting_ids", where=at(line))
            records.append(Reasoning(
                input=" ".join([*facts, text]), output=answer.strip(), steps=[by_id[str(x)] for x in ids],
                task=task, meta={"question_id": sid, "supporting_ids": [str(x) for x in support]},
                source=f"{row.where}#{sid}" if row.where else None,
            ))
        return records
