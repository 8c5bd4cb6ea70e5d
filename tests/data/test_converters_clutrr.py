"""CLUTRR on fixtures shaped like the original EMNLP'19 release CSVs (and the Hub's CLUTRR/v1 rows).

The release files are pandas ``to_csv`` dumps: an unnamed index column, then ``id, story, query,
text_query, target, text_target, clean_story, proof_state, f_comb, task_name, story_edges,
edge_types, query_edge, genders, syn_story, node_mapping, task_split``. ``target`` is the
relation; ``text_target`` is a list of sentences (often ``[]``), never the answer; ``text_query``
is a question template filled with the bracketed names; ``syn_story`` is written empty.
``proof_state`` lists the generator's expansions, the query's first, each later one expanding a
triple of an earlier body (in the order the generator drew them).
"""

from __future__ import annotations

import csv
import json

import pytest

from voltx.data.converter import RawRow, RowError
from voltx.data.formats import Reasoning
from voltx.data.stream import stream
from voltx.errors import DataError
from voltx_plugins.converters.clutrr import ClutrrConverter, clutrr_proof_steps

COLUMNS = ["", "id", "story", "query", "text_query", "target", "text_target", "clean_story", "proof_state",
           "f_comb", "task_name", "story_edges", "edge_types", "query_edge", "genders", "syn_story",
           "node_mapping", "task_split"]

K2 = {
    "id": "3f0c9b1e-8a42-4d6b-9a0e-51c7d2e8f101",
    "story": "[Walter] drove his son [Oscar] to practice. [Walter]'s daughter, [Irene], made them lunch.",
    "query": "('Oscar', 'Irene')",
    "text_query": "How is [Oscar] related to [Irene] ? ",
    "target": "sister",
    "text_target": "['[Irene] is the sister of [Oscar].']",
    "clean_story": "[Walter] drove his son [Oscar] to practice. [Walter]'s daughter, [Irene], made them lunch.",
    "proof_state": "[{('Oscar', 'sister', 'Irene'): [('Oscar', 'father', 'Walter'), ('Walter', 'daughter', 'Irene')]}]",
    "f_comb": "father-daughter",
    "task_name": "task_1.2",
    "story_edges": "[(0, 1), (1, 2)]",
    "edge_types": "['father', 'daughter']",
    "query_edge": "(0, 2)",
    "genders": "Oscar:male,Walter:male,Irene:female",
    "syn_story": "",
    "node_mapping": "{14: 0, 9: 1, 17: 2}",
    "task_split": "train",
}

K3 = {
    "id": "c81d7e55-02b9-47f3-8f61-0b6a9e3d4c22",
    "story": "[Nora] asked her mother [Ruth] for a ride. [Ruth] and her brother [Felix] went fishing. "
             "[Felix] took his wife [Grace] out to dinner.",
    "query": "('Nora', 'Grace')",
    "text_query": "What is the family connection between [Nora] and [Grace] ? ",
    "target": "aunt",
    "text_target": "[]",
    "clean_story": "[Nora] asked her mother [Ruth] for a ride. [Ruth] and her brother [Felix] went fishing. "
                   "[Felix] took his wife [Grace] out to dinner.",
    "proof_state": "[{('Nora', 'aunt', 'Grace'): [('Nora', 'uncle', 'Felix'), ('Felix', 'wife', 'Grace')]}, "
                   "{('Nora', 'uncle', 'Felix'): [('Nora', 'mother', 'Ruth'), ('Ruth', 'brother', 'Felix')]}]",
    "f_comb": "mother-brother-wife",
    "task_name": "task_1.3",
    "story_edges": "[(0, 1), (1, 2), (2, 3)]",
    "edge_types": "['mother', 'brother', 'wife']",
    "query_edge": "(0, 3)",
    "genders": "Nora:female,Ruth:female,Felix:male,Grace:female",
    "syn_story": "",
    "node_mapping": "{3: 0, 8: 1, 11: 2, 12: 3}",
    "task_split": "test",
}

