"""Where F3's bAbI and SCAN answers are lost, on a finished run's saved stack: read, move, render.

For every dev question of each bAbI task (all of them, not the run's ``eval_max_examples``
per task: the quick preset evaluates 30, too few to tell two reads apart), with the run's own
F3 settings (its ``config.toml``), seed 42 and the frozen stack it saved:

* ``exact``: encode(question) -> RAR reading the story's sentences -> render the endpoint;
  ``endpoint-nearest-answer``: the training answer whose frame is nearest the endpoint;
* ``read@q``: the memory read at the question's frame points (argmax) at its supporting sentence;
  ``alpha@q`` the median ghost-blend weight there;
* ``after move k``: after k chain moves (k x ``chain_step_iterations`` RAR iterations), the share
  whose frame is nearest (cosine) the chain's k-th supporting sentence among the memory frames,
  and the median of that best cosine;
* ``read there``: the read at RAR's own frame after move k points at the (k+1)-th (against
  ``read@fact k``, the same read from the true frame: what RAR's landing costs);
* ``read@fact k``: the read at the chain's k-th supporting sentence's own frame points (argmax) at
  the (k+1)-th, overall and for the facts that drop an object (whose carrier's place is the one
  *before* the drop, not the newest); ``alpha`` the median ghost-blend weight there;
* ``oracle from the last fact``: RAR started at the chain's last supporting sentence's own frame
  (its clock at that move), rendered: what the answer's move and the renderer make of a perfect read.

For SCAN (``--limit`` dev commands, RAR with the run's settings, T0 holding the command and its
phrases where the run did, ``f3.hold_input``, ``f3.hold_phrases``):

* ``read-back``: the renderer on the true frames of the answers and of the parses (exact): its ceiling;
* ``after move k``: after k x ``chain_step_iterations`` iterations, the share whose frame is nearest
  (cosine) the chain's frame k among the frames of every train and dev parse and answer, and the
  median cosine to it; ``one move from the true frame k``: the same for RAR started at the true
  frame k (its clock at move k) and run one move: each move alone, without the errors before it;
* ``exact``, ``endpoint cosine`` to the true answer's frame, ``endpoint-nearest-answer``, converged
  (every slot froze) and converged before the chain's last move was due (the gate stopped it early);
* ``nearest other``: how close the parse and answer frames are to each other (the landing precision
  a move needs); ``read-back at cosine c``: the renderer on the true answer frames moved to cosine c
  in a random direction (how much *random* landing error it tolerates, beside RAR's own);
* ``Markov ceiling``: from the data alone, the share of dev chains that a field seeing only the current
  text and the move index could finish right from an exact first move (the most frequent next text
  of each (text, k) in training).

    python benchmarks/f3_diagnose.py RUN_DIR     # e.g. runs/f3/<id> of `voltx run f3 --preset quick lang_from=none`
    python benchmarks/f3_diagnose.py --ceiling data/scan_simple_train.jsonl data/scan_simple_test.jsonl
"""

from __future__ import annotations

import argparse
import json
import tomllib
from collections import Counter, defaultdict
from dataclasses import fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from voltx import artifacts
from voltx.engine.rar import rar
from voltx_phases import lang_stack
from voltx_phases.f3 import F3Config
from voltx_phases.f3_data import BABI_TASKS, chain_texts, glue, load_data, memory_texts, normalise, training_texts
from voltx_phases.f3_memory import Memory, command_phrases, gather_phrases
from voltx_phases.f3_model import LANGUAGE_BIAS, VFN_FOUNDATION, all_active, field, new_reasoner, rar_config, refine
from voltx_phases.f3_settle import with_held_weight
from voltx_phases.f3_train import FrameBank
from voltx_plugins.converters.reasoning_gen import _DROPS as DROPS  # the generator's verbs of a drop

