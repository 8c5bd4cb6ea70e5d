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
    assert records[1].steps == ["run thrice -> I_RUN I_RUN I_RUN", "walk left -> I_TURN_LEFT I_WALK"]
    assert records[0].task == "scan" and records[0].source.endswith(":1")
    assert len(errors) == 1 and errors[0][0].endswith(":3") and errors[0][1].field == "line"


def test_scan_hub_row_and_bad_command():
    conv = ScanConverter()
    [rec] = conv.convert(RawRow({"commands": "jump around left", "actions": "I_TURN_LEFT I_JUMP " * 4},
                                "hub:scan/length/train#0"), "reasoning", None)
    assert rec.output.split() == ["I_TURN_LEFT", "I_JUMP"] * 4 and rec.steps
    with pytest.raises(RowError) as e:
        list(conv.convert(RawRow({"commands": "fly twice", "actions": "I_FLY"}, "x"), "reasoning", None))
    assert e.value.field == "commands"


def test_scan_interpretation_rules():
    assert scan_interpret("jump twice") == ["I_JUMP", "I_JUMP"]
    assert scan_interpret("turn left twice") == ["I_TURN_LEFT", "I_TURN_LEFT"]
    assert scan_interpret("walk around right") == ["I_TURN_RIGHT", "I_WALK"] * 4
    assert scan_interpret("look opposite left after run") == ["I_RUN", "I_TURN_LEFT", "I_TURN_LEFT", "I_LOOK"]
    assert scan_interpret("turn around left") == ["I_TURN_LEFT"] * 4
    assert scan_steps("jump and walk") == ["jump -> I_JUMP", "walk -> I_WALK"]


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
    assert first["input"] == "jump twice" and first["steps"] == ["jump twice -> I_JUMP I_JUMP"]


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

BABI_TEXT = (
    "1 Mary got the milk there.\n"
    "2 John moved to the bedroom.\n"
    "3 Mary travelled to the hallway.\n"
    "4 Where is the milk? \thallway\t3 1\n"
    "5 John went to the garden.\n"
    "6 Where is John? \tgarden\t5\n"
    "1 Sandra went to the office.\n"
    "2 Where is Sandra? \toffice\n"
    "1 Daniel went to the kitchen.\n"
    "2 Where is Daniel? \tkitchen\t1\n"
)


def test_babi_text(tmp_path):
    path = tmp_path / "qa2_two-supporting-facts_train.txt"
    path.write_text(BABI_TEXT)
    records, errors = convert_all(BabiConverter(), [path])
    assert len(records) == 3
    milk, john, daniel = records
    assert milk.input == "Mary got the milk there. John moved to the bedroom. Mary travelled to the hallway. Where is the milk?"
    assert milk.output == "hallway" and milk.task == "qa2"
    assert milk.steps == ["Mary got the milk there.", "Mary travelled to the hallway."]  # story order
    assert milk.meta["supporting_ids"] == ["3", "1"]
    assert john.input.endswith("John went to the garden. Where is John?") and john.steps == ["John went to the garden."]
    assert "Where is the milk?" not in john.input  # earlier questions are not part of the story
    assert daniel.input == "Daniel went to the kitchen. Where is Daniel?"  # ids restart per story
    assert len(errors) == 1 and errors[0][1].field == "supporting_ids" and errors[0][0].endswith(":7")


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
