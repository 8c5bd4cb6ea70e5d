"""The language stack: F1's product and F2/F3's input (torch at module top: imported only
when one of those phases runs).

Three files: a byte-level BPE tokenizer (``lang_tokenizer.json``), the CNN frame encoder
(``lang_encoder.safetensors``, :class:`voltx.engine.cnn_frame_encoder.CnnFrameEncoder`) and the
slot-context decoder (``lang_decoder.safetensors``, :class:`voltx.engine.slot_decoder.SlotDecoder`).
The weights are artifacts (:mod:`voltx.artifacts`): each file records its kind and
constructor arguments, so a loader rebuilds the module at its trained size without a config.
A phase finds a stack through ``<phase>.lang_from`` (:func:`locate_lang_stack`), which pins
what it found in the run (``lang_from.json``) so a resume cannot silently continue on another
tokenizer; F3 sizes the decoder for its answers (:func:`fit_decoder`); F1's tokenizer may read
the later phases' data (:func:`corpus_texts`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from voltx import artifacts
from voltx.engine.slot_decoder import SlotDecoder
from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
from voltx.engine.tokenizer import encode_batch, load_tokenizer, save_tokenizer, train_bpe
from voltx.errors import ConfigError, DataError, MissingInputError

LANG_TOKENIZER = "lang_tokenizer.json"
LANG_ENCODER = "lang_encoder.safetensors"
LANG_DECODER = "lang_decoder.safetensors"
PIN_FILE = "lang_from.json"
"""In the run directory: the stack a run started from (the resolved path, none, and its tokenizer's hash)."""


@dataclass
class LangStack:
    tokenizer: Any
    encoder: CnnFrameEncoder
    decoder: SlotDecoder | None
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


def new_encoder(vocab_size: int, max_seq_len: int, *, recency: bool = False) -> CnnFrameEncoder:
    return CnnFrameEncoder(vocab_size=vocab_size, max_seq_len=max_seq_len, recency=recency)


def new_decoder(vocab_size: int, max_len: int, model_dim: int = 256, ffn_dim: int = 1024) -> SlotDecoder:
    return SlotDecoder(vocab_size=vocab_size, model_dim=model_dim, ffn_dim=ffn_dim, max_len=max_len)


def save_lang_stack(ctx, stack: LangStack) -> None:
    """The stack as run artifacts (the decoder only once it exists)."""
    save_tokenizer(stack.tokenizer, ctx.artifact(LANG_TOKENIZER))
    ctx.run.event("artifact", name=LANG_TOKENIZER, path=str(ctx.artifact(LANG_TOKENIZER)), step=ctx.global_step)
    ctx.save_artifact(LANG_ENCODER, stack.encoder.state_dict(), "lang_encoder", stack.encoder.init_args())
    if stack.decoder is not None:
        ctx.save_artifact(LANG_DECODER, stack.decoder.state_dict(), "lang_decoder", stack.decoder.init_args())


def f1_hint(phase: str) -> str:
    return (f"The language stack ({LANG_TOKENIZER}, {LANG_ENCODER}, {LANG_DECODER}) is produced by phase f1: "
            f"run `voltx run f1` (it publishes to [paths].checkpoints_dir), or point {phase}.lang_from at an f1 run "
            f"directory, or set {phase}.lang_from = \"none\" to start {phase} from a fresh encoder.")


def locate_lang_stack(ctx, setting: str) -> Path | None:
    """Where to load F1's stack from, per ``<phase>.lang_from``:

    * ``"auto"``: ``[paths].checkpoints_dir`` when it holds the f1 files, else None (fresh start);
    * ``"none"``: None;
    * a path (run directory, its ``artifacts/``, or a checkpoints dir): it must hold them.

    The result is pinned in the run (:data:`PIN_FILE`) and checked when the run resumes.
    """
    where = _resolve(ctx, setting)
    _pin(ctx, setting, where)
    return where


def _resolve(ctx, setting: str) -> Path | None:
    phase = ctx.phase.name
    if setting == "none":
        return None
    if setting == "auto":
        candidate = Path(ctx.config.paths.checkpoints_dir)
        return candidate if (candidate / LANG_ENCODER).exists() and (candidate / LANG_TOKENIZER).exists() else None
    where = artifacts.run_artifacts(setting)
    for name in (LANG_TOKENIZER, LANG_ENCODER):
        if not (where / name).exists():
            raise MissingInputError(f"{phase}.lang_from = {setting!r}: {where / name} not found. " + f1_hint(phase))
    return where


def _describe(pin: dict) -> str:
    if pin["stack"] is None:
        return "no stack (a tokenizer and encoder of its own)"
    return f"{pin['stack']} (tokenizer sha256 {pin['tokenizer_sha256'][:12]})"


def _pin(ctx, setting: str, where: Path | None) -> None:
    """Record what ``lang_from`` resolved to; on resume, refuse another stack than the one the
    checkpoints were trained with (``auto`` is re-resolved, and an f1 run may have published since)."""
    now = {"lang_from": setting, "stack": None if where is None else str(where.resolve()),
           "tokenizer_sha256": None if where is None else hashlib.sha256((where / LANG_TOKENIZER).read_bytes()).hexdigest()}
    path = ctx.run.dir / PIN_FILE
    if ctx.resume is not None and path.exists():
        try:
            pinned = json.loads(path.read_text(encoding="utf-8"))
            was = {k: pinned[k] for k in ("stack", "tokenizer_sha256")}
        except (ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{path}: not a language-stack pin ({exc}); it was written when the run started. "
                            "Restore it from a copy, or start a new run.") from None
        if was != {k: now[k] for k in was}:
            phase = ctx.phase.name
            raise DataError(f"{phase}: this run started from {_describe(was)}, but {phase}.lang_from = {setting!r} now "
                            f"gives {_describe(now)}: its checkpoints were trained with the first, so it cannot resume on "
                            f"the second (an f1 run published in between?). Put the first stack back where it was, "
                            f"or start a new {phase} run.")
        return
    artifacts.write_atomic(path, lambda tmp: tmp.write_text(json.dumps(now, indent=1), encoding="utf-8"))


def load_lang_stack(where: Path, device: torch.device, *, need_decoder: bool, phase: str) -> LangStack:
    """The stack in ``where``; the decoder when its file is there (required with ``need_decoder``)."""
    how = f1_hint(phase)
    tok = load_tokenizer(where / LANG_TOKENIZER)
    art = artifacts.read(where / LANG_ENCODER, "lang_encoder", how)
    encoder = artifacts.load_into(CnnFrameEncoder(**art.args), art, how)
    if encoder.vocab_size != tok.get_vocab_size():
        raise DataError(f"{where / LANG_ENCODER}: vocab {encoder.vocab_size} but {where / LANG_TOKENIZER} has "
                        f"{tok.get_vocab_size()}: the two files come from different runs. {how}")
    decoder = None
    if (where / LANG_DECODER).exists():
        dart = artifacts.read(where / LANG_DECODER, "lang_decoder", how)
        decoder = artifacts.load_into(SlotDecoder(**dart.args), dart, how)
    elif need_decoder:
        raise MissingInputError(f"{where / LANG_DECODER} not found. {how}")
    return LangStack(tok, encoder.to(device), decoder.to(device) if decoder is not None else None, str(where))


def fit_decoder(stack: LangStack, answers: list[str], limit: int, phase: str, say=print) -> int:
    """Size ``stack.decoder`` for the longest of ``answers`` (tokens + EOS), extending a shorter
    loaded decoder with new positions (trained by the phase); an answer past ``limit``
    (``<phase>.decoder_max_len``) is a config error before training. Returns the decoder's length."""
    lengths = [len(e.ids) for e in stack.tokenizer.encode_batch(answers, add_special_tokens=False)]
    need = max(lengths, default=0) + 1
    if need > limit:
        longest = answers[lengths.index(need - 1)]
        over = sum(n + 1 > limit for n in lengths)
        raise ConfigError(f"{phase}: {over} of {len(answers)} answers do not fit in {phase}.decoder_max_len = {limit} tokens "
                          f"(the longest is {need - 1} tokens + EOS: {longest[:80]!r}{'...' if len(longest) > 80 else ''}); "
                          f"set {phase}.decoder_max_len = {need} or more.")
    decoder = stack.decoder
    if decoder.max_len < need:  # seeded, so a resumed run rebuilds the same shapes and values before loading
        extra = torch.randn(need - decoder.max_len, decoder.model_dim, generator=torch.Generator().manual_seed(0)) * 0.02
        decoder.pos = torch.nn.Parameter(torch.cat([decoder.pos.data, extra.to(decoder.pos.device)]))
        say(f"Decoder: {decoder.max_len} positions extended to {need} (the longest answer, {need - 1} tokens + EOS); "
            f"{phase} trains the new ones")
        decoder.max_len = need
    return decoder.max_len


def knows_glued_words(where: Path) -> bool:
    """Whether the tokenizer in ``where`` was trained on glued texts (F1's with the curriculum's
    ``f1.tokenizer_corpus``): it then holds the glue character as one token."""
    from voltx_phases.f3_data import GLUE

    return len(load_tokenizer(where / LANG_TOKENIZER).encode(GLUE, add_special_tokens=False).ids) == 1


def corpus_texts(entries: list[str]) -> list[str]:
    """Every text of the records of ``entries`` (Volt JSONL files or generators, any format), with
    underscore-joined words glued as F3 encodes them (:data:`voltx_phases.f3_data.GLUE`): the words
    of the later phases' data that F1's tokenizer should know (``f1.tokenizer_corpus``)."""
    from voltx.data.sources import load_records, parse_source
    from voltx.data.stream import get_converter
    from voltx_phases.f3_data import GLUE

    texts: list[str] = []
    for entry in entries:
        src = parse_source(entry, "f1.tokenizer_corpus")
        if src.generator is not None:
            records = load_records([entry], get_converter(src.generator).formats[0], split="train",
                                   key="f1.tokenizer_corpus", example="scan_length_gen")
        else:
            records = _json_lines(Path(entry))
        for record in records:
            texts.extend(t.replace("_", GLUE) for t in _strings(record))
    return texts


def _json_lines(path: Path) -> list:
    if not path.is_file():
        raise MissingInputError(f"f1.tokenizer_corpus: {path}: no such file; list Volt JSONL files or generators \"gen:NAME\"")
    out = []
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"f1.tokenizer_corpus: {path}:{lineno}: not valid JSON ({exc.msg}); expected Volt JSONL records") from None
    return out


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