SEED = 42


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, nargs="?", help="a finished f3 run directory (with config.toml and artifacts/)")
    ap.add_argument("--ceiling", nargs=2, metavar=("TRAIN", "TEST"), help="only the Markov ceiling of two reasoning .jsonl files (no run)")
    ap.add_argument("--limit", type=int, default=200, help="SCAN dev commands diagnosed (default 200)")
    ap.add_argument("--on-train", action="store_true", help="diagnose training records instead (SCAN: --limit commands; bAbI: the first "
                    "200 questions a task): does the field fit them?")
    args = ap.parse_args()
    if args.ceiling:
        train_file, test_file = ([json.loads(line) for line in open(f)] for f in args.ceiling)
        print(f"Markov ceiling {markov_ceiling(train_file, test_file):.1%} of {len(test_file)} test chains ({len(train_file)} training)")
        return
    if args.run is None:
        ap.error("give a run directory (or --ceiling TRAIN TEST)")
    table = tomllib.loads((args.run / "config.toml").read_text())["f3"]
    table.setdefault("hold_input", False)  # a run from before the option moved the frame alone
    table.setdefault("hold_phrases", 0)  # ... and one from before this held the whole input only
    known = {f.name for f in fields(F3Config)}
    cfg = replace(F3Config(**{k: v for k, v in table.items() if k in known}), eval_max_examples=0, dev_max_examples=0)
    data = load_data(cfg, SEED)
    held, train = [glue(r) for r in data.dev], [glue(r) for r in data.train]
    art = artifacts.run_artifacts(str(args.run))
    cpu = torch.device("cpu")
    stack = lang_stack.load_lang_stack(art, cpu, need_decoder=True, phase="f3")
    stack.encoder.eval()
    tok, enc_len = stack.tokenizer, min(cfg.max_seq_len, stack.encoder.max_seq_len)
    reasoner = new_reasoner(cfg)
    saved = artifacts.read(art / VFN_FOUNDATION, "vfn_foundation", "Point at a finished f3 run.")
    artifacts.load_into(reasoner, replace(saved, tensors=with_held_weight(saved.tensors)))
    reasoner.eval()
    bank = FrameBank.build(stack.encoder, tok, list(dict.fromkeys(training_texts(held))), enc_len, cpu)
    answers = sorted({normalise(r["output"]) for r in train})
    answer_frames = FrameBank.build(stack.encoder, tok, answers, enc_len, cpu).slots.flatten(1)
    m = cfg.chain_step_iterations

    def render(slots: torch.Tensor) -> list[str]:
        return [normalise(tok.decode(g)) for g in stack.decoder.generate(slots, all_active(slots), max_new_tokens=16)]

    scan = [r for r in (train if args.on_train else held) if r["task"] == "scan"][: args.limit]
    if scan:
        with torch.no_grad():
            diagnose_scan(cfg, stack, reasoner, scan, [r for r in train if r["task"] == "scan"], enc_len)
    with torch.no_grad():
        for task in BABI_TASKS:
            recs = [r for r in (train if args.on_train else held) if r["task"] == task][:200 if args.on_train else None]
            if not recs:
                continue
            q = bank.slots[[bank.index[chain_texts(r)[0]] for r in recs]]
            mem = Memory.gather(bank.slots, [[bank.index[t] for t in memory_texts(r)] for r in recs], cfg.memory_frames)
            n = mem.mask.shape[1]

            def position(r: dict, text: str) -> int:  # right-aligned memory position of the text's newest copy
                story = memory_texts(r)[-cfg.memory_frames:]
                return n - (len(story) - max(j for j, s in enumerate(story) if s == text))

            end = refine(reasoner, q, all_active(q), cfg, memory=mem).slots
            said = render(end)
            near = (F.normalize(end.flatten(1), dim=-1) @ F.normalize(answer_frames, dim=-1).T).argmax(-1).tolist()
            truth = [normalise(r["output"]) for r in recs]
            facts = len(chain_texts(recs[0])) - 2
            read = reasoner["memory"].logits(q, mem).argmax(-1)
            first = torch.tensor([position(r, chain_texts(r)[1]) for r in recs])
            parts = [f"{task} n={len(recs)}: exact {sum(s == a for s, a in zip(said, truth)) / len(recs):.1%}, "
                     f"endpoint-nearest-answer {sum(answers[i] == a for i, a in zip(near, truth)) / len(recs):.1%}",
                     f"read@q {(read == first).float().mean():.1%}, alpha@q {torch.sigmoid(reasoner['memory'].alpha_logit(q)).median():.2f}"]
            for k in range(1, facts + 1):
                x = refine(reasoner, q, all_active(q), cfg, memory=mem, iterations=k * m).slots
                target = torch.tensor([position(r, chain_texts(r)[k]) for r in recs])
                cos = torch.einsum("bd,bnd->bn", F.normalize(x.flatten(1), dim=-1), F.normalize(mem.frames.flatten(-2), dim=-1))
                cos = cos.masked_fill(~mem.mask, -2.0)
                parts.append(f"after move {k} nearest fact {(cos.argmax(-1) == target).float().mean():.0%} (cosine {cos.amax(-1).median():.2f})")
                if k < facts:  # the read RAR makes from where it stands, not from the true fact
                    ahead = torch.tensor([position(r, chain_texts(r)[k + 1]) for r in recs])
                    parts.append(f"read there {(reasoner['memory'].logits(x, mem).argmax(-1) == ahead).float().mean():.0%}")
            for k in range(1, facts):
                src = bank.slots[[bank.index[chain_texts(r)[k]] for r in recs]]
                hit = reasoner["memory"].logits(src, mem).argmax(-1) == torch.tensor([position(r, chain_texts(r)[k + 1]) for r in recs])
                drops = torch.tensor([any(f" {v} the " in chain_texts(r)[k] for v in DROPS) for r in recs])
                alpha = torch.sigmoid(reasoner["memory"].alpha_logit(src)).median()
                parts.append(f"read@fact {k} {hit.float().mean():.0%} (drops {hit[drops].float().mean():.0%} of {int(drops.sum())}), alpha {alpha:.2f}")
            last = bank.slots[[bank.index[chain_texts(r)[-2]] for r in recs]]
            start = facts * m
            oracle = rar(last, all_active(last), field(reasoner, mem), reasoner["attention"],
                         rar_config(cfg, max(1, cfg.rar_max_iterations - start)), bias=LANGUAGE_BIAS,
                         time=lambda step, done: ((done.to(last.dtype) + start) / cfg.rar_max_iterations).clamp(max=1.0))
            hits = sum(s == a for s, a in zip(render(oracle.slots), truth))
            parts.append(f"oracle from the last fact: exact {hits / len(recs):.1%}")
            print(" | ".join(parts), flush=True)


