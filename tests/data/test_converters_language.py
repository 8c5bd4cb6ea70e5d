"""Phase F1 converters (plugins/voltx_plugins/converters/language.py) on tiny fixtures written
here in each dataset's real format: FrameNet 1.7 XML, CoNLL-2012 Hub rows, Universal
Propositions CoNLL-U, STS-B (TSV and Hub rows) and PAWS (TSV and Hub rows).
No network and no shared data: every fixture is made in tmp_path."""

from __future__ import annotations

import json

import pytest

from voltx.data.converter import RawRow, RowError
from voltx.data.formats import Paraphrase, SlotAnnotated
from voltx.errors import DataError
from voltx_plugins.converters.language import (
    FrameNetConverter,
    PawsConverter,
    PropBankConlluConverter,
    PropBankConverter,
    StsbConverter,
)


def convert_all(conv, paths, fmt):
    """(records, [(where, RowError)]) for every row of the files, as the core would collect them."""
    records, errors = [], []
    for row in conv.read_local(paths, conv.splits[0]):
        try:
            out = list(conv.convert(row, fmt, "en"))
        except RowError as e:
            errors.append((row.where, e))
            continue
        for rec in out:
            rec.validate()
            records.append(rec)
    return records, errors


# --- FrameNet ---------------------------------------------------------------------------------

FN_TEXT = "The cook cut the bread with a knife yesterday ."


def _span(text, sub):
    start = text.index(sub)
    return f'start="{start}" end="{start + len(sub) - 1}"'   # FrameNet ends are inclusive


FULLTEXT = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<fullTextAnnotation xmlns="http://framenet.icsi.berkeley.edu">
    <header><corpus description="t" name="T" ID="1"><document description="d" name="D" ID="2"/></corpus></header>
    <sentence corpID="1" docID="2" sentNo="1" paragNo="1" aPos="0" ID="100">
        <text>{FN_TEXT}</text>
        <annotationSet cDate="01/01/2010" status="UNANN" ID="1">
            <layer rank="1" name="PENN"><label end="2" start="0" name="dt"/></layer>
        </annotationSet>
        <annotationSet luID="5" luName="cut.v" frameID="7" frameName="Cutting" status="MANUAL" ID="2">
            <layer rank="1" name="Target"><label {_span(FN_TEXT, "cut")} name="Target"/></layer>
            <layer rank="1" name="FE">
                <label {_span(FN_TEXT, "The cook")} name="Agent"/>
                <label {_span(FN_TEXT, "the bread")} name="Item"/>
                <label {_span(FN_TEXT, "with a knife")} name="Instrument"/>
                <label {_span(FN_TEXT, "yesterday")} name="Time"/>
                <label itype="INI" name="Pieces"/>
            </layer>
            <layer rank="1" name="GF"><label {_span(FN_TEXT, "The cook")} name="Ext"/></layer>
        </annotationSet>
    </sentence>
    <sentence corpID="1" docID="2" sentNo="2" paragNo="1" aPos="50" ID="101">
        <text>Rain fell .</text>
        <annotationSet luID="6" luName="fall.v" frameID="8" frameName="Motion_directional" status="MANUAL" ID="3">
            <layer rank="1" name="Target"><label start="5" end="8" name="Target"/></layer>
            <layer rank="1" name="FE"><label start="0" end="99" name="Theme"/></layer>
        </annotationSet>
    </sentence>
