"""Record formats: one dataclass per format, validated, documented in docs/data-contracts.md."""

from __future__ import annotations

import re

import pytest

from voltx.data import formats as F
from voltx.data.formats import FORMATS, RecordError, record_to_dict, validate_dict
from voltx.errors import DataError, UsageError
from conftest import REPO

VALID = {
    "slot_annotated": {"text": "the cat sat", "slots": {"S0": "the cat", "S1": "sat"}, "frame": "Posture"},
    "paraphrase": {"a": "a dog runs", "b": "a dog is running", "score": 4.2},
    "triples": {"head": "dog", "relation": "IsA", "tail": "animal", "weight": 2.0},
    "reasoning": {"input": "jump twice", "output": "JUMP JUMP", "steps": [], "task": "scan"},
    "code_pairs": {"code": "def f(): pass", "docstring": "Do nothing.", "language": "python", "name": "f"},
    "code_problems": {"id": "HumanEval/0", "query": "add", "solution": "return a+b", "tests": ["assert f(1,2)==3"], "difficulty": 1},
}


def test_formats_table_matches_the_doc():
    doc = (REPO / "docs" / "data-contracts.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \|", doc, flags=re.M)
    assert {fmt: cls for fmt, cls in rows} == {fmt: cls.__name__ for fmt, cls in FORMATS.items()}
    for fmt in FORMATS:  # and the module docstring
        assert fmt in F.__doc__


@pytest.mark.parametrize("fmt", sorted(VALID))
def test_valid_records_round_trip(fmt):
    obj = VALID[fmt]
    validate_dict(fmt, obj)
    rec = F.from_dict(fmt, obj)
    assert isinstance(rec, FORMATS[fmt])
    rec.validate()
    assert rec.to_dict() == {k: v for k, v in obj.items()}
    assert record_to_dict(fmt, rec) == obj
    assert record_to_dict(fmt, obj) is obj


@pytest.mark.parametrize(
    "fmt, change, field",
    [
        ("slot_annotated", {"slots": {"S16": "x"}}, "slots"),
        ("slot_annotated", {"slots": {"S0": ""}}, "slots"),
        ("slot_annotated", {"text": 3}, "text"),
        ("paraphrase", {"score": 7.0}, "score"),
        ("paraphrase", {"score": None, "label": 2}, "label"),
        ("paraphrase", {"score": True}, "score"),
        ("triples", {"tail": ""}, "tail"),
        ("triples", {"colour": "red"}, "colour"),
        ("reasoning", {"steps": "a b"}, "steps"),
        ("reasoning", {"meta": []}, "meta"),
        ("code_pairs", {"name": None}, "name"),
        ("code_problems", {"tests": [1]}, "tests"),
    ],
)
def test_invalid_records_name_the_field(fmt, change, field):
    obj = {**VALID[fmt], **change}
    with pytest.raises(RecordError) as err:
        validate_dict(fmt, obj)
    assert err.value.field == field
    assert isinstance(err.value, DataError) and err.value.exit_code == 65
    assert repr(field) in str(err.value)


def test_paraphrase_needs_score_or_label():
    with pytest.raises(RecordError, match="score"):
        validate_dict("paraphrase", {"a": "x", "b": "y"})
    validate_dict("paraphrase", {"a": "x", "b": "y", "label": 0})


def test_missing_field_and_non_object():
    with pytest.raises(RecordError, match="missing"):
        validate_dict("triples", {"head": "a", "relation": "b"})
    with pytest.raises(RecordError, match="JSON object"):
        validate_dict("triples", ["a", "b", "c"])


def test_dataclass_of_the_wrong_format_is_refused():
    with pytest.raises(RecordError, match="triples"):
        record_to_dict("triples", F.Paraphrase("a", "b", label=1))


def test_unknown_format_lists_the_valid_ones():
    with pytest.raises(UsageError) as err:
        validate_dict("tripels", {})
    assert "did you mean 'triples'" in str(err.value)
    assert all(f in str(err.value) for f in FORMATS)


def test_dataclass_to_dict_drops_unset_optionals():
    assert F.Triple("a", "r", "b").to_dict() == {"head": "a", "relation": "r", "tail": "b"}
    assert F.Reasoning("jump", "JUMP", ["step"], "scan").to_dict()["steps"] == ["step"]


def test_role_tables():
    assert F.PROPBANK_TO_SLOT["ARG0"] == "S0" and F.PROPBANK_TO_SLOT["V"] == "S1"
    assert F.PROPBANK_TO_SLOT["ARG3"] == F.PROPBANK_TO_SLOT["ARG4"] == "S8"
    assert F.propbank_slot("ARGM-DIR") == "S9" and F.propbank_slot("ARGM-PRP") == "S11"
    assert F.propbank_slot("ARGM-EXT") == "S15" and F.propbank_slot("R-ARG0") == "S0"
    assert F.propbank_slot("nonsense") is None
    assert F.FRAMENET_TO_SLOT["Instrument"] == "S6" and F.FRAMENET_TO_SLOT["Result"] == "S8"
    assert set(F.PROPBANK_TO_SLOT.values()) | {"S15"} == set(F.SLOT_KEYS)
