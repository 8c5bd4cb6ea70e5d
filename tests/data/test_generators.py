"""Offline generators: SCAN grammar and splits, bAbI 1-3, kinship chains, stdlib code pairs."""

import json
import re

import pytest

from conftest import generated_records as records

from voltx.data.sources import load_records
from voltx.errors import UsageError
from voltx_plugins.converters.code_pairs_gen import StdlibCodeGenerator
from voltx_plugins.converters.reasoning_gen import COMPOSE, BabiGenerator, KinshipGenerator, ScanGenerator, scan_commands
from voltx_plugins.converters.reasoning import scan_interpret


# -- SCAN ------------------------------------------------------------------------------------


def test_scan_full_command_space():
    cmds = scan_commands()
    assert len(cmds) == 20910 and len(set(cmds)) == 20910
    for cmd in ("jump", "turn left", "walk around right thrice after turn opposite left twice"):
        assert cmd in cmds
    assert max(len(scan_interpret(c)) for c in cmds) == 48


def test_scan_generator_is_a_generator():
    gen = ScanGenerator()
    assert gen.generator is True and gen.hub_name is None and gen.formats == ("reasoning",)
    assert (gen.seed, gen.count) == (0, None)
    with pytest.raises(UsageError):
        ScanGenerator(no_such_option=1)


def test_scan_simple_split_is_seeded_80_20():
    a, b = ScanGenerator(seed=1), ScanGenerator(seed=1)
    train, test = a.split_commands("train"), a.split_commands("test")
    assert train == b.split_commands("train")
    assert (len(train), len(test)) == (16728, 4182) and not set(train) & set(test)
    assert ScanGenerator(seed=2).split_commands("train") != train
    recs = records(ScanGenerator(seed=1, count=5))
    assert [r.input for r in recs] == train[:5]
    assert all(r.output == " ".join(scan_interpret(r.input)) and r.steps for r in recs)


def test_scan_length_split():
    gen = ScanGenerator(scan_split="length")
    train, test = gen.split_commands("train"), gen.split_commands("test")
    assert len(train) + len(test) == 20910
    assert all(len(scan_interpret(c)) <= 22 for c in train)
    assert all(len(scan_interpret(c)) > 22 for c in test)


def test_scan_addprim_jump_split():
    gen = ScanGenerator(scan_split="addprim_jump")
    train, test = gen.split_commands("train"), gen.split_commands("test")
    assert all(c == "jump" or "jump" not in c.split() for c in train)
    assert test and all("jump" in c.split() and c != "jump" for c in test)
    # the published tasks_train_addprim_jump.txt: 13,203 commands without jump + "jump" 1,467 times
    # (10% of its 14,670 lines); tasks_test_addprim_jump.txt: the 7,706 other commands with jump
    assert (len(train), train.count("jump"), len(set(train)), len(test)) == (14670, 1467, 13204, 7706)
    assert len(set(train)) + len(test) == 20910
    once = ScanGenerator(scan_split="addprim_jump", jump_copies=1).split_commands("train")
    assert (len(once), once.count("jump")) == (13204, 1) and set(once) == set(train)
    first = ScanGenerator(scan_split="addprim_jump", count=1000).split_commands("train")
    assert 50 < first.count("jump") < 150  # spread through the shuffled file, not bunched at one end


def test_scan_addprim_jump_once_variant_is_registered(tmp_path):
    from voltx.cli.main import main

    for variant, n in (("addprim_jump", 14670), ("addprim_jump_once", 13204)):
        out = tmp_path / f"{variant}.jsonl"
        assert main(["data", "generate", "scan", "--split", variant, "-o", str(out), "-q"]) == 0
        inputs = [json.loads(x)["input"] for x in out.read_text().splitlines()]
        assert len(inputs) == n and inputs.count("jump") == n - 13203


# -- bAbI ------------------------------------------------------------------------------------

_MOVE = re.compile(r"^(\w+) (?:moved|went|journeyed|travelled|went back) to the (\w+)\.$")
_GRAB = re.compile(r"^(\w+) (?:got|picked up|grabbed|took) the (\w+) there\.$")
_DROP = re.compile(r"^(\w+) (?:dropped|put down|discarded|left) the (\w+)\.$")


