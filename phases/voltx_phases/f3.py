"""Phase F3, compositional reasoning (unified training plan, Part III): ``voltx run f3``.

Trains the velocity field RAR follows: denoising slot refinement (zeroed, noised and
shuffled slots -> the restoring drift, per-slot MSE), slot-conditional flow matching
with per-slot time and a slot-identity penalty, and reasoning-chain supervision
frame(t) -> frame(t+1) from data with intermediate steps. Evaluated end to end:
encode -> RAR -> decode. Import-light: training is in :mod:`voltx_phases.f3_train`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from voltx import hookimpl
from voltx.plugin_specs import Deliverable, PhaseSpec

ARTIFACTS = ("vfn_foundation.safetensors", "lang_tokenizer.json", "lang_encoder.safetensors", "lang_decoder.safetensors")

DELIVERABLES = (
    Deliverable("reasoning/scan_accuracy", ">", 0.85,
                "SCAN exact-match accuracy through encode -> RAR -> decode (plan: > 85% on the length split)",
                baselines=("reasoning/scan_best_constant", "reasoning/scan_nearest_train_answer"),
                ablations=("reasoning/scan_accuracy_rar_off",)),
    Deliverable("reasoning/babi_accuracy", ">", 0.75,
                "bAbI tasks 1-3 answer accuracy, mean over the tasks evaluated (plan: > 75%)",
                baselines=("reasoning/babi_best_constant", "reasoning/babi_nearest_train_answer"),
                ablations=("reasoning/babi_accuracy_rar_off",)),
    Deliverable("reasoning/denoise_slot_share", ">", 0.65,
                "frame denoising: share of corrupted slots restored to cosine > 0.9 (plan: > 65%)",
                baselines=("reasoning/denoise_frame_mean_share",), ablations=("reasoning/denoise_share_before",)),
    Deliverable("reasoning/rar_converged_share", ">", 0.70,
                "share of test queries whose RAR converges within rar_max_iterations = 30 (plan: > 70%)",
                baselines=("reasoning/rar_converged_share_untrained",)),
)


@dataclass
class F3Config:
    """The ``[f3]`` table; data lists as in :class:`voltx_phases.f1.F1Config`."""

    reasoning_data: list[str] = field(default_factory=lambda: ["gen:scan_length_gen", "gen:babi_qa1_gen", "gen:babi_qa2_gen", "gen:babi_qa3_gen"])
    """reasoning training data (SCAN, COGS, CLUTRR, bAbI); steps are the chain supervision."""
    reasoning_eval: list[str] = field(default_factory=list)
    """Held-out reasoning data (e.g. SCAN length test, bAbI 1k test tasks 1-3)."""
    valid_fraction: float = 0.1
    max_examples: int = 0
    eval_max_examples: int = 0
    """Evaluate on at most this many records per task; 0 = all."""
    lang_from: str = "auto"
    """The language stack to start from (F2's or F1's): auto, none, or a run / artifacts directory."""
    vocab_size: int = 32768
    max_seq_len: int = 256
    vfn_hidden: int = 2048
    vfn_blocks: int = 6
    time_embed_freqs: int = 64
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    min_lr: float = 1e-6
    weight_decay: float = 0.01
    warmup: int = 2000
    grad_clip: float = 1.0
    denoise_weight: float = 1.0
    flow_weight: float = 0.5
    fixed_point_weight: float = 10.0
    """Clean frames as RAR fixed points (tangential drift -> 0): a slot freezes only when dt x drift < rar_epsilon."""
    identity_weight: float = 0.1
    chain_weight: float = 1.0
    answer_weight: float = 1.0
    decoder_max_len: int = 64
    """Longest answer rendered by the decoder (tokens + EOS): a fresh decoder's size; F1's decoder is
    extended to the data's longest answer up to it; a longer answer stops the run before training."""
    rar_max_iterations: int = 30
    rar_dt: float = 0.1
    rar_beta: float = 0.5
    rar_epsilon: float = 0.001
    zero_prob: float = 0.15
    """Denoising: share of active slots zeroed."""
    noise_prob: float = 0.3
    """Denoising: share of active slots given Gaussian noise (level 0.2-1 of the slot norm)."""
    shuffle_prob: float = 0.15
    """Denoising: share of active slots whose vectors are shuffled among themselves."""
    chain_unroll: int = 2
    """RAR iterations unrolled (differentiably) for one reasoning-chain step f_k -> f_k+1."""
    chain_batch: int = 8
    """Records of each batch whose chain step f_k -> f_k+1 is trained (two extra encoder passes each)."""


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
