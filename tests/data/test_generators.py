"""Offline generators: SCAN grammar and splits, bAbI 1-3, kinship chains, stdlib code pairs."""

import json
import re

import pytest

from conftest import generated_records as records

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
    assert min(n_support) == task  # 1, 2, 3 supporting facts


def test_babi_generator_is_deterministic():
    a = [r.to_dict() for r in records(BabiGenerator(task=2, count=3, seed=9))]
    b = [r.to_dict() for r in records(BabiGenerator(task=2, count=3, seed=9))]
    c = [r.to_dict() for r in records(BabiGenerator(task=2, count=3, seed=10))]
    assert a == b and a != c
    assert [r.to_dict() for r in records(BabiGenerator(task=2, count=3, seed=9), "test")] != a


# -- kinship ---------------------------------------------------------------------------------


def test_kinship_chains():
    gen = KinshipGenerator(count=50, seed=3, min_hops=2, max_hops=5)
    recs = records(gen)
    assert recs == records(KinshipGenerator(count=50, seed=3, min_hops=2, max_hops=5))
    assert recs != records(KinshipGenerator(count=50, seed=4, min_hops=2, max_hops=5))
    assert {len(r.steps) for r in recs} <= {2, 3, 4, 5} and len({len(r.steps) for r in recs}) > 1
    for r in recs:
        first, last = re.match(r".* How is (\w+) related to (\w+)\?$", r.input).groups()
        assert r.steps[-1] == f"{first} is {last}'s {r.output}."
        assert all(s.split(" is ")[1].startswith(f"{last}'s") for s in r.steps)
        assert len(r.meta["relations"].split("-")) == len(r.steps)


def test_kinship_composition_table():
    gen = KinshipGenerator(count=1, seed=0, min_hops=2, max_hops=2)
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
