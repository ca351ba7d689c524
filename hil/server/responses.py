"""Every answer a reference server gave, in memory: what the harness's invariants compare with the
server's database and event log (each refusal recorded, nothing answered with a 5xx)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

MAX_ENTRIES = 100_000  # a flood scenario sends a few hundred; the bound keeps a runaway client harmless


@dataclass(frozen=True)
class Answer:
    """One response: the request's method and path, the status, and whether an app route handled it
    (False: werkzeug refused it before any route, e.g. an unknown path)."""

    method: str
    path: str
    status: int
    routed: bool


@dataclass
class ResponseLog:
    """Thread-safe, bounded list of :class:`Answer` (the oldest are dropped past :data:`MAX_ENTRIES`)."""

    _entries: list[Answer] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    dropped: int = 0

    def record(self, answer: Answer) -> None:
        with self._lock:
            self._entries.append(answer)
            if len(self._entries) > MAX_ENTRIES:
                del self._entries[0]
                self.dropped += 1

    def entries(self) -> list[Answer]:
        """A copy of the answers so far, oldest first."""
        with self._lock:
            return list(self._entries)
