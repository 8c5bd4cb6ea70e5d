"""Where F3's bAbI answers are lost, on a finished run's saved stack: read, move, render.

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
* ``read@fact k``: the read at the chain's k-th supporting sentence's own frame points (argmax) at
  the (k+1)-th, overall and for the facts that drop an object (whose carrier's place is the one
  *before* the drop, not the newest);
* ``oracle from the last fact``: RAR started at the chain's last supporting sentence's own frame
  (its clock at that move), rendered: what the answer's move and the renderer make of a perfect read.

    python benchmarks/f3_diagnose.py RUN_DIR     # e.g. runs/f3/<id> of `voltx run f3 --preset quick lang_from=none`
"""

from __future__ import annotations

import argparse
import tomllib
from dataclasses import fields, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from voltx import artifacts
from voltx.engine.rar import rar
from voltx_phases import lang_stack
from voltx_phases.f3 import F3Config
from voltx_phases.f3_data import BABI_TASKS, chain_texts, glue, load_data, memory_texts, normalise, training_texts
from voltx_phases.f3_memory import Memory
from voltx_phases.f3_model import LANGUAGE_BIAS, VFN_FOUNDATION, all_active, field, new_reasoner, rar_config, refine
from voltx_phases.f3_train import FrameBank
from voltx_plugins.converters.reasoning_gen import _DROPS as DROPS  # the generator's verbs of a drop

SEED = 42


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a finished f3 run directory (with config.toml and artifacts/)")
    args = ap.parse_args()
    table = tomllib.loads((args.run / "config.toml").read_text())["f3"]
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
    artifacts.load_into(reasoner, artifacts.read(art / VFN_FOUNDATION, "vfn_foundation", "Point at a finished f3 run."))
    reasoner.eval()
    bank = FrameBank.build(stack.encoder, tok, list(dict.fromkeys(training_texts(held))), enc_len, cpu)
    answers = sorted({normalise(r["output"]) for r in train})
    answer_frames = FrameBank.build(stack.encoder, tok, answers, enc_len, cpu).slots.flatten(1)
    m = cfg.chain_step_iterations

    def render(slots: torch.Tensor) -> list[str]:
        return [normalise(tok.decode(g)) for g in stack.decoder.generate(slots, all_active(slots), max_new_tokens=16)]

    with torch.no_grad():
        for task in BABI_TASKS:
            recs = [r for r in held if r["task"] == task]
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
            for k in range(1, facts):
                src = bank.slots[[bank.index[chain_texts(r)[k]] for r in recs]]
                hit = reasoner["memory"].logits(src, mem).argmax(-1) == torch.tensor([position(r, chain_texts(r)[k + 1]) for r in recs])
                drops = torch.tensor([any(f" {v} the " in chain_texts(r)[k] for v in DROPS) for r in recs])
                parts.append(f"read@fact {k} {hit.float().mean():.0%} (drops {hit[drops].float().mean():.0%} of {int(drops.sum())})")
            last = bank.slots[[bank.index[chain_texts(r)[-2]] for r in recs]]
            start = facts * m
            oracle = rar(last, all_active(last), field(reasoner, mem), reasoner["attention"],
                         rar_config(cfg, max(1, cfg.rar_max_iterations - start)), bias=LANGUAGE_BIAS,
                         time=lambda step, done: ((done.to(last.dtype) + start) / cfg.rar_max_iterations).clamp(max=1.0))
            hits = sum(s == a for s, a in zip(render(oracle.slots), truth))
            parts.append(f"oracle from the last fact: exact {hits / len(recs):.1%}")
            print(" | ".join(parts), flush=True)


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