</fullTextAnnotation>
"""

LU_FILE = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<lexUnit status="Finished_Initial" POS="V" name="bake.v" ID="9" frame="Cooking_creation" frameID="10"
         xmlns="http://framenet.icsi.berkeley.edu">
    <header><frame><FE fgColor="FFFFFF" bgColor="FF0000" type="Core" abbrev="cook" name="Cook"/></frame></header>
    <definition>COD: cook by dry heat</definition>
    <subCorpus name="V-880-np">
        <sentence sentNo="0" aPos="1" ID="200">
            <text>Mary baked bread in the oven .</text>
            <annotationSet cDate="02/02/2002" status="MANUAL" ID="20">
                <layer rank="1" name="FE">
                    <label start="0" end="3" name="Cook"/>
                    <label start="11" end="15" name="Produced_food"/>
                    <label start="17" end="27" name="Place"/>
                </layer>
                <layer rank="1" name="Target"><label start="5" end="9" name="Target"/></layer>
            </annotationSet>
        </sentence>
    </subCorpus>
</lexUnit>
"""


def test_framenet_fulltext_and_lu_files(tmp_path):
    (tmp_path / "fulltext").mkdir()
    (tmp_path / "lu").mkdir()
    (tmp_path / "fulltext" / "T__D.xml").write_text(FULLTEXT, encoding="utf-8")
    (tmp_path / "lu" / "lu9.xml").write_text(LU_FILE, encoding="utf-8")
    (tmp_path / "frame").mkdir()
    (tmp_path / "frame" / "Cutting.xml").write_text("<frame/>", encoding="utf-8")  # not read
    conv = FrameNetConverter()
    records, errors = convert_all(conv, [tmp_path], "slot_annotated")
    assert records == [
        SlotAnnotated(text=FN_TEXT,
                      slots={"S0": "The cook", "S1": "cut", "S2": "the bread", "S4": "yesterday", "S6": "with a knife"},
                      frame="Cutting", predicate="cut.v", source="framenet"),
        SlotAnnotated(text="Mary baked bread in the oven .",
                      slots={"S0": "Mary", "S1": "baked", "S3": "in the oven", "S15": "bread"},  # Cook: a doer; Produced_food: not in the table
                      frame="Cooking_creation", predicate="bake.v", source="framenet"),
    ]
    assert len(errors) == 1
    where, err = errors[0]
    line = _line_of(FULLTEXT, '    <sentence corpID="1" docID="2" sentNo="2"')
    assert where.endswith(f"T__D.xml:{line}")
    assert err.field == "end" and "outside" in err.reason
    assert records[0].to_dict()["slots"]["S2"] == "the bread"  # Item: a frame-specific name for the Patient


def test_framenet_rejects_files_that_are_not_framenet(tmp_path):
    frame = tmp_path / "Cutting.xml"
    frame.write_text('<frame xmlns="http://framenet.icsi.berkeley.edu" name="Cutting"/>')
    with pytest.raises(DataError, match="Cutting.xml.*not a FrameNet annotation file"):
        list(FrameNetConverter().read_local([frame], "train"))
    broken = tmp_path / "broken.xml"
    broken.write_text("<fullTextAnnotation><sentence>")
    with pytest.raises(DataError, match="broken.xml:1: not well-formed"):
        list(FrameNetConverter().read_local([broken], "train"))


# --- PropBank via CoNLL-2012 Hub rows ---------------------------------------------------------

DOC = {
    "document_id": "nw/wsj/00/wsj_0001",
    "sentences": [
        {"part_id": 0, "words": ["John", "ate", "an", "apple", "in", "the", "park", "."],
         "predicate_lemmas": [None, "eat", None, None, None, None, "park", None],
         "predicate_framenet_ids": [None, "01", None, None, None, None, None, None],
         "srl_frames": [{"verb": "ate", "frames": ["B-ARG0", "B-V", "B-ARG1", "I-ARG1", "B-ARGM-LOC",
                                                   "I-ARGM-LOC", "I-ARGM-LOC", "O"]}]},
        {"part_id": 0, "words": ["The", "man", "who", "left", "smiled"],
         "srl_frames": [
             {"verb": "left", "frames": ["B-ARG0", "I-ARG0", "B-R-ARG0", "B-V", "O"]},
             {"verb": "smiled", "frames": ["B-ARG0", "I-ARG0", "I-ARG0", "I-ARG0", "B-V"]}]},
    ],
}
BAD_DOC = {"document_id": "bad", "sentences": [
    {"words": ["It", "rained"], "srl_frames": [{"verb": "rained", "frames": ["O"]}]}]}


