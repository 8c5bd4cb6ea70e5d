"""Helpers of the EvoMerge tests: three tiny Cognate models written through the artifact
contract (one base, three perturbed copies: what three fine-tunes of one initialisation look
like), and tiny evomerge runs in-process through voltx's runner."""

from __future__ import annotations

import pytest
import torch

from voltx.testing import only_run, run_phase
from voltx_agentforge.cognate_artifacts import save_model
from voltx_agentforge.cognate_model import CognateArgs, CognateNet

SPECS = ("reasoning", "memory", "speed")
# 3 generations of 8: 4 elites kept, 3 mutants and 1 merged group of 3 losers new each generation
TINY = {"fitness_data": "gen:arith_words_gen?max_number=9&ops=add,sub", "fitness_examples": 8, "report_examples": 8,
        "generations": 3, "elites": 4, "losers": 3, "eval_batch": 8}


def write_models(root, slots=(4, 4, 4), layers: int = 2, base: bool = True) -> str:
    """``root/cognate-<spec>/`` for the three specialisations (and ``cognate-base/``, their
    shared initialisation, unless ``base`` is false); returns ``root``."""
    if base:
        torch.manual_seed(0)
        save_model(root / "cognate-base", CognateNet(CognateArgs(d_model=16, heads=2, layers=layers, refine_steps=3,
                                                                 memory_slots=slots[0], max_len=80)), "base")
    for i, spec in enumerate(SPECS):
        torch.manual_seed(0)
        net = CognateNet(CognateArgs(d_model=16, heads=2, layers=layers, refine_steps=3 - i, memory_slots=slots[i], max_len=80))
        gen = torch.Generator().manual_seed(i + 1)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
        save_model(root / f"cognate-{spec}", net, spec)
    return str(root)


def run_evomerge(runs_dir, cognate_dir, plugins=None, resume=None, **overrides) -> int:
    return run_phase("evomerge", runs_dir, {**TINY, "cognate_dir": str(cognate_dir), **overrides}, plugins=plugins, resume=resume)


@pytest.fixture(scope="session")
def cognate_models(tmp_path_factory):
    return write_models(tmp_path_factory.mktemp("cognate-models"))


@pytest.fixture(scope="session")
def evolved(tmp_path_factory, cognate_models):
    """One uninterrupted tiny evomerge run: its run directory."""
    runs = tmp_path_factory.mktemp("evomerge-runs")
    assert run_evomerge(runs, cognate_models) == 0
    return only_run(runs, "evomerge")
