"""A role's training mix and held-out sets, made with voltx's own data tools.

Each source of ``trio.data`` (``SOURCE:WEIGHT``) gives its training records: the built-in
generators ``gen:hybrid`` / ``gen:pure`` (:mod:`voltx_trio.puzzles`, their train split) or an
instruction JSONL file (validated by ``voltx.data.sources.load_records``, which names the file,
line and field of a bad record; a share is held out). The sources are written as JSONL and
mixed by ``voltx.data.mix.mix``, the code of ``voltx data mix``, so the run's mix is the one that
command makes of the same files. Held-out sets come from the generators' dev split and the
files' held-out shares, never from training records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from voltx.data.mix import mix, parse_source, quotas, read_jsonl_lines
from voltx.data.sources import holdout, load_records

GENERATED = ("gen:hybrid", "gen:pure")


@dataclass
class TrioData:
    train: list[dict]
    """The mixed training records (instruction records)."""
    pure_eval: list[dict]
    """Held-out pure puzzles (exact match)."""
    hybrid_eval: list[dict]
    """Held-out scaffolded puzzles in the role's format (format adherence)."""
    file_eval: list[dict]
    """Held-out records of JSONL sources (held-out loss)."""


def _write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def build(cfg, workdir: Path, seed: int) -> TrioData:
    """Read/generate every source, hold out, mix; the mix is ``workdir/train-mix.jsonl``."""
    from voltx_trio.puzzles import generate

    parsed = [parse_source(entry) for entry in cfg.data]
    shares = quotas(cfg.examples, [w for _, w in parsed])  # exactly what mix() takes of each
    sources: list[tuple[Path, float]] = []
    file_eval: list[dict] = []
    for i, ((path, weight), share) in enumerate(zip(parsed, shares)):
        name = str(path)
        if name in GENERATED:  # its share of the mix
            records = generate(name.split(":", 1)[1], cfg.role, "train", max(1, share), seed + i)
        else:
            records = load_records([name], "instruction", split="train", key="trio.data", example="hybrid")
            records, held = holdout(records, cfg.valid_fraction, seed + i)
            file_eval.extend(held)
        sources.append((_write_jsonl(workdir / f"source-{i}.jsonl", records), weight))
    out = workdir / "train-mix.jsonl"
    total = cfg.examples if all(str(p) in GENERATED for p, _ in parsed) else None  # files: the largest mix keeping the weights
    mix(sources, out, total=total, seed=seed)
    train = [json.loads(line) for line in read_jsonl_lines(out)]
    half = max(1, cfg.eval_examples // 2)
    return TrioData(train, generate("pure", cfg.role, "dev", half, seed + 101),
                    generate("hybrid", cfg.role, "dev", half, seed + 102), file_eval)