def test_propbank_hub_rows_one_record_per_predicate(tmp_path):
    path = tmp_path / "conll2012_dev.jsonl"
    path.write_text(json.dumps(DOC) + "\n\n" + json.dumps(BAD_DOC) + "\n", encoding="utf-8")
    conv = PropBankConverter()
    records, errors = convert_all(conv, [path], "slot_annotated")
    assert records == [
        SlotAnnotated(text="John ate an apple in the park .",
                      slots={"S0": "John", "S1": "ate", "S2": "an apple", "S3": "in the park"},
                      frame="eat.01", predicate="ate", source="propbank"),
        SlotAnnotated(text="The man who left smiled", slots={"S0": "The man", "S1": "left"},
                      predicate="left", source="propbank"),
        SlotAnnotated(text="The man who left smiled", slots={"S0": "The man who left", "S1": "smiled"},
                      predicate="smiled", source="propbank"),
    ]
    assert [(w.rsplit(":", 1)[1], e.field) for w, e in errors] == [("3", "frames")]
    # the same converter takes a Hub row directly, and a bad BIO tag names the field
    hub = RawRow({"sentences": [{"words": ["Go"], "srl_frames": [{"verb": "Go", "frames": ["X-V"]}]}]},
                 "hub:conll2012_ontonotesv5/english_v4/train#0")
    with pytest.raises(RowError) as exc:
        list(conv.convert(hub, "slot_annotated", None))
    assert exc.value.field == "frames" and "'X-V'" in exc.value.reason
    assert conv.hub_name == "conll2012_ontonotesv5" and conv.hub_config == "english_v4"


def test_propbank_jsonl_that_is_not_conll2012(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "hi"}\n')
    with pytest.raises(DataError, match="x.jsonl:1: not a conll2012_ontonotesv5 row"):
        list(PropBankConverter().read_local([path], "train"))


# --- CoNLL-U with PropBank columns (Universal Propositions) -----------------------------------

def _tok(*cols):
    return "\t".join(cols)


