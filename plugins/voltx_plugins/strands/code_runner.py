"""CodeRunner: run Python (model-generated code plus its tests) in the sandbox.

Frame protocol: S6 R0 = [10, ...]; the source text is packed as bytes in S6 R1..R3
(voltx.engine.strands.write_text; at most 768 bytes, as in the original). Answer:
S8 R0 = [exit code, stdout length, passed tests, total tests], stdout bytes in S8 R2
(at most 256). The original ran WASM in wasmtime; this runs CPython in the sandbox
(voltx.engine.sandbox: a minimal root of its temp dir and a read-only runtime, via bubblewrap
or unshare) with CPU, memory, process, file-size and output limits. On a machine where no
isolation level works, ``run`` and ``process`` raise SandboxUnavailable naming what to
install: the code is not run unconfined.
"""

from __future__ import annotations

from voltx.engine.frame import TensorFrame
from voltx.engine.sandbox import SandboxLimits, SandboxResult, run_python
from voltx.engine.seeded import SEEDS
from voltx.engine.strands import OPERAND_SLOT, RESULT_SLOT, StrandError, StrandResult, capability, mark_proof, read_numbers, read_text, write_numbers, write_text

OP_RUN = 10


class CodeRunner:
    name = "code_runner"
    threshold = 0.3

    def __init__(self, limits: SandboxLimits | None = None):
        self.limits = limits or SandboxLimits()

    def capability_vector(self):
        return capability(SEEDS["code_runner"])

    # -- typed API ---------------------------------------------------------------------------
    def run(self, code: str, tests: str | None = None, limits: SandboxLimits | None = None) -> SandboxResult:
        return run_python(code, tests=tests, limits=limits or self.limits)

    # -- frame protocol ------------------------------------------------------------------------
    def process(self, frame: TensorFrame, b: int = 0) -> StrandResult:
        (code,) = read_numbers(frame, b, count=1)
        if abs(code - OP_RUN) > 0.5:
            raise StrandError(f"CodeRunner expects op {OP_RUN} in S6 R0[0], got {code:g}")
        source = read_text(frame, b, slot=OPERAND_SLOT)
        if not source.strip():
            raise StrandError("no code in S6 R1..R3")
        result = self.run(source)
        write_numbers(frame, b, [float(result.exit_code if result.exit_code is not None else -1), float(len(result.stdout)),
                                 float(result.tests_passed or 0), float(result.tests_total or 0)])
        shown = result.stdout if result.stdout.strip() else f"(no output; exit {result.exit_code}{', ' + result.killed_by if result.killed_by else ''})"
        if not result.ok and result.stderr.strip():
            shown = f"{shown.rstrip()}\n{result.stderr.strip().splitlines()[-1]}"
        write_text(frame, b, shown[:256], slot=RESULT_SLOT, resolutions=(2,))
        mark_proof(frame, b)
        status = "ok" if result.ok else (result.killed_by or f"exit {result.exit_code}")
        return StrandResult(frame, True, f"ran {len(source)} bytes of Python ({result.isolation}): {status}",
                            failed=not result.ok, details={"exit_code": result.exit_code, "isolation": result.isolation,
                                                           "stdout": result.stdout[:256], "timed_out": result.timed_out})
