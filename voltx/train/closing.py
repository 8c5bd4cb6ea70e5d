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


def closing_lines(phase: str, preset: str | None, run_dir: Path, verdicts: list[dict], targets: str = "") -> list[str]:
    """Lines printed after "run finished": why deliverables failed when that is expected,
    and the next commands (report, console) with this run's directory. ``targets``: the
    phase's own word on where its targets can be met (:attr:`PhaseSpec.targets`)."""
    lines = []
    failed = [v for v in verdicts if not v.get("passed")]
    trivial = [v["metric"] for v in failed if v.get("beat_baseline") is False]
    if trivial:  # never "as expected": a method with no trained model did as well on the same inputs
        lines.append(
            f"voltx: {len(trivial)} deliverable(s) did not beat a method that needs no trained model "
            f"({', '.join(trivial)}): the report shows the baseline and the margin."
        )
    if len(failed) > len(trivial) and preset == QUICK_PRESET:
        lines.append(
            f"voltx: {len(failed) - len(trivial)} deliverable(s) beat their baselines but missed the plan's target, "
            f"as expected: preset '{QUICK_PRESET}' is a short look that shows learning, not the plan's targets. "
            + (f"The targets can be met {targets}." if targets else
               f"The targets are set for the full recipe: `voltx run {phase}` (sized for a GPU).")
        )
    elif len(failed) > len(trivial):
        lines.append(f"voltx: {len(failed) - len(trivial)} of {len(verdicts)} deliverable(s) missed their target; "
                     "the report shows by how much.")
    lines.append(
        f"voltx: next: `voltx report {run_dir}` (metrics, deliverables), "
        f"`voltx-console --run {run_dir}` (curves, every run; `n` launches another)"
    )
    return lines
