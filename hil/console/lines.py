"""Console lines: splitting a byte stream into lines, stripping ANSI colours, timestamps."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from time import localtime, strftime

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences (ESP-IDF colours ``\\033[0;32m`` ... ``\\033[0m``)."""
    return ANSI_RE.sub("", text)


class LineKind(enum.Enum):
    """How the reader classified a line when it arrived."""

    NORMAL = "normal"
    EXPECTED_RESET = "expected-reset"  # ROM banner after a reset the harness asked for
    UNEXPECTED_RESET = "unexpected-reset"  # ROM banner nobody asked for: a reboot the test must see
    CRASH = "crash"  # the profile's crash regex matched


@dataclass(frozen=True)
class LogLine:
    """One console line as received."""

    seq: int  # position in the console's stream, from 0; cursors and marks are seqs
    wall: float  # time.time() on arrival
    rel: float  # seconds since the current log's start (``Console.log_to``)
    raw: str  # as received (colours kept), without the line ending
    text: str  # colours stripped: what regexes are matched against
    kind: LineKind = LineKind.NORMAL

    def format(self) -> str:
        """The log-file form: wall clock, time since test start, raw line."""
        stamp = strftime("%H:%M:%S", localtime(self.wall)) + f".{int(self.wall * 1000) % 1000:03d}"
        return f"[{stamp}] [+{self.rel:9.3f}] {self.raw}"


class LineSplitter:
    """Accumulates bytes and returns complete lines (``\\n``-terminated, ``\\r`` dropped)."""

    def __init__(self, max_line: int = 4096) -> None:
        self._pending = bytearray()
        self._max_line = max_line

    def feed(self, data: bytes) -> list[str]:
        """Add ``data``; return the lines it completed, decoded as UTF-8 (invalid bytes replaced)."""
        self._pending += data
        lines: list[str] = []
        while True:
            end = self._pending.find(b"\n")
            if end < 0:
                # binary garbage with no newline (e.g. SLIP frames) must not grow without bound
                if len(self._pending) > self._max_line:
                    lines.append(self._take(len(self._pending)))
                return lines
            lines.append(self._take(end + 1))

    def flush(self) -> list[str]:
        """Return the incomplete last line, if any (used when the port is handed over or closed)."""
        return [self._take(len(self._pending))] if self._pending else []

    def _take(self, n: int) -> str:
        chunk = bytes(self._pending[:n])
        del self._pending[:n]
        return chunk.decode("utf-8", "replace").rstrip("\r\n").replace("\r", "")
