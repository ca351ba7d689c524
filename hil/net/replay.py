"""Replay of captured traffic: HTTP requests over new connections, UDP datagrams.

TCP cannot be replayed packet by packet (the server's sequence numbers differ); a captured HTTP
request is re-sent as bytes on a new connection and the response read back. UDP datagrams are
re-sent either from an ordinary socket (the kernel computes the checksum; replies are collected) or
as the captured IP packet with its original source (a spoofed replay): then lengths and checksums
are recomputed, because a loopback capture carries the unfinished checksum of checksum offload.
Every replay is bounded: ``times`` sends, ``parallel`` threads, a timeout per send.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from scapy.layers.inet import IP, UDP
from scapy.packet import Packet
from scapy.sendrecv import send

from hil.net.http import HttpMessage, HttpParseError, parse_message

Endpoint = tuple[str, int]
T = TypeVar("T")
MAX_TIMES = 10_000  # a replay loop is bounded whatever the caller asks
MAX_PARALLEL = 64


class ReplayError(RuntimeError):
    """A replay that could not be carried out (target unreachable, not HTTP...)."""


@dataclass(frozen=True)
class HttpReplayResult:
    """One re-sent request: the response, or why there was none."""

    index: int
    target: Endpoint
    response: HttpMessage | None
    error: str | None
    elapsed_s: float

    @property
    def status(self) -> int | None:
        """HTTP status, ``None`` if no response."""
        return self.response.status if self.response else None


@dataclass(frozen=True)
class UdpReplayResult:
    """One re-sent datagram and the replies that came back within the timeout."""

    index: int
    target: Endpoint
    replies: tuple[bytes, ...]


def send_http(raw: bytes, target: Endpoint, *, timeout: float = 5.0, method: str | None = None) -> HttpMessage:
    """Send one request (*raw* bytes) on a new connection and read its response.

    Raises :class:`ReplayError` when the target refuses, times out, or answers with non-HTTP.
    """
    deadline = time.monotonic() + timeout
    try:
        with socket.create_connection(target, timeout=timeout) as sock:
            sock.sendall(raw)
            return _read_response(sock, deadline, method, target)
    except (OSError, HttpParseError) as exc:
        raise ReplayError(f"replaying {len(raw)}-byte request to {target[0]}:{target[1]} failed: {exc}") from exc


def replay_http(
    request: HttpMessage | bytes, target: Endpoint, *, times: int = 1, parallel: int = 1, timeout: float = 5.0
) -> list[HttpReplayResult]:
    """Re-send a captured request *times* times, *parallel* at once, each on a new connection.

    The first ``parallel`` sends are released together (a barrier), which is what a race on the
    nonce check needs. Failures are results (``error``), not exceptions: a server that drops a
    replay is evidence too.
    """
    raw = request.raw if isinstance(request, HttpMessage) else bytes(request)
    method = request.method if isinstance(request, HttpMessage) else raw.split(b" ", 1)[0].decode("latin-1")

    def one(index: int) -> HttpReplayResult:
        t0 = time.monotonic()
        try:
            response = send_http(raw, target, timeout=timeout, method=method)
            return HttpReplayResult(index, target, response, None, time.monotonic() - t0)
        except ReplayError as exc:
            return HttpReplayResult(index, target, None, str(exc), time.monotonic() - t0)

    return _run_bounded(one, times, parallel, timeout)


def replay_udp(
    payloads: list[bytes], target: Endpoint, *, times: int = 1, parallel: int = 1, reply_timeout: float = 1.0
) -> list[UdpReplayResult]:
    """Re-send datagram payloads from fresh sockets and collect replies (each until *reply_timeout*
    of silence). One result per (repetition, datagram)."""
    jobs = [(rep, p) for rep in range(_bounded(times, MAX_TIMES, "times")) for p in payloads]

    def one(index: int) -> UdpReplayResult:
        payload = jobs[index][1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(reply_timeout)
            sock.sendto(payload, target)
            replies: list[bytes] = []
            while len(replies) < 64:
                try:
                    data, _ = sock.recvfrom(65535)
                except (TimeoutError, ConnectionRefusedError):
                    break
                replies.append(data)
        return UdpReplayResult(index, target, tuple(replies))

    return _run_bounded(one, len(jobs), parallel, reply_timeout)


def prepare_udp_packet(packet: Packet, target: Endpoint | None = None) -> Packet:
    """The IP/UDP part of a captured frame, optionally re-addressed, with lengths and checksums
    cleared so scapy recomputes them when it sends."""
    ip = packet.getlayer(IP)
    if ip is None or ip.getlayer(UDP) is None:
        raise ReplayError(f"packet {packet.summary()} is not IPv4/UDP")
    out: Packet = ip.copy()
    if target is not None:
        out.dst, out[UDP].dport = target[0], target[1]
    del out.len, out.chksum, out[UDP].len, out[UDP].chksum
    return IP(bytes(out))  # built: the fields now hold the recomputed values


def replay_udp_packets(packets: list[Packet], *, target: Endpoint | None = None, times: int = 1) -> list[Packet]:
    """Re-send captured UDP packets as they were (original source address: a spoofed replay) through a
    raw socket; needs CAP_NET_RAW. Replies go to the original source, so none are collected here
    (capture them). Returns the packets sent."""
    prepared = [prepare_udp_packet(p, target) for p in packets]
    sent: list[Packet] = []
    for _ in range(_bounded(times, MAX_TIMES, "times")):
        try:
            send(prepared, verbose=False)
        except PermissionError as exc:
            raise ReplayError(f"spoofed UDP replay needs CAP_NET_RAW ({exc}); use replay_udp instead") from exc
        sent.extend(prepared)
    return sent


def _read_response(sock: socket.socket, deadline: float, method: str | None, target: Endpoint) -> HttpMessage:
    buf = b""
    eof = False
    while True:
        parsed = parse_message(buf, is_response=True, eof=eof, request_method=method)
        if parsed is not None:
            return parsed[0]
        if eof:
            raise ReplayError(
                f"{target[0]}:{target[1]} closed the connection after {len(buf)} bytes without a complete HTTP response"
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ReplayError(f"no complete HTTP response from {target[0]}:{target[1]} in time")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        eof = not chunk
        buf += chunk


def _bounded(value: int, limit: int, name: str) -> int:
    if not 1 <= value <= limit:
        raise ValueError(f"{name} must be between 1 and {limit}, got {value}")
    return value


def _run_bounded(job: Callable[[int], T], count: int, parallel: int, timeout: float) -> list[T]:
    _bounded(count, MAX_TIMES * 64, "number of sends")
    parallel = _bounded(parallel, MAX_PARALLEL, "parallel")
    if parallel == 1:
        return [job(i) for i in range(count)]
    barrier = threading.Barrier(min(parallel, count))

    def released(index: int) -> T:
        if index < barrier.parties:
            try:
                barrier.wait(timeout)
            except threading.BrokenBarrierError:
                pass  # a slow thread start costs simultaneity, not the send
        return job(index)

    with ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="hil-replay") as pool:
        return list(pool.map(released, range(count)))
