"""EvoMerge's inputs: the three Cognate models (the phase 1 artifact contract) and the held-out
problems its fitness is measured on. :func:`check` runs before the run directory exists (the
phase's ``check``), reading JSON and safetensors headers only, so bad input writes nothing.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from voltx.errors import DataError, MissingInputError
from voltx_agentforge.cognate import BASE, SPECIALISATIONS
from voltx_agentforge.cognate_artifacts import read_config

HEADER_BYTES = 8


def model_dirs(cfg) -> list[Path]:
    """The three model directories under ``evomerge.cognate_dir`` (MissingInputError naming the command)."""
    root = Path(cfg.cognate_dir)
    dirs = [root / f"cognate-{s}" for s in SPECIALISATIONS]
    missing = [d for d in dirs if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file()]
    if missing:
        raise MissingInputError(
            f"evomerge.cognate_dir: no Cognate models in {root} (missing {', '.join(d.name for d in missing)}: each needs "
            "config.json and model.safetensors). Phase 2 merges phase 1's models: run `voltx run cognate` first (a run "
            "without a preset publishes them to [paths].checkpoints_dir), or set evomerge.cognate_dir to a cognate run's "
            "artifacts directory, e.g. `voltx run evomerge --preset quick cognate_dir=runs/cognate/<run>/artifacts`.")
    return dirs


def base_dir(cfg) -> Path | None:
    """The models' shared initialisation (``cognate-base/``, written by Cognate runs since it
    exists), or None: the task-vector step then takes its reference from the interpolation."""
    d = Path(cfg.cognate_dir) / f"cognate-{BASE}"
    return d if (d / "config.json").is_file() and (d / "model.safetensors").is_file() else None


def tensor_shapes(path: Path) -> dict[str, list[int]]:
    """Names and shapes of a safetensors file, from its header (no tensor is read)."""
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(HEADER_BYTES))
            header = json.loads(f.read(size))
    except (OSError, struct.error, ValueError) as exc:
        raise DataError(f"{path}: not a safetensors file ({exc})") from None
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def check_shapes(dirs: list[Path]) -> None:
    """Every recipe merges tensor by tensor: refuse unequal names or shapes, naming the tensors."""
    shapes = {d.name: tensor_shapes(d / "model.safetensors") for d in dirs}
    keys = sorted(set().union(*shapes.values()))
    wrong = []
    for key in keys:
        seen = {name: tuple(s[key]) if key in s else None for name, s in shapes.items()}
        if len(set(seen.values())) > 1:
            wrong.append(f"{key} (" + ", ".join(f"{n} {list(v) if v is not None else 'missing'}" for n, v in seen.items()) + ")")
    if wrong:
        raise DataError(
            f"evomerge: the Cognate models in {dirs[0].parent} differ in shape: {'; '.join(wrong[:6])}"
            f"{' ...' if len(wrong) > 6 else ''}. Linear, SLERP, TIES and DARE merge tensor by tensor, so every one of "
            "the 8 combinations needs equal shapes: train them with equal shape settings (equal cognate.memory_slots, "
            "the default) and run evomerge again.")


def check_fitness_source(cfg) -> None:
    """A local file of held-out problems must hold at least two (one to select on, one to report on)."""
    entry = cfg.fitness_data
    if entry.startswith(("hub:", "gen:")):
        return  # streamed or generated: counted when the run reads it
    path = Path(entry)
    if not path.is_file():
        raise MissingInputError(f"evomerge.fitness_data: {path}: no such file (expected JSONL reasoning records)")
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(rows) < 2:
        raise DataError(f"evomerge.fitness_data: {path} holds {len(rows)} records; the fitness set needs at least one and "
                        "the report set another (JSONL reasoning records: input, output, steps, task)")


def check(cfg) -> None:
    """The phase's input check (before anything is written)."""
    dirs = model_dirs(cfg) + ([base] if (base := base_dir(cfg)) else [])
    for d in dirs:
        read_config(d)
    check_shapes(dirs)
    check_fitness_source(cfg)
