"""Reasoning converters (SCAN, COGS, CLUTRR, bAbI) on tiny fixtures in the real formats."""

import json

import pytest

from voltx.data.converter import RawRow, RowError
from voltx.data.formats import Reasoning
from voltx.data.stream import stream
from voltx.errors import DataError
from voltx_plugins.converters.reasoning import (
    BabiConverter,
    CogsConverter,
    ScanConverter,
    scan_chain,
    scan_interpret,
    scan_steps,
)


def convert_all(conv, paths, split="train"):
    """(records, errors) over every row of ``paths``."""
    records, errors = [], []
    for row in conv.read_local(paths, split):
        try:
            records.extend(conv.convert(row, conv.formats[0], None))
        except RowError as e:
            errors.append((row.where, e))
    for r in records:
        assert isinstance(r, Reasoning)
        r.validate()
    return records, errors


# -- SCAN ------------------------------------------------------------------------------------

SCAN_TEXT = (
    "IN: jump twice OUT: I_JUMP I_JUMP\n"
    "IN: walk left after run thrice OUT: I_RUN I_RUN I_RUN I_TURN_LEFT I_WALK\n"
    "this line is broken\n"
    "\n"
    "IN: turn opposite right and look OUT: I_TURN_RIGHT I_TURN_RIGHT I_LOOK\n"
)


def test_scan_text_file(tmp_path):
    path = tmp_path / "tasks_train_simple.txt"
    path.write_text(SCAN_TEXT)
    records, errors = convert_all(ScanConverter(), [path])
    assert [r.input for r in records] == ["jump twice", "walk left after run thrice", "turn opposite right and look"]
    assert records[1].output == "I_RUN I_RUN I_RUN I_TURN_LEFT I_WALK"
    # "after": the second conjunct runs first; "thrice": the phrase once, then repeated
    assert records[1].steps == ["I_RUN", "I_RUN I_RUN I_RUN"]
    assert records[0].steps == ["I_JUMP"] and records[2].steps == ["I_TURN_RIGHT I_TURN_RIGHT"]
    assert records[0].task == "scan" and records[0].source.endswith(":1")
    assert len(errors) == 1 and errors[0][0].endswith(":3") and errors[0][1].field == "line"


def test_scan_hub_row_and_bad_command():
    conv = ScanConverter()
    [rec] = conv.convert(RawRow({"commands": "jump around left", "actions": "I_TURN_LEFT I_JUMP " * 4},
                                "hub:scan/length/train#0"), "reasoning", None)
    assert rec.output.split() == ["I_TURN_LEFT", "I_JUMP"] * 4 and rec.steps == []  # one phrase, one move
    with pytest.raises(RowError) as e:
        list(conv.convert(RawRow({"commands": "fly twice", "actions": "I_FLY"}, "x"), "reasoning", None))
    assert e.value.field == "commands"


def test_scan_interpretation_rules():
    assert scan_interpret("jump twice") == ["I_JUMP", "I_JUMP"]
    assert scan_interpret("turn left twice") == ["I_TURN_LEFT", "I_TURN_LEFT"]
    assert scan_interpret("walk around right") == ["I_TURN_RIGHT", "I_WALK"] * 4
    assert scan_interpret("look opposite left after run") == ["I_RUN", "I_TURN_LEFT", "I_TURN_LEFT", "I_LOOK"]
    assert scan_interpret("turn around left") == ["I_TURN_LEFT"] * 4
    assert scan_interpret("turn opposite right thrice") == ["I_TURN_RIGHT"] * 6
    assert scan_interpret("run around left thrice") == ["I_TURN_LEFT", "I_RUN"] * 12
    assert scan_steps("jump and walk") == ["I_JUMP"]
    assert scan_chain("jump twice and walk") == ["I_JUMP", "I_JUMP I_JUMP", "I_JUMP I_JUMP I_WALK"]  # the example
    assert scan_chain("walk after jump twice") == ["I_JUMP", "I_JUMP I_JUMP", "I_JUMP I_JUMP I_WALK"]
    assert scan_chain("look right thrice and turn left twice") == [
        "I_TURN_RIGHT I_LOOK", "I_TURN_RIGHT I_LOOK " * 2 + "I_TURN_RIGHT I_LOOK",
        "I_TURN_RIGHT I_LOOK " * 3 + "I_TURN_LEFT", "I_TURN_RIGHT I_LOOK " * 3 + "I_TURN_LEFT I_TURN_LEFT"]
    for bad in ("jump and walk and run", "jump and walk after run", "and jump", "twice", "turn", "jump twice twice",
                "walk around", "left"):
        with pytest.raises(ValueError):
            scan_chain(bad)


