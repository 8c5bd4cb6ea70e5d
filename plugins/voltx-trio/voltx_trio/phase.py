"""``voltx run trio --role creative|logical|dialectical``: the spec, config and deliverables.

LoRA fine-tuning of a Hugging Face causal LM into one role of the Trio document's dialectical
trio (``../shared/seeds/slm-trio-training-direction.md``). Import-light: the run is in
:mod:`voltx_trio.train`, imported only when the phase runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from voltx.config_checks import require_at_least, require_mix_weights
from voltx.plugin_specs import Deliverable, PhaseSpec

STAGE = "trio"
ROLE_NAMES = ("creative", "logical", "dialectical")
ARTIFACTS = tuple(f"trio-{role}/{name}" for role in ROLE_NAMES for name in ("adapter_model.safetensors", "adapter_config.json", "trio.json"))

DELIVERABLES = (
    Deliverable(f"{STAGE}/exact_match", ">", 0.5,
                "held-out pure logic puzzles answered exactly (greedy), past the best constant verdict",
                baselines=(f"{STAGE}/majority_baseline",), ablations=(f"{STAGE}/base_exact_match",), margin=0.1),
    Deliverable(f"{STAGE}/heldout_loss", "<", 1.0,
                "held-out answer-token loss (nats), below the training answers' unigram loss; the document's v6 converged to 0.57",
                baselines=(f"{STAGE}/unigram_loss",), ablations=(f"{STAGE}/base_heldout_loss",), margin=0.05),
    Deliverable(f"{STAGE}/format_adherence", ">", 0.9,
                "held-out answers in the role's format (one verdict; verdict, role mark, reason), past the best constant output",
                baselines=(f"{STAGE}/constant_format_adherence",), ablations=(f"{STAGE}/base_format_adherence",), margin=0.1),
)
"""Each beside its no-model baseline and the base model without the adapter (the ablation)."""


@dataclass
class TrioConfig:
    """The ``[trio]`` table: one role's LoRA adapter (the Trio document's v6/v7 recipe)."""

    PRESETS: ClassVar[dict[str, dict]] = {
        "full": {},  # the document's recipe: the defaults below
        "quick": {  # a tiny Qwen2 built here (no weights download), a few minutes on 2 CPU cores
            "base_model": "tiny", "examples": 1500, "eval_examples": 192, "epochs": 4, "batch_size": 8, "grad_accum": 1,
            "lr": 3e-3, "warmup": 20, "lora_r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "max_len": 128,
        },
    }

    role: Literal["creative", "logical", "dialectical"] = "creative"
    """The trio role this adapter learns (its prompt template and answer format)."""
    base_model: str = "Qwen/Qwen2.5-0.5B-Instruct"
    """Hugging Face model id (read from the local HF cache, never downloaded at run time) or a local
    model directory; "tiny" builds a tiny Qwen2 and a tokenizer here (the quick preset)."""
    data: list[str] = field(default_factory=lambda: ["gen:hybrid:0.6", "gen:pure:0.4"])
    """Training sources and their weights as `voltx data mix` takes them (SOURCE:WEIGHT, weights summing
    to 1): gen:hybrid and gen:pure (the built-in logic puzzles) or instruction JSONL files."""
    examples: int = 6000
    """Records in the training mix (the document's v6 had 6,062)."""
    eval_examples: int = 240
    """Held-out records per evaluation: pure puzzles (exact match) and hybrid ones (format), half each."""
    valid_fraction: float = 0.1
    """Share of a JSONL source held out for the held-out loss."""
    prompt_format: Literal["chat", "plain", "auto"] = "chat"
    """chat: the tokenizer's chat template (required); plain: the document's role template; auto: chat when there is one."""
    max_len: int = 384
    """Tokens per record (prompt + answer); longer records are cut from the prompt's start."""
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    """Linear layers that get LoRA adapters."""
    epochs: int = 10
    batch_size: int = 4
    """Records per micro-batch; an optimizer step takes batch_size * grad_accum records."""
    grad_accum: int = 2
    lr: float = 2e-4
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    max_new_tokens: int = 8
    """Tokens generated per held-out prompt (a verdict and the start of a reason)."""

    def __post_init__(self) -> None:
        require_mix_weights("trio.data", self.data, '["gen:hybrid:0.6", "gen:pure:0.4"]')
        require_at_least("trio", self, ("examples", "eval_examples", "epochs", "batch_size", "grad_accum", "lora_r", "max_len",
                                        "max_new_tokens"))


PHASE = PhaseSpec(
    name="trio",
    summary="Trio: LoRA fine-tuning of a Hugging Face causal LM into one role (creative, logical, dialectical)",
    runner="voltx_trio.train:run",
    config_class=TrioConfig,
    deliverables=DELIVERABLES,
    artifacts=ARTIFACTS,
    check="voltx_trio.checks:check",
)
