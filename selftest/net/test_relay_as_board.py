"""The recording relay connects upstream as the board: from the board's own address (in its network
namespace when it has one), so the server sees the board's peer address, as without the relay, and
an attacker on this host is told apart (the reference server rate-limits per device and peer)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from hil.net.fallback import open_capture
from hil.net.namespace import run_in_namespace
from hil.sim.station import Station

BOARD = "127.0.0.77"  # a virtual board's own loopback address


def _peer_through(capture, upstream: socket.socket, source: str, namespace: str | None = None) -> str:
    host, port = capture.server_address(upstream.getsockname())

    def dial() -> socket.socket:
        sock = socket.socket()
        sock.bind((source, 0))
        sock.connect((host, port))
        return sock

    client = run_in_namespace(namespace, dial) if namespace else dial()
    with client:
        accepted, peer = upstream.accept()
        accepted.close()
    return peer[0]


def test_relay_connects_upstream_from_the_board_address(tmp_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        capture = open_capture(tmp_path / "relay.pcap", host=BOARD, upstream=server.getsockname(), force_relay=True)
        try:
            assert _peer_through(capture, server, BOARD) == BOARD  # not 127.0.0.1, the relay's own
        finally:
            capture.stop()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="namespaces need root and `ip`")
def test_relay_connects_upstream_from_the_board_namespace(tmp_path: Path, board_network: Station) -> None:
    with socket.create_server((board_network.gateway, 0)) as server:
        capture = open_capture(
            tmp_path / "relay.pcap",
            host=board_network.address,
            upstream=server.getsockname(),
            relay_listen=(board_network.gateway, 0),
            namespace=board_network.namespace,
            force_relay=True,
        )
        try:
            peer = _peer_through(capture, server, board_network.address, board_network.namespace)
            assert peer == board_network.address  # the board, not this host's veth address
        finally:
            capture.stop()