# lines as the published files write them (tasks_{train,test}_{simple,length}.txt), one per grammar rule
SCAN_PUBLISHED = (
    "IN: jump opposite right twice and turn opposite right thrice OUT: I_TURN_RIGHT I_TURN_RIGHT I_JUMP "
    "I_TURN_RIGHT I_TURN_RIGHT I_JUMP I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT\n"
    "IN: run opposite left after walk right OUT: I_TURN_RIGHT I_WALK I_TURN_LEFT I_TURN_LEFT I_RUN\n"
    "IN: look around left thrice after turn left twice OUT: I_TURN_LEFT I_TURN_LEFT" + " I_TURN_LEFT I_LOOK" * 12 + "\n"
    "IN: walk around right twice OUT:" + " I_TURN_RIGHT I_WALK" * 8 + "\n"
    "IN: turn around right and jump left OUT: I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT I_TURN_RIGHT I_TURN_LEFT I_JUMP\n"
    "IN: run thrice and look OUT: I_RUN I_RUN I_RUN I_LOOK\n"
)


def test_scan_last_step_interpreted_is_the_published_output(tmp_path):
    path = tmp_path / "tasks_test_length.txt"
    path.write_text(SCAN_PUBLISHED)
    records, errors = convert_all(ScanConverter(), [path])
    assert errors == [] and len(records) == 6
    for line, rec in zip(SCAN_PUBLISHED.splitlines(), records):
        out = line.split(" OUT: ")[1]
        chain = scan_chain(rec.input)
        assert chain[-1] == out == rec.output and rec.steps == chain[:-1]
        for before, after in zip([*rec.steps], [*rec.steps[1:], rec.output]):  # each move appends actions
            assert after.startswith(before + " ") and after != before
    assert records[1].steps == ["I_TURN_RIGHT I_WALK"]
    assert records[2].steps == ["I_TURN_LEFT", "I_TURN_LEFT I_TURN_LEFT",
                                "I_TURN_LEFT I_TURN_LEFT" + " I_TURN_LEFT I_LOOK" * 4]


