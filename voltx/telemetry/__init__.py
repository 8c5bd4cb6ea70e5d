"""GPU (NVML) and host (psutil) telemetry, sampled by a sidecar process into system.jsonl.

Import-light: nothing here imports torch or textual; psutil and pynvml load lazily.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from voltx.telemetry.sampler import Sampler

__all__ = ["Sampler", "read_latest_sample"]


def read_latest_sample(run_dir: Path, tail_bytes: int = 65536) -> dict | None:
    """The last complete record of ``run_dir/system.jsonl``; None if there is none yet.

    Reads only the file's tail and skips a half-written last line (the sidecar may be
    mid-write) or any corrupt line, walking back to the newest line that parses.
    """
    path = Path(run_dir) / "system.jsonl"
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - tail_bytes))
            data = fh.read()
    except OSError:
        return None
    lines = data.split(b"\n")
    lines.pop()  # after the last newline: empty, or a line still being written
    for raw in reversed(lines):
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue  # the first line of a mid-file tail, or a corrupt one
        if isinstance(record, dict):
            return record
    return None
