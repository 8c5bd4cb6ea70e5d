"""The language stack: F1's product and F2/F3's input (torch at module top: imported only
when one of those phases runs).

Three files: a byte-level BPE tokenizer (``lang_tokenizer.json``), the CNN frame encoder
(``lang_encoder.safetensors``, :class:`voltx.engine.cnn_frame_encoder.CnnFrameEncoder`) and the
slot-context decoder (``lang_decoder.safetensors``, :class:`voltx.engine.slot_decoder.SlotDecoder`).
The weights are artifacts (:mod:`voltx.artifacts`): each file records its kind and
constructor arguments, so a loader rebuilds the module at its trained size without a config.
A phase finds a stack through ``<phase>.lang_from`` (:func:`locate_lang_stack`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from voltx import artifacts
from voltx.engine.slot_decoder import SlotDecoder
from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
from voltx.engine.tokenizer import encode_batch, load_tokenizer, save_tokenizer, train_bpe
from voltx.errors import DataError, MissingInputError

LANG_TOKENIZER = "lang_tokenizer.json"
LANG_ENCODER = "lang_encoder.safetensors"
LANG_DECODER = "lang_decoder.safetensors"


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


def new_encoder(vocab_size: int, max_seq_len: int) -> CnnFrameEncoder:
    return CnnFrameEncoder(vocab_size=vocab_size, max_seq_len=max_seq_len)


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
    """
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
