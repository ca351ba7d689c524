"""Reachability preflight: can the board's network path reach the address the harness's servers use?

Run once per session before the first scenario that needs a server. It checks, and says which
failed: the address is not the board's own loopback; it is assigned on this host, on the board's
``network_interface``; a TCP connection to it made from the board's side (its network namespace
when the inventory names one, else this host) is accepted. For ``--hil-server-url`` it connects to
that server from the same place.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from dataclasses import dataclass

from hil.net.address import interface_ipv4, is_local_address, is_loopback_host, shares_host_loopback
from hil.net.namespace import run_in_namespace

PROBE_TIMEOUT = 3.0


class ReachabilityError(RuntimeError):
    """The board cannot reach the server address; the message names the board, address and failed check."""


@dataclass(frozen=True)
class NetworkPath:
    """The board's side of the bench network, as the inventory describes it."""

    board: str
    interface: str | None
    namespace: str | None = None  # a network namespace on this host holding the board's side


def _connect(host: str, port: int, timeout: float) -> None:
    with socket.create_connection((host, port), timeout=timeout):
        pass


def _interface_addresses(interface: str) -> set[str]:
    """Every IPv4 address of *interface* (``ip`` lists secondary ones; the ioctl only the primary)."""
    primary = interface_ipv4(interface)
    addresses = {primary} if primary else set()
    ip = shutil.which("ip")
    if ip:
        out = subprocess.run(
            [ip, "-j", "-4", "addr", "show", "dev", interface], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        for link in json.loads(out or "[]"):
            addresses |= {a["local"] for a in link.get("addr_info", []) if "local" in a}
    return addresses


def check_server_address(path: NetworkPath, host: str, *, explicit: bool = False) -> list[str]:
    """Static checks of *host* (the address the harness's servers listen on) for *path*; raises
    :class:`ReachabilityError`, returns warnings (an explicit ``--hil-server-host`` off the
    board's interface is the user's choice: Linux answers on any interface)."""
    where = f"board {path.board} (network_interface {path.interface or 'not set'})"
    if is_loopback_host(host) and not shares_host_loopback(path.interface):
        raise ReachabilityError(
            f"{where}: the servers would listen on {host}, the board's own loopback. Set the board's "
            "network_interface in the boards file, or --hil-server-host ADDRESS, or --hil-server-url URL"
        )
    if not is_local_address(host):
        raise ReachabilityError(
            f"{where}: no interface of this host has the address {host}, so no server can listen there; "
            "fix --hil-server-host (`ip -br addr` lists this host's addresses)"
        )
    if path.interface is None or shares_host_loopback(path.interface):
        return []
    try:
        on_interface = _interface_addresses(path.interface)
    except OSError as exc:
        raise ReachabilityError(f"{where}: {exc.strerror}; fix network_interface in the boards file") from None
    if host in on_interface:
        return []
    message = (
        f"{where}: the servers listen on {host}, which is not an address of {path.interface} "
        f"(it has {', '.join(sorted(on_interface)) or 'no IPv4 address'})"
    )
    if not explicit:
        raise ReachabilityError(f"{message}; fix network_interface or give --hil-server-host ADDRESS")
    return [message]


def check_connect(path: NetworkPath, host: str, port: int, *, what: str, timeout: float = PROBE_TIMEOUT) -> None:
    """Connect to *host*:*port* from the board's side of the network (its namespace, else this
    host); :class:`ReachabilityError` naming the board, the place and the error if it fails."""
    place = f"network namespace {path.namespace}" if path.namespace else "this host"
    try:
        if path.namespace:
            run_in_namespace(path.namespace, lambda: _connect(host, port, timeout))
        else:
            _connect(host, port, timeout)
    except OSError as exc:
        reason = "timed out" if isinstance(exc, socket.timeout) else (exc.strerror or str(exc)).lower()
        raise ReachabilityError(
            f"board {path.board}: {what} {host}:{port} is not reachable from {place} ({reason}); check "
            f"the board's network_interface ({path.interface or 'not set'}), routes and firewall"
        ) from None


def preflight(path: NetworkPath, host: str, *, explicit: bool = False, timeout: float = PROBE_TIMEOUT) -> list[str]:
    """All checks for servers on *host*: the static ones, then a probe listener on *host* (any
    port) that a connection from the board's side must reach. Returns warnings."""
    warnings = check_server_address(path, host, explicit=explicit)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(1)
        check_connect(path, host, listener.getsockname()[1], what="a probe listener on", timeout=timeout)
    return warnings
