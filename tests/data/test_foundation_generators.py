"""Offline F1/F2 generators: srl_gen (slot_annotated), paraphrase_gen (paraphrase), concepts_gen (triples)."""

import json
import re
from collections import Counter

import pytest

from conftest import generated_records as records

from voltx.errors import UsageError
from voltx_plugins.converters.paraphrase_gen import ParaphraseGenerator
from voltx_plugins.converters.sentence_grammar import ADJS, MANNERS, NOUNS, PREDICATES, TIMES
from voltx_plugins.converters.slot_annotated_gen import SrlGenerator
from voltx_plugins.converters.triples_gen import ConceptsGenerator, knowledge_base, split_knowledge_base


@pytest.fixture(scope="module")
def srl():
    return records(SrlGenerator(seed=3, count=1500))


@pytest.fixture(scope="module")
def pairs():
    return records(ParaphraseGenerator(seed=3, count=1500))


@pytest.fixture(scope="module")
def kb_split():
    return split_knowledge_base(0)


# -- srl_gen -------------------------------------------------------------------------------------


def test_generators_are_generators():
    for cls, fmt in ((SrlGenerator, "slot_annotated"), (ParaphraseGenerator, "paraphrase"), (ConceptsGenerator, "triples")):
        gen = cls()
        assert gen.generator is True and gen.hub_name is None and gen.formats == (fmt,)
        assert gen.splits == ("train", "dev", "test") and (gen.seed, gen.count) == (0, None)
        with pytest.raises(UsageError):
            cls(no_such_option=1)
        with pytest.raises(UsageError):
            list(cls().read_local([], "valid"))


def synonym_groups() -> list[tuple[str, ...]]:
    """Every synonym group of the grammar (nouns, adjectives, adverbs, times, verbs), 2+ words each."""
    out = [g for groups in NOUNS.values() for g in groups] + [g for groups in ADJS.values() for g in groups]
    out += MANNERS + [g for _, g in TIMES]
    out += [tuple(v[0] for v in p.verbs) for p in PREDICATES]
    return list(dict.fromkeys(g for g in out if len(g) > 1))


def test_lexicon_sizes():
    assert len(PREDICATES) >= 25
    assert len({w for groups in NOUNS.values() for g in groups for w in g}) >= 150
    groups = synonym_groups()
    assert len(groups) >= 30
    for must in (("dog", "hound"), ("cat", "feline"), ("chef", "cook"), ("car", "automobile"), ("child", "kid"),
                 ("doctor", "physician"), ("big", "large"), ("quickly", "rapidly"), ("purchase", "buy"),
                 ("chase", "pursue"), ("begin", "start")):
        assert any(set(must) <= set(g) for g in groups), must


def test_srl_deterministic_and_split_streams():
    a = [r.to_dict() for r in records(SrlGenerator(seed=5, count=50))]
    assert a == [r.to_dict() for r in records(SrlGenerator(seed=5, count=50))]
    assert a != [r.to_dict() for r in records(SrlGenerator(seed=5, count=50), "test")]
    assert a != [r.to_dict() for r in records(SrlGenerator(seed=5, count=50), "dev")]
    assert a != [r.to_dict() for r in records(SrlGenerator(seed=6, count=50))]
    assert len(list(SrlGenerator().read_local([], "train"))) == 5000


def test_srl_slots_are_words_of_the_text(srl):
    for r in srl:
        words = re.findall(r"[A-Za-z]+", r.text)
        assert 2 <= len(r.slots) <= 6 and "S1" in r.slots, r
        assert set(r.slots) <= {f"S{i}" for i in range(7)}
        for value in r.slots.values():
            assert value in words, (value, r.text)
        assert r.predicate and r.frame and r.text.endswith(".") and r.text[0].isupper()


def test_srl_voice_synonyms_and_fronting(srl):
    passives = [r for r in srl if " was " in r.text and "S2" in r.slots
                and r.text.index(r.slots["S2"]) < r.text.index(" was ")]
    assert len(passives) > 0.2 * len(srl)
    assert any("S0" in r.slots and re.search(rf"\bby (\w+ ){{0,2}}{r.slots['S0']}\b", r.text) for r in passives)
    verbs = {r.slots["S1"] for r in srl}
    assert {"chased", "pursued"} <= verbs and {"bought", "purchased"} <= verbs
    assert any(r.text.split(",")[0].split()[-1] == r.slots.get("S4") for r in srl if "," in r.text)  # "Yesterday, ..."
    # the agent is not always the first noun: passive and fronted adjuncts move it
    assert sum(r.slots.get("S0") == r.text.split()[1].strip(",") for r in srl) < 0.8 * len(srl)
    assert {k for r in srl for k in r.slots} == {f"S{i}" for i in range(7)}


