"""User-facing errors and the documented exit-code table.

Every error a user can cause is a :class:`VoltxError`: the CLI prints its message (which
names the file, line or key, what was expected and what to do) and exits with its code,
never with a traceback. Codes follow sysexits(3) where one fits.
"""

from __future__ import annotations

# The exit-code table; README.md "Exit codes" mirrors it (a test keeps them in step).
EXIT_OK = 0
EXIT_INTERNAL = 1        # a bug in voltx: traceback printed, please report
EXIT_USAGE = 64          # EX_USAGE: bad command line (unknown phase, bad flag)
EXIT_DATA = 65           # EX_DATAERR: input data malformed (bad JSONL, not a tokenizer)
EXIT_NO_INPUT = 66       # EX_NOINPUT: a file or run that was named does not exist
EXIT_UNAVAILABLE = 69    # EX_UNAVAILABLE: voltx think has no strand or translator that can answer the query
EXIT_CANT_CREATE = 73    # EX_CANTCREAT: cannot write the run directory, a checkpoint or an output (disk full)
EXIT_PREEMPTED = 75      # EX_TEMPFAIL: stopped by SIGTERM/SIGUSR1/SIGHUP after a checkpoint; resume
EXIT_CONFIG = 78         # EX_CONFIG: bad config file or override
EXIT_DIVERGED = 80       # a loss went NaN/inf; the poisoned state was not saved
EXIT_RUN_LOCKED = 81     # another process is writing this run directory
EXIT_PREFLIGHT = 82      # not enough disk or memory for the run, or a sink's package is missing
EXIT_GATE = 83           # voltx run curriculum stopped: a phase missed a deliverable (curriculum.gate = stop)
EXIT_CHECK_FAILED = 84   # voltx doctor: a check failed (its line says what to do); not a bug, so not 1
EXIT_RANK_LOST = 86      # a process of a distributed run died or stopped answering: the job stopped
EXIT_INTERRUPTED = 130   # a second signal (or Ctrl-C twice): stopped at once, no checkpoint

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "internal error (a bug: please report it with the traceback)",
    EXIT_USAGE: "usage error: unknown command, phase, flag or run",
    EXIT_DATA: "bad input data: the message names the file, line and field (for `voltx think`: why the query cannot be answered)",
    EXIT_NO_INPUT: "a named input file, checkpoint or run does not exist",
    EXIT_UNAVAILABLE: "unavailable: the strand or translator `voltx think` needs is not available, or a distributed run's rendezvous endpoint cannot be reached (the message says which and what to do)",
    EXIT_CANT_CREATE: "cannot create or write an output (run directory, checkpoint, file), e.g. a full disk",
    EXIT_PREEMPTED: "preempted (SIGTERM, SIGUSR1, SIGHUP): checkpoint saved, resume with --resume auto",
    EXIT_CONFIG: "bad configuration: the message names the key and the closest valid one",
    EXIT_DIVERGED: "training diverged (NaN/inf loss); the last good checkpoint is kept",
    EXIT_RUN_LOCKED: "the run directory is locked by another live writer (its pid is named; also a second --resume auto of a run being resumed)",
    EXIT_PREFLIGHT: "preflight failed: not enough disk or memory, data missing, a named sink's package not installed (the message has the pip install line), or the mirror unreachable or holding another run",
    EXIT_GATE: "curriculum stopped at a gate: a phase missed a deliverable (curriculum.gate = \"stop\")",
    EXIT_CHECK_FAILED: "voltx doctor: a check failed (its line names the problem and what to do)",
    EXIT_RANK_LOST: "a process of a distributed run (--nproc-per-node) died or stopped answering: the job stopped, the last committed checkpoint is kept (resume with --resume auto)",
    EXIT_INTERRUPTED: "interrupted twice: stopped at once without a new checkpoint",
}


class VoltxError(Exception):
    """A user-facing error: message says what/where/what to do; exit_code is from the table."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str, *, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(VoltxError):
    exit_code = EXIT_USAGE


class DataError(VoltxError):
    exit_code = EXIT_DATA


class MissingInputError(VoltxError):
    exit_code = EXIT_NO_INPUT


class NoAnswerError(VoltxError):
    """``voltx think`` has nothing that can answer: the strand a query needs is not in use, or the
    translator cannot render the frame. Never an answer made up of unrendered slots."""

    exit_code = EXIT_UNAVAILABLE


class CantCreateError(VoltxError):
    exit_code = EXIT_CANT_CREATE


class ConfigError(VoltxError):
    """A bad config file or override. ``problems``: every problem found (one message each,
    file:line, key and a suggestion), so ``voltx config validate`` can list them all."""

    exit_code = EXIT_CONFIG

    def __init__(self, message: str, *, problems: list[str] | None = None, exit_code: int | None = None):
        super().__init__(message, exit_code=exit_code)
        self.problems = list(problems) if problems else [message]


class RunLockedError(VoltxError):
    exit_code = EXIT_RUN_LOCKED


class PreflightError(VoltxError):
    exit_code = EXIT_PREFLIGHT


class Preempted(VoltxError):
    """Raised by the loop after the preemption checkpoint is committed."""

    exit_code = EXIT_PREEMPTED


class Diverged(VoltxError):
    """Raised by the loop when a loss is NaN/inf; nothing of that step was saved."""

    exit_code = EXIT_DIVERGED


class GateStopped(VoltxError):
    """The curriculum stopped because a finished phase missed a deliverable (gate = stop)."""

    exit_code = EXIT_GATE


def closest(name: str, candidates) -> str | None:
    """The candidate most like ``name`` (for "did you mean" hints), or None."""
    import difflib

    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return matches[0] if matches else None
