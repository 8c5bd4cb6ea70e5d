"""Schema of training_config.toml: the curriculum's tables as dataclasses.

Values are the seeds' hyper-parameters (``shared/seeds/volt-x-unified-training-plan.md``,
``volt-x-translator-training-commands.md``) and, where the seeds are silent, the original
implementation's defaults. Attribute docstrings document each field; ``voltx config
validate`` checks a file against these classes. A phase registers its own class in its
PhaseSpec; the tables of phases not yet installed are still validated against these.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class PathsConfig:
    data_dir: str = "data"
    """Where converted datasets (Volt JSONL) live."""
    checkpoints_dir: str = "checkpoints"
    """Where finished phases publish their artifacts (code_encoder.safetensors ...)."""
    runs_dir: str = "runs"
    """The run store root (also --runs-dir or VOLTX_RUNS_DIR)."""


@dataclass
class HardwareConfig:
    device: str = "auto"
    """auto (CUDA when available, else CPU), cpu, cuda or cuda:N."""
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    """Autocast precision on CUDA; CPU runs always use fp32."""
    num_gpus: int = 1
    """Processes to launch with torchrun when > 1 (same as --nproc)."""
    deterministic: bool = True
    """Ask torch for deterministic kernels (exact resume on GPU needs it)."""


@dataclass
class RunConfig:
    seed: int = 42
    """Seeds python, numpy and torch generators; resume restores their exact states."""
    log_every: int = 10
    """Log a metrics record (and a progress line) every N optimizer steps."""
    checkpoint_every: int = 0
    """Checkpoint every N steps; 0 = only at the end of each epoch (and on preemption)."""
    keep_checkpoints: int = 2
    """Committed checkpoints kept per run; older ones are pruned after a new one commits."""
    sinks: list[str] = field(default_factory=list)
    """Extra metric sinks by name (see `voltx plugins`), e.g. ["csv"]."""
    alert_rules: list[str] = field(default_factory=lambda: ["loss-spike", "throughput-drop", "low-disk"])
    """Alert rules checked on every logged step."""
    telemetry_interval: float = 1.0
    """Seconds between system.jsonl samples (GPU, CPU, RAM, disk) by the telemetry sidecar; 0 disables it."""


# --- Translator (Phase 1 of the original; the seed's three commands) ----------------------


@dataclass
class TokenizerStageConfig:
    vocab_size: int = 32768
    """Byte-level BPE vocabulary size (specials <pad> <unk> <bos> <eos> are ids 0-3)."""
    min_frequency: int = 2
    max_files: int = 50000
    """At most this many corpus texts are used to train the tokenizer."""
    corpus: list[str] = field(default_factory=list)
    """.py/.txt files, directories or JSONL (content/code field); empty = the training data's code."""
    path: str = ""
    """Use this trained tokenizer instead of training one (the stage is then skipped)."""
    output: str = ""
    """Also write the tokenizer here (e.g. checkpoints/code_tokenizer.json); empty = run artifacts only."""


@dataclass
class EncoderStageConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 5e-4
    warmup: int = 200
    """Linear warm-up steps, then cosine decay to min_lr_ratio * lr."""
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_seq_len: int = 512
    temperature: float = 0.07
    """InfoNCE temperature."""
    contrastive_weight: float = 0.8
    role_weight: float = 0.2
    valid_batches: int = 50
    """Validation uses at most this many batches."""
    path: str = ""
    """Use this trained encoder (safetensors) instead of training one (the stage is then skipped)."""
    output: str = ""
    """Also write the encoder and its per-epoch <stem>_epoch_<n> files here; empty = run artifacts only."""


@dataclass
class DecoderStageConfig:
    epochs: int = 10
    batch_size: int = 16
    lr: float = 3e-4
    warmup: int = 200
    min_lr_ratio: float = 0.01
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    max_len: int = 256
    """Longest target sequence (tokens, BOS/EOS included)."""
    valid_batches: int = 50
    sample_count: int = 3
    """Validation code samples decoded greedily and written to events for a look."""
    output: str = ""
    """Also write the decoder and its per-epoch <stem>_epoch_<n> files here; empty = run artifacts only."""


@dataclass
class TranslatorConfig:
    data: str = ""
    """CodeSearchNet JSONL ({code, docstring, func_name, language}); empty = built-in corpus
    extracted from the functions with docstrings of this Python's standard library."""
    max_examples: int = 0
    """Use at most this many (code, docstring) pairs; 0 = all."""
    valid_fraction: float = 0.1
    stages: list[str] = field(default_factory=lambda: ["tokenizer", "encoder", "decoder"])
    """Which stages this run trains, in order; the seed's train-* commands run one each."""
    tokenizer: TokenizerStageConfig = field(default_factory=TokenizerStageConfig)
    encoder: EncoderStageConfig = field(default_factory=EncoderStageConfig)
    decoder: DecoderStageConfig = field(default_factory=DecoderStageConfig)


# --- Codebook (JA.1, the original's codebook-init) ----------------------------------------