CONLLU = "\n".join([
    "# newdoc id = weblog-1",
    "# sent_id = weblog-1-0001",
    "# text = What if Google Morphed Into GoogleOS?",
    _tok("1", "What", "what", "PRON", "WP", "PronType=Int", "0", "root", "0:root", "_", "_", "_"),
    _tok("2", "if", "if", "SCONJ", "IN", "_", "4", "mark", "4:mark", "_", "_", "_"),
    _tok("3", "Google", "Google", "PROPN", "NNP", "Number=Sing", "4", "nsubj", "4:nsubj", "_", "_", "ARG1"),
    _tok("4", "Morphed", "morph", "VERB", "VBD", "_", "1", "advcl", "1:advcl:if", "_", "morph.01", "V"),
    _tok("5", "Into", "into", "ADP", "IN", "_", "6", "case", "6:case", "_", "_", "_"),
    _tok("6", "GoogleOS", "GoogleOS", "PROPN", "NNP", "_", "4", "obl", "4:obl:into", "SpaceAfter=No", "_", "ARG2"),
    _tok("7", "?", "?", "PUNCT", ".", "_", "4", "punct", "4:punct", "_", "_", "_"),
    "",
    "# sent_id = email-2",
    "# text = they were wrung-out, they won't",
    _tok("1", "they", "they", "PRON", "PRP", "_", "3", "nsubj", "3:nsubj", "_", "_", "_", "ARG1"),
    _tok("2", "were", "be", "AUX", "VBD", "_", "3", "aux", "3:aux", "_", "be.03", "V", "_"),
    _tok("3", "wrung", "wring", "VERB", "VBN", "_", "0", "root", "0:root", "_", "wring_out.03", "ARG2", "V"),
    _tok("4", "-", "-", "PUNCT", "HYPH", "_", "5", "punct", "5:punct", "_", "_", "_", "_"),
    _tok("5", "out", "out", "ADP", "RP", "_", "3", "compound:prt", "3:compound:prt", "_", "_", "_", "C-V"),
    _tok("5.1", "left", "left", "VERB", "VBN", "_", "_", "_", "3:parataxis", "CopyOf=3", "", ""),
    _tok("6-7", "won't", "_", "_", "_", "_", "_", "_", "_", "_", "_", "_", "_"),
    _tok("6", "wo", "will", "AUX", "MD", "_", "3", "aux", "3:aux", "_", "_", "_", "ARGM-MOD"),
    _tok("7", "n't", "not", "PART", "RB", "_", "3", "advmod", "3:advmod", "_", "_", "_", "ARGM-NEG"),
    "",
    "# propbank = no-up",
    "# sent_id = answers-3",
    "# text = Green Tea",
    _tok("1", "Green", "green", "ADJ", "JJ", "_", "2", "amod", "2:amod", "_=", "", ""),
    _tok("2", "Tea", "tea", "NOUN", "NN", "_", "0", "root", "0:root", "_=", "", ""),
    "",
    "# sent_id = bad-4",
    "# text = Dogs bark loudly",
    _tok("1", "Dogs", "dog", "NOUN", "NNS", "_", "2", "nsubj", "2:nsubj", "_", "_", "ARG0"),
    _tok("2", "bark", "bark", "VERB", "VBP", "_", "0", "root", "0:root", "_", "bark.01", "V"),
    _tok("3", "loudly", "loudly", "ADV", "RB", "_", "2", "advmod", "2:advmod", "_", "loud.01", "ARGM-MNR"),
    "",
    "# sent_id = bad-5",
    _tok("1", "Hi", "hi", "INTJ", "UH", "_", "0", "root", "0:root"),
    "",
]) + "\n"


def _line_of(text, prefix):
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(prefix))


def test_propbank_conllu_one_record_per_predicate(tmp_path):
    path = tmp_path / "en_ewt-up-test.conllu"
    path.write_text(CONLLU, encoding="utf-8")
    records, errors = convert_all(PropBankConlluConverter(), [path], "slot_annotated")
    assert records == [
        SlotAnnotated(text="What if Google Morphed Into GoogleOS?",
                      slots={"S1": "Morphed", "S2": "Google", "S6": "GoogleOS"},
                      frame="morph.01", predicate="Morphed", source="propbank_conllu"),
        SlotAnnotated(text="they were wrung-out, they won't", slots={"S1": "were", "S6": "wrung"},
                      frame="be.03", predicate="were", source="propbank_conllu"),
        SlotAnnotated(text="they were wrung-out, they won't",
                      slots={"S1": "wrung out", "S2": "they", "S13": "n't", "S14": "wo"},
                      frame="wring_out.03", predicate="wrung", source="propbank_conllu"),
    ]
    # rows are reported at their first line; "Green Tea" (no predicates) makes no record
    fields = [(int(w.rsplit(":", 1)[1]), e.field) for w, e in errors]
    assert fields == [(_line_of(CONLLU, "# sent_id = bad-4"), "arguments"),
                      (_line_of(CONLLU, "# sent_id = bad-5"), "columns")]
    assert "2 predicates" in errors[0][1].reason


def test_conllu_that_is_not_conllu(tmp_path):
    path = tmp_path / "notes.conllu"
    path.write_text("just some text\n")
    with pytest.raises(DataError, match="notes.conllu:1: not CoNLL-U"):
        list(PropBankConlluConverter().read_local([path], "test"))


# --- STS-B ------------------------------------------------------------------------------------

