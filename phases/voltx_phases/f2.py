"""Phase F2, world knowledge (unified training plan, Part III): ``voltx run f2``.

Teaches relations as HDC algebra on the encoder's concept embeddings: relational
binding ``||bind(embed(A), embed(rel)) - embed(B)||^2``, retrieval by unbind, category
superposition and negative sampling; fine-tunes F1's encoder, aligns a concept codebook
and trains the energy head on triple frames. Import-light: training is in
:mod:`voltx_phases.f2_train`.
"""

from __future__ import annotations

from voltx import hookimpl
from voltx.curriculum import F2Config
from voltx.specs import Deliverable, PhaseSpec

ARTIFACTS = ("lang_tokenizer.json", "lang_encoder.safetensors", "lang_decoder.safetensors",
             "relations.safetensors", "concept_codebook.safetensors")

DELIVERABLES = (
    Deliverable("knowledge/bind_top1", ">", 0.50,
                "bind(A, rel) -> nearest concept = B on held-out triples > 50% (plan, F2 deliverables / Part VI)"),
    Deliverable("knowledge/analogy_top1", ">", 0.35,
                "A:B::C:? via bind/unbind, top-1 > 35% (plan, F2 deliverables / Part VI)"),
    Deliverable("knowledge/codebook_quantization_error", "<", 0.15,
                "mean 1 - cos of held-out concept embeddings to the nearest codebook entry < 0.15 (plan, F2 deliverables)"),
)

PHASE = PhaseSpec(
    name="f2",
    summary="F2 world knowledge: bind/unbind/superposition on concept embeddings, negatives, codebook, energy head",
    runner="voltx_phases.f2_train:run",
    config_class=F2Config,
    deliverables=DELIVERABLES,
    artifacts=ARTIFACTS,
)


@hookimpl
def register_phases(register):
    register(PHASE)