@dataclass
class CodebookConfig:
    corpus: list[str] = field(default_factory=list)
    """.py/.txt files, directories or JSONL (content/code field); empty = this Python's standard library."""
    k: int = 65536
    """Codebook entries (at most 65,536: ids are u16)."""
    max_files: int = 1_000_000
    """At most this many corpus texts are encoded."""
    sample: int = 2_000_000
    """Vectors k-means runs on (a uniform sample of those collected; 0 = all)."""
    holdout: int = 100_000
    """Vectors held out to measure the quantization error (at most a tenth of those collected)."""
    iters: int = 50
    """Maximum k-means epochs (full passes over the sample)."""
    batch: int = 8192
    """k-means mini-batch size."""
    tol: float = 1e-5
    """Stop when the RMS centroid movement of an epoch is below this."""
    init_sample: int = 200_000
    """k-means++ seeds from a uniform sample of at most this many vectors."""
    seed: int = 42
    encoder: str = ""
    """Trained code encoder (safetensors, `voltx train-encoder`); empty = stub word vectors."""
    tokenizer: str = ""
    """The encoder's tokenizer (`voltx train-tokenizer`); needed with encoder."""
    max_seq_len: int = 512
    """Encoder input is truncated to this many tokens."""
    encode_batch: int = 64
    """Texts per encoder forward pass."""
    output: str = ""
    """Also write the codebook here (.safetensors, or .bin for the original's VXCB format); empty = run artifacts only."""


# --- Foundation and later phases (unified training plan, Part III) ------------------------


# Data lists below take Volt JSONL files (`voltx data convert ...`) or built-in generators
# "gen:NAME?option=value" (`voltx data list`). Training lists read a generator's train split,
# evaluation lists its test split; an empty evaluation list holds out valid_fraction of the
# training files (and uses the generators' test split).


@dataclass
class F1Config:
    srl_data: list[str] = field(default_factory=lambda: ["gen:srl_gen"])
    """slot_annotated training data (FrameNet / PropBank / Universal Propositions via `voltx data`)."""
    srl_eval: list[str] = field(default_factory=list)
    """Held-out slot_annotated data for slot accuracy and slot filling (e.g. UP-1.0 test)."""
    paraphrase_data: list[str] = field(default_factory=lambda: ["gen:paraphrase_gen"])
    """paraphrase training data (STS-B train, PAWS)."""
    paraphrase_eval: list[str] = field(default_factory=list)
    """Held-out scored paraphrase pairs for the Spearman correlation (e.g. STS-B test)."""
    valid_fraction: float = 0.1
    max_examples: int = 0
    """Use at most this many records of each training list; 0 = all."""
    vocab_size: int = 32768
    """Byte-level BPE vocabulary trained on the phase's texts (lang_tokenizer.json)."""
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
    """Evaluate on at most this many held-out sentences and pairs each; 0 = all."""
    fill_eval_queries: int = 512
    """Masked-slot questions in each slot-filling evaluation (one RAR run of up to 30 iterations each)."""


@dataclass
class F2Config:
    triples_data: list[str] = field(default_factory=lambda: ["gen:concepts_gen"])
    """triples training data (ConceptNet / CN-100K, ATOMIC, WordNet via `voltx data`)."""
    triples_eval: list[str] = field(default_factory=list)
    """Held-out triples for bind retrieval and analogies (e.g. CN-100K test)."""
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


@dataclass
class F3Config:
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
    """Longest answer rendered by the decoder (tokens, BOS/EOS included)."""
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


@dataclass
class CurriculumConfig:
    phases: list[str] = field(default_factory=lambda: ["f1", "f2", "f3"])
    """Phases run in order as linked runs; each starts from the previous one's artifacts."""
    gate: Literal["stop", "warn", "continue"] = "stop"
    """When a phase misses a deliverable: stop the curriculum, warn and go on, or go on silently."""
    preset: str = ""
    """Preset every phase runs with (`voltx run curriculum --preset quick` sets it); empty = none."""


@dataclass
class D1Config:
    code_data: list[str] = field(default_factory=list)
    """code_pairs / code_problems JSONL (CodeSearchNet, tiny-codes, MBPP ...)."""
    epochs: int = 10
    batch_size: int = 128
    lr: float = 5e-4
    vfn_lr: float = 1e-4
    warmup: int = 2000
    weight_decay: float = 0.01
    use_code_attention_bias: bool = True


@dataclass
class JAConfig:
    codebook_size: int = 65536
    routing_examples: int = 10000
    calibration_samples: int = 5000
    safety_examples: int = 2600
    rlvf_episodes: int = 100000
    ece_target: float = 0.08
    lr: float = 5e-4


@dataclass
class SConfig:
    vfn_target_params: int = 500_000_000
    languages: list[str] = field(default_factory=lambda: ["python", "javascript", "java", "rust", "go"])
    num_gpus: int = 4
    lr: float = 1e-4


CURRICULUM_TABLES: dict[str, type] = {
    "translator": TranslatorConfig,
    "codebook": CodebookConfig,
    "f1": F1Config,
    "f2": F2Config,
    "f3": F3Config,
    "curriculum": CurriculumConfig,
    "d1": D1Config,
    "ja": JAConfig,
    "s": SConfig,
}
GLOBAL_TABLES: dict[str, type] = {"paths": PathsConfig, "hardware": HardwareConfig, "run": RunConfig}
