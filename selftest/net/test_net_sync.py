"""Sniffer.sync(): everything sent before the call is in the pcap when it returns, the capture goes
on, and the sync datagrams themselves never land in the file."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from hil.net.capture import Sniffer
from hil.net.flows import flows_from_pcap

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sniffing needs CAP_NET_RAW (run as root in CI)")


def _send(addr: str, payloads: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((addr, 0))
        for payload in payloads:
            sock.sendto(payload, sock.getsockname())


def _payloads(path: Path) -> list[bytes]:
    return [d.payload for f in flows_from_pcap(path) for d in f.datagrams]


def test_sync_makes_the_pcap_readable_mid_capture_and_capture_continues(tmp_path: Path, board_addr: str) -> None:
    path = tmp_path / "sync.pcap"
    first = [b"first-%03d" % i for i in range(200)]
    second = [b"second-%d" % i for i in range(3)]
    with Sniffer(path, host=board_addr) as sniffer:
        _send(board_addr, first)
        sniffer.sync()
        assert _payloads(path) == first  # read while the sniffer still runs
        assert sniffer.running
        _send(board_addr, second)
        sniffer.sync()
        assert _payloads(path) == first + second
    stats = sniffer.stop()
    assert stats.packets_written == len(first) + len(second)
    assert b"hil-capture-sync" not in path.read_bytes()


def test_sync_after_stop_returns_at_once(tmp_path: Path, board_addr: str) -> None:
    sniffer = Sniffer(tmp_path / "s.pcap", host=board_addr).start()
    _send(board_addr, [b"x"])
    sniffer.stop()
    sniffer.sync(timeout=0.01)  # stopped: the file is complete, nothing to wait for
    assert _payloads(tmp_path / "s.pcap") == [b"x"]
