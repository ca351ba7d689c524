"""Where a board reaches this host: the servers bind to, advertise and certify the IPv4 address of
the board's ``network_interface``; a loopback URL is refused for a board that does not share this
host's loopback; the reachability preflight names the check that failed."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hil.net.address import BenchAddressError, interface_ipv4, loopback_url_refusal, server_host_for
from hil.net.reach import NetworkPath, ReachabilityError, check_connect, preflight
from hil.server.tls import SERVER_NAMES, generate_test_pki
from hil.server.under_test import ServerFactory
from hil.sim.station import Station

needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="interfaces and namespaces need root and `ip`"
)


@dataclass(frozen=True)
class Dummy:
    name: str
    address: str


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@pytest.fixture
def dummy() -> Iterator[Dummy]:
    """An interface of this host with an address of the benchmarking range (198.18.0.0/15), like a
    bench AP's (one end of a veth pair: this kernel has no dummy interfaces)."""
    name, third = f"hilt{os.getpid() % 100000}", os.getpid() % 250
    address = f"198.18.{third}.1"
    _ip("link", "add", name, "type", "veth", "peer", "name", f"{name}p")
    try:
        _ip("addr", "add", f"{address}/24", "dev", name)
        _ip("link", "set", name, "up")
        yield Dummy(name, address)
    finally:
        _ip("link", "delete", name)


@needs_root
def test_server_host_is_the_board_interface_address(dummy: Dummy) -> None:
    assert server_host_for("bench-1", dummy.name) == dummy.address
    assert server_host_for("bench-1", "lo") == "127.0.0.1"
    assert server_host_for("bench-1", None) == "127.0.0.1"  # refused later for a real board
    assert server_host_for("bench-1", dummy.name, "192.0.2.7") == "192.0.2.7"  # --hil-server-host wins


@needs_root
def test_interface_without_ipv4_or_missing_is_refused_naming_it(dummy: Dummy) -> None:
    _ip("addr", "flush", "dev", dummy.name)
    assert interface_ipv4(dummy.name) is None
    with pytest.raises(BenchAddressError, match=rf"board bench-1: its network_interface {dummy.name} has no IPv4"):
        server_host_for("bench-1", dummy.name)
    with pytest.raises(BenchAddressError, match=r"'nosuch0' does not exist on this host.*--hil-server-host"):
        server_host_for("bench-1", "nosuch0")


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:5001", "https://127.9.8.7:443", "http://localhost:80", "http://[::1]:5001"]
)
@pytest.mark.parametrize("interface", ["wlan1", None])
def test_loopback_url_refused_for_a_board_off_loopback(url: str, interface: str | None) -> None:
    refusal = loopback_url_refusal("bench-1", "/dev/ttyUSB0", interface, url)
    assert refusal is not None
    for part in ("board bench-1", "/dev/ttyUSB0", url, "network_interface", "--hil-server-host", "--hil-server-url"):
        assert part in refusal


def test_loopback_url_allowed_on_loopback_and_any_url_elsewhere() -> None:
    assert loopback_url_refusal("virtual-main", "rfc2217://127.0.0.1:1", "lo", "http://127.0.0.1:5001") is None
    assert loopback_url_refusal("bench-1", "/dev/ttyUSB0", "wlan1", "http://192.168.4.1:5001") is None


@needs_root
def test_server_binds_and_certifies_the_bench_address(dummy: Dummy, tmp_path: Path) -> None:
    """A board verifying the server's certificate by IP (esp-tls does) accepts it at the bench address."""
    pki = generate_test_pki(tmp_path / "pki", names=(*SERVER_NAMES, dummy.address))
    factory = ServerFactory(tmp_path, {}, pki, host=dummy.address)
    try:
        server = factory.start(tls="on")
        assert server.address[0] == dummy.address
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        with socket.create_connection(server.address, 5) as raw, ctx.wrap_socket(raw, server_hostname=dummy.address):
            pass
        openssl = shutil.which("openssl")
        if openssl:  # a real peer: OpenSSL's own verification of the IP SAN
            result = subprocess.run(
                [
                    openssl,
                    "s_client",
                    "-connect",
                    f"{dummy.address}:{server.address[1]}",
                    "-CAfile",
                    str(pki.ca_cert),
                    "-verify_ip",
                    dummy.address,
                    "-verify_return_error",
                ],
                input="",
                capture_output=True,
                text=True,
                timeout=20,
            )
            assert result.returncode == 0 and "Verify return code: 0 (ok)" in result.stdout, result.stdout[-800:]
    finally:
        factory.close()


@needs_root
def test_preflight_passes_from_the_board_namespace(board_network: Station) -> None:
    path = NetworkPath("virtual-1", board_network.host_interface, board_network.namespace)
    assert preflight(path, board_network.gateway) == []


@needs_root
def test_preflight_refuses_the_board_loopback(board_network: Station) -> None:
    path = NetworkPath("virtual-1", board_network.host_interface, board_network.namespace)
    with pytest.raises(ReachabilityError, match=r"board virtual-1 .*listen on 127\.0\.0\.1, the board's own loopback"):
        preflight(path, "127.0.0.1")


def test_preflight_refuses_an_address_this_host_does_not_have() -> None:
    path = NetworkPath("bench-1", "lo")
    with pytest.raises(ReachabilityError, match=r"no interface of this host has the address 192\.0\.2\.1"):
        preflight(path, "192.0.2.1")


@needs_root
def test_preflight_address_off_the_board_interface(board_network: Station, dummy: Dummy) -> None:
    path = NetworkPath("virtual-1", board_network.host_interface, board_network.namespace)
    with pytest.raises(ReachabilityError, match=rf"{dummy.address}, which is not an address of {path.interface}"):
        preflight(path, dummy.address)
    # given explicitly (--hil-server-host) it is a warning: Linux answers on any interface, and it is reached
    (warning,) = preflight(path, dummy.address, explicit=True)
    assert "not an address of" in warning
    # ... unless the board's side has no route to it: then the connect check says so
    _ip("-n", board_network.namespace or "", "route", "del", "default")
    with pytest.raises(ReachabilityError, match=rf"not reachable from network namespace {board_network.namespace}"):
        preflight(path, dummy.address, explicit=True)


def test_unreachable_external_server_is_named() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nobody listens here
    with pytest.raises(
        ReachabilityError,
        match=rf"board bench-1: the server .* 127\.0\.0\.1:{port} is not reachable"
        r" from this host \(connection refused\)",
    ):
        check_connect(NetworkPath("bench-1", "lo"), "127.0.0.1", port, what="the server under test (--hil-server-url)")
