"""Choosing the capture for a test: the sniffer when privileged, else the recording relay.

Fixtures call :func:`open_capture` once per test and hand the board
``capture.server_address(server)``: the server itself when sniffing, the relay when not. The
fallback is announced once per :class:`FallbackNotice` (one per session), never silently.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from hil.net.address import is_local_address
from hil.net.capture import CaptureError, CaptureStats, CaptureUnavailable, Sniffer, capture_path
from hil.net.relay import RecordingRelay

Endpoint = tuple[str, int]
log = logging.getLogger(__name__)


@dataclass
class FallbackNotice:
    """Says "capturing through the relay" once, and remembers why (for the report header)."""

    logger: logging.Logger = log
    reason: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def announce(self, reason: str) -> bool:
        """Log the fallback the first time; returns whether this call logged it."""
        with self._lock:
            if self.reason is not None:
                return False
            self.reason = reason
        self.logger.warning("packet capture unavailable, recording through a relay instead: %s", reason)
        return True


@dataclass
class Capture:
    """A running capture of one board: a sniffer or a recording relay in front of one server."""

    path: Path
    mode: Literal["sniffer", "relay"]
    sniffer: Sniffer | None = None
    relay: RecordingRelay | None = None
    upstream: Endpoint | None = None

    def server_address(self, server: Endpoint) -> Endpoint:
        """Where the board must send traffic meant for *server* so that it is captured."""
        if self.relay is not None and server == self.upstream:
            return self.relay.address
        return server

    def sync(self, timeout: float = 5.0) -> None:
        """Make the pcap hold everything exchanged so far, while capturing on (read it mid-test)."""
        if self.sniffer is not None:
            self.sniffer.sync(timeout)
        elif self.relay is not None and not self.relay.wait_idle(timeout):
            raise CaptureError(f"relay capture {self.path} still busy after {timeout}s")

    def stop(self) -> CaptureStats:
        """Drain and close; returns the stats (idempotent)."""
        if self.sniffer is not None:
            return self.sniffer.stop()
        assert self.relay is not None
        return self.relay.stop()

    def __enter__(self) -> Capture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def open_capture(
    path: str | Path,
    *,
    host: str,
    iface: str = "lo",
    upstream: Endpoint | None = None,
    relay_listen: Endpoint = ("127.0.0.1", 0),
    namespace: str | None = None,
    proto: Literal["tcp", "udp"] = "tcp",
    notice: FallbackNotice | None = None,
    force_relay: bool = False,
    extra_filter: str | None = None,
) -> Capture:
    """Start capturing board *host*'s traffic into *path*; returns a started :class:`Capture`.

    Sniffs *iface* when possible. Without the privilege (or with ``force_relay``) it starts a
    :class:`~hil.net.relay.RecordingRelay` to *upstream* (the server the board talks to) and
    announces it through *notice*; the relay connects upstream as the board would, from *host*
    (inside the board's network *namespace*, if it has one), so the server sees the board's
    address, not this host's (its rate limit is per peer). Without an *upstream* there is nothing to relay, so the
    :class:`~hil.net.capture.CaptureUnavailable` propagates (the scenario must skip, not pass).
    """
    path = Path(path)
    if not force_relay:
        sniffer = Sniffer(path, host=host, iface=iface, extra_filter=extra_filter)
        try:
            return Capture(path, "sniffer", sniffer=sniffer.start())
        except CaptureUnavailable as exc:
            if upstream is None:
                raise
            reason = str(exc)
    else:
        reason = "relay forced by configuration"
    if upstream is None:
        raise CaptureUnavailable(f"relay capture for board {host} needs the upstream server address")
    relay = RecordingRelay(
        path,
        upstream=upstream,
        listen=relay_listen,
        # the relay connects upstream as the board: from its address, in its namespace if it has one
        upstream_source=host if namespace or is_local_address(host) else None,
        upstream_namespace=namespace,
        proto=proto,
    ).start()
    (notice or FallbackNotice()).announce(reason)
    return Capture(path, "relay", relay=relay, upstream=upstream)


@dataclass
class CaptureRun:
    """Where this session's captures go, and the once-per-session fallback notice."""

    root: Path
    run: str
    notice: FallbackNotice = field(default_factory=FallbackNotice)

    def path_for(self, nodeid: str, kind: str = "") -> Path:
        """Where the capture of test *nodeid* goes (``kind`` names a second capture of that test)."""
        return capture_path(self.root, self.run, nodeid, kind)
