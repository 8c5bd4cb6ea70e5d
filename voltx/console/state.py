"""What the console remembers between sessions: the last launched phase and preset.

Kept in a small JSON file under the platformdirs user state directory (for example
``~/.local/state/voltx/console.json``), never in the run store or the project. A missing
or unreadable file means "nothing remembered": the dialog then opens on the README's
first run (translator, quick preset) instead of the full recipe of the first phase.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

STATE_FILE = "console.json"


@dataclass(frozen=True)
class LaunchChoice:
    phase: str
    preset: str | None


FIRST_RUN = LaunchChoice("translator", "quick")
"""What `n` offers before anything was launched: the README's first command, a short look."""


def state_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_state_dir("voltx")) / STATE_FILE


def _read() -> dict:
    try:
        data = json.loads(state_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def last_launch() -> LaunchChoice | None:
    """The phase and preset of the last launch from the console, or None."""
    launch = _read().get("launch")
    if not isinstance(launch, dict) or not isinstance(launch.get("phase"), str):
        return None
    preset = launch.get("preset")
    return LaunchChoice(launch["phase"], preset if isinstance(preset, str) else None)


def remember_launch(choice: LaunchChoice) -> None:
    """Save the choice (atomically); a state directory that cannot be written is not an error."""
    data = _read()
    data["launch"] = {"phase": choice.phase, "preset": choice.preset}
    path = state_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # remembering is a convenience: a read-only home must not break launching