def replay(facts):
    """Independent simulation of a story: agent locations, carriers, object location history."""
    loc, holder, objloc, hist = {}, {}, {}, {}

    def place(o, where):
        objloc[o] = where
        if not hist.get(o) or hist[o][-1] != where:
            hist.setdefault(o, []).append(where)

    for fact in facts:
        if m := _MOVE.match(fact):
            loc[m[1]] = m[2]
            for o, a in holder.items():
                if a == m[1]:
                    place(o, m[2])
        elif m := _GRAB.match(fact):
            holder[m[2]] = m[1]
            place(m[2], loc[m[1]])
        elif m := _DROP.match(fact):
            holder.pop(m[2])
        else:
            raise AssertionError(f"unparsed fact {fact!r}")
    return loc, objloc, hist


@pytest.mark.parametrize("task", [1, 2, 3])
def test_babi_answers_match_the_story(task):
    gen = BabiGenerator(task=task, count=30, seed=5)
    recs = records(gen)
    assert len(recs) >= 30 and {r.task for r in recs} == {f"qa{task}"}
    n_support = set()
    for r in recs:
        *facts, question = [s + ("." if not s.endswith("?") else "") for s in re.split(r"(?<=[.?]) ", r.input)]
        facts = [f.rstrip(".") + "." for f in facts]
        loc, objloc, hist = replay(facts)
        if m := re.match(r"Where is (\w+)\?$", question):
            assert r.output == loc[m[1]]
        elif m := re.match(r"Where is the (\w+)\?$", question):
            assert r.output == objloc[m[1]]
        else:
            m = re.match(r"Where was the (\w+) before the (\w+)\?$", question)
            assert m, question
            h = hist[m[1]]
            assert h[-1] == m[2] and r.output == h[-2] != m[2]
        assert all(s in facts for s in r.steps)
        assert len(r.steps) == len(r.meta["supporting_ids"])
        n_support.add(len(r.steps))
        # the reasoning order of the published files: the object's fact, then the places
        if task > 1:
            assert _GRAB.match(r.steps[0]) or _DROP.match(r.steps[0])
            assert f" the {question.split('the ')[1].split()[0].rstrip('?')}" in r.steps[0]
        if task == 3:
            assert r.steps[1].endswith(f" the {m[2]}.") and r.steps[2].endswith(f" the {r.output}.")
        else:
            assert r.steps[-1].endswith(f" the {r.output}.")
    assert n_support == {task}  # 1, 2, 3 supporting facts, as in the published tasks


def test_babi_generator_is_deterministic():
    a = [r.to_dict() for r in records(BabiGenerator(task=2, count=3, seed=9))]
    b = [r.to_dict() for r in records(BabiGenerator(task=2, count=3, seed=9))]
    c = [r.to_dict() for r in records(BabiGenerator(task=2, count=3, seed=10))]
    assert a == b and a != c
    assert [r.to_dict() for r in records(BabiGenerator(task=2, count=3, seed=9), "test")] != a


def test_babi_small_world_for_quick_tests():
    # what a small F3 test asks for: 200 train / 100 test task-1 records, 2 people, 3 places
    src = "gen:babi_qa1_gen?count=40&agents=2&locations=3&seed=4"
    train = load_records([src], "reasoning", split="train", key="k", example="")
    test = load_records([src.replace("count=40", "count=20")], "reasoning", split="test", key="k", example="")
    assert (len(train), len(test)) == (200, 100)
    assert train == load_records([src], "reasoning", split="train", key="k", example="")
    assert {r["output"] for r in train + test} == {"bathroom", "bedroom", "garden"}
    assert {w.rstrip("?") for r in train for w in r["input"].split() if w.istitle()} == {"Mary", "John", "Where"}
    seen = {r["input"] for r in train}
    assert sum(r["input"] in seen for r in test) <= 2  # seeded apart; a 2-move story may recur by chance (1 of 100)
    for bad in ({"agents": 0}, {"locations": 1}, {"agents": 9}, {"questions": 0}):
        with pytest.raises(UsageError):
            records(BabiGenerator(count=1, **bad))


