"""Cognate's parts on their own: the word problems, the model's switches, Muon x Grokfast's
exact state, sizing, diversity and the artifact contract's refusals."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from voltx.data.converter import RawRow, RowError
from voltx.errors import ConfigError, DataError, MissingInputError, PreflightError, UsageError
from voltx_agentforge import sizing
from voltx_agentforge.cognate_artifacts import load_model, save_model
from voltx_agentforge.cognate_eval import copy_number, diversity, majority_answer
from voltx_agentforge.cognate import QUICK, CognateConfig
from voltx_agentforge.cognate_data import collate, encode_example
from voltx_agentforge.cognate_eval import accuracy, greedy_answers
from voltx_agentforge.cognate_model import CognateArgs, CognateNet, geometric_prior, ngram_slots
from voltx_agentforge.optimizers import GroupScaledAdamW, MuonGrokfast, build_optimizer, muon_parameters
from voltx_agentforge.word_problems import BOX, ArithWordsGenerator, Gsm8kConverter, fact_table

ARGS = CognateArgs(d_model=16, heads=2, layers=1, refine_steps=3, memory_slots=4, max_len=32)


def problems(split, **options):
    gen = ArithWordsGenerator(count=200, seed=3, **options)
    return [r.to_dict() for row in gen.read_local([], split) for r in gen.convert(row, "reasoning", None)]


def test_generated_problems_are_right_deterministic_and_split_apart():
    train, dev, test = problems("train"), problems("dev"), problems("test")
    assert problems("train") == train and len(train) == len(dev) == len(test) == 200
    inputs = [{r["input"] for r in split} for split in (train, dev, test)]
    assert not inputs[0] & inputs[1] and not inputs[0] & inputs[2] and not inputs[1] & inputs[2]
    for r in train:
        last = r["steps"][0].split(";")[-1]
        assert eval(last.split("=")[0].replace("x", "*")) == int(r["output"]) == int(last.split("=")[1])
    assert {r["task"] for r in train} == {"add", "sub", "mul", "two", "box"}
    boxes = [r for r in train if r["task"] == "box"]  # the fact is never in the question
    assert boxes and not any(c.isdigit() for r in boxes for c in r["input"].split(" and ")[1])
    assert all(int(r["output"]) - int(r["input"].split(" has ")[1].split()[0]) == BOX[r["input"].split()[3]] for r in boxes)
    with pytest.raises(UsageError, match="ops must be"):
        problems("train", ops="add,div")
    more = problems("train", ops="inc,fact", max_number=5)
    assert {r["task"] for r in more} == {"inc", "fact"}
    for r in more:  # inc: the question's number + 1; fact: the box's size alone, never in the question
        if r["task"] == "inc":
            assert int(r["output"]) == int(r["input"].split(" has ")[1].split()[0]) + 1
        else:
            assert int(r["output"]) == BOX[r["input"].split(" box of ")[1].split()[0]] and not any(c.isdigit() for c in r["input"])


def test_more_facts_extend_the_box_table_and_leave_the_default_problems_alone():
    assert problems("train", ops="add,box,fact", facts=12) == problems("train", ops="add,box,fact")  # 12: as before the option
    table = fact_table(96)
    assert len(table) == 96 and list(table.items())[:12] == list(BOX.items()) and fact_table(96) == table
    assert all(2 <= n <= 9 for n in table.values()) and fact_table(5) == dict(list(BOX.items())[:5])
    many = problems("train", ops="fact,box", facts=96)
    asked = {r["input"].split(" box of ")[1].split()[0].rstrip(".") for r in many}
    assert len(asked - set(BOX)) > 30 and asked <= set(table)
    for r in many:
        thing = r["input"].split(" box of ")[1].split()[0].rstrip(".")
        held = int(r["input"].split(" has ")[1].split()[0]) if r["task"] == "box" else 0
        assert int(r["output"]) == held + table[thing]
    with pytest.raises(UsageError, match="facts must be an integer from 1 to 400"):
        problems("train", facts=401)


def test_gsm8k_rows_become_question_and_final_number():
    row = RawRow({"question": "Tom has 3 and gets 4. Total?", "answer": "3 + 4 = 7\n#### 1,007"}, "hub:openai/gsm8k/main/test#0")
    (rec,) = Gsm8kConverter().convert(row, "reasoning", None)
    assert (rec.output, rec.steps, rec.task) == ("1007", ["3 + 4 = 7"], "gsm8k")
    with pytest.raises(RowError, match="####"):
        list(Gsm8kConverter().convert(RawRow({"question": "q", "answer": "7"}, "x"), "reasoning", None))


def test_baselines_need_no_model():
    train = [{"input": "has 3 and 4", "output": "4"}, {"input": "has 5 and 2", "output": "2"}, {"input": "9 and 4", "output": "4"}]
    held = [{"input": "has 1 and 4", "output": "4"}, {"input": "has 6 and 8", "output": "8"}]
    assert majority_answer(train, [r["output"] for r in held]) == 0.5
    assert copy_number(train, held) == 1.0  # "last number" is right on every training record


def test_replay_swaps_a_share_of_a_specialists_problems_for_the_bases():
    from voltx_agentforge.cognate_data import with_replay

    own = [{"task": "mul", "i": i} for i in range(10)]
    rehearsed = [{"task": "add", "i": i} for i in range(100)]
    mixed = with_replay(own, rehearsed, 0.3, seed=1)
    assert len(mixed) == 10 and mixed[:7] == own[:7] and sum(r["task"] == "add" for r in mixed) == 3
    assert mixed == with_replay(own, rehearsed, 0.3, seed=1) and mixed != with_replay(own, rehearsed, 0.3, seed=2)
    assert with_replay(own, rehearsed, 0.0, seed=1) == own


def test_the_question_weighs_prompt_weight_times_the_answer_whatever_its_length():
    """Per question byte, a 90-byte question outweighed its 2-byte answer 13:1 at 0.3 and the
    quick models never learned to read the number in ``inc`` (README)."""
    from voltx_agentforge.cognate_data import collate, encode_example

    rows = [encode_example({"input": q, "output": a}, 112) for q, a in
            [("Ann has 3 apples and Ben gives Ann one more. How many apples does Ann have now?", "4"), ("Two?", "12")]]
    b = collate(rows, 0.3)
    for i, r in enumerate(rows):
        asked, w = r.prompt_len - 1, b["weights"][i]
        answer = w[asked:len(r.ids) - 1]
        assert answer.tolist() == [1.0] * (len(r.ids) - 1 - asked)  # the answer's bytes and EOS
        assert torch.isclose(w[:asked].sum(), 0.3 * answer.sum()) and w[len(r.ids) - 1:].sum() == 0
        assert b["targets"][i, asked] == ord(r.answer[0])  # the first weighted-1 target is the answer's first byte
    assert collate(rows, 0.0)["weights"][0, :rows[0].prompt_len - 1].sum() == 0


def test_specialists_train_on_their_own_mix_and_are_judged_on_their_own_tasks(tmp_path):
    from types import SimpleNamespace

    from voltx_agentforge.cognate_data import build, own_tasks

    gen = "gen:arith_words_gen?max_number=5&ops="
    cfg = SimpleNamespace(specialist_data=[[f"{gen}two:1.0"], [f"{gen}box:1.0"], [f"{gen}add:0.5", f"{gen}sub:0.5"]], data=[],
                          examples=12, eval_data=f"{gen}add,two,box", eval_split="test", eval_examples=30)
    trains, held = build(cfg, tmp_path, seed=0)
    assert [sorted({r["task"] for r in t}) for t in trains] == [["two"], ["box"], ["add", "sub"]] and all(len(t) == 12 for t in trains)
    assert {r["task"] for r in own_tasks(trains[2], held)} == {"add"} and len(own_tasks(trains[1], held)) == 10
    assert own_tasks([{"task": "gsm8k"}], held) == held  # no task in common: the whole held-out set


def test_halting_and_memory_switches():
    torch.manual_seed(0)
    model = CognateNet(ARGS).eval()
    ids = torch.randint(0, 256, (2, 10))
    with torch.no_grad():
        out = model(ids)
        assert out["steps"].min() >= 1 and out["steps"].max() <= 3
        assert torch.equal(model(ids, halting=False)["steps"], torch.full((2, 10), 3.0))
        assert float(model(ids, memory=False)["gate"].abs().max()) == 0.0 and float(out["gate"].min()) > 0.0
        assert torch.equal(model(ids, refinement=False)["steps"], torch.ones(2, 10))  # the one-step ablation
        trained = model.train()(ids)  # training runs every step: the halting distribution is complete
    assert trained["step_logits"].shape == (3, 2, 10, 260) and torch.allclose(trained["halt_probs"].sum(0), torch.ones(2, 10))
    assert torch.allclose(geometric_prior(0.5, 3), torch.tensor([0.5, 0.25, 0.25]))  # the last step takes the rest


def test_the_lookup_memory_reads_the_slot_of_each_tokens_last_n_bytes():
    ids = torch.tensor([[5, 6, 7, 8, 9, 7, 8, 9], [1, 2, 3, 7, 8, 9, 4, 4]])
    keys = ngram_slots(ids, 3, 1024)
    assert keys.shape == ids.shape and int(keys.max()) < 1024
    assert keys[0, 4] == keys[0, 7] == keys[1, 5]  # the same three bytes (7 8 9), wherever they are
    assert len({int(keys[0, 2]), int(keys[0, 3]), int(keys[0, 4])}) == 3 and keys[0, 0] != keys[1, 0]
    torch.manual_seed(0)
    model = CognateNet(CognateArgs(**{**ARGS.to_dict(), "memory_ngram": 3, "memory_slots": 1024})).eval()
    assert model.memory.query is None  # a lookup has no query
    with torch.no_grad():
        out, off = model(ids), model(ids, memory=False)
        assert float(off["gate"].abs().max()) == 0.0 and float(out["gate"].min()) > 0.0
        model.memory.slots[keys[0, 4]] += 5.0  # only the tokens whose last bytes hash there read the change
        changed = (model(ids)["logits"] - out["logits"]).abs().amax(-1) > 1e-6
    assert changed[0, 4] and changed[1, 5] and not changed[0, :2].any() and not changed[1, :5].any()
    with pytest.raises(ValueError, match="memory_ngram 7"):
        CognateNet(CognateArgs(**{**ARGS.to_dict(), "memory_ngram": 7}))


def test_the_memory_learning_rate_multiple_reaches_only_the_memory():
    torch.manual_seed(0)
    model = CognateNet(CognateArgs(**{**ARGS.to_dict(), "memory_ngram": 2}))
    assert build_optimizer("adamw", model, 1e-2, 0.0, 0.95, 0.98, 2.0) is None  # x1: the kit's own AdamW, as before
    opt = build_optimizer("adamw", model, 1e-2, 0.0, 0.95, 0.98, 2.0, memory_lr_mult=10.0)
    assert isinstance(opt, GroupScaledAdamW) and [g["lr_scale"] for g in opt.param_groups] == [1.0, 10.0]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt.zero_grad()
    model(torch.randint(0, 256, (2, 8)))["logits"].square().mean().backward()
    opt.step()  # Adam's first step moves each entry by about its lr
    moved = {n: float((p.detach() - before[n]).abs().max()) for n, p in model.named_parameters()}
    assert 0.05 < moved["memory.slots"] < 0.11 and 0.005 < moved["embed.weight"] < 0.011
    assert [g["lr"] for g in opt.param_groups] == [1e-2, 1e-2]  # the loop's scheduled lr, put back
    muon = build_optimizer("muon_grokfast", model, 1e-2, 0.0, 0.95, 0.98, 2.0, memory_lr_mult=10.0)
    assert sorted(g["lr_scale"] for g in muon.adamw.param_groups) == [1.0, 10.0]


def test_the_quick_memory_specialists_memory_holds_what_the_core_does_not():
    """The quick preset's memory settings (lookup read, the memory's learning rate multiple, price
    and gate) on 96 stored facts, in a 16-wide one-block model trained 120 steps: closing the
    memory must lose most of what it answers. Fails if those settings stop making the memory carry
    the facts (measured at this size: the attention read, or the lookup at the core's learning
    rate, answer 23-31% with or without memory)."""
    torch.manual_seed(0)
    cfg, spec = CognateConfig(**QUICK), 1
    table = fact_table(96)
    rows = [encode_example({"input": f"a box of {t}?", "output": str(n)}, 40) for t, n in table.items()]
    model = CognateNet(CognateArgs(d_model=16, heads=2, layers=1, refine_steps=cfg.refine_steps[spec], memory_slots=cfg.memory_slots[spec],
                                   max_len=40, memory_gate_bias=cfg.memory_gate_bias[spec], memory_ngram=cfg.memory_ngram))
    opt = build_optimizer("adamw", model, 3e-3, 0.01, 0.95, 0.98, 2.0, cfg.memory_lr_mult[spec]) or torch.optim.AdamW(model.parameters(), 3e-3)
    gen = torch.Generator().manual_seed(0)
    for _ in range(120):
        b = collate([rows[i] for i in torch.randperm(len(rows), generator=gen)[:32]], 0.0)
        out = model(b["ids"])
        n = out["step_logits"].shape[0]
        nll = F.cross_entropy(out["step_logits"].flatten(0, 2), b["targets"].repeat(n, 1, 1).flatten(), reduction="none")
        real = (b["ids"] != 256).float()
        use = (out["gate"] * real).sum() / real.sum()
        loss = (nll.view(n, *b["ids"].shape).mean(0) * b["weights"]).sum() / b["weights"].sum() + cfg.memory_cost[spec] * use
        opt.zero_grad()
        loss.backward()
        opt.step()
    gold = [str(n) for n in table.values()]
    with_memory = accuracy(greedy_answers(model, rows, 2, 96, "cpu"), gold)
    without = accuracy(greedy_answers(model, rows, 2, 96, "cpu", memory=False), gold)
    assert with_memory > 0.5 and with_memory - without > 0.3, (with_memory, without)


def test_muon_grokfast_state_round_trip_is_exact():
    torch.manual_seed(0)
    model = CognateNet(ARGS)
    hidden, rest = muon_parameters(model)
    ids_of = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert all(p.ndim == 2 for p in hidden) and {id(model.embed.weight), id(model.head.weight), id(model.memory.slots)} <= ids_of(rest)
    ids = torch.randint(0, 256, (2, 8))

    def train(opt, m, n):
        for _ in range(n):
            opt.zero_grad()
            m(ids)["logits"].square().mean().backward()
            opt.step()

    assert build_optimizer("adamw", model, 1e-2, 0.01, 0.95, 0.98, 2.0) is None  # the control: the kit's own AdamW
    opt = build_optimizer("muon_grokfast", model, 1e-2, 0.01, 0.95, 0.98, 2.0)
    train(opt, model, 2)
    saved, weights = copy.deepcopy(opt.state_dict()), {k: v.clone() for k, v in model.state_dict().items()}
    assert any("grokfast_ema" in s for s in saved["state"].values()) and any("momentum_buffer" in s for s in saved["state"].values())
    train(opt, model, 2)
    twin = CognateNet(ARGS)
    twin.load_state_dict(weights)
    twin_opt = MuonGrokfast(twin, lr=1e-2, weight_decay=0.01)
    twin_opt.load_state_dict(saved)
    train(twin_opt, twin, 2)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), twin.state_dict().values()))


def test_sizing_follows_the_plans_categories_and_free_memory(monkeypatch, tmp_path):
    assert [sizing.categorize(n)[0] for n in (25_000_000, 60_000_000, 1_000_000_000, 3_000_000_000)] == ["tiny", "small", "medium", "large"]
    free = {"free_mem_gb": 1.0, "free_disk_gb": 9.0, "need_disk_gb": 1.0}
    monkeypatch.setattr(sizing, "check_resources", lambda *a: free)
    roomy = sizing.plan_sizing(tmp_path, [25_000_000] * 3, 1000, 100, 2, "cpu")
    assert (roomy.batch_size, roomy.strategy) == (32, "full activations")
    tight = sizing.plan_sizing(tmp_path, [25_000_000] * 3, 2**25, 2**20, 2, "cpu")  # 32 MiB an example: 8 fit in 0.5 GiB less weights
    assert tight.batch_size < 32 and "halved" in tight.reason
    squeezed = sizing.plan_sizing(tmp_path, [25_000_000] * 3, 2**28, 2**20, 2, "cpu")
    assert (squeezed.batch_size, squeezed.strategy) == (sizing.MIN_BATCH, "activation checkpointing")
    with pytest.raises(PreflightError, match="even with activation checkpointing"):
        sizing.plan_sizing(tmp_path, [25_000_000] * 3, 2**30, 2**29, 2, "cpu")
    # 75M parameters: 0.28 GiB of weights; Muon x Grokfast checkpoints (x4, 3 on disk) and two artifact copies: 3.9 GiB
    assert sizing.disk_need([25_000_000] * 3, 2, 3) == 4 * 75_000_000 * (4 * 3 + 2)
    monkeypatch.setitem(free, "free_disk_gb", 3.0)  # voltx's own check (checkpoints, two moments) passes; the whole run does not
    with pytest.raises(PreflightError, match="not enough disk .* 3.91 GiB needed for 3 models"):
        sizing.plan_sizing(tmp_path, [25_000_000] * 3, 1000, 100, 2, "cpu", optimizer_states=3)


def test_diversity_is_zero_for_alike_models_and_grows_apart():
    alike = [{"halting_steps": 2.0, "memory_use": 0.5, "examples_per_sec": 100.0}] * 3
    assert diversity(alike, 4) == 0.0
    apart = [{"halting_steps": 4.0, "memory_use": 0.0, "examples_per_sec": 50.0},
             {"halting_steps": 2.0, "memory_use": 1.0, "examples_per_sec": 100.0},
             {"halting_steps": 1.0, "memory_use": 0.0, "examples_per_sec": 100.0}]
    # pairs: (0.5 + 1 + 0.5) / 3, (0.75 + 0 + 0.5) / 3, (0.25 + 1 + 0) / 3
    assert diversity(apart, 4) == pytest.approx((2.0 + 1.25 + 1.25) / 9)


def test_the_artifact_reader_refuses_what_phase_two_could_not_use(tmp_path):
    model = CognateNet(ARGS)
    save_model(tmp_path / "m", model, "speed")
    loaded, config = load_model(tmp_path / "m")
    assert config["args"]["refine_steps"] == 3 and all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(MissingInputError, match="no config.json"):
        load_model(tmp_path / "nothing")
    config["args"]["d_model"] = 32
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match="tensors do not match config.json's args: embed.weight"):
        load_model(tmp_path / "m")


def test_a_hub_source_streams_only_its_share(tmp_path, monkeypatch):
    """The full preset's ``hub:gsm8k`` path, offline: the same streaming code over a local JSON copy."""
    from voltx_agentforge.cognate_data import source_records

    rows = tmp_path / "gsm8k.jsonl"
    rows.write_text("".join(json.dumps({"question": f"Q{i}: 2 + {i}?", "answer": f"2 + {i}\n#### {2 + i}"}) + "\n" for i in range(5)))
    monkeypatch.setattr(Gsm8kConverter, "hub_name", "json")
    monkeypatch.setattr(Gsm8kConverter, "hub_config", None)
    monkeypatch.setattr(Gsm8kConverter, "hub_data_files", [str(rows)])
    records = source_records("hub:gsm8k", "train", 3, "cognate.data")
    assert [r["output"] for r in records] == ["2", "3", "4"] and records[0]["task"] == "gsm8k"
    with pytest.raises(ConfigError, match="hub:gsm8k has no 'dev' split"):
        source_records("hub:gsm8k", "dev", 3, "cognate.eval_data")
