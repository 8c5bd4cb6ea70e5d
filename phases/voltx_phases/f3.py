"""Phase F3, compositional reasoning (unified training plan, Part III): ``voltx run f3``.

Trains the velocity field RAR follows: denoising slot refinement (zeroed, noised and
shuffled slots -> the restoring drift, per-slot MSE), slot-conditional flow matching
with per-slot time and a slot-identity penalty, and reasoning-chain supervision
frame(t) -> frame(t+1) from data with intermediate steps. Evaluated end to end:
encode -> RAR -> decode. Import-light: training is in :mod:`voltx_phases.f3_train`.
"""

from __future__ import annotations

from voltx import hookimpl
from voltx.curriculum import F3Config
from voltx.specs import Deliverable, PhaseSpec

ARTIFACTS = ("vfn_foundation.safetensors", "lang_tokenizer.json", "lang_encoder.safetensors", "lang_decoder.safetensors")

DELIVERABLES = (
    Deliverable("reasoning/scan_accuracy", ">", 0.85,
                "SCAN exact-match accuracy through encode -> RAR -> decode (plan: > 85% on the length split)"),
    Deliverable("reasoning/babi_accuracy", ">", 0.75,
                "bAbI tasks 1-3 answer accuracy, mean over the tasks evaluated (plan: > 75%)"),
    Deliverable("reasoning/denoise_slot_share", ">", 0.65,
                "frame denoising: share of corrupted slots restored to cosine > 0.9 (plan: > 65%)"),
    Deliverable("reasoning/rar_converged_share", ">", 0.70,
                "share of test queries whose RAR converges within rar_max_iterations = 30 (plan: > 70%)"),
)

PHASE = PhaseSpec(
    name="f3",
    summary="F3 compositional reasoning: ScaledVfn denoising, slot-conditional flow matching, chain supervision, RAR",
    runner="voltx_phases.f3_train:run",
    config_class=F3Config,
    deliverables=DELIVERABLES,
    artifacts=ARTIFACTS,
)


@hookimpl
def register_phases(register):
    register(PHASE)
