"""What a finished run says last: its deliverables in context, and where to look next.

A first run (``voltx run translator --preset quick``) used to end on "deliverable FAIL"
lines, exit 0 and nothing else, which reads as a broken install. The quick presets are
documented (README "Performance", docs/foundation.md, training_config.toml) as a
minutes-long offline look that shows learning, not the plan's targets; the closing lines
say so, and name the commands that show the run.
"""

from __future__ import annotations

from pathlib import Path

QUICK_PRESET = "quick"
"""The preset every shipped phase table documents as a short offline look (far below the
deliverables' targets, which are set for the full recipe)."""


def closing_lines(phase: str, preset: str | None, run_dir: Path, verdicts: list[dict]) -> list[str]:
    """Lines printed after "run finished": why deliverables failed when that is expected,
    and the next commands (report, console) with this run's directory."""
    lines = []
    failed = [v for v in verdicts if not v.get("passed")]
    if failed and preset == QUICK_PRESET:
        lines.append(
            f"voltx: {len(failed)} deliverable(s) missed their target, as expected: preset '{QUICK_PRESET}' is a short "
            f"look that shows learning, not the plan's targets. The targets are set for the full recipe: "
            f"`voltx run {phase}` (sized for a GPU)."
        )
    elif failed:
        lines.append(f"voltx: {len(failed)} of {len(verdicts)} deliverable(s) missed their target; the report shows by how much.")
    lines.append(
        f"voltx: next: `voltx report {run_dir}` (metrics, deliverables), "
        f"`voltx-console --run {run_dir}` (curves, every run; `n` launches another)"
    )
    return lines