IN_LAW = {
    **K2, "id": "0b9e1f2a-6c3d-4e5f-8a7b-9c0d1e2f3a4b",
    "story": "[Hazel] talks to her son [Ivan] every day. [Ivan] spent the evening with his wife [Jane].",
    "query": "('Hazel', 'Jane')", "text_query": "For [Hazel], who is [Jane] ? ", "target": "daughter-in-law",
    "text_target": "[]",
    "clean_story": "[Hazel] talks to her son [Ivan] every day. [Ivan] spent the evening with his wife [Jane].",
    "proof_state": "[{('Hazel', 'daughter-in-law', 'Jane'): [('Hazel', 'son', 'Ivan'), ('Ivan', 'wife', 'Jane')]}]",
    "f_comb": "son-wife", "edge_types": "['son', 'wife']", "genders": "Hazel:female,Ivan:male,Jane:female",
}

# k = 4 with a proof that branches: the goal's two facts are both derived, listed goal first and
# then in the generator's random order (here the second fact's expansion before the first's)
K4 = {
    "id": "5d2e8a61-9f3b-4c07-b1e4-7a6c0d9e2f35",
    "story": "[Carl] and his son [Dan] went fishing. [Amy] asked her mother [Beth] for a ride. [Dan]'s sister "
             "[Eve] baked a cake. [Beth] and her husband [Carl] went to the movies.",
    "query": "('Amy', 'Eve')",
    "text_query": "How is [Amy] related to [Eve] ? ",
    "target": "sister",
    "text_target": "[]",
    "clean_story": "[Amy] asked her mother [Beth] for a ride. [Beth] and her husband [Carl] went to the movies. "
                   "[Carl] and his son [Dan] went fishing. [Dan]'s sister [Eve] baked a cake.",
    "proof_state": "[{('Amy', 'sister', 'Eve'): [('Amy', 'father', 'Carl'), ('Carl', 'daughter', 'Eve')]}, "
                   "{('Carl', 'daughter', 'Eve'): [('Carl', 'son', 'Dan'), ('Dan', 'sister', 'Eve')]}, "
                   "{('Amy', 'father', 'Carl'): [('Amy', 'mother', 'Beth'), ('Beth', 'husband', 'Carl')]}]",
    "f_comb": "mother-husband-son-sister",
    "task_name": "task_1.4",
    "story_edges": "[(0, 1), (1, 2), (2, 3), (3, 4)]",
    "edge_types": "['mother', 'husband', 'son', 'sister']",
    "query_edge": "(0, 4)",
    "genders": "Amy:female,Beth:female,Carl:male,Dan:male,Eve:female",
    "syn_story": "",
    "node_mapping": "{21: 0, 4: 1, 7: 2, 30: 3, 12: 4}",
    "task_split": "test",
}


