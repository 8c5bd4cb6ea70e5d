"""Cognate's training mix and held-out set, made with voltx's own data tools, as byte sequences.

Each source of ``cognate.data`` (``SOURCE:WEIGHT``) gives ``reasoning`` records: ``hub:<name>``
streams a registered converter's Hugging Face copy (``hub:gsm8k``: openai/gsm8k, its ``train``
split, only as many rows as its share), ``gen:<name>?opt=v`` runs a registered generator through
``voltx.data.sources.load_records`` (its ``train`` split, ``count`` = its share), and a path is
a JSONL file of reasoning records, validated by ``load_records`` (file, line and field of a bad
record). The sources are written as JSONL and mixed by ``voltx.data.mix.mix`` (the code of
``voltx data mix``). The held-out set is ``cognate.eval_data``'s ``cognate.eval_split`` split
(``test``; ``dev`` while tuning; a file: whole).

An example is ``BOS "Q: <question>\\nA: " <answer> EOS`` in bytes (:mod:`cognate_model`).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import torch

from voltx.data.converter import RowError
from voltx.data.mix import mix, parse_source, quotas, read_jsonl_lines
from voltx.data.sources import load_records
from voltx.errors import ConfigError, DataError, UsageError
from voltx_agentforge.cognate_model import BOS, EOS, PAD, encode

HUB = "hub:"
EXAMPLE = "reasoning"
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def prompt_text(question: str) -> str:
    return f"Q: {question}\nA: "


@dataclass
class Example:
    ids: list[int]
    """BOS, prompt bytes, answer bytes, EOS."""
    prompt_len: int
    """Tokens before the answer (BOS included)."""
    answer: str


def encode_example(record: dict, max_len: int) -> Example:
    answer = list(record["output"].encode("utf-8"))[: max_len // 4]
    prompt = encode(prompt_text(record["input"]), max_len - len(answer) - 2)
    return Example([BOS, *prompt, *answer, EOS], 1 + len(prompt), record["output"])


def hub_records(name: str, split: str, limit: int, key: str) -> list[dict]:
    """The first ``limit`` records of converter ``name``'s Hugging Face copy (streamed)."""
    from voltx.plugin_specs import resolve
    from voltx.plugins import load_plugins

    try:
        spec = load_plugins().get("converters", name)
    except UsageError as exc:
        raise UsageError(f"{key}: {exc}") from None
    conv = resolve(spec.factory)()
    conv.hub_name = conv.hub_name or spec.hub_name
    if split not in conv.splits:  # GSM8K has no dev split: say so, not a Hub error after connecting
        raise ConfigError(f"{key}: {HUB}{name} has no {split!r} split (its splits: {', '.join(conv.splits)}); "
                          f"tune on a JSONL file of held-out records, or evaluate with cognate.eval_split = \"test\"")
    out: list[dict] = []
    for row in islice(conv.read_hub(split, None), limit):
        try:
            out.extend(r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in conv.convert(row, EXAMPLE, None))
        except RowError as exc:
            raise DataError(f"{key}: {row.where}: {exc.describe()}") from None
    if not out:
        raise DataError(f"{key}: {HUB}{name} gave no records from its {split!r} split")
    return out


def source_records(entry: str, split: str, count: int, key: str) -> list[dict]:
    """The records of one source (``count`` of them for hub: and gen:; a file whole)."""
    if entry.startswith(HUB):
        return hub_records(entry[len(HUB):], split, count, key)
    if entry.startswith("gen:") and "count=" not in entry:
        entry = f"{entry}{'&' if '?' in entry else '?'}count={count}"
    records = load_records([entry], EXAMPLE, split=split, key=key, example="gsm8k")
    if not records:
        raise DataError(f"{key}: {entry} has no records; expected JSONL reasoning records (input, output, steps, task)")
    return records


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def build_mix(entries: list[str], examples: int, workdir: Path, seed: int, key: str) -> list[dict]:
    """``examples`` training records of the mix ``entries`` (``workdir/train-mix.jsonl``)."""
    parsed = [(str(p), w) for p, w in (parse_source(e) for e in entries)]
    shares = quotas(examples, [w for _, w in parsed])
    sources = []
    for i, ((entry, weight), share) in enumerate(zip(parsed, shares)):
        records = source_records(entry, "train", max(1, share), key)
        sources.append((_write_jsonl(workdir / f"source-{i}.jsonl", records), weight))
    sized = all(e.startswith((HUB, "gen:")) for e, _ in parsed)
    out = workdir / "train-mix.jsonl"
    mix(sources, out, total=examples if sized else None, seed=seed)
    return [json.loads(line) for line in read_jsonl_lines(out)]


def build(cfg, workdir: Path, seed: int) -> tuple[list[list[dict]], list[dict]]:
    """(each specialisation's training records, held-out records): one mix ``cognate.data`` for
    the three, or each its own of ``cognate.specialist_data`` (in ``workdir/<i>/``)."""
    if cfg.specialist_data:
        trains = [build_mix(m, cfg.examples, workdir / str(i), seed, f"cognate.specialist_data[{i}]")
                  for i, m in enumerate(cfg.specialist_data)]
    else:
        trains = [build_mix(cfg.data, cfg.examples, workdir, seed, "cognate.data")] * 3
    held = source_records(cfg.eval_data, cfg.eval_split, cfg.eval_examples, "cognate.eval_data")[: cfg.eval_examples]
    return trains, held


def with_replay(own: list[dict], rehearsed: list[dict], share: float, seed: int) -> list[dict]:
    """``own`` with its last ``share`` of records replaced by as many drawn (seeded) from
    ``rehearsed`` (the base's mix): the same number of problems, so the same training time."""
    drawn = random.Random(seed).sample(rehearsed, min(round(share * len(own)), len(rehearsed)))
    return own[:len(own) - len(drawn)] + drawn


def own_tasks(train: list[dict], held: list[dict]) -> list[dict]:
    """The held-out records of the tasks ``train`` holds (all of them when none match)."""
    tasks = {r.get("task") for r in train}
    return [r for r in held if r.get("task") in tasks] or held


def collate(rows: list[Example], prompt_weight: float) -> dict[str, torch.Tensor]:
    """Right-padded inputs, next-byte targets and their loss weights: each answer byte (EOS
    included) 1, pad 0, and the question's bytes together ``prompt_weight`` times the answer's
    (each ``prompt_weight * answer bytes / question bytes``). Per question byte instead, a
    90-byte question outweighed its 2-byte answer 13 to 1 at 0.3, and the quick preset's models
    never learned to read the number in ``inc``/``add``/``box`` (README, "Why inc was not learnt")."""
    width = max(len(r.ids) for r in rows) - 1
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    targets = torch.full((len(rows), width), PAD, dtype=torch.long)
    weights = torch.zeros(len(rows), width)
    for i, r in enumerate(rows):
        n, asked = len(r.ids) - 1, r.prompt_len - 1  # targets; of them, question bytes (BOS predicts the first)
        ids[i, :n] = torch.tensor(r.ids[:-1])
        targets[i, :n] = torch.tensor(r.ids[1:])
        weights[i, :asked] = prompt_weight * (n - asked) / max(1, asked)
        weights[i, asked:n] = 1.0
    return {"ids": ids, "targets": targets, "weights": weights}


def numbers(text: str) -> list[str]:
    return NUMBER.findall(text)
