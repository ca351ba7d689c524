"""The virtual board's own network: a network namespace behind a veth pair, as a real board has a
network of its own (its 127.0.0.1 is itself, the host is reached through an interface that can be
sniffed).

``hil sim --netns`` creates ``hil-sim-<pid>`` with ``sta0`` inside (10.77.N.2/30, default route
via the host) and ``hsim<pid>`` on this host (10.77.N.1/30), and removes both when it stops. A
namespace left behind by a process that died (SIGKILL) is removed by the next one that starts. The
process itself stays in the host's namespace, so its serial port (USB on a real board) and control
socket are not network traffic; the firmware's sockets are created inside the namespace
(:func:`socket_in`). Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) and iproute2's ``ip``.
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hil.sim.station import Station

NAMESPACE_PREFIX = "hil-sim-"
HOST_IF_PREFIX = "hsim"  # + pid: at most 11 characters (IFNAMSIZ is 16 with the NUL)
BOARD_IF = "sta0"  # inside the namespace: the station interface
SUBNET = ipaddress.ip_network("10.77.0.0/16")  # 10.77.N.0/30 per board, N = 0..255
PREFIX = 30
NETNS_DIR = Path("/run/netns")
LOCK_PATH = Path("/run/lock/hil-sim-netns.lock")  # serialises subnet choice across processes
IP_TIMEOUT = 10.0
_CLONE_NEWNET = 0x40000000


class NetnsError(RuntimeError):
    """The namespace could not be set up or entered; the message says what is missing."""


def check_available() -> None:
    """Raise :class:`NetnsError` unless this process may create namespaces (root and ``ip``)."""
    if shutil.which("ip") is None:
        raise NetnsError("hil sim --netns needs iproute2's `ip` command (apt-get install iproute2)")
    if os.geteuid() != 0:
        raise NetnsError(
            "hil sim --netns needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create a network namespace "
            "and a veth pair; run as root or drop --netns (--hil-sim-netns)"
        )


def _ip(*args: str) -> str:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=IP_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise NetnsError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip() or proc.returncode}")
    return proc.stdout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _owner(name: str, prefix: str) -> int | None:
    rest = name[len(prefix) :] if name.startswith(prefix) else ""
    return int(rest) if rest.isdigit() else None


def remove_stale() -> list[str]:
    """Remove the namespaces and host veths of ``hil sim`` processes that are gone; their names."""
    removed = []
    names = sorted(p.name for p in NETNS_DIR.iterdir()) if NETNS_DIR.is_dir() else []
    for name in names:
        pid = _owner(name, NAMESPACE_PREFIX)
        if pid is not None and not _alive(pid):
            _ip("netns", "delete", name)  # its veth end goes with it, and so does the host's peer
            removed.append(name)
    for link in json.loads(_ip("-j", "link", "show") or "[]"):
        pid = _owner(link.get("ifname", ""), HOST_IF_PREFIX)
        if pid is not None and not _alive(pid):
            _ip("link", "delete", link["ifname"])
            removed.append(link["ifname"])
    return removed


def _used_subnets() -> set[int]:
    used = set()
    for link in json.loads(_ip("-j", "-4", "addr", "show") or "[]"):
        for info in link.get("addr_info", []):
            address = ipaddress.ip_address(info.get("local", "0.0.0.0"))
            if address in SUBNET:
                used.add(int(address) >> 8 & 0xFF)
    return used


@contextmanager
def _subnet_lock() -> Iterator[None]:
    LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_PATH, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def create(pid: int | None = None) -> Station:
    """Create the namespace and veth pair of process *pid* (default: this one); the board's
    :class:`Station` (its ``host_interface`` is the host-side veth). Removes stale ones first."""
    check_available()
    pid = os.getpid() if pid is None else pid
    namespace, host_if = f"{NAMESPACE_PREFIX}{pid}", f"{HOST_IF_PREFIX}{pid}"
    with _subnet_lock():
        remove_stale()
        free = sorted(set(range(256)) - _used_subnets())
        if not free:
            raise NetnsError(f"all 256 board subnets of {SUBNET} are in use: stop other `hil sim --netns` boards")
        base = int(SUBNET.network_address) + (free[0] << 8)
        host_ip, board_ip = str(ipaddress.ip_address(base + 1)), str(ipaddress.ip_address(base + 2))
        try:
            _ip("netns", "add", namespace)
            _ip("link", "add", host_if, "type", "veth", "peer", "name", BOARD_IF, "netns", namespace)
            _ip("addr", "add", f"{host_ip}/{PREFIX}", "dev", host_if)
            _ip("link", "set", host_if, "up")
            _ip("-n", namespace, "addr", "add", f"{board_ip}/{PREFIX}", "dev", BOARD_IF)
            _ip("-n", namespace, "link", "set", BOARD_IF, "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", namespace, "route", "add", "default", "via", host_ip)
        except NetnsError:
            delete(Station(board_ip, PREFIX, host_ip, namespace, host_if))
            raise
    return Station(board_ip, PREFIX, host_ip, namespace, host_if)


def delete(station: Station) -> None:
    """Remove the station's namespace and host-side veth (idempotent; nothing for a loopback station)."""
    if station.namespace and (NETNS_DIR / station.namespace).exists():
        subprocess.run(
            ["ip", "netns", "delete", station.namespace], capture_output=True, timeout=IP_TIMEOUT, check=False
        )
    if station.namespace and Path("/sys/class/net", station.host_interface).exists():
        subprocess.run(
            ["ip", "link", "delete", station.host_interface], capture_output=True, timeout=IP_TIMEOUT, check=False
        )


def socket_in(namespace: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket created inside network namespace *namespace* (by a short-lived thread that entered
    it; the caller's thread stays where it is). :class:`NetnsError` if it cannot be entered."""
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def make() -> None:
        try:
            with open(NETNS_DIR / namespace, "rb") as handle:
                if ctypes.CDLL(None, use_errno=True).setns(handle.fileno(), _CLONE_NEWNET) != 0:
                    raise NetnsError(f"cannot enter network namespace {namespace}: {os.strerror(ctypes.get_errno())}")
            made.append(socket.socket(family, kind, proto))
        except (OSError, NetnsError) as exc:
            failed.append(exc)

    thread = threading.Thread(target=make, name=f"netns-{namespace}", daemon=True)
    thread.start()
    thread.join()
    if failed:
        raise NetnsError(f"board network {namespace}: {failed[0]}")
    return made[0]
