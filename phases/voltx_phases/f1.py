"""Phase F1, lexical grounding (unified training plan, Part III): ``voltx run f1``.

Trains the language stack from scratch: a byte-level BPE tokenizer, the CNN frame
encoder (role head: cross-entropy on slot-annotated sentences; InfoNCE at tau 0.07 on
paraphrase pairs), a VFN that fills masked slots through RAR, and the decoder that
renders a frame as text. Import-light: the training code is :mod:`voltx_phases.f1_train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voltx import hookimpl
from voltx.plugin_specs import Deliverable, PhaseSpec

ARTIFACTS = ("lang_tokenizer.json", "lang_encoder.safetensors", "lang_decoder.safetensors", "slot_filler.safetensors")

DELIVERABLES = (
    Deliverable("grounding/slot_accuracy", ">", 0.80,
                "slot assignment accuracy on held-out SRL tokens > 80% (plan, F1 deliverables / Part VI)",
                baselines=("grounding/slot_accuracy_majority",)),
    Deliverable("grounding/sts_spearman", ">", 0.70,
                "Spearman of frame cosine vs gold similarity on held-out pairs (STS-B test) > 0.70 (plan, Part VI)",
                baselines=("grounding/sts_spearman_word_overlap",)),
    Deliverable("grounding/dog_canine_agent_cosine", ">", 0.70,
                "cosine of 'dog' and 'canine' in the Agent slot S0 > 0.7 (plan, Part VI)",
                baselines=("grounding/agent_cosine_unrelated",), margin=0.1),
    Deliverable("grounding/slot_fill_accuracy", ">", 0.60,
                "VFN slot filling: masked slots reconstructed (top-1 among held-out fillers) > 60% (plan, F1 deliverables)",
                baselines=("grounding/slot_fill_context_mean", "grounding/slot_fill_chance"),
                ablations=("grounding/slot_fill_prior_accuracy",)),
)


@dataclass
class F1Config:
    """The ``[f1]`` table.

    Data lists take Volt JSONL files (``voltx data convert ...``) or built-in generators
    ``"gen:NAME?option=value"`` (``voltx data list``). A generator gives its train split to
    training, its dev split to the per-epoch evaluation (what presets and tuning look at) and its
    test split to the evaluation computed once after training, the one the deliverables judge.
    A file gives ``valid_fraction`` of its records to dev and, when the evaluation list is empty,
    as much again to test; an evaluation list is the test data. F2 reads its triples alike.
    """

    srl_data: list[str] = field(default_factory=lambda: ["gen:srl_gen"])
    """slot_annotated training data (FrameNet / PropBank / Universal Propositions via `voltx data`)."""
    srl_eval: list[str] = field(default_factory=list)
    """Test slot_annotated data for slot accuracy and slot filling (e.g. UP-1.0 test)."""
    paraphrase_data: list[str] = field(default_factory=lambda: ["gen:paraphrase_gen"])
    """paraphrase training data (STS-B train, PAWS)."""
    paraphrase_eval: list[str] = field(default_factory=list)
    """Test scored paraphrase pairs for the Spearman correlation (e.g. STS-B test)."""
    valid_fraction: float = 0.1
    max_examples: int = 0
    """Use at most this many records of each training list; 0 = all."""
    vocab_size: int = 32768
    """Byte-level BPE vocabulary trained on the phase's texts (lang_tokenizer.json)."""
    tokenizer_corpus: list[str] = field(default_factory=list)
    """More data the tokenizer is trained on (files or generators of any format): in a curriculum,
    the later phases' training lists (SCAN actions, bAbI, ...), so the stack they share knows their words."""
    max_seq_len: int = 128
    epochs: int = 10
    batch_size: int = 128
    lr: float = 5e-4
    warmup: int = 200
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    temperature: float = 0.07
    """InfoNCE temperature on paraphrase pairs."""
    slot_weight: float = 1.0
    contrastive_weight: float = 1.0
    slot_fill_weight: float = 1.0
    mask_ratio: float = 0.25
    """Share of active slots masked for VFN slot filling."""
    vfn_hidden: int = 512
    """Hidden width of the slot-filling VFN (the original's RAR VFN: 512)."""
    fill_iterations: int = 5
    """RAR iterations unrolled (differentiably) when training slot filling."""
    decoder_epochs: int = 3
    """Epochs of the lang_decoder stage (frame -> sentence, on the frozen encoder)."""
    decoder_batch_size: int = 64
    decoder_lr: float = 3e-4
    decoder_max_len: int = 64
    eval_candidates: int = 64
    """Slot filling is scored by retrieval among this many held-out fillers of the same slot."""
    eval_max_examples: int = 2000
    """Evaluate on at most this many sentences and pairs of the dev and test splits each; 0 = all."""
    fill_eval_queries: int = 512
    """Slot-filling questions per evaluation: a slot's word(s) cut out of the sentence, the rest
    encoded, the slot restored by one RAR run of up to 30 iterations."""


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
