"""``voltx run cognate``: Agent Forge phase 1, three small models made different by config.

One run, three stages (``cognate-reasoning``, ``cognate-memory``, ``cognate-speed``): each
trains one Cognate model (:mod:`voltx_agentforge.cognate_model`) on the same data mix with its
specialisation's settings (index 0, 1, 2 of the per-specialisation lists below), then the run
measures the three together (diversity, time, storage). One run rather than three linked
runs: the diversity verdict is about the three models together, so it belongs to one run's
verdicts, and the console then shows one progress bar and ETA over all three stages and one
``--resume auto`` continues whichever stage was stopped.

Import-light: the run is :mod:`voltx_agentforge.cognate_train`, imported only when it runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from voltx.config_checks import require_at_least, require_mix_weights
from voltx.errors import ConfigError
from voltx.plugin_specs import Deliverable, PhaseSpec

SPECIALISATIONS = ("reasoning", "memory", "speed")
STAGES = tuple(f"cognate-{s}" for s in SPECIALISATIONS)
SUMMARY_STAGE = "cognate"
"""The stage name of the run's closing evaluation (diversity, training time, storage)."""
BASE = "base"
"""The three models' shared initialisation, saved beside them (``cognate-base/``): phase 2 takes
task vectors against it (TIES and DARE are defined on fine-tunes minus their common base)."""
BASE_STAGE = f"cognate-{BASE}"
ARTIFACTS = tuple(f"cognate-{s}/{f}" for s in (*SPECIALISATIONS, BASE) for f in ("model.safetensors", "config.json")) + ("cognate.json",)

DELIVERABLES = (
    *(Deliverable(f"{stage}/accuracy", ">", 0.10,
                  "held-out word problems answered exactly (greedy); the plan's GSM8K target > 10%",
                  baselines=(f"{stage}/majority_answer", f"{stage}/copy_number"),
                  ablations=(f"{stage}/accuracy_halting_off", f"{stage}/accuracy_one_step", f"{stage}/accuracy_memory_off"),
                  margin=0.02)
      for stage in STAGES),
    Deliverable(f"{SUMMARY_STAGE}/diversity", ">", 0.3,
                "mean pairwise distance of the three models' behaviour (halting steps, memory use, speed; README), "
                "past the same three models untrained (what their configs alone give)",
                baselines=(f"{SUMMARY_STAGE}/diversity_untrained",), margin=0.0),
)

QUICK = {
    "data": ["gen:arith_words_gen?max_number=5&ops=add,mul,box,inc,fact:1.0"],
    "specialist_data": [["gen:arith_words_gen?max_number=5&ops=mul:1.0"], ["gen:arith_words_gen?max_number=5&facts=96&ops=fact:1.0"],
                        ["gen:arith_words_gen?max_number=5&ops=inc:1.0"]],
    "eval_data": "gen:arith_words_gen?max_number=5&facts=96&ops=mul,fact,inc",
    "examples": 3000, "eval_examples": 300, "base_epochs": 1, "finetune_lr": 3e-3, "finetune_anchor": 0.0,
    "finetune_optimizer": "adamw", "finetune_replay": 0.1,
    "d_model": 64, "heads": 4, "layers": 1, "max_len": 112,
    "refine_steps": [4, 2, 1], "memory_slots": [1024, 1024, 1024], "memory_ngram": 4, "memory_lr_mult": [1.0, 10.0, 1.0],
    "memory_cost": [0.3, 0.0, 0.3], "epochs": 2, "lr": 1e-2, "warmup": 30, "prompt_loss_weight": 0.3,
    "halt_kl_weight": 0.5,
}
"""Offline generated problems and tiny models: the three stages in a few minutes on 2 CPU cores."""


