"""Byte-level BPE tokenizer for code and text, built on Hugging Face ``tokenizers``.

Why byte-level: every string (any language, any binary junk in a corpus) encodes
without an unknown token, and token strings keep whitespace visible as ``Ġ`` (space),
``Ċ`` (newline) and ``ĉ`` (tab), which the code role labeller relies on.

Conventions shared by every model in the engine:

* the four special tokens are ids 0-3 (``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``), so
  padding is id 0 everywhere and a loaded file is checked for exactly that;
* :func:`encode_batch` adds *no* special tokens; a decoder adds BOS/EOS itself;
* batches are right-padded with ``PAD_ID`` to the longest sequence, capped at
  ``max_len``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from voltx.errors import DataError, MissingInputError, VoltxError

SPECIAL_TOKENS: list[str] = ["<pad>", "<unk>", "<bos>", "<eos>"]
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

TEXT_SUFFIXES = (".py", ".txt")
JSONL_SUFFIX = ".jsonl"

_TRAIN_HINT = "Train one with `voltx train-tokenizer --corpus ... --output {path}`"


def _check_specials(tok: Tokenizer) -> str | None:
    """Return why ``tok``'s special tokens are wrong, or None if they are ids 0-3."""
    for expected_id, token in enumerate(SPECIAL_TOKENS):
        got = tok.token_to_id(token)
        if got != expected_id:
            return f"special token {token!r} has id {got}, expected {expected_id}"
    return None


