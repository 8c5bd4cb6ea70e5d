"""CodeDebugger: find where and why Python code (plus its tests) fails.

Runs the code in the sandbox under a small harness that catches the first uncaught
exception and reports the innermost frame inside the user's code: exception type,
message, line number, that source line and the frame's local variables (reprs, capped).
The original only documented this strand; this is an exact tool built on CodeRunner's
sandbox (so it too raises SandboxUnavailable, running nothing, where no isolation works).

Frame protocol: S6 R0 = [16, ...], code bytes in S6 R1..R3. Answer: S8 R0 = [line,
1.0 if it failed else 0.0], "<Type>: <message>" bytes in S8 R2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from voltx.engine.frame import TensorFrame
from voltx.engine.sandbox import SandboxLimits, run_python
from voltx.engine.seeded import SEEDS
from voltx.engine.strands import OPERAND_SLOT, RESULT_SLOT, StrandError, StrandResult, capability, mark_proof, read_numbers, read_text, write_numbers, write_text

OP_DEBUG = 16
SEED = 0x434F444544424731  # "CODEDBG1", same recipe as the original's strand seeds
MARKER = "@@VOLTX_DEBUG@@"

HARNESS = r'''
import json, sys
SRC = {src!r}
ns = {{"__name__": "__main__"}}
report = {{"failed": False}}
try:
    exec(compile(SRC, "<solution>", "exec"), ns)
except BaseException as exc:
    tb, inner = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<solution>":
            inner = tb
        tb = tb.tb_next
    report = {{"failed": True, "error": type(exc).__name__, "message": str(exc)[:500]}}
    if inner is not None:
        line = inner.tb_lineno
        lines = SRC.splitlines()
        report["line"] = line
        report["source_line"] = lines[line - 1].strip() if 0 < line <= len(lines) else ""
        report["function"] = inner.tb_frame.f_code.co_name
        report["locals"] = {{k: repr(v)[:80] for k, v in list(inner.tb_frame.f_locals.items())[:20] if not k.startswith("__")}}
sys.stdout.flush()
print({marker!r} + json.dumps(report))
'''


@dataclass
class DebugReport:
    failed: bool
    error: str | None = None
    message: str = ""
    line: int | None = None
    source_line: str = ""
    function: str = ""
    locals: dict = field(default_factory=dict)
    isolation: str = ""
    note: str = ""

    def summary(self) -> str:
        if not self.failed:
            return "no failure: the code and its tests ran cleanly"
        where = f" at line {self.line} in {self.function}: {self.source_line}" if self.line else ""
        return f"{self.error}: {self.message}{where}"


class CodeDebugger:
    name = "code_debugger"
    threshold = 0.3

    def __init__(self, limits: SandboxLimits | None = None):
        self.limits = limits or SandboxLimits()

    def capability_vector(self):
        return capability(SEEDS.get("code_debugger", SEED))

    # -- typed API ---------------------------------------------------------------------------
    def debug(self, code: str, tests: str | None = None) -> DebugReport:
        source = code if not tests else f"{code}\n\n{tests}\n"
        result = run_python(HARNESS.format(src=source, marker=MARKER), limits=self.limits)
        for line in reversed(result.stdout.splitlines()):
            if line.startswith(MARKER):
                data = json.loads(line[len(MARKER):])
                return DebugReport(isolation=result.isolation, **data)
        # No report: the sandbox stopped it (time, memory, output) before the harness could speak.
        reason = result.killed_by or ("timed out" if result.timed_out else f"exit {result.exit_code}")
        return DebugReport(True, "SandboxLimit", f"stopped by the sandbox: {reason}", isolation=result.isolation,
                           note=result.stderr[-300:])

    # -- frame protocol ------------------------------------------------------------------------
    def process(self, frame: TensorFrame, b: int = 0) -> StrandResult:
        (code,) = read_numbers(frame, b, count=1)
        if abs(code - OP_DEBUG) > 0.5:
            raise StrandError(f"CodeDebugger expects op {OP_DEBUG} in S6 R0[0], got {code:g}")
        source = read_text(frame, b, slot=OPERAND_SLOT)
        if not source.strip():
            raise StrandError("no code in S6 R1..R3")
        report = self.debug(source)
        write_numbers(frame, b, [float(report.line or 0), 1.0 if report.failed else 0.0])
        write_text(frame, b, report.summary()[:256], slot=RESULT_SLOT, resolutions=(2,))
        mark_proof(frame, b)
        return StrandResult(frame, True, report.summary(), details=report.__dict__)
