"""CLUTRR (Sinha et al. 2019) -> ``reasoning`` records: kinship story + query -> relation, with the
proof's compositions as steps.

The EMNLP'19 release CSVs are pandas dumps of the generator's rows: an unnamed index column,
then ``id, story, query, text_query, target, text_target, clean_story, proof_state, f_comb,
task_name, story_edges, edge_types, query_edge, genders, syn_story, node_mapping, task_split``.
``target`` is the relation and ``text_target`` a list of sentences, never the answer. The Hub's
CLUTRR/v1 rows carry a label index in ``target`` and the relation in ``target_text``.

A triple ``(h, r, t)`` of ``query``/``proof_state`` reads "t is the r of h": the query
``('Oscar', 'Irene')`` with target ``sister`` says Irene is Oscar's sister. ``proof_state`` is
the generator's trace: a list of ``{goal: [first, second]}``, the query's goal first, each later
entry expanding a triple of an earlier body; the story's facts are the triples no entry expands,
and a chain of k facts takes k - 1 compositions.
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
MAX_COMPOSITIONS = 100  # CLUTRR's k goes to 10; far more is a damaged cell, not a proof
_PROOF_EXAMPLE = "[{('A', 'r', 'B'): [('A', 'r1', 'C'), ('C', 'r2', 'B')]}]"

Triple = tuple[str, str, str]


def kin_fact(triple: Triple) -> str:
    """A triple ``(h, r, t)`` in words: ``('Oscar', 'father', 'Walter')`` -> "Walter is the father of Oscar"."""
    h, r, t = triple
    return f"{t} is the {r} of {h}"


def composition_step(first: Triple, second: Triple, result: Triple) -> str:
    """One proof step, the composition of two facts: ``"<first>; <second> -> <result>"``, e.g.
    "Walter is the father of Oscar; Irene is the daughter of Walter -> Irene is the sister of Oscar"."""
    return f"{kin_fact(first)}; {kin_fact(second)} -> {kin_fact(result)}"


def _literal(value):
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return value


def _is_triple(x) -> bool:
    return isinstance(x, tuple) and len(x) == 3 and all(isinstance(v, str) and v.strip() for v in x)


def _proof_rules(proof_state) -> dict[Triple, tuple[Triple, Triple]]:
    """``proof_state`` as {goal: (first, second)} in file order; a RowError on ``proof_state`` if it
    is not a list of one-entry ``{(h, r, t): [(h, r1, m), (m, r2, t)]}`` dicts."""
    entries = _literal(proof_state)
    expected = f"expected a proof like \"{_PROOF_EXAMPLE}\", got {str(proof_state)[:60]!r}"
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) and len(e) == 1 for e in entries):
        raise RowError(expected, "proof_state")
    if len(entries) > MAX_COMPOSITIONS:
        raise RowError(f"{len(entries)} compositions; CLUTRR proofs have at most {MAX_COMPOSITIONS}", "proof_state")
    rules: dict[Triple, tuple[Triple, Triple]] = {}
    for entry in entries:
        [(goal, body)] = entry.items()
        if not (_is_triple(goal) and isinstance(body, (list, tuple)) and len(body) == 2 and all(map(_is_triple, body))):
            raise RowError(expected, "proof_state")
        first, second = body
        if first[0] != goal[0] or first[2] != second[0] or second[2] != goal[2]:
            raise RowError(f"{kin_fact(goal)!r} does not follow from {kin_fact(first)!r} and {kin_fact(second)!r}: "
                           "a step must chain (h, r1, m), (m, r2, t) to (h, r, t)", "proof_state")
        if goal in rules:
            raise RowError(f"{kin_fact(goal)!r} is proved twice", "proof_state")
        rules[goal] = (first, second)
    return rules


def clutrr_proof_steps(proof_state, goal: Triple) -> list[str]:
    """The compositions of a CLUTRR ``proof_state`` in the order a proof derives them: depth first,
    left to right, each after the facts it composes (:func:`composition_step`), the goal last.

    The proof must be of ``goal`` (the query with the target relation) and use every entry once;
    otherwise a RowError on ``proof_state`` says what is wrong.
    """
    rules = _proof_rules(proof_state)
    root = next(iter(rules))
    if root != goal:
        raise RowError(f"the proof is of {kin_fact(root)!r}, but the query and target ask {kin_fact(goal)!r}",
                       "proof_state")
    steps: list[str] = []
    done: set[Triple] = set()

    def derive(fact: Triple, path: tuple[Triple, ...]) -> None:
        if fact not in rules or fact in done:
            return
        if fact in path:
            raise RowError(f"{kin_fact(fact)!r} is used to prove itself", "proof_state")
        first, second = rules[fact]
        derive(first, (*path, fact))
        derive(second, (*path, fact))
        done.add(fact)
        steps.append(composition_step(first, second, fact))

    derive(root, ())
    if len(done) != len(rules):
        unused = next(g for g in rules if g not in done)
        raise RowError(f"{kin_fact(unused)!r} is proved but not used to prove the query", "proof_state")
    return steps


def _clean_story(text: str) -> str:
    return " ".join(text.replace("[", "").replace("]", "").split())


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


def _chain_length(d: dict) -> int:
    """k from task_name (``task_1.3`` -> 3), checked against the relations of f_comb, or else f_comb's count."""
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
        return k
    if links:
        return len(links)
    raise RowError("expected task_name like 'task_1.3' or f_comb like 'father-sister-son' (the chain length k)",
                   "task_name")


class ClutrrConverter(Converter):
    """CLUTRR (Sinha et al. 2019) release CSV or Hub ``CLUTRR/v1.0``: kinship story + query -> relation.

    Records: input = the story (names unbracketed) + "How is B related to A?", output = the
    relation, steps = the proof's k - 1 compositions in derivation order (:func:`clutrr_proof_steps`),
    meta = id, f_comb, task_name, task_split and ``k``, the chain length. A row without a
    ``proof_state`` that proves its query is a row error.
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
        k = _chain_length(d)
        a, b = query
        proof = d.get("proof_state")
        if not isinstance(proof, str) or not proof.strip():
            raise RowError(f"expected the proof like \"{_PROOF_EXAMPLE}\" (every release and Hub row has one)",
                           "proof_state")
        steps = clutrr_proof_steps(proof, (a, answer, b))
        if len(steps) != k - 1:
            raise RowError(f"the proof has {len(steps)} composition(s) but a chain of k={k} relations takes {k - 1}",
                           "proof_state")
        meta: dict = {key: str(d[key]) for key in ("id", "f_comb", "task_name", "task_split") if d.get(key) not in (None, "")}
        meta["k"] = k
        yield Reasoning(input=f"{_clean_story(story)} How is {b} related to {a}?", output=answer,
                        steps=steps, task=str(d.get("task_name") or "clutrr"), meta=meta, source=row.where)
