"""Phase F2, world knowledge (unified training plan, Part III): ``voltx run f2``.

Teaches relations as HDC algebra on the encoder's concept embeddings: relational
binding ``||bind(embed(A), embed(rel)) - embed(B)||^2``, retrieval by unbind, category
superposition and negative sampling; fine-tunes F1's encoder, aligns a concept codebook
and trains the energy head on triple frames. Import-light: training is in
:mod:`voltx_phases.f2_train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voltx import hookimpl
from voltx.plugin_specs import Deliverable, PhaseSpec

ARTIFACTS = ("lang_tokenizer.json", "lang_encoder.safetensors", "lang_decoder.safetensors",
             "relations.safetensors", "concept_codebook.safetensors")

DELIVERABLES = (
    Deliverable("knowledge/bind_top1", ">", 0.50,
                "bind(A, rel) -> nearest concept = B on held-out triples > 50% (plan, F2 deliverables / Part VI)",
                baselines=("knowledge/bind_popular_top1", "knowledge/bind_chance")),
    Deliverable("knowledge/analogy_top1", ">", 0.35,
                "A:B::C:? via bind/unbind, top-1 > 35% (plan, F2 deliverables / Part VI)",
                baselines=("knowledge/analogy_copy_baseline",)),
    Deliverable("knowledge/codebook_quantization_error", "<", 0.15,
                "mean 1 - cos of the embeddings of concepts no training triple names to the nearest codebook entry "
                "< 0.15 (plan, F2 deliverables), and 0.05 below a single entry (the mean): bunched embeddings pass "
                "the threshold with any codebook",
                baselines=("knowledge/codebook_k1_error",), ablations=("knowledge/codebook_random_error",), margin=0.05),
)


@dataclass
class F2Config:
    """The ``[f2]`` table; data lists as in :class:`voltx_phases.f1.F1Config`."""

    triples_data: list[str] = field(default_factory=lambda: ["gen:concepts_gen"])
    """triples training data (ConceptNet / CN-100K, ATOMIC, WordNet via `voltx data`)."""
    triples_eval: list[str] = field(default_factory=list)
    """Test triples for bind retrieval, analogies and the codebook (e.g. CN-100K test); empty: a
    generator's test split, a hold-out of each file (voltx_phases.f2_train.hold_out)."""
    valid_fraction: float = 0.1
    max_examples: int = 0
    lang_from: str = "auto"
    """F1's language stack: auto ([paths].checkpoints_dir if it holds it, else a fresh encoder),
    none, or an f1 run directory / artifacts directory."""
    vocab_size: int = 32768
    """Tokenizer size when starting without F1's stack."""
    max_seq_len: int = 32
    """Concepts are short phrases."""
    epochs: int = 10
    batch_size: int = 256
    lr: float = 3e-4
    warmup: int = 500
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    negatives: int = 5
    """Negative tails sampled per triple."""
    temperature: float = 0.07
    bind_weight: float = 1.0
    unbind_weight: float = 0.5
    superposition_weight: float = 0.5
    negative_weight: float = 1.0
    energy_weight: float = 0.5
    codebook_weight: float = 0.5
    codebook_size: int = 65536
    """Concept codebook entries (k-means initialised, then aligned by training)."""
    categories_per_step: int = 8
    """Categories (tails of IsA-like relations) whose members are superposed per step."""
    category_members: int = 4
    """Members drawn per category for the superposition term."""
    analogy_queries: int = 2000
    """A:B::C:? questions built from held-out triples sharing a relation."""


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
