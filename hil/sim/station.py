"""The virtual board's network attachment (its Wi-Fi station once associated): address, mask,
gateway, the network namespace its sockets live in (None: this host's, the board on loopback) and
this host's end of the link."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

LOOPBACK_ADDRESS = "127.0.0.1"


@dataclass(frozen=True)
class Station:
    """Where the board's traffic comes from. ``prefix`` and ``gateway`` are what DHCP would hand
    out (printed in the network-up line); ``namespace`` is a name of ``ip netns``."""

    address: str = LOOPBACK_ADDRESS
    prefix: int = 8
    gateway: str = LOOPBACK_ADDRESS
    namespace: str | None = None
    host_interface: str = "lo"  # this host's end of the board's link: where its traffic can be sniffed

    def __post_init__(self) -> None:
        ipaddress.ip_address(self.address)  # ValueError names the bad address
        ipaddress.ip_address(self.gateway)

    @property
    def mask(self) -> str:
        """The netmask in dotted form (``255.255.255.252`` for /30)."""
        return str(ipaddress.ip_network(f"0.0.0.0/{self.prefix}").netmask)
