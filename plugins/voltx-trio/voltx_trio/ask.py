"""``voltx trio ask``: thesis -> antithesis -> synthesis with three LoRA adapters on one base model.

The base model is loaded once; peft loads the three adapters by name and switches between them.
The creative adapter answers the question; the logical one sees the question and the thesis;
the dialectical one sees all three (the Trio document's dialectical flow). Each answer is printed
as it is made.
"""

from __future__ import annotations

import json
from pathlib import Path

from voltx.errors import DataError, MissingInputError, UsageError

from voltx_trio.roles import ORDER, ROLES, prompt


def adapter_dir(given: str | None, role: str, checkpoints: Path) -> Path:
    """The folder holding ``role``'s adapter: given (a run directory or the folder itself) or published."""
    path = Path(given).expanduser() if given else checkpoints / f"trio-{role}"
    for candidate in (path, path / "artifacts" / f"trio-{role}"):
        if (candidate / "adapter_config.json").is_file() and (candidate / "trio.json").is_file():
            return candidate
    how = f"--{role} RUN_DIR" if not given else f"a trio run of role {role} (its artifacts/trio-{role})"
    raise MissingInputError(f"no {role} adapter at {path} (no adapter_config.json and trio.json). Train one with "
                            f"`voltx run trio --role {role}` and pass {how}.")


def turn_input(question: str, answers: dict[str, str]) -> str:
    """What a role sees: the question, then the answers of the roles before it."""
    parts = [question]
    if "creative" in answers:
        parts.append(f"Thesis (creative): {answers['creative']}")
    if "logical" in answers:
        parts.append(f"Antithesis (logical): {answers['logical']}")
    return "\n\n".join(parts)


def _checkpoints_dir(config: str | None) -> Path:
    from voltx.config import default_config_file, load_config

    path = config or default_config_file()
    return Path(load_config(path).paths.checkpoints_dir)


def ask(args) -> int:
    import torch
    from peft import PeftModel

    from voltx_trio.evaluate import Encoded, generate
    from voltx_trio.models import load_base, quiet_peft

    if args.trio_command != "ask":
        raise UsageError(f"unknown trio subcommand {args.trio_command!r}; try `voltx trio ask \"...\"`")
    if args.max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    checkpoints = _checkpoints_dir(args.config)
    dirs = {role: adapter_dir(getattr(args, role), role, checkpoints) for role in ORDER}
    meta = {role: json.loads((d / "trio.json").read_text()) for role, d in dirs.items()}
    for role, m in meta.items():
        if m.get("role") != role:
            raise DataError(f"{dirs[role]}: this adapter was trained for role {m.get('role')!r}, not {role!r}")
    base = args.base or meta["creative"]["base_model"]
    tokenizer, model = load_base(base)
    with quiet_peft():
        model = PeftModel.from_pretrained(model, str(dirs["creative"]), adapter_name="creative")
    for role in ORDER[1:]:
        model.load_adapter(str(dirs[role]), adapter_name=role)
    model.eval()
    answers: dict[str, str] = {}
    titles = {"creative": "thesis (creative)", "logical": "antithesis (logical)", "dialectical": "synthesis (dialectical)"}
    with torch.no_grad():
        for role in ORDER:
            model.set_adapter(role)
            text = prompt(tokenizer, ROLES[role], turn_input(args.question, answers), meta[role].get("chat", True))
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            answers[role] = generate(model, tokenizer, [Encoded(ids, [])], args.max_new_tokens, torch.device("cpu"))[0]
            print(f"== {titles[role]} ==\n{answers[role]}\n", flush=True)
    return 0
