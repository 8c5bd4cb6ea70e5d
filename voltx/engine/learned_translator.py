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

from pathlib import Path

import torch

from voltx import artifacts
from voltx.engine.slot_decoder import SlotDecoder
from voltx.engine.cnn_frame_encoder import CnnFrameEncoder
from voltx.engine.frame import TensorFrame
from voltx.engine.strand_requests import encode_request, request_in
from voltx.engine.strands import strand_answer
from voltx.engine.tokenizer import encode_batch, load_tokenizer
from voltx.errors import DataError, MissingInputError

FILES = ("code_tokenizer.json", "code_encoder.safetensors", "code_decoder.safetensors")


def _untagged_args(art: artifacts.Artifact, vocab: int) -> dict:
    """Constructor args of a translator file written before artifacts recorded them: a
    decoder's max_len is the row count of its learned positional table; an encoder's
    max_seq_len is in the translator config of its metadata (512 without one)."""
    if art.path.name == FILES[2]:
        pos = art.tensors.get("pos")
        return {"vocab_size": vocab, "max_len": int(pos.shape[0]) if pos is not None else 256}
    return {"vocab_size": vocab, "max_seq_len": int(art.meta.get("config", {}).get("encoder", {}).get("max_seq_len", 512))}


class LearnedTranslator:
    name = "learned"

    def __init__(self, tokenizer, encoder: CnnFrameEncoder, decoder: SlotDecoder, max_len: int = 512):
        self.tokenizer, self.encoder, self.decoder, self.max_len = tokenizer, encoder.eval(), decoder.eval(), max_len

    @classmethod
    def load(cls, path: str | Path) -> "LearnedTranslator":
        root = artifacts.run_artifacts(path)
        missing = [f for f in FILES if not (root / f).exists()]
        if missing:
            raise MissingInputError(
                f"{root} lacks {', '.join(missing)}. Point --checkpoint at a finished translator run or a folder with "
                f"{', '.join(FILES)} (made by `voltx run translator`)."
            )
        tok = load_tokenizer(root / FILES[0])
        vocab = tok.get_vocab_size()
        how = "Point --checkpoint at a finished translator run (made by `voltx run translator`)."
        modules = []
        for file, kind, cls_ in ((FILES[1], "code_encoder", CnnFrameEncoder), (FILES[2], "code_decoder", SlotDecoder)):
            art = artifacts.read(root / file, kind, how, untagged=True)
            module = artifacts.load_into(cls_(**(art.args or _untagged_args(art, vocab))), art, how)
            if module.vocab_size != vocab:
                raise DataError(f"{root / file}: vocab {module.vocab_size} but {root / FILES[0]} has {vocab}: "
                                f"the files come from different runs. {how}")
            modules.append(module)
        encoder, decoder = modules
        return cls(tok, encoder, decoder, encoder.max_seq_len)

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
