"""``stdlib_code_gen`` (``code_pairs``): (code, docstring) pairs from this Python's standard
library, via :func:`voltx.data.code_pairs.extract_stdlib_pairs`; ``count=None`` means the whole
split (train, or a seeded ``valid_fraction`` hold-out)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path

from voltx.data.code_pairs import extract_stdlib_pairs, split_train_valid
from voltx.data.converter import Converter, RawRow, RowError
from voltx.data.formats import CodePairRecord

from .generator_base import _Generator


class StdlibCodeGenerator(_Generator, Converter):
    """(code, docstring) pairs from this Python's standard library (``root`` to override)."""

    name = "stdlib_code_gen"
    formats = ("code_pairs",)
    splits = ("train", "valid")
    root: str | None = None
    cache_dir: str | None = None
    valid_fraction: float = 0.1

    def read_local(self, paths: list[Path], split: str) -> Iterator[RawRow]:
        self._check_split(split)
        pairs = extract_stdlib_pairs(self.root, cache_dir=self.cache_dir)
        train, valid = split_train_valid(pairs, self.valid_fraction, seed=self.seed)
        chosen = list(train if split == "train" else valid)
        random.Random(self.seed).shuffle(chosen)
        if self.count is not None:
            chosen = chosen[: self.count]
        for i, p in enumerate(chosen):
            yield RawRow({"code": p.code, "docstring": p.docstring, "func_name": p.func_name,
                          "language": p.language, "source": p.source}, f"generated:stdlib/{split}#{i}")

    def convert(self, row: RawRow, fmt: str, language: str | None) -> Iterable[CodePairRecord]:
        d = row.data
        if not isinstance(d.get("code"), str) or not d["code"].strip():
            raise RowError("expected non-empty code", "code")
        if language is not None and language != d.get("language", "python"):
            return []
        return [CodePairRecord(code=d["code"], docstring=str(d.get("docstring") or ""),
                               language=str(d.get("language") or "python"), name=str(d.get("func_name") or ""),
                               source=d.get("source") or row.where)]
