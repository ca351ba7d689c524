"""Where a board serves CoAP or CoAPS, and opening a client there (:meth:`CoapEndpoint.connect`)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from hil.coap.channel import DtlsChannel, UdpChannel, peer_name
from hil.coap.client import CoapClient
from hil.coap.errors import CoapError

COAP_PORT = 5683
COAPS_PORT = 5684
DEFAULT_HANDSHAKE_TIMEOUT = 10.0  # well past the SOP's 3 s target: a slow handshake is measured, not lost


@dataclass(frozen=True)
class CoapEndpoint:
    """A CoAP (``secure=False``) or CoAPS endpoint with its PSK; the key never shows in a repr."""

    host: str
    port: int
    secure: bool
    psk_identity: str = ""
    psk_key: bytes = field(default=b"", repr=False)

    @property
    def scheme(self) -> str:
        return "coaps" if self.secure else "coap"

    @property
    def url(self) -> str:
        """``coap[s]://host:port`` (a request path is appended to it)."""
        return f"{self.scheme}://{peer_name(self.host, self.port)}"

    def with_psk(self, identity: str | None = None, key: bytes | str | None = None) -> CoapEndpoint:
        """This endpoint with another PSK identity and/or key (wrong-PSK scenarios)."""
        new_key = self.psk_key if key is None else (key.encode() if isinstance(key, str) else key)
        return replace(self, psk_identity=self.psk_identity if identity is None else identity, psk_key=new_key)

    def connect(
        self, *, handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT, ciphers: tuple[str, ...] | None = None
    ) -> CoapClient:
        """A client for this endpoint: for CoAPS, after a completed DTLS handshake (its duration and
        bytes are ``client.handshake``); raises :class:`~hil.coap.errors.DtlsHandshakeFailed` (or its
        ``DtlsHandshakeTimeout``) and leaves nothing open when the handshake does not complete."""
        if not self.secure:
            udp = UdpChannel(self.host, self.port)
            udp.open()
            return CoapClient(udp, scheme="coap")
        channel = DtlsChannel(self.host, self.port, self.psk_identity, self.psk_key, ciphers=ciphers)
        channel.open()
        try:
            channel.handshake(handshake_timeout)
        except CoapError:
            channel.close()
            raise
        return CoapClient(channel, scheme="coaps")
