"""Sliding-window rate limiter for uploads (default 10 per 60 s per device and peer address).

*Resolved* (PROTOCOL.md says "per device"): the key is the device id **and** the peer address. A
limit keyed on the device id alone lets anyone who captured one packet exhaust that device's quota
with replays (they carry a valid MAC and only fail later, at the nonce check), which blocks the
device's genuine uploads; the ``rate-limit-per-device`` server defect keeps that behaviour.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Hashable


class RateLimiter:
    """Allow at most ``limit`` attempts per ``window_s`` seconds per key; ``limit=0`` allows everything.

    Counts attempts that reach the rate-limit step (known device, before the MAC): PROTOCOL.md places
    it there so a flood of forged packets is cut off before any HMAC work.
    """

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float], *, count_refusals: bool) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._count_refusals = count_refusals  # the rate-limit-counts-refusals defect
        self._hits: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def acquire(self, key: Hashable) -> int | None:
        """Record one attempt; return ``None`` if allowed, else whole seconds until one is (≥ 1)."""
        if self.limit == 0:
            return None
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window_s:
                hits.popleft()
            if len(hits) >= self.limit:
                if self._count_refusals:  # the defect: a client retrying inside the window extends it
                    hits.append(now)
                return max(1, math.ceil(hits[0] + self.window_s - now))
            hits.append(now)
        return None
