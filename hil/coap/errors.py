"""What can go wrong talking CoAP to a board, each error naming the peer and what to check."""

from __future__ import annotations


class CoapError(Exception):
    """A CoAP or CoAPS exchange failed (base class)."""


class CoapTimeout(CoapError):
    """No answer within the caller's bound (a request, or a DTLS handshake met by silence)."""


class CoapReset(CoapError):
    """The peer answered a request with a Reset (RST): it did not accept the message."""


class DtlsHandshakeFailed(CoapError):
    """The DTLS handshake did not complete: the peer sent an alert, or (subclass
    :class:`DtlsHandshakeTimeout`) said nothing in time, which is how a wrong PSK usually looks."""


class DtlsHandshakeTimeout(DtlsHandshakeFailed, CoapTimeout):
    """The DTLS handshake did not complete within its bound: silence, no alert."""


class LibcoapNotFound(CoapError):
    """No libcoap ``coap-client``/``coap-server`` binary on PATH."""
