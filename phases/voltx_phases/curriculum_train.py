"""The run of ``voltx run curriculum`` (:mod:`voltx_phases.curriculum`): the F-phases as a chain of
linked runs (:mod:`voltx.runs.chain`: start, record, forward stops, gate), with the curriculum's
own hand-over: each phase's ``lang_from`` is the newest earlier run that left a language stack,
F1's tokenizer reads the later phases' words, and every data list is read before F1 starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from voltx.runs.chain import Chain, run_chain
from voltx_phases.curriculum import CurriculumConfig
from voltx_phases.curriculum_data import preflight, tokenizer_corpus

STACK_FILE = "lang_encoder.safetensors"


def handoff(phase: str, finished: Mapping[str, Path], settings: Mapping[str, Any]) -> dict[str, object]:
    overrides: dict[str, object] = {}
    stacks = [run for run in finished.values() if (run / "artifacts" / STACK_FILE).exists()]
    if stacks and hasattr(settings[phase], "lang_from"):
        overrides["lang_from"] = str(stacks[-1])
    corpus = tokenizer_corpus(phase, dict(settings))
    if corpus:  # the later phases' words, for the tokenizer the whole curriculum shares
        overrides["tokenizer_corpus"] = corpus
    return overrides


def prepare(to_start: Mapping[str, Any]) -> str | None:
    checked = preflight(dict(to_start))
    return f"preflight: {checked} data list entries of {', '.join(to_start)} read and valid" if checked else None


def run(ctx) -> None:
    cfg: CurriculumConfig = ctx.settings
    run_chain(ctx, Chain("curriculum", list(cfg.phases), cfg.gate, cfg.preset, handoff=handoff, prepare=prepare))