def write_release_csv(path, rows):
    """A CSV the way the release wrote it: pandas index column first, every column filled."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for i, row in enumerate(rows):
            w.writerow([str(i), *(row[c] for c in COLUMNS[1:])])
    return path


def convert_all(paths):
    conv = ClutrrConverter()
    records, errors = [], []
    for row in conv.read_local(paths, "train"):
        if isinstance(row, RowError):
            errors.append(row)
            continue
        try:
            records.extend(conv.convert(row, "reasoning", None))
        except RowError as e:
            errors.append(RowError(e.reason, e.field, where=row.where))
    for r in records:
        assert isinstance(r, Reasoning)
        r.validate()
    return records, errors


def test_release_csv_answer_is_the_relation_not_text_target(tmp_path):
    path = write_release_csv(tmp_path / "1.2,1.3_train.csv", [K2, K3, IN_LAW])
    records, errors = convert_all([path])
    assert errors == []
    assert [r.output for r in records] == ["sister", "aunt", "daughter-in-law"]
    two, three, in_law = records
    assert two.input == ("Walter drove his son Oscar to practice. Walter's daughter, Irene, made them lunch. "
                         "How is Irene related to Oscar?")
    assert two.steps == ["Walter is the father of Oscar; Irene is the daughter of Walter -> Irene is the sister of Oscar"]
    assert three.steps == ["Ruth is the mother of Nora; Felix is the brother of Ruth -> Felix is the uncle of Nora",
                           "Felix is the uncle of Nora; Grace is the wife of Felix -> Grace is the aunt of Nora"]
    assert in_law.steps == ["Ivan is the son of Hazel; Jane is the wife of Ivan -> Jane is the daughter-in-law of Hazel"]
    assert two.task == "task_1.2" and three.task == "task_1.3"


def test_chain_length_k_is_a_field(tmp_path):
    path = write_release_csv(tmp_path / "1.2,1.3_test.csv", [K2, K3, IN_LAW, K4])
    records, _ = convert_all([path])
    assert [r.meta["k"] for r in records] == [2, 3, 2, 4]  # "son-wife": an in-law answer is not a longer chain
    assert [len(r.steps) for r in records] == [1, 2, 1, 3]  # k - 1 compositions
    assert records[1].meta["f_comb"] == "mother-brother-wife" and records[1].meta["id"] == K3["id"]


def test_k_from_task_name_must_agree_with_f_comb(tmp_path):
    path = write_release_csv(tmp_path / "bad.csv", [K2, {**K3, "task_name": "task_1.4"}, {**K2, "task_name": "task_x"}])
    records, errors = convert_all([path])
    assert [r.output for r in records] == ["sister"]
    assert [(e.where.rsplit(":", 1)[1], e.field) for e in errors] == [("3", "f_comb"), ("4", "task_name")]
    assert "3 relations" in errors[0].reason and "task_1.4" in errors[0].reason


def test_a_sentence_list_or_empty_target_is_refused(tmp_path):
    path = write_release_csv(tmp_path / "shifted.csv", [{**K2, "target": "['[Irene] is the sister of [Oscar].']"},
                                                        {**K2, "target": "[]"}, K2])
    records, errors = convert_all([path])
    assert len(records) == 1
    assert [e.field for e in errors] == ["target", "target"]


def test_hub_rows_use_target_text(tmp_path):
    # CLUTRR/v1 on the Hub: target is a label index, target_text the relation
    hub = {k: v for k, v in K2.items() if k not in ("text_query", "text_target", "syn_story", "node_mapping")}
    hub.update(target=4, target_text="sister")
    [rec] = ClutrrConverter().convert(RawRow(hub, "hub:CLUTRR/v1/gen_train234_test2to10/train#0"), "reasoning", None)
    assert rec.output == "sister" and rec.meta["k"] == 2
    with pytest.raises(RowError) as e:  # index and text disagree: 4 is "sister" in the Hub's label list
        list(ClutrrConverter().convert(RawRow({**hub, "target_text": "brother"}, "hub:x#1"), "reasoning", None))
    assert e.value.field == "target"


HUB_COLUMNS = ["", "id", "story", "query", "target", "target_text", "clean_story", "proof_state", "f_comb", "task_name",
               "story_edges", "edge_types", "query_edge", "genders", "task_split"]


def test_hub_csv_layout(tmp_path):
    # the CSVs behind CLUTRR/v1 (hf/1.0/<config>/{train,validation,test}.csv): label index + target_text
    path = tmp_path / "validation.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HUB_COLUMNS)
        for i, (row, label) in enumerate([(K2, 4), (K4, 4), (IN_LAW, 9)]):
            w.writerow([str(i), *({**row, "target": label, "target_text": row["target"]}[c] for c in HUB_COLUMNS[1:])])
    records, errors = convert_all([path])
    assert errors == [] and [r.output for r in records] == ["sister", "sister", "daughter-in-law"]
    assert [len(r.steps) for r in records] == [1, 3, 1] and records[1].meta["k"] == 4


def test_row_cut_mid_field_is_rejected_with_file_line(tmp_path):
    path = write_release_csv(tmp_path / "cut.csv", [K2, K3])
    text = path.read_text(encoding="utf-8")
    cut = text[: text.index("went fishing")]          # the download stopped inside K3's story
    path.write_text(cut, encoding="utf-8")
    records, errors = convert_all([path])
    assert [r.output for r in records] == ["sister"]
    assert len(errors) == 1 and errors[0].where == f"{path}:3"
    # the same through the core: exit-65 error naming file:line, or skipped and counted
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match=rf"{path}:3"):
        stream(ClutrrConverter(), None, out, data_files=[path], progress=False)
    res = stream(ClutrrConverter(), None, out, data_files=[path], on_error="skip", progress=False)
    assert (res.written, res.skipped) == (1, 1)
    assert json.loads(out.read_text().splitlines()[0])["output"] == "sister"


def test_row_cut_inside_a_quoted_field_does_not_swallow_silently(tmp_path):
    path = write_release_csv(tmp_path / "merged.csv", [K3, K2, IN_LAW])
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    assert lines[2].count('"') > 2 and lines[3].count('"') > 2  # K2's story and IN_LAW's query are quoted
    lines[2] = lines[2][: lines[2].index("made them")] + "\n"  # K2 cut inside its quoted story
    path.write_text("".join(lines), encoding="utf-8")
    records, errors = convert_all([path])
    assert [r.output for r in records] == ["aunt"]
    # the open quote ran into the next line: one bad record, reported where it starts
    assert [(e.where, e.field) for e in errors] == [(f"{path}:3", "row")]


def test_row_cut_in_an_unquoted_field_leaves_the_next_row_intact(tmp_path):
    path = write_release_csv(tmp_path / "short.csv", [K2, K3, IN_LAW])
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2][: lines[2].index("went fishing")] + "\n"  # K3's story has no comma: not quoted
    path.write_text("".join(lines), encoding="utf-8")
    records, errors = convert_all([path])
    assert [r.output for r in records] == ["sister", "daughter-in-law"]
    assert [(e.where, e.field) for e in errors] == [(f"{path}:3", "row")] and "got 3" in errors[0].reason


def test_a_branching_proof_is_derived_facts_first():
    [rec] = ClutrrConverter().convert(RawRow(K4, "x.csv:2"), "reasoning", None)
    assert rec.output == "sister" and rec.input.endswith("How is Eve related to Amy?")
    assert rec.steps == [  # depth first, left to right: each composition after the facts it composes
        "Beth is the mother of Amy; Carl is the husband of Beth -> Carl is the father of Amy",
        "Dan is the son of Carl; Eve is the sister of Dan -> Eve is the daughter of Carl",
        "Carl is the father of Amy; Eve is the daughter of Carl -> Eve is the sister of Amy",
    ]
    assert clutrr_proof_steps(K4["proof_state"], ("Amy", "sister", "Eve")) == rec.steps


K3_GOAL = "{('Nora', 'aunt', 'Grace'): [('Nora', 'uncle', 'Felix'), ('Felix', 'wife', 'Grace')]}"
K3_UNCLE = "{('Nora', 'uncle', 'Felix'): [('Nora', 'mother', 'Ruth'), ('Ruth', 'brother', 'Felix')]}"


@pytest.mark.parametrize("proof, says", [
    ("", "expected the proof"),
    ("[{('Osc", "expected a proof like"),
    ("[]", "expected a proof like"),
    (f"[{K3_GOAL}]", "1 composition(s) but a chain of k=3"),                        # a step left out
    (f"[{K3_UNCLE}, {K3_GOAL}]", "the proof is of 'Felix is the uncle of Nora'"),  # not the query's goal first
    ("[{('Nora', 'aunt', 'Grace'): [('Nora', 'uncle', 'Felix'), ('Ruth', 'wife', 'Grace')]}]", "does not follow"),
    (f"[{K3_GOAL}, {K3_UNCLE}, {{('Ruth', 'sister', 'Ann'): [('Ruth', 'mother', 'Eve'), ('Eve', 'daughter', 'Ann')]}}]",
     "not used to prove the query"),
    (f"[{K3_GOAL}, {K3_UNCLE}, {K3_UNCLE}]", "proved twice"),
    ("[{('Nora', 'aunt', 'Grace'): [('Nora', 'aunt', 'Grace'), ('Grace', 'sister', 'Grace')]}]", "prove itself"),
], ids=["missing", "cut", "empty", "short", "wrong-goal", "broken-chain", "unused", "twice", "cycle"])
def test_a_proof_that_does_not_prove_the_query_is_a_row_error(tmp_path, proof, says):
    path = write_release_csv(tmp_path / "proofs.csv", [K2, {**K3, "proof_state": proof}])
    records, errors = convert_all([path])
    assert [r.output for r in records] == ["sister"]
    [err] = errors
    assert (err.where, err.field) == (f"{path}:3", "proof_state") and says in err.reason


def test_the_proof_must_end_in_the_target(tmp_path):
    path = write_release_csv(tmp_path / "t.csv", [{**K2, "target": "brother"}, {**K2, "query": "Oscar"}])
    records, errors = convert_all([path])
    assert records == [] and [(e.field, "sister of Oscar" in e.reason) for e in errors] == [("proof_state", True),
                                                                                           ("query", False)]


def test_not_a_clutrr_csv(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match="x.csv"):
        list(ClutrrConverter().read_local([path], "train"))
