"""The README's promises that code can check: the two commands, CI running the same test
command, and the exit-code table matching voltx.errors."""

from __future__ import annotations

import re
from pathlib import Path

from voltx.errors import EXIT_CODES

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def two_commands() -> list[str]:
    section = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_has_exactly_two_setup_commands():
    main, tests = two_commands()
    assert "voltx run translator --preset quick" in main and "pip install" in main
    assert "pytest" in tests and "pip install" in tests


def test_ci_runs_the_readme_test_command():
    _, tests = two_commands()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert tests.strip() in [line.strip() for line in ci.splitlines()]


def test_exit_code_table_matches_errors_module():
    table = README.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]  # its own section: other tables have numbered rows too
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", table, re.M))
    assert {int(k): v for k, v in rows.items()} == EXIT_CODES


def test_config_header_names_the_command():
    header = (REPO / "training_config.toml").read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "voltx run translator" in header
