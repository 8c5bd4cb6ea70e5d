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


@dataclass
class F1Config:
    srl_data: list[str] = field(default_factory=list)
    """slot_annotated JSONL (FrameNet / PropBank via `voltx data`)."""
    paraphrase_data: list[str] = field(default_factory=list)
    """paraphrase JSONL (STS-B, PAWS)."""
    epochs: int = 10
    batch_size: int = 128
    lr: float = 5e-4
    warmup: int = 200
    weight_decay: float = 0.01
    temperature: float = 0.07
    slot_weight: float = 1.0
    contrastive_weight: float = 1.0
    slot_fill_weight: float = 1.0
    mask_ratio: float = 0.25
    """Share of active slots masked for VFN slot filling."""


@dataclass
class F2Config:
    triples_data: list[str] = field(default_factory=list)
    """triples JSONL (ConceptNet, ATOMIC, WordNet)."""
    epochs: int = 10
    batch_size: int = 256
    lr: float = 3e-4
    warmup: int = 500
    weight_decay: float = 0.01
    negatives: int = 5
    """Negative tails sampled per triple."""
    codebook_size: int = 65536


@dataclass
class F3Config:
    reasoning_data: list[str] = field(default_factory=list)
    """reasoning JSONL (SCAN, COGS, CLUTRR, bAbI)."""
    vfn_hidden: int = 2048
    vfn_blocks: int = 6
    time_embed_freqs: int = 64
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-4
    min_lr: float = 1e-6
    weight_decay: float = 0.01
    warmup: int = 2000
    validation_frac: float = 0.1
    rar_max_iterations: int = 30
    rar_dt: float = 0.1
    rar_beta: float = 0.5
    rar_epsilon: float = 0.001


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
    "d1": D1Config,
    "ja": JAConfig,
    "s": SConfig,
}
GLOBAL_TABLES: dict[str, type] = {"paths": PathsConfig, "hardware": HardwareConfig, "run": RunConfig}
