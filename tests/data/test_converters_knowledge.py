"""Phase F2 converters (plugins/voltx_plugins/converters/knowledge.py) on tiny fixtures written
here in each dataset's real format: ConceptNet 5 assertions CSV and Hub rows, CN-100K, ATOMIC 2020
TSV and legacy Hub rows, WordNet WNDB data files. No network and no shared data."""

from __future__ import annotations

import re

import pytest

from voltx.data.converter import RawRow, RowError
from voltx.data.formats import Triple
from voltx.errors import DataError
from voltx_plugins.converters.knowledge import (
    AtomicConverter,
    Cn100kConverter,
    ConceptNetConverter,
    WordNetConverter,
)


def convert_all(conv, paths, fmt="triples", language="en"):
    """(records, [(line number, RowError)]) for every row, as the core would collect them."""
    records, errors = [], []
    for row in conv.read_local(paths, conv.splits[0]):
        try:
            out = list(conv.convert(row, fmt, language))
        except RowError as e:
            errors.append((int(row.where.rsplit(":", 1)[1]), e))
            continue
        for rec in out:
            rec.validate()
            records.append(rec)
    return records, errors


# --- ConceptNet 5 -----------------------------------------------------------------------------

CN_CSV = "\n".join([
    '/a/[/r/IsA/,/c/en/dog/n/,/c/en/animal/]\t/r/IsA\t/c/en/dog/n\t/c/en/animal\t'
    '{"dataset": "/d/wordnet/3.1", "license": "cc:by/4.0", "weight": 2.0}',
    '/a/[/r/UsedFor/,/c/en/hot_dog/,/c/en/eat/]\t/r/UsedFor\t/c/en/hot_dog/n/wn/food\t/c/en/eat\t'
    '{"dataset": "/d/conceptnet/4/en", "weight": 1.0}',
    '/a/[/r/Synonym/,/c/de/hund/n/,/c/en/dog/n/]\t/r/Synonym\t/c/de/hund/n\t/c/en/dog/n\t{"weight": 0.5}',
    '/a/[/r/ExternalURL/,/c/en/dog/,http://dbpedia.org/resource/Dog/]\t/r/ExternalURL\t/c/en/dog\t'
    'http://dbpedia.org/resource/Dog\t{"weight": 1.0}',
    '/a/[/r/IsA/,/c/en/cat/,/c/en/pet/]\t/r/IsA\t/c/en/cat\t/c/en/pet\t{weight: 1',
]) + "\n"


def test_conceptnet_assertions_filtered_by_language(tmp_path):
    path = tmp_path / "conceptnet-assertions-5.7.0.csv"
    path.write_text(CN_CSV, encoding="utf-8")
    conv = ConceptNetConverter()
    records, errors = convert_all(conv, [path])
    assert records == [
        Triple(head="dog", relation="IsA", tail="animal", weight=2.0, source="conceptnet5"),
        Triple(head="hot dog", relation="UsedFor", tail="eat", weight=1.0, source="conceptnet5"),
    ]
    assert [(n, e.field) for n, e in errors] == [(5, "info")]
    every, _ = convert_all(conv, [path], language=None)
    assert Triple(head="hund", relation="Synonym", tail="dog", weight=0.5, source="conceptnet5") in every
    hub = RawRow({"sentence": "", "full_rel": "/a/[/r/IsA/,/c/en/cat/n/,/c/en/pet/]", "rel": "/r/IsA",
                  "arg1": "/c/en/cat/n", "arg2": "/c/en/pet", "lang": "en", "extra_info": "{}",
                  "weight": 1.0}, "hub:conceptnet5/conceptnet5/train#0")
    assert list(conv.convert(hub, "triples", "en")) == [
        Triple(head="cat", relation="IsA", tail="pet", weight=1.0, source="conceptnet5")]
    with pytest.raises(RowError) as exc:
        list(conv.convert(RawRow({"rel": "/r/IsA", "arg1": "cat", "arg2": "/c/en/pet"}, "hub:x#1"),
                          "triples", "en"))
    assert exc.value.field == "arg1"
    assert (conv.hub_name, conv.hub_config) == ("conceptnet5", "conceptnet5")


def test_conceptnet_file_that_is_not_assertions(tmp_path):
    path = tmp_path / "test.txt"
    path.write_text("IsA\tdog\tanimal\n")
    with pytest.raises(DataError, match="test.txt: not a ConceptNet 5 assertions file"):
        list(ConceptNetConverter().read_local([path], "train"))


# --- CN-100K ----------------------------------------------------------------------------------

