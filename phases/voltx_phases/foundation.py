"""What the foundation phases F1-F3 share: data sources, the language stack, prerequisite
artifacts and RAR telemetry. Imported only when one of them runs (torch at module top).

Data sources (``f1.srl_data``, ``f3.reasoning_eval`` ...) are lists of entries, each
either a Volt JSONL file (``voltx data convert ...`` output) or a built-in generator
``"gen:NAME"`` with optional options ``"gen:scan_length_gen?count=2000&seed=3"``. A
generator gives its ``train`` split in training lists and its ``test`` split in
evaluation lists, so held-out data is never a shuffled copy of training data.

The language stack is F1's product and F2/F3's input: a byte-level BPE tokenizer
(``lang_tokenizer.json``), the CNN frame encoder (``lang_encoder.safetensors``, the
architecture of :class:`voltx.engine.code_encoder.CodeEncoder`) and the slot-context
decoder (``lang_decoder.safetensors``, :class:`voltx.engine.code_decoder.CodeDecoder`).
Each safetensors file carries its constructor arguments in its metadata, so a loader
rebuilds the module at the trained size without a config.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import torch
from torch import Tensor

from voltx.data.formats import FORMATS, RecordError, validate_dict
from voltx.engine.code_decoder import CodeDecoder
from voltx.engine.code_encoder import CodeEncoder
from voltx.engine.rar import RarResult
from voltx.engine.tokenizer import encode_batch, load_tokenizer, save_tokenizer, train_bpe
from voltx.errors import ConfigError, DataError, MissingInputError
from voltx.runs.checkpoints import atomic_save_safetensors

LANG_TOKENIZER = "lang_tokenizer.json"
LANG_ENCODER = "lang_encoder.safetensors"
LANG_DECODER = "lang_decoder.safetensors"
VFN_FOUNDATION = "vfn_foundation.safetensors"

GEN_PREFIX = "gen:"
_CONVERT_HINT = ("Convert a dataset with `voltx data convert --dataset NAME --data-files ... --output FILE.jsonl`, "
                 "or use a built-in generator such as \"gen:{example}\" (see `voltx data list`).")


# --- data sources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One entry of a data list: a JSONL path or a generator with options."""

    text: str
    generator: str | None
    options: dict[str, Any]

    @property
    def label(self) -> str:
        return self.text


def parse_source(text: str, key: str) -> Source:
    """``"path.jsonl"`` or ``"gen:NAME?opt=value&..."``; ``key`` names the config field in errors."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"{key}: expected a JSONL path or \"gen:NAME\", got {text!r}")
    if not text.startswith(GEN_PREFIX):
        return Source(text, None, {})
    name, _, query = text[len(GEN_PREFIX):].partition("?")
    options: dict[str, Any] = {}
    for opt, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        try:
            options[opt] = json.loads(value)
        except json.JSONDecodeError:
            options[opt] = value
    if not name:
        raise ConfigError(f"{key}: {text!r} names no generator; expected \"gen:NAME\" (see `voltx data list`)")
    return Source(text, name, options)


def load_records(entries: list[str], fmt: str, *, split: str, key: str, example: str) -> list[dict]:
    """All records of ``entries`` in format ``fmt``, validated.

    ``split`` is the generator split (``train`` for training lists, ``test`` for
    evaluation lists). A file in another format fails on its first line with the file,
    line, field and the format that was expected.
    """
    records: list[dict] = []
    for entry in entries:
        src = parse_source(entry, key)
        if src.generator is not None:
            records.extend(_generate(src, fmt, split, key))
        else:
            records.extend(_read_jsonl(Path(src.text), fmt, key, example))
    return records


def _generate(src: Source, fmt: str, split: str, key: str) -> list[dict]:
    from voltx.data.row_encoding import convert_rows
    from voltx.data.stream import get_converter, read_rows
    from voltx.errors import UsageError

    converter = get_converter(src.generator)
    if not getattr(converter, "generator", False):
        raise ConfigError(f"{key}: {src.generator!r} is a converter for files, not a generator; convert its files with "
                          f"`voltx data convert --dataset {src.generator} ...` and list the JSONL output instead")
    if fmt not in converter.formats:
        raise ConfigError(f"{key}: generator {src.generator!r} makes {', '.join(converter.formats)} records, "
                          f"but this list needs {fmt} records")
    for opt, value in src.options.items():
        if not hasattr(converter, opt) or opt.startswith("_"):
            raise ConfigError(f"{key}: generator {src.generator!r} has no option {opt!r}")
        setattr(converter, opt, value)
    try:
        rows = read_rows(converter, split, None, None)
        return list(convert_rows(converter, rows, fmt))
    except UsageError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _read_jsonl(path: Path, fmt: str, key: str, example: str) -> list[dict]:
    if not path.exists():
        raise MissingInputError(f"{key}: {path}: no such file. " + _CONVERT_HINT.format(example=example))
    if path.is_dir():
        raise DataError(f"{key}: {path} is a directory; expected a JSONL file of {fmt} records")
    out: list[dict] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise DataError(f"{where}: not valid UTF-8 ({exc.reason}); expected JSONL {fmt} records") from None
            if not line:
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); expected JSONL {fmt} records") from None
            try:
                validate_dict(fmt, obj)
            except RecordError as exc:
                fields = ", ".join(f.name for f in dataclasses.fields(FORMATS[fmt])) if fmt in FORMATS else ""
                raise DataError(
                    f"{where}: field {exc.field or '?'}: {exc.reason}. {key} needs {fmt} records ({fields}). "
                    + _CONVERT_HINT.format(example=example)
                ) from None
            out.append(obj)
    if not out:
        raise DataError(f"{key}: {path} has no records; expected JSONL {fmt} records")
    return out


def holdout(items: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, held out): a seeded shuffle, at least one item in each when possible."""
    order = list(range(len(items)))
    random.Random(seed).shuffle(order)
    n = max(1, round(len(items) * fraction)) if len(items) > 1 else 0
    return [items[i] for i in order[n:]], [items[i] for i in order[:n]]