STS_TSV = "\n".join([
    "main-captions\tMSRvid\t2012test\t0024\t2.500\tA girl is styling her hair.\tA girl is brushing her hair.",
    'main-news\theadlines\t2015\t0001\t5.000\t"Obama" wins\tObama wins again\textra-a\textra-b',
    "main-captions\tMSRvid\t2012test\t0033\tn/a\tA man.\tA woman.",
    "main-captions\tMSRvid\t2012test\t0034\t1.0\tOnly one sentence",
]) + "\n"


def test_stsb_tsv_and_hub_rows(tmp_path):
    path = tmp_path / "sts-test.csv"
    path.write_text(STS_TSV, encoding="utf-8")
    conv = StsbConverter()
    records, errors = convert_all(conv, [path], "paraphrase")
    assert records == [
        Paraphrase(a="A girl is styling her hair.", b="A girl is brushing her hair.", score=2.5, source="stsb"),
        Paraphrase(a='"Obama" wins', b="Obama wins again", score=5.0, source="stsb"),
    ]
    assert [(w.rsplit(":", 1)[1], e.field) for w, e in errors] == [("3", "score"), ("4", "fields")]
    hub = RawRow({"sentence1": "A plane is taking off.", "sentence2": "An air plane is taking off.",
                  "score": 0.72}, "hub:sentence-transformers/stsb/test#0")
    assert list(conv.convert(hub, "paraphrase", None)) == [
        Paraphrase(a="A plane is taking off.", b="An air plane is taking off.", score=3.6, source="stsb")]
    with pytest.raises(RowError) as exc:
        list(conv.convert(RawRow({"sentence1": "a", "sentence2": "b", "score": 1.5}, "hub:x#1"),
                          "paraphrase", None))
    assert exc.value.field == "score"
    with pytest.raises(DataError, match="cannot produce"):
        list(conv.convert(hub, "triples", None))


def test_stsb_file_that_is_not_stsb(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text("sentence1,sentence2,score\na,b,0.5\n")
    with pytest.raises(DataError, match="scores.csv: not an STS Benchmark TSV"):
        list(StsbConverter().read_local([path], "test"))


# --- PAWS -------------------------------------------------------------------------------------

PAWS_TSV = "\n".join([
    "id\tsentence1\tsentence2\tlabel",
    "1\tIn Paris , in October 1560 , he met the English ambassador .\t"
    "In October 1560 , he met the English ambassador in Paris .\t1",
    "2\tThe NBA season of 1975 -- 76 was the 30th season .\tThe 1975 -- 76 season was the 30th NBA season .\t0",
    "3\tA cat .\tA dog .\t2",
]) + "\n"


def test_paws_tsv_and_hub_rows(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text(PAWS_TSV, encoding="utf-8")
    conv = PawsConverter()
    records, errors = convert_all(conv, [path], "paraphrase")
    assert records == [
        Paraphrase(a="In Paris , in October 1560 , he met the English ambassador .",
                   b="In October 1560 , he met the English ambassador in Paris .", label=1, source="paws"),
        Paraphrase(a="The NBA season of 1975 -- 76 was the 30th season .",
                   b="The 1975 -- 76 season was the 30th NBA season .", label=0, source="paws"),
    ]
    assert [(w.rsplit(":", 1)[1], e.field) for w, e in errors] == [("4", "label")]
    hub = RawRow({"id": 7, "sentence1": "x y", "sentence2": "y x", "label": 0},
                 "hub:google-research-datasets/paws/labeled_final/train#0")
    assert list(conv.convert(hub, "paraphrase", None)) == [Paraphrase(a="x y", b="y x", label=0, source="paws")]
    assert (conv.hub_name, conv.hub_config) == ("google-research-datasets/paws", "labeled_final")


def test_paws_file_that_is_not_paws(tmp_path):
    path = tmp_path / "sts.tsv"
    path.write_text(STS_TSV, encoding="utf-8")
    with pytest.raises(DataError, match="sts.tsv: not a PAWS TSV"):
        list(PawsConverter().read_local([path], "test"))