def test_cn100k_train_and_labelled_dev(tmp_path):
    train = tmp_path / "train100k.txt"
    train.write_text("ReceivesAction\thockey\tplay on ice\nAtLocation\trestroom\trest area\n"
                     "IsA\tlonely\n", encoding="utf-8")
    dev = tmp_path / "dev1.txt"
    dev.write_text("IsA\ttool\tobject\t1\nAtLocation\tferret\tcloud\t0\nIsA\tcat\tpet\tmaybe\n",
                   encoding="utf-8")
    conv = Cn100kConverter()
    records, errors = convert_all(conv, [train])
    assert records == [
        Triple(head="hockey", relation="ReceivesAction", tail="play on ice", source="cn100k"),
        Triple(head="restroom", relation="AtLocation", tail="rest area", source="cn100k"),
    ]
    assert [(n, e.field) for n, e in errors] == [(3, "fields")]
    records, errors = convert_all(conv, [dev])
    assert records == [Triple(head="tool", relation="IsA", tail="object", source="cn100k")]
    assert [(n, e.field) for n, e in errors] == [(3, "label")]
    assert conv.hub_name is None


def test_cn100k_file_that_is_not_cn100k(tmp_path):
    path = tmp_path / "sts.csv"
    path.write_text("main\tMSRvid\t2012\t0001\t2.5\tA b.\tC d.\n")
    with pytest.raises(DataError, match="sts.csv: not a CN-100K file"):
        list(Cn100kConverter().read_local([path], "train"))


# --- ATOMIC 2020 ------------------------------------------------------------------------------

