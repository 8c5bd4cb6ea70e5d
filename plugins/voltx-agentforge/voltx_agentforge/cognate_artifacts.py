"""The Cognate artifact contract: what phase 1 hands to phase 2 (EvoMerge) and anyone else.

Per model, a directory ``cognate-<specialisation>/`` (in the run's ``artifacts/``, and, for a
run without a preset, published to ``[paths].checkpoints_dir``) holding:

* ``model.safetensors``: the state dict (float32, CPU), voltx's artifact format (a plain
  safetensors file; its metadata also names ``kind = cognate_model`` and the constructor args);
* ``config.json``: ``format`` ("voltx-agentforge/cognate"), ``version`` (1), ``specialisation``,
  ``args`` (:class:`~voltx_agentforge.cognate_model.CognateArgs`: every field that rebuilds the
  model, hence which tensors have equal shapes across models), ``parameters``,
  ``size_category``, ``tokenizer`` (bytes 0-255 + PAD/BOS/EOS/SEP ids), ``prompt`` (the
  question template), ``training`` (optimizer, halting prior, epochs, batch) and ``evaluation``
  (the stage's last held-out figures).

And ``cognate.json`` beside them: the three directories, the diversity and the figures it was
computed from (the plan's ``phase1_output``). :func:`load_model` is the one reader.
"""

from __future__ import annotations

import json
from pathlib import Path

from voltx import artifacts
from voltx.errors import DataError, MissingInputError
from voltx_agentforge.cognate_model import BOS, EOS, PAD, SEP, VOCAB, CognateArgs, CognateNet

FORMAT, VERSION = "voltx-agentforge/cognate", 1
TOKENIZER = {"kind": "utf-8 bytes", "vocab": VOCAB, "pad": PAD, "bos": BOS, "eos": EOS, "sep": SEP}
PROMPT = "Q: {question}\nA: "


def _write_json(path: Path, data: dict) -> Path:
    return artifacts.write_atomic(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8"))


def save_model(directory: Path, model: CognateNet, specialisation: str, **fields) -> None:
    """``directory/model.safetensors`` then ``directory/config.json`` (each written atomically)."""
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    artifacts.save(directory / "model.safetensors", tensors, "cognate_model", model.args.to_dict(), specialisation=specialisation)
    params = sum(p.numel() for p in model.parameters())
    _write_json(directory / "config.json", {"format": FORMAT, "version": VERSION, "specialisation": specialisation,
                                            "args": model.args.to_dict(), "parameters": params, "tokenizer": TOKENIZER,
                                            "prompt": PROMPT, **fields})


def read_config(directory: Path) -> dict:
    path = Path(directory) / "config.json"
    if not path.is_file():
        raise MissingInputError(f"{directory}: no config.json; a Cognate model directory comes from `voltx run cognate` "
                                "(artifacts/cognate-<specialisation>/)")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT or config.get("version") != VERSION:
        got = (config.get("format"), config.get("version")) if isinstance(config, dict) else type(config).__name__
        raise DataError(f"{path}: expected format {FORMAT!r} version {VERSION}, got {got!r}")
    return config


def load_model(directory: Path, device: str = "cpu") -> tuple[CognateNet, dict]:
    """The model of a Cognate directory and its config (DataError naming the field or tensor that is wrong)."""
    config = read_config(directory)
    try:
        args = CognateArgs(**config["args"])
    except (KeyError, TypeError) as exc:
        raise DataError(f"{Path(directory) / 'config.json'}: field 'args' does not describe a Cognate model ({exc})") from None
    model = CognateNet(args)
    weights = Path(directory) / "model.safetensors"
    if not weights.is_file():
        raise MissingInputError(f"{directory}: no model.safetensors beside config.json")
    from safetensors.torch import load_file

    state = load_file(str(weights), device=device)
    own = model.state_dict()
    wrong = [k for k in own if k not in state or state[k].shape != own[k].shape]
    if wrong or set(state) - set(own):
        raise DataError(f"{weights}: tensors do not match config.json's args: "
                        f"{', '.join(wrong[:5] or sorted(set(state) - set(own))[:5])}")
    model.load_state_dict(state)
    return model.to(device), config


def total_bytes(*roots: Path) -> int:
    return sum(f.stat().st_size for root in roots if root.exists() for f in root.rglob("*") if f.is_file())


def write_summary(path: Path, summary: dict) -> Path:
    return _write_json(path, {"format": f"{FORMAT}-run", "version": VERSION, **summary})

