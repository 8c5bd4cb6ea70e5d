"""The ``instruction`` record format: ``{"input": str, "output": str}`` (the Trio document's pairs).

Registered with voltx through ``register_record_formats``, so ``voltx.data.formats`` validates
it like a built-in format (and ``voltx.data.sources.load_records(..., "instruction", ...)``
reports a bad line as ``file:line: field output: missing ...``). Import-light.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from voltx.data.formats import Record
from voltx.plugin_specs import RecordFormatSpec


@dataclass(frozen=True)
class Instruction(Record):
    input: str
    output: str
    source: str | None = None
    meta: dict | None = None

    FORMAT: ClassVar[str] = "instruction"
    REQUIRED: ClassVar[dict[str, str]] = {"input": "str!", "output": "str!"}
    OPTIONAL: ClassVar[dict[str, str]] = {"source": "str", "meta": "dict"}


INSTRUCTION = RecordFormatSpec("instruction", "instruction pairs: input -> output (LoRA fine-tuning data)", Instruction)
