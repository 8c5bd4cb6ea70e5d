"""F3's data: reasoning records in, tokenized batches and reasoning chains out.

Records are ``reasoning`` records ``{input, output, steps, task, meta}`` (SCAN, bAbI,
CLUTRR-style kinship, COGS). A training list entry that is a generator gives its train
split for training and its test split for evaluation; a file entry, when
``f3.reasoning_eval`` is empty, has ``valid_fraction`` of its records held out. The held-out
records are then halved, per task and seeded (:func:`dev_test`): dev, evaluated every epoch
(what presets and tuning look at), and test, evaluated once after training (what the
deliverables judge). The halves come from the held-out side, not from training records,
so the training set is the same with or without the split.

Chains. A record's chain of texts is :func:`chain_texts`: ``[question, step_1, ..., step_n,
output]`` -- the question (the input's last sentence; the story before it is the record's
memory, :func:`memory_texts`, one frame a sentence), each intermediate reasoning step (bAbI's supporting facts, a
kinship proof's steps, SCAN's intermediate parses) and the answer. Each text becomes its own
frame; F3 trains the velocity field on each move ``frame(k) -> frame(k+1)`` (plan, F3
objective 3), so the last move lands on the answer's frame, which the renderer only has to
read back. The record's ``steps`` are filled by the generators and converters.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import torch
from torch import Tensor

from voltx.data.sources import holdout, load_records, parse_source
from voltx.engine.tokenizer import PAD_ID, pad_rows, real_ids
from voltx_phases.f3_memory import split_story

KEY_DATA, KEY_EVAL = "f3.reasoning_data", "f3.reasoning_eval"
EXAMPLE = "scan_length_gen?count=2000"
BABI_TASKS = ("qa1", "qa2", "qa3")


@dataclass
class ReasoningData:
    train: list[dict]
    dev: list[dict]
    """Held-out records evaluated every epoch (for looking and tuning)."""
    eval: list[dict]
    """Held-out test records, disjoint from dev: evaluated once at the end and judged."""
    eval_source: str
    """Where the held-out records came from, for the data line."""


def _cap(records: list[dict], limit: int) -> list[dict]:
    return records[:limit] if limit else records


def load_data(cfg, seed: int) -> ReasoningData:
    """Training and held-out records per ``f3.reasoning_data`` / ``f3.reasoning_eval``."""
    train: list[dict] = []
    held: list[dict] = []
    for entry in cfg.reasoning_data:
        records = _cap(load_records([entry], "reasoning", split="train", key=KEY_DATA, example=EXAMPLE), cfg.max_examples)
        if cfg.reasoning_eval:
            train.extend(records)
        elif parse_source(entry, KEY_DATA).generator is not None:
            train.extend(records)
            held.extend(load_records([entry], "reasoning", split="test", key=KEY_DATA, example=EXAMPLE))
        else:
            kept, out = holdout(records, cfg.valid_fraction, seed)
            train.extend(kept)
            held.extend(out)
    if cfg.reasoning_eval:
        held = load_records(cfg.reasoning_eval, "reasoning", split="test", key=KEY_EVAL, example=EXAMPLE)
        source = ", ".join(cfg.reasoning_eval)
    else:
        source = "generators' test splits / held-out share of the training files"
    dev, test = dev_test(held, seed)
    return ReasoningData(train, per_task_cap(dev, cfg.dev_max_examples or cfg.eval_max_examples), per_task_cap(test, cfg.eval_max_examples),
                         source)


def dev_test(records: list[dict], seed: int) -> tuple[list[dict], list[dict]]:
    """Each task's held-out records split in two seeded halves: (dev, test); a task with one record goes to test."""
    by_task: dict[str, list[dict]] = {}
    for r in records:
        by_task.setdefault(r["task"], []).append(r)
    dev: list[dict] = []
    test: list[dict] = []
    for task_records in by_task.values():
        kept, held = holdout(task_records, 0.5, seed)
        dev.extend(held)
        test.extend(kept)
    return dev, test


