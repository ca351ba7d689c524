"""Where a board can reach this host: the IPv4 address of the board's ``network_interface``, and
which server URLs a board cannot use because they point at its own loopback.

A board on ``lo`` (the default virtual board) shares this host's loopback, so ``127.0.0.1`` is this
host for it. Any other board (a real one on a bench AP, a virtual board in its own network
namespace) has a loopback of its own: a ``127.0.0.1`` URL provisioned into it dials the board itself.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import socket
import struct
from urllib.parse import urlsplit

LOOPBACK_INTERFACE = "lo"
LOOPBACK_HOST = "127.0.0.1"
_SIOCGIFADDR = 0x8915  # <linux/sockios.h>: the interface's primary IPv4 address
_IFNAMSIZ = 16


class BenchAddressError(ValueError):
    """No usable address for a board: the message names the board, the interface or URL, and what to set."""


def interface_ipv4(interface: str) -> str | None:
    """The primary IPv4 address of *interface* on this host, or None when it has none.

    ``OSError`` (ENODEV) when there is no such interface."""
    if not interface or len(interface.encode()) >= _IFNAMSIZ:
        raise OSError(errno.ENODEV, f"no network interface named {interface!r}")
    request = struct.pack("256s", interface.encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, request)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:  # the interface exists but has no IPv4 address
                return None
            raise OSError(exc.errno, f"no network interface named {interface!r}") from None
    return socket.inet_ntoa(reply[20:24])


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_local_address(host: str) -> bool:
    """True when this host can use *host* as a source or listening address (it is assigned here)."""
    if host in ("", "0.0.0.0", "::"):
        return False
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


def shares_host_loopback(network_interface: str | None) -> bool:
    """True when the board's traffic is on this host's loopback (its 127.0.0.1 is this host)."""
    return network_interface == LOOPBACK_INTERFACE


def server_host_for(board: str, network_interface: str | None, override: str | None = None) -> str:
    """The address the harness's servers, relay and proxies listen on and advertise to *board*:
    *override* (``--hil-server-host``) if given, else the IPv4 address of the board's
    ``network_interface``, else ``127.0.0.1`` (refused later for a board that does not share this
    host's loopback, see :func:`loopback_url_refusal`)."""
    if override:
        return override
    if not network_interface:
        return LOOPBACK_HOST
    try:
        address = interface_ipv4(network_interface)
    except OSError:
        raise BenchAddressError(
            f"board {board}: its network_interface {network_interface!r} does not exist on this host; "
            "fix network_interface in the boards file (`ip -br addr` lists the interfaces) or give "
            "--hil-server-host ADDRESS"
        ) from None
    if address is None:
        raise BenchAddressError(
            f"board {board}: its network_interface {network_interface} has no IPv4 address, so no server "
            f"can listen where the board reaches it; give the interface an address (ip addr add ... dev "
            f"{network_interface}) or give --hil-server-host ADDRESS"
        )
    return address


def loopback_url_refusal(board: str, port: str, network_interface: str | None, url: str) -> str | None:
    """Why *url* must not be provisioned into *board* (it points at the board's own loopback), or None."""
    host = urlsplit(url).hostname or ""
    if shares_host_loopback(network_interface) or not is_loopback_host(host):
        return None
    where = f"network_interface {network_interface}" if network_interface else "no network_interface"
    return (
        f"board {board} ({port}, {where}) would be provisioned with server URL {url}: {host} is the "
        "board's own loopback, not this host, so every upload would dial the board itself. Set the "
        "board's network_interface in the boards file (the host interface facing it, e.g. the bench "
        "AP's), or --hil-server-host ADDRESS (an address of this host the board can reach), or "
        "--hil-server-url URL (a server the board can reach)"
    )