# --- the language stack ------------------------------------------------------------------------


@dataclass
class LangStack:
    tokenizer: Any
    encoder: CodeEncoder
    decoder: CodeDecoder | None
    source: str
    """Where it came from (a directory), or "new" for a freshly initialised stack."""

    def encode_ids(self, texts: list[str], max_len: int, device: torch.device) -> tuple[Tensor, Tensor]:
        ids, mask = encode_batch(self.tokenizer, texts, max_len)
        return ids.to(device), mask.to(device)


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer on the phase's own texts (when no F1 stack is given)."""
    if not texts:
        raise DataError("no texts to train the tokenizer on")
    return train_bpe(texts, vocab_size=vocab_size, min_frequency=2)


def new_encoder(vocab_size: int, max_seq_len: int) -> CodeEncoder:
    return CodeEncoder(vocab_size=vocab_size, max_seq_len=max_seq_len)


def new_decoder(vocab_size: int, max_len: int, model_dim: int = 256, ffn_dim: int = 1024) -> CodeDecoder:
    return CodeDecoder(vocab_size=vocab_size, model_dim=model_dim, ffn_dim=ffn_dim, max_len=max_len)


def _encoder_args(enc: CodeEncoder) -> dict:
    return {"vocab_size": enc.vocab_size, "embed_dim": enc.embedding.embedding_dim, "hidden_dim": enc.role_head.in_features,
            "slot_dim": enc.slot_dim, "max_seq_len": enc.max_seq_len, "role_threshold": enc.role_threshold}


def _decoder_args(dec: CodeDecoder) -> dict:
    return {"vocab_size": dec.vocab_size, "embed_dim": dec.token_embed.embedding_dim, "model_dim": dec.model_dim,
            "ffn_dim": dec.ffn[0].out_features, "max_len": dec.max_len}


def save_module(ctx, module: torch.nn.Module, name: str, kind: str, args: dict, extra: dict | None = None) -> Path:
    """Write ``module`` as run artifact ``name`` with its constructor ``args`` in the metadata."""
    meta = {"voltx": json.dumps({"kind": kind, "args": args, "phase": ctx.phase.name, **(extra or {})})}
    state = {k: v.detach().contiguous().cpu() for k, v in module.state_dict().items()}
    return ctx.save_artifact(name, state, meta)


def save_lang_stack(ctx, stack: LangStack) -> None:
    save_tokenizer(stack.tokenizer, ctx.artifact(LANG_TOKENIZER))
    ctx.run.event("artifact", name=LANG_TOKENIZER, path=str(ctx.artifact(LANG_TOKENIZER)), step=ctx.global_step)
    save_module(ctx, stack.encoder, LANG_ENCODER, "lang_encoder", _encoder_args(stack.encoder))
    if stack.decoder is not None:
        save_module(ctx, stack.decoder, LANG_DECODER, "lang_decoder", _decoder_args(stack.decoder))


def read_module_file(path: Path, kind: str, how: str) -> tuple[dict, dict[str, Tensor]]:
    """(constructor args, tensors) of a file written by :func:`save_module`; clear errors otherwise."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not path.exists():
        raise MissingInputError(f"{path}: not found. {how}")
    try:
        with safe_open(str(path), "pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("voltx", "{}"))
        tensors = load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for foreign files
        raise DataError(f"{path} is not a safetensors {kind} file ({exc}). {how}") from None
    if meta.get("kind") != kind:
        raise DataError(f"{path}: expected a {kind} file, but its metadata says {meta.get('kind')!r}. {how}")
    return dict(meta.get("args", {})), tensors


def _load_into(module: torch.nn.Module, tensors: dict[str, Tensor], path: Path, how: str) -> None:
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise DataError(f"{path}: tensors {', '.join(missing[:4])} are missing. {how}")
    bad = [k for k, v in expected.items() if tuple(tensors[k].shape) != tuple(v.shape)]
    if bad:
        raise DataError(f"{path}: tensor {bad[0]!r} has shape {list(tensors[bad[0]].shape)}, expected {list(expected[bad[0]].shape)}. {how}")
    module.load_state_dict({k: tensors[k] for k in expected})


def f1_hint(ctx_phase: str) -> str:
    return (f"The language stack ({LANG_TOKENIZER}, {LANG_ENCODER}, {LANG_DECODER}) is produced by phase f1: "
            f"run `voltx run f1` (it publishes to [paths].checkpoints_dir), or point {ctx_phase}.lang_from at an f1 run "
            f"directory, or set {ctx_phase}.lang_from = \"none\" to start {ctx_phase} from a fresh encoder.")


def artifact_dir(location: str | Path) -> Path:
    """A run directory's ``artifacts/``, or the directory itself (a checkpoints dir)."""
    path = Path(location)
    return path / "artifacts" if (path / "run.json").exists() else path


