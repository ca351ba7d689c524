"""The CoAP client's message layer against a scripted UDP peer: confirmable requests retransmitted
with RFC 7252's doubling back-off and given up after MAX_RETRANSMIT, never past the caller's timeout;
separate responses ACKed; a Reset raised; unrelated datagrams ignored."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from aiocoap import Message
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type

from hil.coap.channel import UdpChannel
from hil.coap.client import CoapClient, Transmission
from hil.coap.errors import CoapReset, CoapTimeout

FAST = Transmission(ack_timeout=0.1, ack_random_factor=1.5, max_retransmit=4)
Script = Callable[[socket.socket, Message, tuple[str, int]], None]


class Peer:
    """A UDP peer on loopback that records every datagram (with its arrival time) and answers each
    with *script* (None: silence)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.received: list[tuple[float, Message]] = []
        self.script: Script | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            message = Message.decode(data)
            self.received.append((time.monotonic(), message))
            if self.script is not None:
                self.script(self.sock, message, source)

    def client(self) -> CoapClient:
        channel = UdpChannel("127.0.0.1", self.port)
        channel.open()
        return CoapClient(channel, transmission=FAST)


def reply(sock: socket.socket, to: tuple[str, int], code: Code, mtype: Type, mid: int, token: bytes) -> None:
    message = Message(code=code, payload=b"21.5" if code.is_response() else b"")
    message.mtype, message.mid, message.token = mtype, mid, token
    sock.sendto(message.encode(), to)


@pytest.fixture
def peer() -> Iterator[Peer]:
    p = Peer()
    p._thread.start()
    yield p
    p._stop.set()
    p._thread.join(2)
    p.sock.close()


def test_unanswered_confirmable_request_backs_off_then_gives_up(peer: Peer) -> None:
    with peer.client() as client, pytest.raises(CoapTimeout, match="4 retransmissions") as failure:
        client.get("sensor", timeout=30)
    times = [t for t, _ in peer.received]
    assert len(times) == 1 + FAST.max_retransmit
    assert len({m.mid for _, m in peer.received}) == 1  # the same message, retransmitted
    gaps = [b - a for a, b in itertools.pairwise(times)]
    first = gaps[0]
    assert FAST.ack_timeout * 0.9 <= first <= FAST.ack_timeout * FAST.ack_random_factor + 0.1
    for earlier, later in itertools.pairwise(gaps):
        assert later == pytest.approx(2 * earlier, rel=0.3, abs=0.05)  # the timeout doubles
    assert f"coap://127.0.0.1:{peer.port}/sensor" in str(failure.value)


def test_the_callers_timeout_bounds_the_retransmissions(peer: Peer) -> None:
    started = time.monotonic()
    with peer.client() as client, pytest.raises(CoapTimeout):
        client.get("sensor", timeout=0.35)
    assert time.monotonic() - started < 0.35 + 0.3
    assert 2 <= len(peer.received) < 1 + FAST.max_retransmit  # cut short by the bound, not by MAX_RETRANSMIT


def test_piggybacked_response(peer: Peer) -> None:
    peer.script = lambda sock, m, to: reply(sock, to, Code.CONTENT, Type.ACK, m.mid, m.token)
    with peer.client() as client:
        response = client.get("sensor", timeout=2)
    assert (response.code, response.payload, response.retransmissions) == ("2.05", b"21.5", 0)
    assert response.wire.datagrams_sent == 1 and response.wire.datagrams_received == 1


def test_separate_response_is_acked(peer: Peer) -> None:
    def separate(sock: socket.socket, m: Message, to: tuple[str, int]) -> None:
        if m.code is Code.EMPTY:
            return  # the client's ACK of our response: recorded, nothing to answer
        reply(sock, to, Code.EMPTY, Type.ACK, m.mid, b"")  # "wait", then the response as a CON
        reply(sock, to, Code.CHANGED, Type.CON, (m.mid + 100) % 0x10000, m.token)

    peer.script = separate
    with peer.client() as client:
        response = client.post("ota", timeout=2)
        assert response.code == "2.04"
        deadline = time.monotonic() + 2
        while len(peer.received) < 2 and time.monotonic() < deadline:
            client.channel.receive(time.monotonic() + 0.05)  # wait for the ACK to reach the peer
    ack = peer.received[-1][1]
    assert ack.mtype is Type.ACK and ack.code is Code.EMPTY
    assert ack.mid == (peer.received[0][1].mid + 100) % 0x10000


def test_reset_is_raised(peer: Peer) -> None:
    peer.script = lambda sock, m, to: reply(sock, to, Code.EMPTY, Type.RST, m.mid, b"")
    with peer.client() as client, pytest.raises(CoapReset, match="RST"):
        client.get("light", timeout=2)


def test_unrelated_datagrams_are_ignored(peer: Peer) -> None:
    def noisy(sock: socket.socket, m: Message, to: tuple[str, int]) -> None:
        sock.sendto(b"\xff not coap", to)
        reply(sock, to, Code.CONTENT, Type.NON, (m.mid + 1) % 0x10000, b"other")  # another exchange's
        reply(sock, to, Code.CONTENT, Type.ACK, m.mid, m.token)

    peer.script = noisy
    with peer.client() as client:
        assert client.get("sensor", timeout=2).payload == b"21.5"


def test_non_confirmable_request_is_not_retransmitted(peer: Peer) -> None:
    with peer.client() as client, pytest.raises(CoapTimeout):
        client.get("sensor", confirmable=False, timeout=0.5)
    assert len(peer.received) == 1 and peer.received[0][1].mtype is Type.NON