def test_atomic_tsv_skips_none_tails_and_hub_rows(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("PersonX buys a car\txNeed\tto go to the dealership\n"
                    "PersonX buys a car\txEffect\tnone\n"
                    "PersonX buys a car\tHinderedBy\tPersonX has no money\n"
                    "PersonX eats\txWant\n", encoding="utf-8")
    conv = AtomicConverter()
    records, errors = convert_all(conv, [path])
    assert records == [
        Triple(head="PersonX buys a car", relation="xNeed", tail="to go to the dealership", source="atomic"),
        Triple(head="PersonX buys a car", relation="HinderedBy", tail="PersonX has no money", source="atomic"),
    ]
    assert [(n, e.field) for n, e in errors] == [(4, "fields")]
    hub = RawRow({"event": "PersonX pays PersonY a compliment", "oEffect": ["none"],
                  "oReact": ["flattered", "happy"], "oWant": [], "xAttr": ["nice"], "xEffect": [],
                  "xIntent": ["none"], "xNeed": [], "xReact": [], "xWant": [],
                  "prefix": ["pay", "compliment"], "split": "trn"}, "hub:allenai/atomic/train#0")
    assert list(conv.convert(hub, "triples", None)) == [
        Triple(head="PersonX pays PersonY a compliment", relation="oReact", tail="flattered", source="atomic"),
        Triple(head="PersonX pays PersonY a compliment", relation="oReact", tail="happy", source="atomic"),
        Triple(head="PersonX pays PersonY a compliment", relation="xAttr", tail="nice", source="atomic"),
    ]
    with pytest.raises(RowError) as exc:
        list(conv.convert(RawRow({"event": "", "oReact": []}, "hub:x#1"), "triples", None))
    assert exc.value.field == "event"


# ATOMIC 2020 system_eval/test.tsv: "head @@ relation<TAB>tail1| tail2| ..." with "none" tails
SYSTEM_EVAL = (
    "PersonX shoves PersonY back @@ xEffect\tis physical| none| is violent\n"
    "PersonX builds muscle @@ oReact\tnone\n"
    "PersonX finds another job @@ isAfter\tPersonX is unemployed\n"
    "cabbage @@ AtLocation\tsupermarket| freezer| grocery store\n"
    "PersonX grinds ___ for a week @@ isFilledBy\tspices| coffee\n"
    "PersonX waits for PersonY answer xReact\tanxious| stressed\n"
    "PersonX sends a letter @@ oReact\thappy| | curious\n"
)


def test_atomic_system_eval_layout_one_triple_per_tail(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text(SYSTEM_EVAL, encoding="utf-8")
    records, errors = convert_all(AtomicConverter(), [path], language=None)
    t = lambda h, r, x: Triple(head=h, relation=r, tail=x, source="atomic")  # noqa: E731
    assert records == [
        t("PersonX shoves PersonY back", "xEffect", "is physical"),
        t("PersonX shoves PersonY back", "xEffect", "is violent"),
        t("PersonX finds another job", "isAfter", "PersonX is unemployed"),
        t("cabbage", "AtLocation", "supermarket"), t("cabbage", "AtLocation", "freezer"),
        t("cabbage", "AtLocation", "grocery store"),
        t("PersonX grinds ___ for a week", "isFilledBy", "spices"),
        t("PersonX grinds ___ for a week", "isFilledBy", "coffee"),
    ]
    assert [(n, e.field) for n, e in errors] == [(6, "fields"), (7, "tails")]
    assert "head @@ relation<TAB>tail1| tail2" in errors[0][1].reason and "tail 2 of 3 is empty" in errors[1][1].reason


def test_atomic_file_of_neither_layout_lists_the_accepted_ones(tmp_path):
    path = tmp_path / "sts.tsv"
    path.write_text("main\tMSRvid\t2012\t0001\t2.5\tA b.\tC d.\n" * 3, encoding="utf-8")
    with pytest.raises(DataError) as exc:
        list(AtomicConverter().read_local([path], "test"))
    msg = str(exc.value)
    assert "sts.tsv" in msg and "head<TAB>relation<TAB>tail" in msg and "head @@ relation<TAB>tail1| tail2" in msg


# --- WordNet WNDB -----------------------------------------------------------------------------

LICENSE = [
    "  1 This software and database is being provided to you, the LICENSEE, by  ",
    "  2 Princeton University under the following license.  By obtaining, using  ",
    "  3 and/or copying this software and database, you agree that you have  ",
]


def _wndb(synsets):
    """A data.noun text: license header, then synset lines with real byte offsets.

    ``synsets``: (key, words, [(pointer_symbol, target key or 8-digit offset)], gloss)."""
    header = "".join(line + "\n" for line in LICENSE)
    offsets, pos = {}, len(header.encode())
    bodies = []
    for key, words, ptrs, gloss in synsets:
        offsets[key] = pos
        body = lambda off, words=words, ptrs=ptrs, gloss=gloss: (   # noqa: E731
            f"{off:08d} 05 n {len(words):02x} " + "".join(f"{w} 0 " for w in words)
            + f"{len(ptrs):03d} " + "".join(f"{s} {{{t}}} n 0000 " for s, t in ptrs) + f"| {gloss}  \n")
        bodies.append((key, body))
        pos += len(re.sub(r"\{\w+\}", "0" * 8, body(0)).encode())
    text = header
    for key, body in bodies:
        line = body(offsets[key])
        for k, off in offsets.items():
            line = line.replace(f"{{{k}}}", f"{off:08d}")
        text += line
    return text, offsets


def test_wordnet_wndb_pointers_between_first_lemmas(tmp_path):
    text, offsets = _wndb([
        ("animal", ["animal", "animate_being"], [("~", "dog")], "a living organism"),
        ("dog", ["dog", "domestic_dog"], [("@", "animal"), ("%p", "tail"), ("+", "animal")],
         "a member of the genus Canis"),
        ("tail", ["tail"], [("#p", "dog")], "the posterior part of an animal"),
        ("bad", ["flag"], [("@", "99999999")], "a dangling pointer"),
    ])
    text += "00000999 05 n 01 broken 0 002 @ 00000000 n 0000 | p_cnt says two pointers  \n"
    raw = text.encode()
    for key, off in offsets.items():          # the fixture's offsets are real byte offsets
        assert raw[off:off + 8] == f"{off:08d}".encode()
    wn = tmp_path / "wordnet"
    wn.mkdir()
    (wn / "data.noun").write_text(text, encoding="utf-8")
    conv = WordNetConverter()
    records, errors = convert_all(conv, [wn])
    assert records == [
        Triple(head="animal", relation="hyponym", tail="dog", source="wordnet"),
        Triple(head="dog", relation="hypernym", tail="animal", source="wordnet"),
        Triple(head="dog", relation="part_meronym", tail="tail", source="wordnet"),
        Triple(head="tail", relation="part_holonym", tail="dog", source="wordnet"),
    ]
    assert [(n, e.field) for n, e in errors] == [(7, "pointers"), (8, "p_cnt")]
    assert "99999999" in errors[0][1].reason
    # the same rows when the file itself is named
    assert convert_all(conv, [wn / "data.noun"])[0] == records


def test_wordnet_file_that_is_not_wndb(tmp_path):
    path = tmp_path / "data.noun"
    path.write_text("".join(line + "\n" for line in LICENSE) + "dog\tanimal\n" * 70)
    with pytest.raises(DataError, match="data.noun: not a WordNet WNDB data file"):
        list(WordNetConverter().read_local([path], "train"))
