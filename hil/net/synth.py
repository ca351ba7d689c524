"""Synthesised Ethernet/IP/TCP/UDP frames for bytes seen at the socket level.

The recording relay sees payload, not packets; to write a pcap any tool reads as a normal
conversation it re-creates the frames: a three-way handshake, data segments no larger than the MSS
with consistent sequence/ack numbers, and a FIN exchange. Checksums are computed by scapy when the
frames are built, so ``tshark`` and :mod:`hil.net.flows` see valid packets.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet

Endpoint = tuple[str, int]
DEFAULT_MSS = 1400  # like the virtual board's clamped MSS: frames stay far below the 65535 snaplen
_SEQ_MOD = 2**32


def _frame(src: Endpoint, dst: Endpoint, l4: Packet, when: float) -> Packet:
    pkt = Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00") / IP(src=src[0], dst=dst[0]) / l4
    pkt = Ether(bytes(pkt))  # build now: fixes lengths and checksums, as on the wire
    pkt.time = when
    return pkt


def udp_frame(src: Endpoint, dst: Endpoint, payload: bytes, when: float | None = None) -> Packet:
    """One UDP datagram as an Ethernet frame with a correct checksum."""
    return _frame(src, dst, UDP(sport=src[1], dport=dst[1]) / payload, time.time() if when is None else when)


@dataclass
class TcpConversation:
    """Sequence-number bookkeeping for one synthesised TCP connection.

    Each method returns the frames for one event; ``clock`` stamps them (wall time by default).
    """

    client: Endpoint
    server: Endpoint
    mss: int = DEFAULT_MSS
    client_isn: int = 1000
    server_isn: int = 5000
    clock: Callable[[], float] = time.time
    _next: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.mss <= 0:
            raise ValueError(f"MSS must be positive, got {self.mss}")
        self._next = {"c2s": (self.client_isn + 1) % _SEQ_MOD, "s2c": (self.server_isn + 1) % _SEQ_MOD}

    def handshake(self) -> list[Packet]:
        """SYN, SYN-ACK, ACK."""
        now = self.clock()
        return [
            _frame(
                self.client,
                self.server,
                TCP(
                    sport=self.client[1],
                    dport=self.server[1],
                    flags="S",
                    seq=self.client_isn,
                    options=[("MSS", self.mss)],
                ),
                now,
            ),
            _frame(
                self.server,
                self.client,
                TCP(
                    sport=self.server[1],
                    dport=self.client[1],
                    flags="SA",
                    seq=self.server_isn,
                    ack=self._next["c2s"],
                    options=[("MSS", self.mss)],
                ),
                now,
            ),
            self._segment("c2s", "A", b"", now),
        ]

    def data(self, direction: str, payload: bytes) -> list[Packet]:
        """*payload* from one side (``c2s``/``s2c``) as PSH-ACK segments of at most ``mss`` bytes."""
        now = self.clock()
        return [
            self._segment(direction, "PA", payload[i : i + self.mss], now) for i in range(0, len(payload), self.mss)
        ]

    def close(self, direction: str) -> list[Packet]:
        """FIN-ACK from one side (the other side's FIN comes from its own ``close``)."""
        frames = [self._segment(direction, "FA", b"", self.clock())]
        self._next[direction] = (self._next[direction] + 1) % _SEQ_MOD  # FIN consumes one number
        return frames

    def reset(self, direction: str) -> list[Packet]:
        """RST-ACK from one side (connection aborted)."""
        return [self._segment(direction, "RA", b"", self.clock())]

    def _segment(self, direction: str, flags: str, payload: bytes, when: float) -> Packet:
        other = "s2c" if direction == "c2s" else "c2s"
        src, dst = (self.client, self.server) if direction == "c2s" else (self.server, self.client)
        seq = self._next[direction]
        self._next[direction] = (seq + len(payload)) % _SEQ_MOD
        tcp = TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq, ack=self._next[other], window=65535)
        return _frame(src, dst, tcp / payload if payload else tcp, when)