def test_scan_not_this_format(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("1 Mary went to the kitchen.\n")
    with pytest.raises(DataError, match="x.txt"):
        list(ScanConverter().read_local([path], "train"))


def test_scan_through_the_stream_core(tmp_path):
    path = tmp_path / "scan.txt"
    path.write_text(SCAN_TEXT)
    out = tmp_path / "out.jsonl"
    res = stream(ScanConverter(), None, out, data_files=[path], on_error="skip", progress=False)
    assert (res.written, res.skipped) == (3, 1)
    first = json.loads(out.read_text().splitlines()[0])
    assert first["input"] == "jump twice" and first["steps"] == ["I_JUMP"] and first["output"] == "I_JUMP I_JUMP"


def test_scan_cut_or_garbled_actions_are_rejected_with_file_line(tmp_path):
    path = tmp_path / "tasks_train_length.txt"
    path.write_text(
        "IN: jump twice OUT: I_JUMP I_JUMP\n"
        "IN: walk around left OUT: I_TURN_LEFT I_WALK I_TURN_LEFT I_WALK I_TU\n"   # cut inside a token
        "IN: run thrice OUT: I_RUN I_RUN\n"                                       # cut at a token boundary
        "IN: look OUT: I_LOOK\n"
    )
    records, errors = convert_all(ScanConverter(), [path])
    assert [r.input for r in records] == ["jump twice", "look"]
    assert [(w.rsplit(":", 1)[1], e.field) for w, e in errors] == [("2", "actions"), ("3", "actions")]
    assert "I_TU" in errors[0][1].reason and "I_TURN_LEFT" in errors[0][1].reason
    assert "expected 3 actions" in errors[1][1].reason
    out = tmp_path / "out.jsonl"
    with pytest.raises(DataError, match=rf"{path}:2: field 'actions'"):
        stream(ScanConverter(), None, out, data_files=[path], progress=False)
    res = stream(ScanConverter(), None, out, data_files=[path], on_error="skip", progress=False)
    assert (res.written, res.skipped) == (2, 2) and res.reasons[0].startswith(f"{path}:2:")


def test_scan_undecodable_line_is_skipped_and_counted_under_skip(tmp_path):
    path = tmp_path / "tasks_test_simple.txt"
    path.write_bytes(b"IN: jump OUT: I_JUMP\nIN: walk \xe9 OUT: I_WALK\nIN: look twice OUT: I_LOOK I_LOOK\n")
    out = tmp_path / "out.jsonl"
    res = stream(ScanConverter(), None, out, data_files=[path], on_error="skip", progress=False)
    assert (res.written, res.skipped) == (2, 1)
    assert res.reasons[0].startswith(f"{path}:2:") and "UTF-8" in res.reasons[0]
    assert [json.loads(x)["input"] for x in out.read_text().splitlines()] == ["jump", "look twice"]
    with pytest.raises(DataError) as err:  # fail mode: the file, its line and the byte offset
        stream(ScanConverter(), None, out, data_files=[path], progress=False)
    assert str(path) in str(err.value) and "line 2" in str(err.value) and "byte offset 30" in str(err.value)
    assert "--on-error skip" in str(err.value)


# -- COGS ------------------------------------------------------------------------------------

COGS_TEXT = (
    "A cat smiled .\tcat ( x _ 1 ) AND smile . agent ( x _ 2 , x _ 1 )\tin_distribution\n"
    "Emma ate the cake .\t* cake ( x _ 3 ) ; eat . agent ( x _ 1 , Emma ) AND eat . theme ( x _ 1 , x _ 3 )\t"
    "subj_to_obj_proper\n"
    "missing the form\n"
)


def test_cogs_tsv(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text(COGS_TEXT)
    records, errors = convert_all(CogsConverter(), [path])
    assert [r.input for r in records] == ["A cat smiled .", "Emma ate the cake ."]
    assert records[1].output.startswith("* cake ( x _ 3 )") and records[1].meta == {"category": "subj_to_obj_proper"}
    assert records[0].task == "cogs" and records[0].steps == []
    assert len(errors) == 1 and errors[0][1].field == "logical_form" and errors[0][0].endswith(":3")


def test_cogs_not_this_format(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("IN: jump OUT: I_JUMP\n")
    with pytest.raises(DataError, match="test.tsv"):
        list(CogsConverter().read_local([path], "test"))


# CLUTRR: tests/data/test_converters_clutrr.py (fixtures shaped like the release CSVs)


# -- bAbI ------------------------------------------------------------------------------------

BABI_TEXT = (  # shaped like qa2_two-supporting-facts_train.txt: the object's fact first, then where its carrier went
    "1 Mary moved to the garden.\n"
    "2 Mary got the milk there.\n"
    "3 John moved to the bedroom.\n"
    "4 Mary dropped the milk.\n"
    "5 Where is the milk? \tgarden\t4 1\n"
    "6 John went to the garden.\n"
    "7 Where is John? \tgarden\t6\n"
    "1 Sandra went to the office.\n"
    "2 Where is Sandra? \toffice\n"
    "1 Daniel went to the kitchen.\n"
    "2 Where is Daniel? \tkitchen\t1\n"
)

BABI_QA3 = (  # shaped like qa3_three-supporting-facts_train.txt: object fact, last place, the place before
    "1 Mary moved to the bathroom.\n"
    "2 Mary got the football there.\n"
    "3 Mary journeyed to the office.\n"
    "4 John journeyed to the office.\n"
    "5 Mary journeyed to the kitchen.\n"
    "6 Mary dropped the football.\n"
    "7 Where was the football before the kitchen? \toffice\t6 5 3\n"
)


def test_babi_text(tmp_path):
    path = tmp_path / "qa2_two-supporting-facts_train.txt"
    path.write_text(BABI_TEXT)
    records, errors = convert_all(BabiConverter(), [path])
    assert len(records) == 3
    milk, john, daniel = records
    assert milk.input == ("Mary moved to the garden. Mary got the milk there. John moved to the bedroom. "
                          "Mary dropped the milk. Where is the milk?")
    assert milk.output == "garden" and milk.task == "qa2"
    # in the order the ids are given (the reasoning order), not story order
    assert milk.steps == ["Mary dropped the milk.", "Mary moved to the garden."]
    assert milk.meta["supporting_ids"] == ["4", "1"]
    assert john.input.endswith("John went to the garden. Where is John?") and john.steps == ["John went to the garden."]
    assert "Where is the milk?" not in john.input  # earlier questions are not part of the story
    assert daniel.input == "Daniel went to the kitchen. Where is Daniel?"  # ids restart per story
    assert len(errors) == 1 and errors[0][1].field == "supporting_ids" and errors[0][0].endswith(":8")
    assert errors[0][1].where == f"{path}:9"  # the question's own line, not the story's first


def test_babi_qa3_steps_follow_the_given_ids(tmp_path):
    path = tmp_path / "qa3_three-supporting-facts_test.txt"
    path.write_text(BABI_QA3 + "8 Where is Mary? \tkitchen\t5 5 9\n")
    records, errors = convert_all(BabiConverter(), [path])
    [(_, err)] = errors  # 9 is not a fact: the story fails at the question's line
    assert (err.where, err.field) == (f"{path}:8", "supporting_ids") and "[9]" in err.reason
    path.write_text(BABI_QA3)
    [rec], _ = convert_all(BabiConverter(), [path])
    assert rec.task == "qa3" and rec.output == "office"
    assert rec.steps == ["Mary dropped the football.", "Mary journeyed to the kitchen.", "Mary journeyed to the office."]


def test_babi_hub_row():
    story = {"id": ["1", "2", "3"], "type": [0, 0, 1], "text": ["Mary moved to the bathroom.",
                                                                 "John went to the hallway.", "Where is Mary?"],
             "supporting_ids": [[], [], ["1"]], "answer": ["", "", "bathroom"]}
    conv = BabiConverter()
    conv.hub_config = "en-qa1"
    [rec] = conv.convert(RawRow({"story": story}, "hub:facebook/babi_qa/en-qa1/train#0"), "reasoning", None)
    assert rec.task == "qa1" and rec.output == "bathroom" and rec.steps == ["Mary moved to the bathroom."]


def test_babi_not_this_format(tmp_path):
    path = tmp_path / "qa1.txt"
    path.write_text("Mary went to the kitchen.\n")
    with pytest.raises(DataError, match="qa1.txt"):
        list(BabiConverter().read_local([path], "train"))
