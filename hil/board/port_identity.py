"""Which device a port names, spelled one way: two spellings of one board must be one board.

A board can be named many ways: ``/dev/ttyUSB0``, its ``/dev/serial/by-id/usb-…`` link, a symlink
of one's own, ``rfc2217://localhost:4000`` or ``rfc2217://127.0.0.1:4000?ign_set_control``. Locks
(and anything else that asks "is this the same board?") key on :func:`resolve_port`, never on the
spelling. A device path resolves to its real path and then to the stable by-id name pointing at it
(``ttyUSB0`` is renumbered when boards are replugged; the by-id name follows the board). Network
ports resolve to scheme, IP address and TCP port (URL options dropped: they change how the client
talks, not which board answers).
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit

from hil.board.inventory import BY_ID_DIR, by_id_links

NETWORK_SCHEMES = ("rfc2217", "socket")


def resolve_port(port: str, by_id_dir: str = BY_ID_DIR) -> str:
    """The device ``port`` names: ``/dev/serial/by-id/…`` (else the real path) for a device path,
    ``scheme://IP:PORT`` for ``rfc2217://`` and ``socket://``, the spelling itself for other pyserial
    URLs (``loop://``: each open is its own loopback). Does I/O: ``realpath``, a by-id listing, DNS."""
    scheme, sep, _ = port.partition("://")
    if not sep:
        real = os.path.realpath(port)
        return by_id_links(by_id_dir).get(real, real)
    if scheme.lower() in NETWORK_SCHEMES:
        return _network_endpoint(scheme.lower(), port)
    return port


def _network_endpoint(scheme: str, url: str) -> str:
    parts = urlsplit(url)
    try:
        tcp_port = parts.port
    except ValueError:  # not a number: the open will say so; the spelling is all there is to key on
        return url
    if not parts.hostname or tcp_port is None:
        return url
    address = _address_of(parts.hostname)
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:{tcp_port}"


def _address_of(host: str) -> str:
    """The host's first IPv4 address (``localhost`` is 127.0.0.1 even where ``::1`` resolves first),
    else its first IPv6 one, else the name as given (it does not resolve: opening the port will fail)."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            infos = socket.getaddrinfo(host, None, family, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            continue
        if infos:
            return str(infos[0][4][0])
    return host.lower()
