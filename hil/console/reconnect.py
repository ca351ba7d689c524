"""Reopening a board's lost serial port: bounded exponential back-off, cut short by a stop request.

A USB port goes away on a hub power cycle, a brownout or an ESP USB-Serial/JTAG re-enumeration and
comes back (under its stable /dev/serial/by-id/ path) a fraction of a second to a few seconds later;
an RFC2217 server refuses connections while its board is away. The console reopens through a
callable it was given, so this module knows nothing of transports.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import serial

from hil.serial_port import SerialPort

Reopen = Callable[[], SerialPort]

DEFAULT_RECONNECT_TIMEOUT = 20.0  # s a lost port may stay away (a hub power cycle plus a slow boot)


@dataclass(frozen=True)
class ReconnectPolicy:
    """How long and how often the console tries to reopen a lost port."""

    timeout: float = DEFAULT_RECONNECT_TIMEOUT
    first_delay: float = 0.05  # the USB-Serial/JTAG comes back in ~0.3-1 s: start small
    max_delay: float = 1.0  # a board that is back is noticed within this

    def delays(self) -> Iterator[float]:
        """Waits before each attempt: first_delay, doubling, capped at max_delay (endless)."""
        delay = self.first_delay
        while True:
            yield delay
            delay = min(delay * 2, self.max_delay)


@dataclass(frozen=True)
class PortGap:
    """One loss of the port, as the console logged it."""

    port: str
    reason: str
    lost_at: float  # time.time() when the read failed
    duration: float  # s until the port was open again
    attempts: int


@dataclass(frozen=True)
class ReopenOutcome:
    """What :func:`reopen_with_backoff` ended with: a port, or why not."""

    port: SerialPort | None
    attempts: int
    waited: float
    last_error: str
    stopped: bool  # ended by the stop request, not by the bound


def reopen_with_backoff(reopen: Reopen, policy: ReconnectPolicy, wait: Callable[[float], bool]) -> ReopenOutcome:
    """Call ``reopen`` after each back-off delay until it returns a port or ``policy.timeout`` passed.

    ``wait(seconds)`` waits for the delay and returns True when the caller wants to stop (the console
    closes); it must wake early then. Open errors (``SerialException``/``OSError``: no such device,
    connection refused) are expected while the board is away and only remembered.
    """
    start = time.monotonic()
    deadline = start + policy.timeout
    attempts, last_error = 0, "no attempt made"
    for delay in policy.delays():
        remaining = deadline - time.monotonic()
        if wait(max(0.0, min(delay, remaining))):
            return ReopenOutcome(None, attempts, time.monotonic() - start, last_error, stopped=True)
        attempts += 1
        try:
            port = reopen()
        except (serial.SerialException, OSError) as exc:
            last_error = str(exc).split("\n", 1)[0]
        else:
            return ReopenOutcome(port, attempts, time.monotonic() - start, "", stopped=False)
        if time.monotonic() >= deadline:
            break
    return ReopenOutcome(None, attempts, time.monotonic() - start, last_error, stopped=False)
