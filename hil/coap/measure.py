"""Figures the SOP asks for: DTLS handshake time over several handshakes (median, p95, against its
3 s target) and bytes on the wire per request, CoAP beside CoAPS."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from hil.coap.endpoint import DEFAULT_HANDSHAKE_TIMEOUT, CoapEndpoint
from hil.coap.wire import WireStats

HANDSHAKE_TARGET_S = 3.0  # sop-06 Part A: "DTLS handshake time (target: < 3 seconds)"


@dataclass(frozen=True)
class HandshakeFigures:
    """Durations (s) of *n* handshakes with one endpoint and the bytes of one (the last)."""

    durations_s: tuple[float, ...]
    wire: WireStats
    cipher: str

    @property
    def median_s(self) -> float:
        return statistics.median(self.durations_s)

    @property
    def p95_s(self) -> float:
        if len(self.durations_s) < 2:
            return self.durations_s[0]
        return statistics.quantiles(self.durations_s, n=20, method="inclusive")[18]

    @property
    def meets_target(self) -> bool:
        return self.p95_s < HANDSHAKE_TARGET_S


@dataclass(frozen=True)
class RequestBytes:
    """Mean UDP payload bytes of one request and of its response (retransmissions included)."""

    sent: float
    received: float

    @property
    def total(self) -> float:
        return self.sent + self.received


def measure_handshakes(
    endpoint: CoapEndpoint, count: int, *, timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
) -> HandshakeFigures:
    """*count* fresh handshakes with a CoAPS *endpoint*, each session closed (close_notify) after."""
    durations: list[float] = []
    last = None
    for _ in range(count):
        with endpoint.connect(handshake_timeout=timeout) as client:
            last = client.handshake
        if last is None:
            raise ValueError(f"{endpoint.url} is not a CoAPS endpoint: no handshake to measure")
        durations.append(last.duration_s)
    if last is None:
        raise ValueError("count must be at least 1")
    return HandshakeFigures(tuple(durations), last.wire, last.cipher)


def measure_request_bytes(endpoint: CoapEndpoint, path: str, count: int, *, timeout: float = 10.0) -> RequestBytes:
    """Mean bytes of ``GET path`` over *count* requests in one session (a CoAPS handshake excluded)."""
    if count < 1:
        raise ValueError("count must be at least 1")
    with endpoint.connect() as client:
        responses = [client.get(path, timeout=timeout) for _ in range(count)]
    return RequestBytes(
        sent=sum(r.wire.bytes_sent for r in responses) / count,
        received=sum(r.wire.bytes_received for r in responses) / count,
    )
