"""The launch log of a tmux run: the tail of its pane's output as plain text.

``tmux pipe-pane`` feeds this the pane's raw output. With a rich progress bar that is
mostly escape sequences and carriage-return repaints (ten a second), which made the launch
log unreadable in an editor, ``less`` or ``grep``. This keeps what a terminal would end up
showing, line by line: text after a carriage return or an erase-line replaces the line,
a cursor-up takes back the lines it moves over (a live display redrawn in place), every
other escape sequence and control character is dropped. Only the last ``--tail`` bytes are
kept (a bar redrawn for hours must not grow the log) and appended to LOG when the pane
closes.

Standalone, standard library only: tmux starts it by path, whatever the pane's PYTHONPATH.
"""

from __future__ import annotations

import codecs
import re
import sys
from collections import deque
from typing import BinaryIO, Iterable

# CSI (ESC [ params final), OSC (ESC ] ... BEL or ESC \), nF (ESC ( B), other two-byte escapes,
# a lone ESC, one control character, or plain text.
_TOKEN = re.compile(
    r"\x1b\[(?P<params>[0-?]*)[ -/]*(?P<final>[@-~])"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -/]+[0-~]"
    r"|\x1b[@-Z\\-_]?"
    r"|(?P<ctrl>[\x00-\x08\x0a-\x1f\x7f])"
    r"|(?P<text>[^\x00-\x08\x0a-\x1f\x7f]+)"
)


# An escape sequence that is complete (one cut at the end of a chunk waits for the next chunk).
_COMPLETE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[ -/]+[0-~]|[@-Z\\-_])")


class PlainTail:
    """A minimal terminal that keeps the last ``limit`` bytes of finished lines."""

    def __init__(self, limit: int):
        self.limit = limit
        self.lines: deque[str] = deque()
        self._size = 0
        self.current = ""
        self._at_line_start = False  # after a carriage return: the next text rewrites the line
        self._pending = ""

    def feed(self, text: str) -> None:
        text, self._pending = self._pending + text, ""
        cut = text.rfind("\x1b")
        if cut != -1 and not _COMPLETE.match(text, cut) and len(text) - cut < 256:
            text, self._pending = text[:cut], text[cut:]
        for m in _TOKEN.finditer(text):
            if m.group("text") is not None:
                if self._at_line_start:
                    self.current, self._at_line_start = "", False
                self.current = (self.current + m.group("text"))[-self.limit:]
            elif m.group("ctrl") is not None:
                self._control(m.group("ctrl"))
            elif m.group("final") is not None:
                self._csi(m.group("params"), m.group("final"))

    def _control(self, char: str) -> None:
        if char == "\n":
            self._finish_line()
        elif char == "\r":
            self._at_line_start = True
        elif char == "\b":
            self.current = self.current[:-1]

    def _csi(self, params: str, final: str) -> None:
        count = int(params) if params.isdigit() else 1
        if final == "A":  # cursor up: those lines are about to be redrawn
            for _ in range(min(count, len(self.lines))):
                self._size -= len(self.lines.pop().encode()) + 1
            self.current, self._at_line_start = "", False
        elif final == "K" and (params == "2" or self._at_line_start or self.current == ""):
            self.current = ""

    def _finish_line(self) -> None:
        line = self.current.rstrip()
        self.current, self._at_line_start = "", False
        self.lines.append(line)
        self._size += len(line.encode()) + 1
        while self._size > self.limit and self.lines:
            self._size -= len(self.lines.popleft().encode()) + 1

    def text(self) -> str:
        tail = [*self.lines, *([self.current.rstrip()] if self.current.strip() else [])]
        return "".join(f"{line}\n" for line in tail)


def plain_tail(chunks: Iterable[bytes], limit: int) -> str:
    term, decode = PlainTail(limit), codecs.getincrementaldecoder("utf-8")("replace")
    for chunk in chunks:
        term.feed(decode.decode(chunk))
    term.feed(decode.decode(b"", final=True))
    return term.text()


def _chunks(stream: BinaryIO) -> Iterable[bytes]:
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            return
        yield chunk


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[0] != "--tail" or not argv[1].isdigit():
        print("usage: pane_log.py --tail BYTES LOG", file=sys.stderr)
        return 64
    with open(argv[2], "a", encoding="utf-8") as log:  # created now, written when the pane closes
        log.write(plain_tail(_chunks(sys.stdin.buffer), int(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
