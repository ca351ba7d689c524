"""Replay: HTTP over new connections (N times, parallel, other target) and UDP on loopback, including a
spoofed replay of a captured packet whose offload checksum had to be recomputed."""

from __future__ import annotations

import json
import os
import socket

import pytest
from scapy.layers.inet import IP, UDP

from hil.net.http import build_request
from hil.net.replay import ReplayError, prepare_udp_packet, replay_http, replay_udp, replay_udp_packets, send_http
from hil.net.synth import udp_frame


def test_http_replay_times_and_parallel_each_on_new_connection(http_server) -> None:
    target = http_server.server_address[:2]
    req = build_request("POST", "/api/upload/data", b'{"nonce":1}', host="server")
    results = replay_http(req, target, times=6, parallel=3)
    assert [r.status for r in results] == [200] * 6 and all(r.error is None for r in results)
    assert sorted(json.loads(r.response.body)["n"] for r in results) == [1, 2, 3, 4, 5, 6]
    assert http_server.hits == [("POST", "/api/upload/data", b'{"nonce":1}')] * 6


def test_http_replay_to_dead_target_is_a_result_not_an_exception() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        (result,) = replay_http(build_request("GET", "/", host="x"), s.getsockname(), timeout=2)
        with pytest.raises(ReplayError, match="127.0.0.1"):
            send_http(b"GET / HTTP/1.1\r\n\r\n", s.getsockname(), timeout=2)
    assert result.response is None and "refused" in result.error.lower()


def test_replay_bounds_are_enforced(http_server) -> None:
    with pytest.raises(ValueError, match="parallel"):
        replay_http(b"GET / HTTP/1.1\r\n\r\n", http_server.server_address[:2], parallel=1000)


def test_udp_replay_collects_replies(board_addr: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind((board_addr, 0))
        results = replay_udp([b"a", b"b"], server.getsockname(), times=2, reply_timeout=0.1)
        got = sorted(server.recvfrom(10)[0] for _ in range(4))
    assert got == [b"a", b"a", b"b", b"b"] and len(results) == 4 and all(r.replies == () for r in results)


@pytest.mark.skipif(os.geteuid() != 0, reason="a spoofed replay needs a raw socket (CAP_NET_RAW)")
def test_spoofed_udp_replay_recomputes_the_offload_checksum(board_addr: str) -> None:
    receiver_addr = board_addr.rsplit(".", 1)[0] + ".250"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind((receiver_addr, 0))
        receiver.settimeout(2)
        captured = udp_frame((board_addr, 5683), ("127.0.0.1", 9), b"coap-get")
        captured[UDP].chksum = 0xBEEF  # what a loopback capture holds under checksum offload
        broken = IP(bytes(captured[IP]))
        assert broken[UDP].chksum == 0xBEEF
        prepared = prepare_udp_packet(captured, target=receiver.getsockname())
        assert prepared[UDP].chksum != 0xBEEF and IP(bytes(prepared)).dst == receiver_addr
        replay_udp_packets([captured], target=receiver.getsockname(), times=2)
        for _ in range(2):
            data, peer = receiver.recvfrom(100)
            assert (data, peer) == (b"coap-get", (board_addr, 5683))  # the board's address, spoofed
