"""What ``voltx run curriculum`` checks and hands over before its first phase starts (no torch).

* :func:`preflight`: every data list of every phase still to run, read as that phase will read it
  (the file exists, its records are in the list's format, a generator and its options exist).
  All problems are gathered into one message, with the ``voltx data`` command that makes each
  missing file of the ``full`` presets (:data:`PREPARE`), and the curriculum stops with exit 82
  before any phase starts: nothing fails after hours of F1.
* :func:`tokenizer_corpus`: the training lists of the phases after F1, handed to F1's tokenizer
  (``f1.tokenizer_corpus``) so the language stack the curriculum shares knows their words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from voltx.data.sources import load_records, parse_source
from voltx.errors import PreflightError, VoltxError

DATA_LISTS: dict[str, dict[str, str]] = {
    "f1": {"srl_data": "slot_annotated", "srl_eval": "slot_annotated", "paraphrase_data": "paraphrase", "paraphrase_eval": "paraphrase"},
    "f2": {"triples_data": "triples", "triples_eval": "triples"},
    "f3": {"reasoning_data": "reasoning", "reasoning_eval": "reasoning"},
}
"""The data lists of the built-in phases and their record formats; ``*_eval`` lists read a
generator's test split, the others its train split (as the phases do)."""

PREPARE: dict[str, str] = {
    "data/propbank_train.jsonl": "voltx data stream --dataset propbank --split train --output data/propbank_train.jsonl",
    "data/propbank_test.jsonl": "voltx data stream --dataset propbank --split test --output data/propbank_test.jsonl",
    "data/framenet.jsonl": "voltx data convert --dataset framenet --data-files fndata-1.7/ --output data/framenet.jsonl",
    "data/stsb_train.jsonl": "voltx data convert --dataset stsb --data-files sts-train.csv --output data/stsb_train.jsonl",
    "data/stsb_test.jsonl": "voltx data convert --dataset stsb --data-files sts-test.csv --output data/stsb_test.jsonl",
    "data/paws_train.jsonl": "voltx data stream --dataset paws --split train --output data/paws_train.jsonl",
    "data/cn100k_train.jsonl": "voltx data convert --dataset cn100k --data-files train_old.txt --output data/cn100k_train.jsonl",
    "data/cn100k_test.jsonl": "voltx data convert --dataset cn100k --data-files test.txt --output data/cn100k_test.jsonl",
    "data/wordnet.jsonl": "voltx data convert --dataset wordnet --data-files /usr/share/wordnet --output data/wordnet.jsonl",
    "data/scan_length_train.jsonl": "voltx data convert --dataset scan --data-files tasks_train_length.txt --output data/scan_length_train.jsonl",
    "data/scan_length_test.jsonl": "voltx data convert --dataset scan --data-files tasks_test_length.txt --output data/scan_length_test.jsonl",
    "data/babi_train.jsonl": "voltx data convert --dataset babi --data-files qa1_*_train.txt qa2_*_train.txt qa3_*_train.txt --output data/babi_train.jsonl",
    "data/babi_test.jsonl": "voltx data convert --dataset babi --data-files qa1_*_test.txt qa2_*_test.txt qa3_*_test.txt --split test --output data/babi_test.jsonl",
    "data/clutrr_train.jsonl": "voltx data stream --dataset clutrr --split train --output data/clutrr_train.jsonl",
}
"""The command that makes each file the ``full`` presets read (docs/foundation.md lists the same;
``--data-files`` are the dataset's own files, run from where they are)."""


def _lists(phase: str, settings: Any) -> list[tuple[str, str, str, list[str]]]:
    """(config key, format, generator split, entries) of each data list of ``phase``."""
    return [(f"{phase}.{key}", fmt, "test" if key.endswith("_eval") else "train", list(getattr(settings, key)))
            for key, fmt in DATA_LISTS.get(phase, {}).items()]


def preflight(phases: dict[str, Any]) -> int:
    """Read every data list of ``phases`` (name -> its resolved settings); raise one
    :class:`PreflightError` listing every problem. Returns the number of lists' entries checked."""
    missing: list[str] = []
    commands: list[str] = []
    broken: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for phase, settings in phases.items():
        for key, fmt, split, entries in _lists(phase, settings):
            for entry in entries:
                if (entry, fmt, split) in seen:
                    continue
                seen.add((entry, fmt, split))
                if parse_source(entry, key).generator is None and not Path(entry).is_file():
                    command = PREPARE.get(Path(entry).as_posix())
                    missing.append(f"  {key}: {entry}" + ("" if command else " (no known command: convert the dataset with "
                                                           "`voltx data convert --dataset NAME --data-files ... --output FILE`)"))
                    if command and command not in commands:
                        commands.append(command)
                    continue
                try:
                    load_records([entry], fmt, split=split, key=key, example="NAME")
                except VoltxError as exc:
                    broken.append(f"  {exc}")
    if not (missing or broken):
        return len(seen)
    parts = []
    if missing:
        parts.append(f"{len(missing)} data file(s) missing:\n" + "\n".join(missing))
        if commands:
            parts.append("Make them with (the --data-files are the datasets' own files; docs/foundation.md, Data):\n"
                         + "\n".join(f"  {c}" for c in commands))
    if broken:
        parts.append(f"{len(broken)} data list entr{'y' if len(broken) == 1 else 'ies'} cannot be read:\n" + "\n".join(broken))
    raise PreflightError("curriculum preflight: the phases' data is not ready; no phase was started.\n" + "\n".join(parts))


def tokenizer_corpus(first: str, phases: dict[str, Any]) -> list[str] | None:
    """``first``'s ``tokenizer_corpus`` plus the training lists of every phase after it (in order,
    each entry once), or None when ``first`` has no such setting."""
    names = list(phases)
    if not hasattr(phases[first], "tokenizer_corpus"):
        return None
    out = list(phases[first].tokenizer_corpus)
    for phase in names[names.index(first) + 1:]:
        for _key, _fmt, split, entries in _lists(phase, phases[phase]):
            out += [e for e in entries if split == "train" and e not in out]
    return out