@dataclass
class CognateConfig:
    """The ``[cognate]`` table. Lists of three are per specialisation: reasoning, memory, speed."""

    PRESETS: ClassVar[dict[str, dict]] = {"quick": QUICK, "full": {}}

    data: list[str] = field(default_factory=lambda: ["hub:gsm8k:0.5", "gen:arith_words_gen?max_number=100:0.5"])
    """Training sources and weights (SOURCE:WEIGHT, summing to 1): ``hub:<converter>`` streams a
    registered converter's Hugging Face copy (``hub:gsm8k``), ``gen:<generator>?opt=v`` runs a
    registered generator, anything else is a JSONL file of ``reasoning`` records."""
    specialist_data: list[list[str]] = field(default_factory=list)
    """Empty: the three train on ``data``. Else three mixes (reasoning, memory, speed; SOURCE:WEIGHT
    each): each model trains on its own, and is judged on the held-out problems of its own tasks
    (the ``task`` of its training records), beside the majority answer and copy rule of those
    tasks. Specialists of one initialisation trained on different task families are what a
    merge can combine (phase 2 is judged on all the families together)."""
    base_epochs: int = 0
    """With ``specialist_data``: epochs of a shared base trained first on ``data`` (stage
    ``cognate-base``, the reasoning model's settings); the three are then fine-tuned from it on
    their own mixes for ``epochs``. Merging (phase 2) adds the fine-tunes' task vectors to that
    base: from an untrained start they are whole models, and their sum is noise (measured)."""
    finetune_lr: float = 0.0
    """Peak learning rate of the specialists' fine-tuning from a trained base (0 = ``lr``): lower
    keeps their task vectors small, so that their sum stays in the base's basin."""
    finetune_anchor: float = 0.0
    """Weight of an L2 pull of each specialist's weights toward its start (the shared base) while
    it fine-tunes: ``finetune_anchor * sum((θ - θ_base)²)`` added to its loss (0 = off). Phase 2
    adds the specialists' task vectors to the base; unanchored, each fine-tune leaves the base's
    basin and forgets what the base knew, so the vectors do not add. Quick: 0 (``finetune_replay``
    keeps what the base knew better; with it, the anchor's pull only weakened the specialists and
    the merges: README, "What makes the fine-tunes add")."""
    finetune_optimizer: Literal["", "muon_grokfast", "adamw"] = ""
    """The specialists' optimizer when fine-tuned from a trained base ("" = ``optimizer``). Quick:
    adamw: Muon's task vectors lost more of each skill when phase 2 summed them (measured, README,
    "What makes the fine-tunes add"; its orthogonalised updates move every direction of a weight
    matrix alike, the likely reason)."""
    finetune_replay: float = 0.0
    """Share of each specialist's fine-tuning problems drawn from the base's mix (``data``)
    instead of its own (0 = none; the specialist is still judged on its own kinds). Without it a
    specialist learns "always answer my kind" -- it never needs to tell the kinds apart -- and two
    such task vectors fight over every question when summed; rehearsing the base's kinds makes
    each skill conditional on its own questions (measured, README). Quick: 0.1 with a one-epoch
    base: enough to keep the vectors adding, little enough that each specialist stays weak on the
    other kinds (with 0.3 and a two-epoch base all three knew every kind: nothing left to merge)."""
    eval_data: str = "hub:gsm8k"
    """The held-out word problems (their ``eval_split`` split; a JSONL file is used whole)."""
    eval_split: Literal["test", "dev"] = "test"
    """Split of ``eval_data`` evaluated: ``dev`` while tuning settings, ``test`` (once) for the figures reported."""
    examples: int = 20000
    """Records in the training mix."""
    eval_examples: int = 500
    d_model: int = 512
    heads: int = 8
    layers: int = 8
    """Transformer blocks in the core that each refinement step runs (the plan: 8)."""
    ff_mult: int = 4
    max_len: int = 384
    """Bytes per example (question + answer); longer questions keep their end."""
    refine_steps: list[int] = field(default_factory=lambda: [8, 4, 2])
    """Most refinement steps per token (halting stops earlier)."""
    halt_prior: list[float] = field(default_factory=lambda: [0.2, 0.5, 0.9])
    """Rate of the geometric prior over halting steps (PonderNet): 0.9 halts early (speed), 0.2 thinks long."""
    halt_kl_weight: float = 0.1
    """Weight of the KL term between the halting distribution and its prior."""
    deep_supervision: float = 0.5
    """Weight of every refinement step's own loss (their mean) beside the halting-weighted one
    (TRM's deep supervision): without it, the steps halting skipped early never learn, and the
    quick preset's models halted after step 1 for good within 50 optimizer steps."""
    memory_slots: list[int] = field(default_factory=lambda: [64, 64, 64])
    """Equal by default: phase 2 (EvoMerge) merges the models tensor by tensor, which needs equal
    shapes (it refuses unequal ones, naming the tensors)."""
    memory_gate_bias: list[float] = field(default_factory=lambda: [-2.0, 1.0, -3.0])
    """Initial bias of the memory gate (sigmoid): the memory model starts with it open."""
    memory_ngram: int = 0
    """How the memory is read: 0 = by attention (the state's query against the slots); n (1-6) =
    a lookup, each token reading the slot its last n bytes hash to (Engram-style; ``memory_slots``
    is then the table's rows). Quick: 4 (the attention read stayed unused: README, "Measured")."""
    memory_lr_mult: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    """The memory's learning rate as a multiple of the model's, per specialisation (the shared
    base trains with the reasoning model's). Quick: [1, 10, 1]: a lookup row is trained only by
    the tokens that hash to it, so at the core's rate the core learned the facts first (measured:
    memory off cost 2.5 points at 1x, 46 at 10x; README)."""
    memory_cost: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    """Per specialisation, the price of memory use: ``memory_cost * mean gate`` per real token is
    added to the loss (as the ponder cost prices refinement steps), so a gate stays open only where
    the read pays for it. Quick: [0.3, 0, 0.3]: the n-gram read is a little useful to every task,
    and without a price every model opened its gate fully (use 0.94-1.00) while memory off cost the
    reasoning and speed models nothing (README, "Measured")."""
    optimizer: Literal["muon_grokfast", "adamw"] = "muon_grokfast"
    """muon_grokfast: the plan's Muon x Grokfast; adamw: the control."""
    muon_momentum: float = 0.95
    grokfast_alpha: float = 0.98
    grokfast_lambda: float = 2.0
    epochs: int = 3
    batch_size: int = 0
    """Examples per step; 0 = chosen from the model's size category and free memory (logged)."""
    memory_fraction: float = 0.5
    """Share of the free memory the activations may use when the batch is chosen."""
    lr: float = 1e-3
    warmup: int = 200
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    prompt_loss_weight: float = 0.1
    """Weight of the question bytes' next-byte loss beside the answer's, per example: its
    question's bytes together weigh this times its answer's, however long the question."""
    speed_batches: int = 3
    """Batches timed per model for its speed (examples per second, held-out set)."""

    def __post_init__(self) -> None:
        if self.specialist_data and len(self.specialist_data) != len(SPECIALISATIONS):
            raise ConfigError(f"cognate.specialist_data: expected 3 mixes (reasoning, memory, speed) or none, got {self.specialist_data!r}")
        for key, mix in [("data", self.data)] + [(f"specialist_data[{i}]", m) for i, m in enumerate(self.specialist_data)]:
            require_mix_weights(f"cognate.{key}", mix, '["hub:gsm8k:0.5", "gen:arith_words_gen:0.5"]')
        for name in ("refine_steps", "halt_prior", "memory_slots", "memory_gate_bias", "memory_lr_mult", "memory_cost"):
            if len(getattr(self, name)) != len(SPECIALISATIONS):
                raise ConfigError(f"cognate.{name}: expected 3 values (reasoning, memory, speed), got {getattr(self, name)!r}")
        require_at_least("cognate", self, ("examples", "eval_examples", "d_model", "heads", "layers", "ff_mult", "max_len", "epochs",
                                           "speed_batches"))
        require_at_least("cognate", self, ("base_epochs", "lr", "finetune_lr", "finetune_anchor"), least=0)  # 0: no base / finetune_lr = lr
        if not 0 <= self.finetune_replay < 1:
            raise ConfigError(f"cognate.finetune_replay must be in [0, 1) (a share of each specialist's problems), got {self.finetune_replay}")
        if self.finetune_replay and not (self.specialist_data and self.base_epochs):
            raise ConfigError(f"cognate.finetune_replay ({self.finetune_replay}) rehearses the shared base's mix while the specialists "
                              "fine-tune from it: it needs cognate.specialist_data and cognate.base_epochs > 0 (or set it to 0)")
        if not all(0 < r < 1 for r in self.halt_prior):
            raise ConfigError(f"cognate.halt_prior: each rate must be between 0 and 1 (exclusive), got {self.halt_prior!r}")
        if not 0 <= self.memory_ngram <= 6:
            raise ConfigError(f"cognate.memory_ngram must be 0 (attention read) or 1-6 (bytes of the lookup's key), got {self.memory_ngram}")
        if min(self.memory_cost) < 0:
            raise ConfigError(f"cognate.memory_cost: each price must be >= 0 (0 = free memory), got {self.memory_cost!r}")
        if min(self.memory_lr_mult) <= 0:
            raise ConfigError(f"cognate.memory_lr_mult: each multiple must be > 0, got {self.memory_lr_mult!r}")
        if min(self.refine_steps) < 1 or min(self.memory_slots) < 1:
            raise ConfigError(f"cognate.refine_steps and cognate.memory_slots must be at least 1, got "
                              f"{self.refine_steps!r} and {self.memory_slots!r}")
        if self.specialist_data and self.base_epochs and len(set(self.memory_slots)) > 1:
            raise ConfigError(f"cognate.memory_slots: the three models are fine-tuned from one base (cognate.base_epochs = "
                              f"{self.base_epochs}), so they need equal shapes; got {self.memory_slots!r}. Make them equal, "
                              "or set cognate.base_epochs = 0")
        if self.d_model % self.heads:
            raise ConfigError(f"cognate.d_model ({self.d_model}) must be a multiple of cognate.heads ({self.heads})")
        if self.batch_size < 0 or not 0 < self.memory_fraction <= 1:
            raise ConfigError(f"cognate.batch_size must be >= 0 (0 = chosen from the model's size) and cognate.memory_fraction "
                              f"in (0, 1], got {self.batch_size} and {self.memory_fraction}")


PHASE = PhaseSpec(
    name="cognate",
    summary="Agent Forge phase 1: three recurrent-refinement models with adaptive halting and gated memory (reasoning, memory, speed)",
    runner="voltx_agentforge.cognate_train:run",
    config_class=CognateConfig,
    deliverables=DELIVERABLES,
    artifacts=ARTIFACTS,
)