def locate_lang_stack(ctx, setting: str) -> Path | None:
    """Where to load F1's stack from, per ``<phase>.lang_from``:

    * ``"auto"``: ``[paths].checkpoints_dir`` when it holds the f1 files, else None (fresh start);
    * ``"none"``: None;
    * a path (run directory, its ``artifacts/``, or a checkpoints dir): it must hold them.
    """
    phase = ctx.phase.name
    if setting == "none":
        return None
    if setting == "auto":
        candidate = Path(ctx.config.paths.checkpoints_dir)
        return candidate if (candidate / LANG_ENCODER).exists() and (candidate / LANG_TOKENIZER).exists() else None
    where = artifact_dir(setting)
    for name in (LANG_TOKENIZER, LANG_ENCODER):
        if not (where / name).exists():
            raise MissingInputError(f"{phase}.lang_from = {setting!r}: {where / name} not found. " + f1_hint(phase))
    return where


def load_lang_stack(where: Path, device: torch.device, *, need_decoder: bool, phase: str) -> LangStack:
    how = f1_hint(phase)
    tok = load_tokenizer(where / LANG_TOKENIZER)
    args, tensors = read_module_file(where / LANG_ENCODER, "lang_encoder", how)
    encoder = CodeEncoder(**args)
    _load_into(encoder, tensors, where / LANG_ENCODER, how)
    if encoder.vocab_size != tok.get_vocab_size():
        raise DataError(f"{where / LANG_ENCODER}: vocab {encoder.vocab_size} but {where / LANG_TOKENIZER} has "
                        f"{tok.get_vocab_size()}: the two files come from different runs. {how}")
    decoder = None
    if (where / LANG_DECODER).exists():
        dargs, dtensors = read_module_file(where / LANG_DECODER, "lang_decoder", how)
        decoder = CodeDecoder(**dargs)
        _load_into(decoder, dtensors, where / LANG_DECODER, how)
    elif need_decoder:
        raise MissingInputError(f"{where / LANG_DECODER} not found. {how}")
    return LangStack(tok, encoder.to(device), decoder.to(device) if decoder is not None else None, str(where))


# --- RAR telemetry (docs/console.md) -------------------------------------------------------------


def rar_summary(result: RarResult, active: Tensor) -> dict[str, float]:
    """Per-batch RAR figures for metrics.jsonl: ``rar/iterations_mean``, ``rar/converged_share``."""
    act = active.bool()
    return {
        "rar/iterations_mean": float(result.total_iterations.float().mean()),
        "rar/converged_share": float((result.converged & act).sum() / act.sum().clamp_min(1)),
    }


def rar_event(ctx, result: RarResult, active: Tensor, gamma: Tensor, max_iterations: int, **fields: Any) -> dict:
    """Write one ``rar`` event (console RAR tab): iterations per query, per-slot converged
    share over the queries where the slot is active, mean certainty gamma per slot."""
    act = active.bool()
    per_slot = act.sum(0).clamp_min(1)
    converged = ((result.converged & act).sum(0) / per_slot).tolist()
    gamma_mean = ((gamma * act).sum(0) / per_slot).clamp(0, 1).tolist()
    event = {
        "iterations": [int(i) for i in result.total_iterations.tolist()],
        "max_iterations": int(max_iterations),
        "slot_converged": [round(float(x), 4) for x in converged],
        "gamma": [round(float(x), 4) for x in gamma_mean],
    }
    ctx.run.event("rar", step=ctx.global_step, **event, **fields)
    return event


def certainty(result: RarResult, active: Tensor, epsilon: float) -> Tensor:
    """gamma per slot in [0, 1]: 1 for a slot that converged, else how close its last
    update came to the freezing threshold (epsilon / delta); 0 for inactive slots."""
    close = (epsilon / result.final_deltas.clamp_min(1e-12)).clamp(max=1.0)
    gamma = torch.where(result.converged, torch.ones_like(close), close)
    return gamma * active.to(gamma.dtype)


def save_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


__all__ = [
    "LANG_DECODER", "LANG_ENCODER", "LANG_TOKENIZER", "VFN_FOUNDATION", "LangStack", "Source", "artifact_dir",
    "atomic_save_safetensors", "certainty", "f1_hint", "holdout", "load_lang_stack", "load_records", "locate_lang_stack",
    "new_decoder", "new_encoder", "parse_source", "rar_event", "rar_summary", "read_module_file", "save_json",
    "save_lang_stack", "save_module", "train_tokenizer",
]
