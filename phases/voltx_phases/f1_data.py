"""F1's data: slot-annotated sentences and paraphrase pairs, as token tensors.

* Training, dev and test lists: a generator entry gives its ``train`` split to training, its
  ``dev`` split to the per-epoch evaluation (what presets and tuning look at) and its ``test``
  split to the final evaluation, computed once after training and judged. A file entry gives
  ``valid_fraction`` of its records (seeded) to test and as much again to dev, unless
  ``f1.srl_eval`` / ``f1.paraphrase_eval`` name the test data explicitly (then files give dev only).
* Token slot labels: each slot's head word(s) are found in the text (case-insensitive,
  whole words, the first occurrence no earlier slot took) and every BPE token whose
  character offsets overlap that span gets the slot index. Tokens of no slot are ignored
  by the loss (IGNORE): the annotations say nothing about them.
* Slot filling masks in the text: the filler word(s) of the masked slot are cut out of the
  sentence before it is encoded (:func:`mask_slot_text`; in training the same tokens are dropped,
  :func:`drop_slot_tokens`), so no context slot still carries the word it should be inferred from.
* Fixed probe sentences for the dog/canine check of the plan's success criteria.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from voltx.data.sources import holdout, load_records, parse_source
from voltx.engine.frame import MAX_SLOTS
from voltx.engine.tokenizer import PAD_ID, pad_rows
from voltx.errors import DataError

IGNORE = -100

# Eight sentence frames whose Agent (S0) is the probe word: active, passive, with and without
# adjuncts, so the check is not one lucky template. "{x}" is the agent.
PROBE_TEMPLATES = (
    "The {x} chased the ball in the park.",
    "The {x} ate the food in the kitchen.",
    "A {x} found a bone in the garden.",
    "The {x} bit the man yesterday.",
    "The ball was chased by the {x}.",
    "The food was eaten by the {x} in the kitchen.",
    "The old {x} slept near the fire.",
    "The {x} carried the stick to the river.",
)
PROBE_WORD, PROBE_SYNONYM = "dog", "canine"
PROBE_UNRELATED = ("table", "theory")
"""Control agents (the verdict's baseline): if 'dog' is as close to these as to 'canine', the
encoder has collapsed or only sees the shared template words."""
PROBE_SAME_CLASS = ("cat", "horse")
"""Other animals, for reference: srl_gen never substitutes 'canine' for 'dog' (they are separate
nouns of the animal class), so on generated data dog~canine is what the class context teaches."""


@dataclass
class SrlItem:
    ids: list[int]
    labels: list[int]
    gold: list[bool]
    """Slot r has at least one labelled token (what slot filling may mask)."""
    fillers: dict[int, str]
    """Slot index -> its head word(s), lower-cased (ties in the slot-filling retrieval)."""
    text: str = ""
    spans: tuple[tuple[int, int, int], ...] = ()
    """(start, end, slot) character spans of the labelled slots in ``text``."""


@dataclass
class ParaItem:
    a: list[int]
    b: list[int]
    positive: bool
    target: float
    """Gold similarity for the Spearman correlation: the 0-5 score, else the 0/1 label."""


# --- sources -----------------------------------------------------------------------------------


def split_sources(entries: list[str], eval_entries: list[str], fmt: str, *, key: str, eval_key: str, example: str,
                  valid_fraction: float, seed: int) -> tuple[list[dict], list[dict], list[dict]]:
    """(training, dev, test records) of one data list (see the module docstring)."""
    train: list[dict] = []
    dev: list[dict] = []
    test: list[dict] = []
    for i, entry in enumerate(entries):
        records = load_records([entry], fmt, split="train", key=key, example=example)
        if parse_source(entry, key).generator is not None:
            train.extend(records)
            dev.extend(load_records([entry], fmt, split="dev", key=key, example=example))
            if not eval_entries:
                test.extend(load_records([entry], fmt, split="test", key=key, example=example))
            continue
        if not eval_entries:
            records, out = holdout(records, valid_fraction, seed + i)
            test.extend(out)
        kept, out = holdout(records, valid_fraction, seed + 1000 + i)
        train.extend(kept)
        dev.extend(out)
    if eval_entries:
        test = load_records(eval_entries, fmt, split="test", key=eval_key, example=example)
    if not train:
        raise DataError(f"{key}: no training records")
    if not dev or not test:
        raise DataError(f"{key}: no {'dev' if not dev else 'test'} records to evaluate on; set {eval_key} "
                        "or raise valid_fraction")
    return train, dev, test


# --- slot labels -------------------------------------------------------------------------------


def slot_index(key: str) -> int:
    return int(key[1:])


def slot_spans(text: str, slots: dict[str, str]) -> list[tuple[int, int, int]]:
    """(start, end, slot) character spans of the slots' head words, in slot order.

    Whole-word, case-insensitive; a slot takes the first occurrence that does not overlap
    a span an earlier slot took ("The dog saw the dog" with S0 = S2 = "dog").
    """
    spans: list[tuple[int, int, int]] = []
    for key in sorted(slots, key=slot_index):
        words = slots[key].split()
        if not words:
            continue
        pattern = r"(?<!\w)" + r"\s+".join(re.escape(w) for w in words) + r"(?!\w)"
        for m in re.finditer(pattern, text, re.IGNORECASE):
            if all(m.end() <= a or m.start() >= b for a, b, _ in spans):
                spans.append((m.start(), m.end(), slot_index(key)))
                break
    return spans


def token_labels(offsets: list[tuple[int, int]], spans: list[tuple[int, int, int]]) -> list[int]:
    """Slot index per token whose character offsets overlap a span, else IGNORE."""
    labels = []
    for s, e in offsets:
        label = IGNORE
        if e > s:
            for a, b, r in spans:
                if s < b and e > a:
                    label = r
                    break
        labels.append(label)
    return labels


def encode_srl(tok, records: list[dict], max_len: int) -> tuple[list[SrlItem], int]:
    """Tokenised, labelled sentences, and how many records had no slot found in their text."""
    items: list[SrlItem] = []
    unmatched = 0
    for start in range(0, len(records), 1024):
        chunk = records[start:start + 1024]
        encodings = tok.encode_batch([r["text"] for r in chunk], add_special_tokens=False)
        for rec, enc in zip(chunk, encodings):
            spans = slot_spans(rec["text"], rec["slots"])
            labels = token_labels(list(enc.offsets)[:max_len], spans)
            if not any(l != IGNORE for l in labels):
                unmatched += 1
                continue
            gold = [False] * MAX_SLOTS
            for l in labels:
                if l != IGNORE:
                    gold[l] = True
            fillers = {slot_index(k): v.lower() for k, v in rec["slots"].items() if gold[slot_index(k)]}
            items.append(SrlItem(list(enc.ids)[:max_len], labels, gold, fillers, rec["text"], tuple(spans)))
    return items, unmatched


def encode_pairs(tok, records: list[dict], max_len: int) -> list[ParaItem]:
    items: list[ParaItem] = []
    for start in range(0, len(records), 1024):
        chunk = records[start:start + 1024]
        ea = tok.encode_batch([r["a"] for r in chunk], add_special_tokens=False)
        eb = tok.encode_batch([r["b"] for r in chunk], add_special_tokens=False)
        for rec, a, b in zip(chunk, ea, eb):
            score, label = rec.get("score"), rec.get("label")
            positive = label == 1 or (score is not None and score >= 4.0)
            target = float(score) if score is not None else float(label)
            items.append(ParaItem(list(a.ids)[:max_len] or [PAD_ID], list(b.ids)[:max_len] or [PAD_ID], positive, target))
    return items


# --- masking a slot ----------------------------------------------------------------------------


def mask_slot_text(text: str, spans: tuple[tuple[int, int, int], ...], slot: int) -> str:
    """``text`` with the words of ``slot`` cut out ("The dog chased the ball." -> "The chased the
    ball."): what the slot-filling evaluation encodes, so the slot's own word reaches no context slot."""
    for start, end, r in sorted(spans, reverse=True):
        if r == slot:
            text = text[:start] + text[end:]
    return re.sub(r"\s+([,.;:!?])", r"\1", re.sub(r"\s{2,}", " ", text)).strip()


def drop_slot_tokens(ids: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor,
                     masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch ``ids``/``mask`` without the tokens labelled with a slot ``masked`` marks in their row,
    left-aligned (the training counterpart of :func:`mask_slot_text`: the filler's tokens are the
    ones its labels name)."""
    named = labels.ne(IGNORE)
    hit = masked.gather(1, labels.clamp_min(0)) & named
    keep = mask & ~hit
    order = (~keep).to(torch.int8).argsort(dim=1, stable=True)  # kept tokens first, in order
    return ids.gather(1, order).masked_fill(~keep.gather(1, order), PAD_ID), keep.gather(1, order)


# --- batches -----------------------------------------------------------------------------------


def collate_srl(items: list[SrlItem]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """ids [B, T], mask [B, T], labels [B, T] (IGNORE on unlabelled and padding), gold [B, 16]."""
    ids, mask = pad_rows([it.ids for it in items], PAD_ID)
    labels, _ = pad_rows([it.labels for it in items], IGNORE)
    gold = torch.tensor([it.gold for it in items], dtype=torch.bool)
    return ids, mask, labels, gold


def collate_pairs(items: list[ParaItem]) -> tuple[torch.Tensor, ...]:
    """a ids/mask, b ids/mask, positive [P] bool, target [P] float."""
    a, am = pad_rows([it.a for it in items], PAD_ID)
    b, bm = pad_rows([it.b for it in items], PAD_ID)
    positive = torch.tensor([it.positive for it in items], dtype=torch.bool)
    target = torch.tensor([it.target for it in items], dtype=torch.float32)
    return a, am, b, bm, positive, target


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def word_overlap(a: str, b: str) -> float:
    """Jaccard overlap of lower-cased word sets: the trivial similarity baseline for STS."""
    wa, wb = set(re.findall(r"\w+", a.lower())), set(re.findall(r"\w+", b.lower()))
    return len(wa & wb) / max(1, len(wa | wb))


def probe_sentences(word: str) -> list[str]:
    return [t.format(x=word) for t in PROBE_TEMPLATES]
