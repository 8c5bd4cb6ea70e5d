"""The trio's input check (``PhaseSpec.check``): run before the run directory is created.

Everything the run would refuse about its input is refused here first, with the run's own
messages, so bad input leaves no run behind: every instruction JSONL source validated (file,
line and field of a bad record), and a base model other than ``tiny`` found (local directory
with a config.json, or the local Hugging Face cache), its config a model's and its tokenizer
loadable and, with ``prompt_format = "chat"``, holding a chat template. The mix weights are
checked earlier still, when the config is built (:class:`voltx_trio.phase.TrioConfig`).
Import-light at module level: transformers is imported only when a real base model is named.
"""

from __future__ import annotations

from voltx.data.mix import parse_source
from voltx.data.sources import load_records

from voltx_trio.data import GENERATED


def check(cfg) -> None:
    for entry in cfg.data:
        path = str(parse_source(entry)[0])
        if path not in GENERATED:
            load_records([path], "instruction", split="train", key="trio.data", example="hybrid")
    from voltx_trio.models import TINY

    if cfg.base_model != TINY:
        from voltx_trio.models import load_tokenizer, model_config
        from voltx_trio.roles import uses_chat

        model_config(cfg.base_model)
        uses_chat(load_tokenizer(cfg.base_model), cfg.prompt_format, cfg.base_model)
