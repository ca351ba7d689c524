"""A clock a scenario moves by hand, for the built-in server's time-based limits (the rate-limit
window): both sides of a window are tested at its exact edges, without waiting it out."""

from __future__ import annotations

import threading


class ManualClock:
    """Monotonic seconds that advance only when told (``ServerConfig.clock``); thread-safe, since the
    server reads it from its request threads."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by *seconds* (never back); returns the new time."""
        if seconds < 0:
            raise ValueError(f"a monotonic clock does not go back ({seconds} s)")
        with self._lock:
            self._now += seconds
            return self._now
