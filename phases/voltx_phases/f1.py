"""Phase F1, lexical grounding (unified training plan, Part III): ``voltx run f1``.

Trains the language stack from scratch: a byte-level BPE tokenizer, the CNN frame
encoder (role head: cross-entropy on slot-annotated sentences; InfoNCE at tau 0.07 on
paraphrase pairs), a VFN that fills masked slots through RAR, and the decoder that
renders a frame as text. Import-light: the training code is :mod:`voltx_phases.f1_train`.
"""

from __future__ import annotations

from voltx import hookimpl
from voltx.curriculum import F1Config
from voltx.specs import Deliverable, PhaseSpec

ARTIFACTS = ("lang_tokenizer.json", "lang_encoder.safetensors", "lang_decoder.safetensors", "slot_filler.safetensors")

DELIVERABLES = (
    Deliverable("grounding/slot_accuracy", ">", 0.80,
                "slot assignment accuracy on held-out SRL tokens > 80% (plan, F1 deliverables / Part VI)"),
    Deliverable("grounding/sts_spearman", ">", 0.70,
                "Spearman of frame cosine vs gold similarity on held-out pairs (STS-B test) > 0.70 (plan, Part VI)"),
    Deliverable("grounding/dog_canine_agent_cosine", ">", 0.70,
                "cosine of 'dog' and 'canine' in the Agent slot S0 > 0.7 (plan, Part VI)"),
    Deliverable("grounding/slot_fill_accuracy", ">", 0.60,
                "VFN slot filling: masked slots reconstructed (top-1 among held-out fillers) > 60% (plan, F1 deliverables)"),
)

PHASE = PhaseSpec(
    name="f1",
    summary="F1 lexical grounding: BPE + CNN frame encoder (role CE, InfoNCE), VFN slot filling, frame decoder",
    runner="voltx_phases.f1_train:run",
    config_class=F1Config,
    deliverables=DELIVERABLES,
    artifacts=ARTIFACTS,
)


@hookimpl
def register_phases(register):
    register(PHASE)
