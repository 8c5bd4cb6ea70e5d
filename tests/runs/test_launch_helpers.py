"""The two helpers a tmux pane runs: the environment handoff file and the plain-text launch log."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys

import pytest

from voltx.runs import env_handoff
from voltx.runs.env_handoff import read_env_file, write_env_file
from voltx.runs.pane_log import plain_tail


def test_env_file_is_private_and_deleted_once_read(tmp_path):
    path = tmp_path / "run.env"
    write_env_file(path, {"HF_TOKEN": "secret-xyz", "MULTI": "a b\n'c'"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_env_file(path) == {"HF_TOKEN": "secret-xyz", "MULTI": "a b\n'c'"}
    assert not path.exists()


def test_env_file_never_follows_a_planted_file_or_link(tmp_path):
    target = tmp_path / "elsewhere"
    (tmp_path / "run.env").symlink_to(target)
    with pytest.raises(FileExistsError):
        write_env_file(tmp_path / "run.env", {"HF_TOKEN": "secret-xyz"})
    assert not target.exists()


def test_handoff_execs_the_command_with_the_variables(tmp_path):
    path = tmp_path / "run.env"
    write_env_file(path, {"HF_TOKEN": "secret-xyz"})
    code = "import os, sys; print(os.environ['HF_TOKEN'], os.environ['KEPT'])"
    done = subprocess.run([sys.executable, "-I", env_handoff.__file__, str(path), "--", sys.executable, "-c", code],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "KEPT": "pane"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["secret-xyz", "pane"] and not path.exists()
    missing = subprocess.run([sys.executable, "-I", env_handoff.__file__, str(path), "--", "true"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 66 and f"cannot read the launch environment {path}" in missing.stderr


def rich_session() -> bytes:
    """What a pane receives from a run's rich progress bar: repaints, colours, cursor moves, CRLF."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}"), console=console, transient=True) as bar:
        task = bar.add_task("encoder", total=40, status="")
        bar.add_task("decoder", total=40, status="")  # two lines: redrawn with cursor-up
        for step in range(40):
            bar.update(task, advance=1, status=f"loss {1 / (step + 1):.4f}")
            if step % 10 == 0:
                console.print(f"step {step} | loss {1 / (step + 1):.4f}", markup=False, highlight=False)
            bar.refresh()
    console.print("voltx: run finished: runs/toy/x", markup=False, highlight=False)
    return out.getvalue().replace("\n", "\r\n").encode()  # the pty's ONLCR


def test_pane_log_is_what_the_terminal_showed_without_escapes_or_repaints():
    raw = rich_session()
    assert b"\x1b[" in raw and b"\r" in raw
    text = plain_tail((raw[i:i + 7] for i in range(0, len(raw), 7)), 1 << 18)  # sequences cut between chunks
    assert text == "".join(f"step {s} | loss {1 / (s + 1):.4f}\n" for s in (0, 10, 20, 30)) + "voltx: run finished: runs/toy/x\n"


def test_pane_log_keeps_only_the_tail():
    lines = [f"line {i:05d} ".ljust(40, "=").encode() + b"\r\n" for i in range(20000)]
    text = plain_tail(lines, 4096)
    assert len(text.encode()) <= 4096 and text.endswith("line 19999 " + "=" * 29 + "\n")
    assert text.startswith("line ")  # whole lines only


def test_pane_log_appends_at_eof(tmp_path):
    from voltx.runs import pane_log

    log = tmp_path / "x.log"
    log.write_text("earlier\n")
    done = subprocess.run([sys.executable, "-I", pane_log.__file__, "--tail", "1000", str(log)], input=b"\x1b[1mbold\x1b[0m\r\nnext\r\n", timeout=60)
    assert done.returncode == 0 and log.read_text() == "earlier\nbold\nnext\n"
