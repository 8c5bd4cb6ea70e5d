"""The translator phase: BPE tokenizer -> CNN encoder -> slot-context decoder.

Registers ``voltx run translator`` and the seed's three commands (``voltx
train-tokenizer``, ``train-encoder``, ``train-decoder``, with the seed's flags and
defaults), which are runs of this phase restricted to one stage. Import-light: the
training code lives in :mod:`voltx_phases.translator_train` and is imported only to run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from voltx import hookimpl
from voltx.plugin_specs import CommandSpec, Deliverable, PhaseSpec

ARTIFACTS = ("code_tokenizer.json", "code_encoder.safetensors", "code_decoder.safetensors")

DELIVERABLES = (
    Deliverable(
        "encoder/valid_retrieval_lift", ">=", 10.0,
        "code->docstring top-1 at least 10x chance; each query ranked among the docstrings of a fixed pool of "
        "64 validation pairs (chance 1/64, whatever the batch size)",
        baselines=("encoder/valid_retrieval_lift_word_overlap",),
        ablations=("encoder/valid_retrieval_lift_untrained",),
    ),
    Deliverable(
        "encoder/valid_role_accuracy", ">=", 0.85,
        "code slot assignment > 85% (unified plan, Phase D1 success criteria), past the labeller's majority label",
        baselines=("encoder/valid_role_accuracy_majority",),
    ),
    Deliverable(
        "decoder/valid_token_accuracy", ">=", 0.6114,
        "the original decoder's 61.14% valid accuracy (volt-x-original.md section 7), past the best constant token",
        baselines=("decoder/valid_token_accuracy_majority",),
    ),
)


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
    """Validation uses at most this many batches, and at most this many retrieval pools of 64 pairs."""
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
    """The ``[translator]`` table; ``[translator.tokenizer|encoder|decoder]`` configure the stages."""

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


PHASE = PhaseSpec(
    name="translator",
    summary="code translator: byte-level BPE, CNN encoder (InfoNCE + roles), decoder from slot context",
    runner="voltx_phases.translator_train:run",
    config_class=TranslatorConfig,
    deliverables=DELIVERABLES,
    artifacts=ARTIFACTS,
)


@hookimpl
def register_phases(register):
    register(PHASE)


# --- the seed's three commands -----------------------------------------------------------


def _common(p: argparse.ArgumentParser) -> None:
    from voltx.cli.common import RUNS_DIR_PRECEDENCE

    p.add_argument("--runs-dir", metavar="DIR", help=f"run store root for this command's run ({RUNS_DIR_PRECEDENCE})")
    p.add_argument("--config", metavar="FILE", help="config file for the other settings (default: ./training_config.toml when present)")


def _configure_tokenizer(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, nargs="+", help=".py/.txt files, directories, or JSONL with content/code")
    p.add_argument("--vocab-size", type=int, default=32768, metavar="N", help="BPE vocabulary size (default: %(default)s)")
    p.add_argument("--output", default="checkpoints/code_tokenizer.json", metavar="FILE", help="tokenizer JSON to write (default: %(default)s)")
    p.add_argument("--max-files", type=int, default=50000, metavar="N", help="read at most N texts of the corpus (default: %(default)s)")
    _common(p)


def _configure_trainer(p: argparse.ArgumentParser, decoder: bool) -> None:
    p.add_argument("--data", required=True, metavar="FILE", help="CodeSearchNet JSONL ({code, docstring, func_name, language})")
    p.add_argument("--tokenizer", required=True, metavar="FILE", help="tokenizer JSON from train-tokenizer")
    if decoder:
        p.add_argument("--encoder", required=True, metavar="FILE", help="encoder safetensors from train-encoder")
    stem = "code_decoder" if decoder else "code_encoder"
    p.add_argument("--output", default=f"checkpoints/{stem}.safetensors", metavar="FILE",
                   help="final weights; per-epoch copies go beside it as <name>_epoch_<N> (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=10, metavar="N", help="training epochs (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=16 if decoder else 128, metavar="N", help="examples per step (default: %(default)s)")
    p.add_argument("--lr", type=float, default=3e-4 if decoder else 5e-4, help="peak learning rate, warmup then cosine (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=200, metavar="STEPS", help="linear warmup steps (default: %(default)s)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "gpu"],
                   help="auto: CUDA when available, else CPU; gpu is an alias of cuda (default: %(default)s)")
    _common(p)


def _run_stage(args, overrides: dict[str, object]) -> int:
    from voltx.train.runner import RunRequest, execute

    req = RunRequest(
        phase="translator",
        config_path=args.config,
        overrides=overrides,
        runs_dir=args.runs_dir,
        argv=tuple(["voltx", *args._argv]),
    )
    return execute(req)


def train_tokenizer(args) -> int:
    return _run_stage(args, {
        "stages": ["tokenizer"], "tokenizer.corpus": list(args.corpus), "tokenizer.vocab_size": args.vocab_size,
        "tokenizer.max_files": args.max_files, "tokenizer.output": args.output,
    })


def _trainer_overrides(args, stage: str) -> dict[str, object]:
    return {
        "stages": [stage], "data": args.data, "tokenizer.path": args.tokenizer,
        f"{stage}.output": args.output, f"{stage}.epochs": args.epochs,
        f"{stage}.batch_size": args.batch_size, f"{stage}.lr": args.lr, f"{stage}.warmup": args.warmup,
        "hardware.device": "cuda" if args.device == "gpu" else args.device,
    }


def train_encoder(args) -> int:
    return _run_stage(args, _trainer_overrides(args, "encoder"))


def train_decoder(args) -> int:
    return _run_stage(args, {**_trainer_overrides(args, "decoder"), "encoder.path": args.encoder})


@hookimpl
def register_commands(register):
    register(CommandSpec("train-tokenizer", "train the byte-level BPE tokenizer (seed step 1)", train_tokenizer, _configure_tokenizer))
    register(CommandSpec("train-encoder", "train the CNN code encoder (seed step 2)", train_encoder, lambda p: _configure_trainer(p, False)))
    register(CommandSpec("train-decoder", "train the decoder on the frozen encoder's slots (seed step 3)", train_decoder, lambda p: _configure_trainer(p, True)))
