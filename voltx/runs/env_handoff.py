"""Start a command with environment variables handed over in a private file, then delete it.

``voltx run --tmux`` and voltx-console start runs in tmux. Passing the launcher's
environment as ``tmux new-session -e KEY=VALUE`` put every value (HF_TOKEN, AWS keys) on
the tmux server's command line, which every user can read in the process list. Instead the
launcher writes the variables to a mode-0600 JSON file and the pane runs
``python env_handoff.py FILE -- CMD ...``: this reads the file, deletes it, and execs CMD
(same pid) with the variables added to the pane's environment.

Standalone, standard library only: tmux starts it by path, whatever the pane's PYTHONPATH.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

EXIT_USAGE = 64  # voltx.errors' values; not imported, so this file runs on its own
EXIT_NO_INPUT = 66


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Create ``path`` readable by its owner only (never through a planted file or symlink)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(env, out)


def read_env_file(path: Path) -> dict[str, str]:
    """The variables in ``path``; the file is deleted whatever happens (it holds secrets)."""
    try:
        with open(path, encoding="utf-8") as src:
            env = json.load(src)
    finally:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ValueError(f"{path} is not a JSON object of strings")
    return env


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: env_handoff.py ENV_FILE -- COMMAND [ARG ...]", file=sys.stderr)
        return EXIT_USAGE
    try:
        env = read_env_file(Path(argv[0]))
    except (OSError, ValueError) as exc:
        print(f"voltx: cannot read the launch environment {argv[0]}: {exc}", file=sys.stderr)
        return EXIT_NO_INPUT
    os.execvpe(argv[2], argv[2:], {**os.environ, **env})
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