def markov_ceiling(train: list[dict], held: list[dict]) -> float:
    """Share of ``held`` chains finished right by the most frequent next text of each (text, move index)
    in ``train``, from an exact first move (module docstring)."""
    nxt: dict[tuple[str, int], Counter] = defaultdict(Counter)
    for r in train:
        c = chain_texts(r)
        for k, (a, b) in enumerate(zip(c, c[1:])):
            nxt[(a, k)][b] += 1
    right = 0
    for r in held:
        c = chain_texts(r)
        x, ok = c[1], True
        for k in range(1, len(c) - 1):
            seen = nxt.get((x, k))
            x = seen.most_common(1)[0][0] if seen else None
            if x != c[k + 1]:
                ok = False
                break
        right += ok
    return right / max(1, len(held))


def diagnose_scan(cfg, stack, reasoner, held: list[dict], train: list[dict], enc_len: int) -> None:
    """The SCAN figures of the module docstring, by chain length (moves)."""
    tok, cpu, m = stack.tokenizer, torch.device("cpu"), cfg.chain_step_iterations
    texts = list(dict.fromkeys(t for r in train + held for t in chain_texts(r)[1:]))
    limit = cfg.hold_phrases if cfg.hold_input else 0
    phrases = {id(r): command_phrases(chain_texts(r)[0], limit) if limit else [] for r in held}
    bank = FrameBank.build(stack.encoder, tok, list(dict.fromkeys([*texts, *(chain_texts(r)[0] for r in held), *(t for p in phrases.values() for t in p)])),
                           enc_len, cpu)
    cands = F.normalize(bank.slots[[bank.index[t] for t in texts]].flatten(1), dim=-1)
    cand_row = {t: i for i, t in enumerate(texts)}
    gram = cands @ cands.T
    gram.fill_diagonal_(-2.0)
    print(f"SCAN frames: {len(texts)} parses and answers, median cosine of one to its nearest other {gram.amax(-1).median():.3f}")
    print(f"SCAN n={len(held)}: Markov ceiling {markov_ceiling(train, held):.1%} (dev chains a field on (current text, move index) "
          f"could finish from an exact first move)", flush=True)

    def render(slots: torch.Tensor) -> list[str]:
        out = []
        for i in range(0, len(slots), 64):
            part = slots[i : i + 64]
            out += [normalise(tok.decode(g)) for g in stack.decoder.generate(part, all_active(part), max_new_tokens=stack.decoder.max_len)]
        return out

    def frames(ts: list[str]) -> torch.Tensor:
        return bank.slots[[bank.index[t] for t in ts]]

    answers = list(dict.fromkeys(chain_texts(r)[-1] for r in held))
    true = F.normalize(frames(answers).flatten(1), dim=-1)
    gen = torch.Generator().manual_seed(SEED)
    off = torch.randn(true.shape, generator=gen)
    off = F.normalize(off - (off * true).sum(-1, keepdim=True) * true, dim=-1)  # orthogonal to each true frame
    tolerance = []
    for c in (1.0, 0.95, 0.9, 0.88):
        moved = F.normalize((c * true + (1 - c * c) ** 0.5 * off).view(-1, *bank.slots.shape[1:]), dim=-1)
        tolerance.append(f"{c:.2f}: {sum(a == normalise(b) for a, b in zip(render(moved), answers)) / len(answers):.0%}")
    print(f"SCAN read-back of the {len(answers)} true answer frames moved to cosine c at random: {', '.join(tolerance)}")

    def held_memory(recs: list[dict], q: torch.Tensor) -> Memory:  # T0 as RAR's evaluation holds it
        mem = Memory.empty(q)
        return Memory(mem.frames, mem.mask, q if cfg.hold_input else None,
                      gather_phrases(bank.slots, [[bank.index[t] for t in phrases[id(r)]] for r in recs], limit))

    def run_from(x: torch.Tensor, start: int, iterations: int, mem: Memory):
        return rar(x, all_active(x), field(reasoner, mem), reasoner["attention"], rar_config(cfg, iterations), bias=LANGUAGE_BIAS,
                   time=lambda step, done: ((done.to(x.dtype) + start) / cfg.rar_max_iterations).clamp(max=1.0),
                   settle=lambda s: reasoner["settle"](s, mem.held))

    for moves in sorted({len(chain_texts(r)) - 1 for r in held}):
        recs = [r for r in held if len(chain_texts(r)) - 1 == moves]
        chains = [chain_texts(r) for r in recs]
        q = frames([c[0] for c in chains])
        truth = [normalise(c[-1]) for c in chains]
        answer = frames([c[-1] for c in chains])
        back = sum(a == b for a, b in zip(render(answer), truth)) / len(recs)
        parts = [f"{moves} moves n={len(recs)}: read-back answers {back:.1%}"]
        if moves > 1:
            steps = [t for c in chains for t in c[1:-1]]
            parts.append(f"parses {sum(a == normalise(b) for a, b in zip(render(frames(steps)), steps)) / len(steps):.1%}")
        mem = held_memory(recs, q)
        result = refine(reasoner, q, all_active(q), cfg, memory=mem)
        said = render(result.slots)
        end = F.normalize(result.slots.flatten(1), dim=-1)
        parts.append(f"exact {sum(a == b for a, b in zip(said, truth)) / len(recs):.1%}, endpoint cosine to the answer "
                     f"{(end * F.normalize(answer.flatten(1), dim=-1)).sum(-1).median():.2f}, nearest is the answer "
                     f"{(end @ cands.T).argmax(-1).eq(torch.tensor([cand_row[c[-1]] for c in chains])).float().mean():.0%}")
        done = result.converged.all(-1)
        early = done & (result.total_iterations < moves * m)
        parts.append(f"converged {done.float().mean():.0%} (before the last move was due {early.float().mean():.0%})")
        for k in range(1, moves + 1):
            want = torch.tensor([cand_row[c[k]] for c in chains])
            x = refine(reasoner, q, all_active(q), cfg, iterations=k * m, memory=mem).slots
            sims = F.normalize(x.flatten(1), dim=-1) @ cands.T
            one = run_from(frames([c[k - 1] for c in chains]), (k - 1) * m, m, mem).slots
            sims1 = F.normalize(one.flatten(1), dim=-1) @ cands.T
            parts.append(f"move {k}: nearest right {sims.argmax(-1).eq(want).float().mean():.0%} (cos {sims.gather(1, want[:, None]).median():.2f}); "
                         f"one move from the true frame {sims1.argmax(-1).eq(want).float().mean():.0%} (cos {sims1.gather(1, want[:, None]).median():.2f})")
        print(" | ".join(parts), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