def test_srl_dog_and_canine_both_agents_never_one_synonym():
    """F1's dog~canine check must not be passed by a pairing the generator makes by construction."""
    recs = records(SrlGenerator(seed=0, count=4000))
    agents = {r.slots.get("S0") for r in recs}
    assert {"dog", "canine"} <= agents
    assert not any({"dog", "canine"} <= set(g) for g in synonym_groups())


# -- paraphrase_gen ------------------------------------------------------------------------------


def test_paraphrase_deterministic_and_split_streams():
    a = [r.to_dict() for r in records(ParaphraseGenerator(seed=2, count=40))]
    assert a == [r.to_dict() for r in records(ParaphraseGenerator(seed=2, count=40))]
    assert a != [r.to_dict() for r in records(ParaphraseGenerator(seed=2, count=40), "test")]


def test_paraphrase_score_label_distribution(pairs):
    by = Counter((r.score, r.label) for r in pairs)
    assert set(by) <= {(5.0, 1), (4.0, 1), (2.5, 0), (2.0, 0), (1.0, 0), (0.0, 0)}
    positive = sum(r.label for r in pairs) / len(pairs)
    assert 0.33 < positive < 0.47
    assert by[(5.0, 1)] and by[(4.0, 1)] and by[(2.5, 0)] and by[(2.0, 0)] and (by[(0.0, 0)] + by[(1.0, 0)])
    assert all(r.a != r.b for r in pairs)
    assert all(r.label == (r.score >= 4) for r in pairs)


def test_paraphrase_hard_negatives_share_words(pairs):
    def words(s):
        return set(re.findall(r"[a-z]+", s.lower()))

    swaps = [r for r in pairs if r.score == 2.5]
    # agent and patient swapped: high lexical overlap, different meaning
    assert sum(len(words(r.a) & words(r.b)) >= 3 for r in swaps) > 0.8 * len(swaps)
    unrelated = [r for r in pairs if r.score == 0.0]
    assert sum(len(words(r.a) & words(r.b) - {"the", "a", "an", "was", "by", "in", "at", "on", "with"}) for r in unrelated) \
        < sum(len(words(r.a) & words(r.b)) for r in swaps)


# -- concepts_gen --------------------------------------------------------------------------------


def test_concepts_sizes_and_relations():
    kb = knowledge_base()
    assert len(kb) == len(set(kb)) >= 2000
    concepts = {x for h, _, t in kb for x in (h, t)}
    assert len(concepts) >= 300 and all(c == c.lower().strip() for c in concepts)
    rels = Counter(r for _, r, _ in kb)
    assert {"IsA", "UsedFor", "CapableOf", "AtLocation", "HasProperty", "PartOf", "HasA", "Desires", "MadeOf"} <= set(rels)
    s = set(kb)
    for t in (("dog", "CapableOf", "bark"), ("cat", "CapableOf", "meow"), ("knife", "UsedFor", "cut"),
              ("pen", "UsedFor", "write"), ("dog", "IsA", "mammal"), ("canine", "IsA", "mammal"),
              ("dog", "Synonym", "canine"), ("automobile", "IsA", "vehicle")):
        assert t in s, t
    members = Counter(t for h, r, t in kb if r == "IsA")
    assert sum(n >= 5 for n in members.values()) >= 15  # several members per category


def test_concepts_split_holds_out_triples_and_whole_concepts(kb_split):
    total = len(knowledge_base())
    train, dev, test = kb_split["train"], kb_split["dev"], kb_split["test"]
    assert len(train) + len(dev) + len(test) == total
    assert not set(train) & set(dev) and not set(train) & set(test) and not set(dev) & set(test)
    seen = {x for h, _, t in train for x in (h, t)}
    for held in (dev, test):
        known_ends = [tr for tr in held if tr[0] in seen and tr[2] in seen]
        assert abs(len(known_ends) - total / 10) <= 0.02 * total  # ~10% of the triples with known ends
        unseen = {x for h, _, t in held for x in (h, t)} - seen
        assert len(unseen) >= 10  # concepts no training triple names: F2's codebook is measured on them
    assert split_knowledge_base(0) == kb_split and split_knowledge_base(1)["test"] != test


def test_concepts_generator_records(kb_split):
    recs = records(ConceptsGenerator(count=30), "test")
    assert len(recs) == 30 and [(r.head, r.relation, r.tail) for r in recs] == kb_split["test"][:30]
    assert len(list(ConceptsGenerator().read_local([], "train"))) == len(kb_split["train"])
    assert len(list(ConceptsGenerator().read_local([], "dev"))) == len(kb_split["dev"])


# -- CLI -----------------------------------------------------------------------------------------


def test_generate_srl_through_cli(cli_in_process, tmp_path):
    out = tmp_path / "srl.jsonl"
    proc = cli_in_process("data", "generate", "srl_gen", "--count", "20", "--seed", "4", "--output", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 20 and all(r["slots"]["S1"] in r["text"] for r in rows)
    assert rows == [r.to_dict() for r in records(SrlGenerator(seed=4, count=20))]
