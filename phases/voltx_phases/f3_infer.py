"""Answering with F3's stack (``voltx think --f3 RUN``): encode the question (a story's sentences
before it as memory frames, :mod:`voltx_phases.f3_memory`), let RAR move its frame, render where RAR ends, and say how RAR went (the trace ``--json`` prints).

The stack is a finished F3 run's artifacts: the tokenizer, the encoder and the renderer
(:mod:`voltx_phases.lang_stack`) and ``vfn_foundation.safetensors`` (velocity field, slot
attention, identity head, memory read, settle gate, with the RAR settings it was trained with).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from torch import nn

from voltx import artifacts
from voltx.engine.frame import MAX_SLOTS, ROLE_NAMES, SLOT_DIM
from voltx.engine.vfn import ScaledVfn, SlotIdentityHead
from voltx.engine.attention import SlotAttention
from voltx_phases import lang_stack
from voltx_phases.f3_data import GLUE, encode, normalise, unglue
from voltx_phases.f3_memory import Memory, MemoryRead, PhraseRead, command_phrases, split_story
from voltx_phases.f3_model import VFN_FOUNDATION, all_active, encode_frames, refine
from voltx_phases.f3_settle import SettleGate, with_held_weight
from voltx_phases.rar_telemetry import certainty

HOW = "It is written by phase f3: `voltx run f3`, then pass its run directory (or its artifacts/)."


@dataclass
class F3Stack:
    stack: lang_stack.LangStack
    reasoner: nn.ModuleDict
    rar: SimpleNamespace
    """The RAR settings the field was trained with (rar_max_iterations, rar_dt, rar_beta, rar_epsilon)."""
    glued: bool
    enc_len: int

    @classmethod
    def load(cls, where: str | Path) -> "F3Stack":
        art_dir = artifacts.run_artifacts(str(where))
        stack = lang_stack.load_lang_stack(art_dir, torch.device("cpu"), need_decoder=True, phase="f3")
        vfn_file = artifacts.read(art_dir / VFN_FOUNDATION, "vfn_foundation", HOW)
        reasoner = nn.ModuleDict({"vfn": ScaledVfn(**vfn_file.args), "attention": SlotAttention(),
                                  "identity": SlotIdentityHead(), "memory": MemoryRead(MAX_SLOTS, SLOT_DIM, rate=1.0),  # rate: from the file
                                  "settle": SettleGate(MAX_SLOTS, SLOT_DIM)})
        if "phrases.maps" in vfn_file.tensors:  # T0 held the input's phrases (f3.hold_phrases)
            reasoner["phrases"] = PhraseRead(vfn_file.tensors["phrases.maps"].shape[0], SLOT_DIM)
        artifacts.load_into(reasoner, replace(vfn_file, tensors=with_held_weight(vfn_file.tensors)), HOW)
        settings = vfn_file.meta.get("rar") or {}
        rar = SimpleNamespace(rar_max_iterations=int(settings.get("max_iterations", 30)), rar_dt=float(settings.get("dt", 0.1)),
                              rar_beta=float(settings.get("beta", 0.5)), rar_epsilon=float(settings.get("epsilon", 1e-3)),
                              hold_input=bool(settings.get("hold_input", False)), hold_phrases=int(settings.get("hold_phrases", 0)))
        glued = lang_stack.knows_glued_words(art_dir)
        return cls(stack, reasoner.eval(), rar, glued, stack.encoder.max_seq_len)

    def answer(self, text: str, max_iterations: int | None = None) -> tuple[str, dict[str, Any]]:
        """The rendered RAR endpoint for ``text`` and the trace (RAR iterations, per-slot convergence and gamma)."""
        tok = self.stack.tokenizer
        query = " ".join(text.split())
        if self.glued:
            query = query.replace("_", GLUE)
        cfg = self.rar if max_iterations is None else SimpleNamespace(**{**vars(self.rar), "rar_max_iterations": max_iterations})
        with torch.no_grad():
            story, question = split_story(query)
            slots, _, _ = encode_frames(self.stack.encoder, *encode(tok, [question], self.enc_len, torch.device("cpu"), keep="tail"))
            active = all_active(slots)
            memory = None
            if story:
                frames, _, _ = encode_frames(self.stack.encoder, *encode(tok, story, self.enc_len, torch.device("cpu"), keep="tail"))
                memory = Memory.gather(frames, [list(range(len(story)))], len(story))
            elif cfg.hold_input and cfg.hold_phrases:  # T0 holds the input and its phrases, as in training
                phrases = command_phrases(question, cfg.hold_phrases)
                frames, _, _ = encode_frames(self.stack.encoder, *encode(tok, phrases, self.enc_len, torch.device("cpu"), keep="tail"))
                memory = Memory.empty(slots)
                memory.phrases = frames.unsqueeze(0)
            result = refine(self.reasoner, slots, active, cfg, memory=memory)
            rendered = self.stack.decoder.generate(result.slots, active, max_new_tokens=self.stack.decoder.max_len)[0]
            gamma = certainty(result, active, cfg.rar_epsilon)[0]
            moved = (result.slots - slots).norm(dim=-1)[0]
        answer = unglue(normalise(tok.decode(rendered)))
        trace = {
            "input": text, "answer": answer, "pipeline": "f3: encode -> RAR -> render", "memory_frames": len(story),
            "rar": {"iterations": int(result.total_iterations[0]), "max_iterations": cfg.rar_max_iterations,
                    "converged": bool(result.converged[0].all()), "dt": cfg.rar_dt, "epsilon": cfg.rar_epsilon,
                    "slots": [{"slot": i, "role": ROLE_NAMES[i], "iterations": int(result.iterations[0, i]),
                               "converged": bool(result.converged[0, i]), "gamma": round(float(gamma[i]), 4),
                               "moved": round(float(moved[i]), 4)} for i in range(len(ROLE_NAMES))]},
        }
        return answer, trace
