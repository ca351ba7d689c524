"""A board's CoAP and CoAPS endpoints for a scenario, and where their PSK comes from.

A real board's PSK is only ever read from the environment (the variables ``--hil-coap-psk-id-env`` and
``--hil-coap-psk-env`` name); a virtual board's is its provisioning identity's TEST ONLY PSK (NVS
``ecowatt/psk_id``, ``ecowatt/psk``) unless those variables are set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hil.coap.client import CoapClient
from hil.coap.endpoint import COAP_PORT, COAPS_PORT, DEFAULT_HANDSHAKE_TIMEOUT, CoapEndpoint
from hil.coap.errors import CoapError

# PROTOCOL.md's defaults, for an identity object that has no PSK fields (yet)
DEFAULT_PSK_ID = "iotlab2024"
DEFAULT_PSK = "secretkey123456"  # the SOP's documented default: TEST ONLY


@dataclass(frozen=True)
class Psk:
    """A PSK identity and key, and where they came from (printable; the key is not)."""

    identity: str
    key: bytes = field(repr=False)
    source: str


def board_psk(
    board: str, *, virtual: bool, device: Any, environ: Mapping[str, str], identity_env: str, key_env: str
) -> Psk:
    """The PSK to reach *board* with: from ``$identity_env``/``$key_env`` when the key variable is
    set; else, for a virtual board, *device*'s (its provisioning identity's ``psk_id``/``psk``); a
    real board without them is a :class:`CoapError` saying what to export."""
    key = environ.get(key_env)
    if key:
        identity = environ.get(identity_env)
        if identity is None:
            raise CoapError(
                f"board {board}: ${key_env} is set but ${identity_env} is not; export {identity_env}=<the PSK "
                "identity the board was provisioned with> (it may be empty only if the board's is)"
            )
        return Psk(identity, key.encode(), f"${identity_env} / ${key_env}")
    if not virtual:
        raise CoapError(
            f"board {board}: its CoAPS PSK is read from the environment only: export {identity_env}=<identity> "
            f"and {key_env}=<key> (NVS ecowatt/psk_id and ecowatt/psk of the board) before the run"
        )
    return Psk(
        getattr(device, "psk_id", DEFAULT_PSK_ID),
        str(getattr(device, "psk", DEFAULT_PSK)).encode(),
        "the virtual board's provisioning identity (TEST ONLY)",
    )


@dataclass
class BoardCoap:
    """The board's plain CoAP and CoAPS endpoints; :meth:`connect` opens clients that :meth:`close`
    closes (the fixture does it at teardown)."""

    board: str
    coap: CoapEndpoint
    coaps: CoapEndpoint
    psk_source: str
    _clients: list[CoapClient] = field(default_factory=list, repr=False)

    @classmethod
    def for_board(
        cls, board: str, host: str, psk: Psk, *, coap_port: int = COAP_PORT, coaps_port: int = COAPS_PORT
    ) -> BoardCoap:
        return cls(
            board=board,
            coap=CoapEndpoint(host, coap_port, secure=False),
            coaps=CoapEndpoint(host, coaps_port, True, psk.identity, psk.key),
            psk_source=psk.source,
        )

    def connect(
        self,
        secure: bool = True,
        *,
        identity: str | None = None,
        key: bytes | str | None = None,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
    ) -> CoapClient:
        """A client of the board's CoAPS (or, ``secure=False``, plain CoAP) endpoint, with the board's
        PSK unless *identity*/*key* replace it (wrong-PSK scenarios); closed by :meth:`close` too."""
        endpoint = self.coaps.with_psk(identity, key) if secure else self.coap
        client = endpoint.connect(handshake_timeout=handshake_timeout)
        self._clients.append(client)
        return client

    def close(self) -> None:
        """Close every client :meth:`connect` opened (CoAPS ones send close_notify)."""
        clients, self._clients = self._clients, []
        for client in clients:
            client.close()