def train_bpe(texts: Iterable[str], vocab_size: int = 32768, min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE tokenizer on ``texts``.

    The 256-symbol byte alphabet is always included (so nothing is ever unknown) and
    the special tokens are registered first so they get ids 0-3.
    """
    floor = len(SPECIAL_TOKENS) + len(pre_tokenizers.ByteLevel.alphabet())
    if vocab_size < floor:
        raise ValueError(f"vocab_size must be at least {floor} (specials + byte alphabet), got {vocab_size}")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    # add_prefix_space=False: "def f" must tokenize as "def", "Ġf" -- the first token of
    # a file is not preceded by a space and inventing one would shift every label.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    problem = _check_specials(tok)
    if problem is not None:  # would mean a tokenizers behaviour change; never ship such a file
        raise VoltxError(f"trained tokenizer is inconsistent: {problem}")
    return tok


def save_tokenizer(tok: Tokenizer, path: str | os.PathLike[str]) -> Path:
    """Write ``tok`` as JSON atomically (a crash never leaves a half-written file; a full disk is exit 73)."""
    from voltx.artifacts import write_atomic

    return write_atomic(path, lambda tmp: tmp.write_text(tok.to_str(), encoding="utf-8"))


def load_tokenizer(path: str | os.PathLike[str]) -> Tokenizer:
    """Load a tokenizer saved by :func:`save_tokenizer`, checking it is one of ours.

    Raises MissingInputError if ``path`` does not exist and DataError if it is not a
    Hugging Face tokenizer file or its special tokens are not ids 0-3.
    """
    path = Path(path)
    hint = _TRAIN_HINT.format(path=path)
    if not path.exists():
        raise MissingInputError(f"{path}: tokenizer file not found. {hint}")

    def bad(reason: str) -> DataError:
        return DataError(f"{path} is not a Hugging Face tokenizer file ({reason}). {hint}")

    if path.is_dir():
        raise bad("it is a directory")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise bad(f"not UTF-8 text: {e.reason} at byte {e.start}") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise bad(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    if not isinstance(obj, dict) or "model" not in obj:
        raise bad('the JSON has no "model" section')
    try:
        tok = Tokenizer.from_str(text)
    except Exception as e:  # tokenizers raises a bare Exception with a serde message
        raise bad(f"tokenizers could not read it: {e}") from None
    problem = _check_specials(tok)
    if problem is not None:
        raise bad(problem)
    return tok


def batch_length(lengths: Iterable[int], max_len: int) -> int:
    """Padded width of a batch: the longest row, capped at ``max_len``, at least 1.

    Shared by :func:`encode_batch` and the role labeller so their tensors line up.
    A width of at least 1 keeps all-empty batches valid input for the models.
    """
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    return max(1, min(max(lengths, default=0), max_len))


def real_ids(tok: Tokenizer, encoding) -> list[int]:
    """Token ids of ``encoding`` without any padding the tokenizer itself added.

    Our tokenizers never enable padding, but a user-supplied one might; honouring its
    attention mask keeps our own padding the only padding.
    """
    if tok.padding is None:
        return list(encoding.ids)
    return [i for i, m in zip(encoding.ids, encoding.attention_mask) if m]


def encode_batch(tok: Tokenizer, texts: list[str], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode ``texts`` to right-padded ids ``[B, T]`` and a bool mask (True = real token).

    No special tokens are added; rows longer than ``max_len`` are truncated.
    """
    texts = list(texts)
    encodings = tok.encode_batch(texts, add_special_tokens=False)
    rows = [real_ids(tok, enc)[:max_len] for enc in encodings]
    return pad_rows(rows, PAD_ID, width=batch_length((len(r) for r in rows), max_len))


def pad_rows(rows: list[list[int]], fill: int = PAD_ID, *, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id rows to ``[B, width]`` (default: the longest row, at least 1) and a bool
    mask that is True at real positions. The mask comes from the lengths, never from the
    fill value, so a real token equal to ``fill`` still counts (and label rows may use -100)."""
    width = max(1, max((len(r) for r in rows), default=0)) if width is None else width
    ids = torch.full((len(rows), width), fill, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for b, row in enumerate(rows):
        if row:
            ids[b, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[b, : len(row)] = True
    return ids, mask


def _expand_paths(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    suffixes = (*TEXT_SUFFIXES, JSONL_SUFFIX)
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise MissingInputError(f"{p}: corpus path not found")
        if p.is_dir():
            # Sorted walk so the same corpus always yields the same text order
            # (tokenizer training and max_files are order-sensitive).
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if name.endswith(suffixes):
                        yield Path(dirpath) / name
        elif p.suffix in suffixes:
            yield p
        else:
            raise DataError(f"{p}: unsupported corpus file type {p.suffix!r}; use .py, .txt or .jsonl files")


def _jsonl_texts(path: Path) -> Iterator[str]:
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                msg = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
                raise DataError(
                    f"{path}:{lineno}: not valid JSON ({msg}); each line must be one JSON object "
                    'with a "content" or "code" string field'
                ) from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            text = row.get("content", row.get("code"))
            if isinstance(text, str):
                yield text


def corpus_texts(
    paths: Iterable[str | os.PathLike[str]],
    max_files: int | None,
    min_chars: int = 50,
    max_chars: int = 50_000,
) -> Iterator[str]:
    """Yield corpus texts for tokenizer training.

    ``paths`` may be files or directories (searched recursively, in sorted order).
    ``.py``/``.txt`` files contribute their whole text; ``.jsonl`` files one text per
    line from its ``content`` (or else ``code``) field.  Texts shorter than
    ``min_chars`` or longer than ``max_chars`` are skipped -- tiny ones teach nothing
    and huge ones are usually generated data.  ``max_files`` caps the number of texts
    yielded (None = no cap).  Files that are not UTF-8 are skipped.
    """
    count = 0
    if max_files is not None and max_files <= 0:
        return
    for path in _expand_paths(paths):
        if path.suffix == JSONL_SUFFIX:
            texts: Iterable[str] = _jsonl_texts(path)
        else:
            try:
                texts = [path.read_text(encoding="utf-8")]
            except UnicodeDecodeError:
                continue
        for text in texts:
            if not (min_chars <= len(text) <= max_chars):
                continue
            yield text
            count += 1
            if max_files is not None and count >= max_files:
                return
