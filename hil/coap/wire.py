"""Bytes on the wire: UDP payload sizes sent and received, so a scenario can report CoAP vs CoAPS
sizes and the DTLS handshake's cost separately from the requests'."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class WireStats:
    """Datagrams and UDP payload bytes one channel sent and received (retransmissions included)."""

    datagrams_sent: int = 0
    bytes_sent: int = 0
    datagrams_received: int = 0
    bytes_received: int = 0

    def sent(self, size: int) -> None:
        self.datagrams_sent += 1
        self.bytes_sent += size

    def received(self, size: int) -> None:
        self.datagrams_received += 1
        self.bytes_received += size

    def snapshot(self) -> WireStats:
        """A copy, to subtract from later (:meth:`since`)."""
        return WireStats(self.datagrams_sent, self.bytes_sent, self.datagrams_received, self.bytes_received)

    def since(self, earlier: WireStats) -> WireStats:
        """What was sent and received after *earlier* (a :meth:`snapshot` of the same channel)."""
        return WireStats(
            self.datagrams_sent - earlier.datagrams_sent,
            self.bytes_sent - earlier.bytes_sent,
            self.datagrams_received - earlier.datagrams_received,
            self.bytes_received - earlier.bytes_received,
        )

    @property
    def total_bytes(self) -> int:
        return self.bytes_sent + self.bytes_received


@dataclass(frozen=True)
class Handshake:
    """A completed DTLS handshake: how long it took (monotonic clock), its bytes, what it agreed."""

    duration_s: float
    wire: WireStats
    cipher: str
    version: str
