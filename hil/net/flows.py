"""Flows out of captured packets: TCP reassembly per direction, UDP datagrams, HTTP on top.

TCP reassembly orders segments by sequence number (relative to the SYN, or to the lowest sequence
seen when the capture started mid-connection), drops retransmitted bytes, keeps the new tail of
partially overlapping segments and records gaps (bytes the capture never saw) instead of guessing.
A SYN on a 4-tuple whose previous connection ended starts a new flow (port reuse).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet
from scapy.utils import PcapReader

from hil.net.http import HttpExchange, HttpMessage, HttpParseError, pair_exchanges, parse_stream

Endpoint = tuple[str, int]
Direction = Literal["c2s", "s2c"]
Proto = Literal["tcp", "udp"]
_SEQ_MOD = 2**32
_SYN, _RST, _FIN, _ACK = 0x02, 0x04, 0x01, 0x10


@dataclass(frozen=True)
class FlowKey:
    """A conversation: transport and its two endpoints (client = the side that opened it)."""

    proto: Proto
    client: Endpoint
    server: Endpoint

    def __str__(self) -> str:
        return f"{self.proto} {self.client[0]}:{self.client[1]} -> {self.server[0]}:{self.server[1]}"


@dataclass
class TcpStream:
    """The reassembled bytes one side sent, with what the reassembly had to skip or drop."""

    data: bytes = b""
    segments: int = 0
    wire_bytes: int = 0  # payload bytes on the wire, retransmissions included
    retransmitted_bytes: int = 0
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (stream offset, missing bytes)
    times: list[tuple[int, float]] = field(default_factory=list)  # (stream offset, capture time) per segment


@dataclass
class Datagram:
    """One UDP datagram of a flow."""

    direction: Direction
    payload: bytes
    time: float
    packet: Packet


@dataclass
class Flow:
    """One TCP connection or UDP conversation."""

    key: FlowKey
    first_time: float
    last_time: float
    packets: int = 0
    streams: dict[str, TcpStream] = field(default_factory=lambda: {"c2s": TcpStream(), "s2c": TcpStream()})
    datagrams: list[Datagram] = field(default_factory=list)
    flags_seen: set[str] = field(default_factory=set)  # SYN, FIN, RST
    _segments: dict[str, list[tuple[int, bytes, float]]] = field(
        default_factory=lambda: {"c2s": [], "s2c": []}, repr=False
    )
    _isn: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def proto(self) -> str:
        """``tcp`` or ``udp``."""
        return self.key.proto

    def stream(self, direction: Direction) -> bytes:
        """Reassembled bytes of one direction (TCP), or the concatenated datagrams (UDP)."""
        if self.proto == "udp":
            return b"".join(d.payload for d in self.datagrams if d.direction == direction)
        return self.streams[direction].data

    def bytes_sent(self, direction: Direction) -> int:
        """Payload bytes one side delivered (retransmissions not counted twice)."""
        if self.proto == "udp":
            return sum(len(d.payload) for d in self.datagrams if d.direction == direction)
        return len(self.streams[direction].data)

    def time_of(self, direction: Direction, offset: int) -> float:
        """Capture time of the segment that carried byte *offset* of one direction's stream (TCP), e.g.
        of a message's first byte (``HttpMessage.offset``): requests of a kept-alive connection are
        ordered by it, not by the connection's start. UDP, or no payload: the flow's first time."""
        times = self.streams[direction].times if self.proto == "tcp" else []
        at = bisect.bisect_right(times, offset, key=lambda item: item[0]) - 1
        return times[at][1] if at >= 0 else self.first_time

    def http_requests(self) -> list[HttpMessage]:
        """HTTP requests the client sent, keep-alive split into messages (raises HttpParseError if not HTTP)."""
        return parse_stream(self.stream("c2s"), is_response=False)[0]

    def http_exchanges(self) -> list[HttpExchange]:
        """Requests paired with their responses (raises :class:`~hil.net.http.HttpParseError` if not HTTP)."""
        requests = self.http_requests()
        responses, _ = parse_stream(
            self.stream("s2c"), is_response=True, request_methods=[r.method or "" for r in requests]
        )
        return pair_exchanges(requests, responses)

    @property
    def closed(self) -> bool:
        """A FIN or RST was seen."""
        return bool(self.flags_seen & {"FIN", "RST"})


def read_pcap(path: str | Path) -> list[Packet]:
    """All packets of a pcap file (streamed reader, file closed on return)."""
    with PcapReader(str(path)) as reader:
        return list(reader)


def build_flows(packets: Iterable[Packet]) -> list[Flow]:
    """Group TCP/UDP packets into flows (in order of first packet) and reassemble TCP streams."""
    current: dict[frozenset, Flow] = {}
    flows: list[Flow] = []
    for pkt in packets:
        parsed = _addresses(pkt)
        if parsed is None:
            continue
        proto, src, dst, l4 = parsed
        tag = frozenset((proto, src, dst))
        flow = current.get(tag)
        is_syn = proto == "tcp" and int(l4.flags) & (_SYN | _ACK) == _SYN
        if flow is None or (is_syn and flow.closed):
            flow = _new_flow(proto, src, dst, l4, float(pkt.time))
            current[tag] = flow
            flows.append(flow)
        _add_packet(flow, pkt, proto, src, l4)
    for flow in flows:
        if flow.proto == "tcp":
            for direction in ("c2s", "s2c"):
                _reassemble(flow, direction)
    return flows


def flows_from_pcap(path: str | Path) -> list[Flow]:
    """:func:`read_pcap` then :func:`build_flows`."""
    return build_flows(read_pcap(path))


def http_exchanges_by_connection(path: str | Path) -> list[list[HttpExchange]]:
    """The HTTP exchanges of each TCP connection in the pcap at *path*, in capture order; connections
    that are not HTTP (TLS, another protocol) are left out."""
    out = []
    for flow in flows_from_pcap(path):
        if flow.proto != "tcp":
            continue
        try:
            out.append(flow.http_exchanges())
        except HttpParseError:
            continue
    return out


def _addresses(pkt: Packet) -> tuple[Proto, Endpoint, Endpoint, Packet] | None:
    ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
    if ip is None:
        return None
    layers: tuple[tuple[Proto, type[Packet]], ...] = (("tcp", TCP), ("udp", UDP))
    for proto, layer in layers:
        l4 = ip.getlayer(layer)
        if l4 is not None:
            return proto, (ip.src, int(l4.sport)), (ip.dst, int(l4.dport)), l4
    return None


def _new_flow(proto: Proto, src: Endpoint, dst: Endpoint, l4: Packet, when: float) -> Flow:
    # The client is the SYN sender; a SYN-ACK seen first means the destination opened it; without
    # a handshake (capture started late, or UDP) the first sender is taken as the client.
    if proto == "tcp" and int(l4.flags) & (_SYN | _ACK) == (_SYN | _ACK):
        src, dst = dst, src
    return Flow(FlowKey(proto, src, dst), first_time=when, last_time=when)


def _add_packet(flow: Flow, pkt: Packet, proto: str, src: Endpoint, l4: Packet) -> None:
    direction: Direction = "c2s" if src == flow.key.client else "s2c"
    when = float(pkt.time)
    flow.packets += 1
    flow.last_time = max(flow.last_time, when)
    payload = bytes(l4.payload)
    if proto == "udp":
        flow.datagrams.append(Datagram(direction, payload, when, pkt))
        return
    flags = int(l4.flags)
    for bit, name in ((_SYN, "SYN"), (_FIN, "FIN"), (_RST, "RST")):
        if flags & bit:
            flow.flags_seen.add(name)
    if flags & _SYN:
        flow._isn[direction] = (int(l4.seq) + 1) % _SEQ_MOD
    if payload:
        flow._segments[direction].append((int(l4.seq), payload, when))
        flow.streams[direction].segments += 1
        flow.streams[direction].wire_bytes += len(payload)


def _reassemble(flow: Flow, direction: str) -> None:
    segments = flow._segments[direction]
    stream = flow.streams[direction]
    if not segments:
        return
    anchor = flow._isn.get(direction, segments[0][0])
    relative = [(_rel(seq, anchor), data, when) for seq, data, when in segments]
    base = 0 if direction in flow._isn else min(r for r, _, _ in relative)
    relative.sort(key=lambda item: item[0])  # stable: the first copy of a retransmit wins
    out = bytearray()
    expected = base
    for start, data, when in relative:
        end = start + len(data)
        if end <= expected:
            stream.retransmitted_bytes += len(data)
            continue
        if start > expected:
            stream.gaps.append((len(out), start - expected))
        elif start < expected:
            stream.retransmitted_bytes += expected - start
            data = data[expected - start :]
        stream.times.append((len(out), when))
        out += data
        expected = end
    stream.data = bytes(out)


def _rel(seq: int, anchor: int) -> int:
    """Sequence distance from *anchor*, signed, modulo 2**32 (handles wrap-around)."""
    diff = (seq - anchor) % _SEQ_MOD
    return diff - _SEQ_MOD if diff >= _SEQ_MOD // 2 else diff
