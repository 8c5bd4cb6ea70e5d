"""The modules a plugin distribution may import: voltx's public API.

Third-party plugins (``plugins/voltx-lvm``, ``plugins/voltx-trio`` and anyone's) import only
these. Everything else in voltx is free to change between releases; a test walks each
distributed plugin's imports and fails on any module outside this list, so when a plugin
needs something private the fix is to make it public here (and document it in
docs/plugins.md), not to reach past the list.
"""

from __future__ import annotations

PUBLIC_MODULES: tuple[str, ...] = (
    "voltx",  # hookimpl, __version__
    "voltx.plugin_specs",  # PhaseSpec, Deliverable, ConverterSpec, SinkSpec, ... (what a plugin registers)
    "voltx.errors",  # exit codes and the errors that map to them
    "voltx.config",  # config dataclasses helpers a phase's own table uses
    "voltx.config_checks",  # require_at_least, require_fraction, require_mix_weights: a phase table's checks, one message each
    "voltx.artifacts",  # one artifact format: save / read / load_into / write_atomic
    "voltx.plugins",  # load_plugins: a plugin's tests load it beside the installed ones (docs/plugins.md)
    "voltx.train.runner",  # RunRequest, execute: how a plugin command or test starts a run
    "voltx.train.context",  # RunContext handed to a phase's runner
    "voltx.train.kit",  # train_stage, Hyper, make_optimizer: the shared training loop
    "voltx.train.batches",  # steps_per_epoch and the resumable batch order
    "voltx.train.preflight",  # check_resources: the disk and memory checks before step 1 (Agent Forge sizes its models from them)
    "voltx.runs.linked",  # a run that starts runs (lvm-sweep, the curriculum): plan, run, record, read them
    "voltx.runs.chain",  # phases in order as gated linked runs: the curriculum's engine (Agent Forge's cognate -> evomerge)
    "voltx.data.formats",  # record formats (open to plugins)
    "voltx.data.sources",  # load_records, parse_source, holdout
    "voltx.data.mix",  # mix(): `voltx data mix`, a deterministic mix of JSONL sources by weight
    "voltx.data.converter",  # base pieces of a dataset converter
    "voltx.data.code_pairs",  # extract_stdlib_pairs: the built-in (code, docstring) corpus of the running Python
    "voltx.runs.records",  # the run store's record types (what sinks receive)
    "voltx.console.app",  # VoltxConsole: a plugin's tests open its runs in voltx-console (Textual's pilot)
    "voltx.console.testing",  # until, drawn_detail: such a test waits for what it needs to see, with a deadline
    "voltx.testing",  # fake_plugin_dist, run_phase, only_run, run_events, evaluated_metrics, StopAtStep: what every test tree needs
    "voltx.engine.frame",  # TensorFrame and its shape constants
    "voltx.engine.tokenizer",
    "voltx.engine.cnn_frame_encoder",
    "voltx.engine.slot_decoder",
    "voltx.engine.rar",
    "voltx.engine.vfn",
    "voltx.engine.hdc",
    "voltx.engine.codebook",
)


def is_public(module: str) -> bool:
    """True for a public module or anything defined inside one's package path exactly."""
    return module in PUBLIC_MODULES