def per_task_cap(records: list[dict], limit: int) -> list[dict]:
    """At most ``limit`` records of each task (0 = all), in their original order."""
    if not limit:
        return records
    seen: Counter = Counter()
    out = []
    for r in records:
        if seen[r["task"]] < limit:
            seen[r["task"]] += 1
            out.append(r)
    return out


def task_group(task: str) -> str:
    """The metric family of a record's task: scan, qa1..qa3, kinship, or the task itself."""
    if task.startswith("kinship") or task.startswith("clutrr") or task.startswith("task_"):
        return "kinship"
    return task


def majority_answers(records: list[dict]) -> dict[str, str]:
    """Most frequent training answer per task group (the trivial baseline's guess)."""
    counts: dict[str, Counter] = {}
    for r in records:
        counts.setdefault(task_group(r["task"]), Counter())[normalise(r["output"])] += 1
    return {g: c.most_common(1)[0][0] for g, c in counts.items()}


GLUE = "\u02cd"
"""MODIFIER LETTER LOW MACRON, a *letter* to the byte-level pre-tokenizer, standing in for "_".

The GPT-2 split rule the tokenizer uses cuts "I_TURN_LEFT" at every underscore, so a SCAN
answer of 22 actions became ~110 tokens (past the decoder's reach, and 5x the decoding
work). With the underscore swapped for a letter-like character each action is one word
that BPE merges into one token. The swap is lossless (reversed by :func:`unglue`, and the
data never contains the character); it is used only with a tokenizer trained here."""


def glue(record: dict) -> dict:
    """A copy of ``record`` whose texts keep underscore-joined words together (see GLUE)."""
    out = dict(record)
    out["input"], out["output"] = record["input"].replace("_", GLUE), record["output"].replace("_", GLUE)
    out["steps"] = [s.replace("_", GLUE) for s in record.get("steps") or []]
    return out


def unglue(text: str) -> str:
    return text.replace(GLUE, "_")


def normalise(text: str) -> str:
    return " ".join(text.split())


def training_texts(records: list[dict]) -> list[str]:
    """Every text the tokenizer and renderer should know: every text of every chain and memory."""
    return [text for r in records for text in (*memory_texts(r), *chain_texts(r))]


# --- chains ------------------------------------------------------------------------------------


def chain_texts(record: dict) -> list[str]:
    """The texts whose frames RAR moves through: ``[question, *steps, output]`` (module docstring);
    the question is the input's last sentence, the story before it is the record's memory."""
    return [split_story(record["input"])[1], *(record.get("steps") or []), record["output"]]


def memory_texts(record: dict) -> list[str]:
    """The story sentences before the question, oldest first (:mod:`voltx_phases.f3_memory`)."""
    return split_story(record["input"])[0]


# --- tokenization ------------------------------------------------------------------------------


def encode(tok, texts: list[str], max_len: int, device: torch.device, *, keep: str) -> tuple[Tensor, Tensor]:
    """Right-padded ids ``[B, T]`` and mask (True = real token), at most ``max_len`` tokens a row.

    ``keep="tail"`` keeps the *last* tokens (encoder inputs: a bAbI input is a story followed
    by the question, and cutting the end, as plain truncation does, removes exactly the
    question, or a chain frame's newest step); ``keep="head"`` the first (decoder answers).
    """
    rows = token_rows(tok, texts)
    ids, mask = pad_rows([r[-max_len:] if keep == "tail" else r[:max_len] for r in rows], PAD_ID)
    return ids.to(device), mask.to(device)


def token_rows(tok, texts: list[str]) -> list[list[int]]:
    """Each text's token ids, whole (tokenised once; :func:`pad_tail` cuts and pads them per batch)."""
    return [real_ids(tok, e) for e in tok.encode_batch(texts, add_special_tokens=False)]


def pad_tail(rows: list[list[int]], max_len: int) -> tuple[Tensor, Tensor]:
    """What :func:`encode` with ``keep="tail"`` makes of the texts of ``rows``, on the CPU."""
    return pad_rows([r[-max_len:] for r in rows], PAD_ID)
