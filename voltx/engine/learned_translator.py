"""The learned translator: a trained tokenizer + CNN encoder + decoder (translator phase).

``LearnedTranslator.load(path)`` accepts a directory holding code_tokenizer.json,
code_encoder.safetensors and code_decoder.safetensors, or a translator run directory
(its ``artifacts/``). Encoding aggregates tokens into the frame's 16 R0 slots; decoding
generates text from those same 16 slot vectors (the context the decoder was trained on).

Strand requests are routed as the stub translator routes them (voltx.engine.strand_requests:
arithmetic to the MathEngine as the expression's text, ``run:``/``debug:`` code to the code
strands), and a strand's answer (voltx.engine.strands.strand_answer) is printed as the strand
wrote it: a trained decoder paraphrasing 16777217 would not be exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from voltx.engine.code_decoder import CodeDecoder
from voltx.engine.code_encoder import CodeEncoder
from voltx.engine.frame import TensorFrame
from voltx.engine.strand_requests import encode_request, request_in
from voltx.engine.strands import strand_answer
from voltx.engine.tokenizer import encode_batch, load_tokenizer
from voltx.errors import DataError, MissingInputError

FILES = ("code_tokenizer.json", "code_encoder.safetensors", "code_decoder.safetensors")


def _meta(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        raw = (fh.metadata() or {}).get("voltx")
    return json.loads(raw) if raw else {}


def _positions(path: Path) -> int:
    """The decoder's max length is the row count of its learned positional table."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            return int(fh.get_slice("pos").get_shape()[0]) if "pos" in fh.keys() else 256
    except Exception as exc:
        raise DataError(f"{path} is not a safetensors checkpoint ({exc}).") from None


def _load(module: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path))
    except Exception as exc:
        raise DataError(f"{path} is not a safetensors checkpoint ({exc}).") from None
    expected = module.state_dict()
    bad = [k for k, v in expected.items() if k not in tensors or tensors[k].shape != v.shape]
    if bad:
        raise DataError(f"{path}: tensors {', '.join(bad[:4])} are missing or of the wrong shape for this model.")
    module.load_state_dict({k: tensors[k] for k in expected})


class LearnedTranslator:
    name = "learned"

    def __init__(self, tokenizer, encoder: CodeEncoder, decoder: CodeDecoder, max_len: int = 512):
        self.tokenizer, self.encoder, self.decoder, self.max_len = tokenizer, encoder.eval(), decoder.eval(), max_len

    @classmethod
    def load(cls, path: str | Path) -> "LearnedTranslator":
        root = Path(path)
        if (root / "artifacts").is_dir():
            root = root / "artifacts"
        missing = [f for f in FILES if not (root / f).exists()]
        if missing:
            raise MissingInputError(
                f"{root} lacks {', '.join(missing)}. Point --checkpoint at a finished translator run or a folder with "
                f"{', '.join(FILES)} (made by `voltx run translator`)."
            )
        tok = load_tokenizer(root / FILES[0])
        vocab = tok.get_vocab_size()
        meta = _meta(root / FILES[1]).get("config", {})
        max_seq = int(meta.get("encoder", {}).get("max_seq_len", 512))
        max_len = _positions(root / FILES[2])
        encoder = CodeEncoder(vocab_size=vocab, max_seq_len=max_seq)
        decoder = CodeDecoder(vocab_size=vocab, max_len=max_len)
        _load(encoder, root / FILES[1])
        _load(decoder, root / FILES[2])
        return cls(tok, encoder, decoder, max_seq)

    @torch.no_grad()
    def encode(self, text: str) -> TensorFrame:
        request = request_in(text)
        if request is not None:
            return encode_request(request)
        ids, mask = encode_batch(self.tokenizer, [text], self.max_len)
        out = self.encoder(ids, mask)
        return self.encoder.to_frame(out, mask)

    @torch.no_grad()
    def decode(self, frame: TensorFrame, b: int = 0) -> str:
        answer = strand_answer(frame, b)
        if answer is not None:
            return answer
        slots = frame.r0()[b : b + 1].float()
        active = frame.mask[b : b + 1, :, 0]
        (tokens,) = self.decoder.generate(slots, active, max_new_tokens=128)
        return self.tokenizer.decode(tokens)