# -- kinship ---------------------------------------------------------------------------------

_STEP = re.compile(r"^(\w+) is the ([\w-]+) of (\w+); (\w+) is the ([\w-]+) of (\w+) -> (\w+) is the ([\w-]+) of (\w+)$")


def test_kinship_chains():
    gen = KinshipGenerator(count=60, seed=3)
    train, test = records(gen), records(gen, "test")
    assert train == records(KinshipGenerator(count=60, seed=3))
    assert train != records(KinshipGenerator(count=60, seed=4))
    # CLUTRR's systematic generalisation: train k = 2, 3; test k = 2, 3, 4
    assert {r.meta["k"] for r in train} == {2, 3} and {r.meta["k"] for r in test} == {2, 3, 4}
    for r in train + test:
        first, last = re.match(r".* How is (\w+) related to (\w+)\?$", r.input).groups()
        k = r.meta["k"]
        assert len(r.steps) == k - 1 == len(r.meta["relations"].split("-")) - 1 and r.task == f"kinship_{k}hop"
        parsed = [_STEP.match(s) for s in r.steps]
        assert all(parsed), r.steps
        for m in parsed:  # "B is the r1 of A; C is the r2 of B -> C is the r of A"
            assert m[3] == m[9] == last and m[1] == m[6] and m[4] == m[7]
        for before, after in zip(parsed, parsed[1:]):  # each conclusion is the next step's first fact
            assert before.group(7, 8, 9) == after.group(1, 2, 3)
        assert parsed[-1].group(7, 8) == (first, r.output)


def test_kinship_chain_lengths_are_options():
    assert {r.meta["k"] for r in records(KinshipGenerator(count=20, train_k=[4]))} == {4}
    src = "gen:kinship_gen?count=30&train_k=3&test_k=[5,6]"
    assert {r["meta"]["k"] for r in load_records([src], "reasoning", split="test", key="k", example="")} == {5, 6}
    assert {r["meta"]["k"] for r in load_records([src], "reasoning", split="train", key="k", example="")} == {3}
    for bad in ([], [0], [11], "2", [2.5], True):
        with pytest.raises(UsageError):
            records(KinshipGenerator(count=1, train_k=bad))


def test_kinship_composition_table():
    gen = KinshipGenerator(count=1, seed=0, train_k=[2])
    assert COMPOSE[("parent", "sibling")] == "pibling" and COMPOSE[("parent", "parent")] == "grandparent"
    row = next(gen.read_local([], "train"))
    assert row.data["hops"] == 2


# -- stdlib code -----------------------------------------------------------------------------


def test_stdlib_code_generator(tmp_path):
    root = tmp_path / "lib"
    root.mkdir()
    (root / "mod.py").write_text(
        "".join(f'def f{i}(x):\n    """Return x plus {i}."""\n    return x + {i}\n\n' for i in range(12))
    )
    gen = StdlibCodeGenerator(root=str(root), cache_dir=str(tmp_path / "cache"), seed=1, valid_fraction=0.25)
    train, valid = records(gen, "train"), records(gen, "valid")
    assert len(train) + len(valid) == 12 and train and valid
    assert {r.name for r in train}.isdisjoint({r.name for r in valid})
    assert train == records(gen, "train")
    r = train[0]
    assert r.language == "python" and r.docstring.startswith("Return x plus") and '"""' not in r.code
    assert len(records(StdlibCodeGenerator(root=str(root), cache_dir=str(tmp_path / "cache"), count=3))) == 3


def test_registered_variants_need_no_options():
    from voltx_plugins.converters import reasoning_gen as g

    assert g.ScanLengthGenerator().split_commands("test") == ScanGenerator(scan_split="length").split_commands("test")
    assert g.ScanAddprimJumpGenerator().scan_split == "addprim_jump" and g.ScanSimpleGenerator().scan_split == "simple"
    gen = g.Babi3Generator()
    gen.count, gen.seed = 2, 7  # what `voltx data generate --count 2 --seed 7` does
    assert {r.task for r in records(gen)} == {"qa3"}
