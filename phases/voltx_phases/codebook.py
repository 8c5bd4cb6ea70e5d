"""The codebook phase (the original's ``codebook-init``, JA.1): corpus -> slot vectors ->
spherical mini-batch k-means -> ``codebook.safetensors``.

``voltx run codebook corpus=[...] k=65536`` or ``voltx codebook init --corpus ... --k ...``.
The deliverable is the quantization error on held-out vectors: < 0.15 (Phase F2).
Import-light (no torch at module top): the plugin loader imports it for ``voltx --help``;
the run is :mod:`voltx_phases.codebook_train`, imported only when the phase runs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from voltx import hookimpl
from voltx.errors import MissingInputError, UsageError
from voltx.plugin_specs import CommandSpec, Deliverable, PhaseSpec

ARTIFACT = "codebook.safetensors"


DELIVERABLES = (
    Deliverable(
        "codebook/quantization_error", "<", 0.15,
        "mean 1 - cos to the nearest entry on held-out vectors < 0.15 (unified plan, Phase F2 deliverables), "
        "below a single-entry codebook (the vectors' mean)",
        baselines=("codebook/quantization_error_k1",),
        ablations=("codebook/random_error",),
    ),
)


@dataclass
class CodebookConfig:
    """The ``[codebook]`` table."""

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


PHASE = PhaseSpec(
    name="codebook",
    summary="HDC codebook init (JA.1): corpus slot vectors -> spherical mini-batch k-means -> 65,536 entries",
    runner="voltx_phases.codebook_train:run",
    config_class=CodebookConfig,
    deliverables=DELIVERABLES,
    artifacts=(ARTIFACT,),
)


@hookimpl
def register_phases(register):
    register(PHASE)


# --- the command ----------------------------------------------------------------------------------


def _configure(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    init = sub.add_parser("init", help="build a codebook from a corpus (a run of the codebook phase)",
                          description="Encode a corpus, cluster its slot vectors with spherical mini-batch k-means and "
                          "save codebook.safetensors (the original's codebook-init). Unset flags keep the [codebook] "
                          "config values (defaults: k 65536, 2M sampled vectors, 50 epochs, batch 8192, seed 42).")
    init.add_argument("--corpus", required=True, nargs="+", help=".py/.txt files, directories, or JSONL with content/code")
    init.add_argument("--k", type=int, help="codebook entries (default 65536)")
    init.add_argument("--output", help="also write the codebook here (.safetensors, or .bin for the original's VXCB; default: only the run's artifacts)")
    init.add_argument("--max-files", type=int, help="encode at most this many texts (default 1,000,000)")
    init.add_argument("--sample", type=int, help="vectors k-means runs on (default 2,000,000; 0 = all)")
    init.add_argument("--iters", type=int, help="maximum k-means epochs (default 50)")
    init.add_argument("--batch-size", type=int, help="k-means mini-batch (default 8192)")
    init.add_argument("--seed", type=int, help="k-means seed (default 42)")
    init.add_argument("--encoder", help="trained code encoder (safetensors); with --tokenizer; default: stub word vectors")
    init.add_argument("--tokenizer", help="the encoder's tokenizer JSON (with --encoder; default: none)")
    init.add_argument("--device", choices=["auto", "cpu", "cuda", "gpu"], help="where k-means runs (gpu = cuda; default: [hardware].device, auto)")
    from voltx.cli.common import RUNS_DIR_PRECEDENCE

    init.add_argument("--runs-dir", metavar="DIR", help=f"run store root for this command's run ({RUNS_DIR_PRECEDENCE})")
    init.add_argument("--config", metavar="FILE", help="config file for the other settings (default: ./training_config.toml when present)")


def codebook_command(args) -> int:
    from voltx.train.runner import RunRequest, execute

    if bool(args.encoder) != bool(args.tokenizer):
        raise UsageError("--encoder and --tokenizer go together: give both to use the learned encoder, or neither for stub word vectors.")
    if args.k is not None and not 1 <= args.k <= 65_536:
        raise UsageError(f"--k must be between 1 and 65,536 (codebook ids are u16), got {args.k}")
    named = [(p, "corpus path") for p in args.corpus] + [(p, f"{what} file") for p, what in ((args.encoder, "encoder"), (args.tokenizer, "tokenizer")) if p]
    for path, what in named:
        if not Path(path).exists():
            raise MissingInputError(f"{path}: {what} not found")
    overrides: dict[str, object] = {"corpus": list(args.corpus)}
    for flag, key in (("k", "k"), ("max_files", "max_files"), ("sample", "sample"), ("iters", "iters"),
                      ("batch_size", "batch"), ("seed", "seed")):
        if getattr(args, flag) is not None:
            overrides[key] = getattr(args, flag)
    for flag in ("output", "encoder", "tokenizer"):
        if getattr(args, flag):
            overrides[flag] = getattr(args, flag)
    if args.device:
        overrides["hardware.device"] = "cuda" if args.device == "gpu" else args.device
    req = RunRequest(phase="codebook", config_path=args.config, overrides=overrides, runs_dir=args.runs_dir,
                     argv=tuple(["voltx", *args._argv]))
    return execute(req)


@hookimpl
def register_commands(register):
    register(CommandSpec("codebook", "HDC codebook tools: `voltx codebook init --corpus ...` (the original's codebook-init)",
                         codebook_command, _configure))
