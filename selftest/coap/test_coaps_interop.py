"""Our CoAP/CoAPS client against libcoap's coap-server (OpenSSL and GnuTLS builds): the right PSK
gets 2.05 for ``GET /time``, a wrong key or identity fails within the explicit bound with an error
that names the peer and identity but not the key, plain CoAP works, and the measurements add up."""

from __future__ import annotations

import time

import pytest
from helpers_coap import IDENTITY, KEY

from hil.coap.errors import DtlsHandshakeFailed, DtlsHandshakeTimeout
from hil.coap.libcoap import LibcoapServer

BOUND = 1.5  # the handshake's explicit timeout in the failure cases
SLACK = 1.0  # what a loaded 2-core machine may add to it


def test_right_psk_gets_a_response_over_dtls(libcoap_server: LibcoapServer) -> None:
    with libcoap_server.coaps(IDENTITY).connect(handshake_timeout=5) as client:
        handshake = client.handshake
        response = client.get("time", timeout=5)
    assert handshake is not None and handshake.version == "DTLSv1_2"
    assert "PSK" in handshake.cipher
    assert handshake.duration_s < 3.0  # the SOP's target, on loopback by far
    # the cookie exchange happened: ClientHello, ClientHello + cookie, then the key exchange flight
    assert handshake.wire.datagrams_sent >= 3 and handshake.wire.bytes_received > 0
    assert response.code == "2.05" and response.ok and response.payload
    assert response.wire.datagrams_sent == 1 and response.wire.datagrams_received == 1
    assert response.wire.bytes_sent > 13  # a GET /time is 13 bytes in the clear; DTLS adds its record


@pytest.mark.parametrize(
    ("identity", "key"),
    [(IDENTITY, "wrongkey1234567"), ("intruder", KEY), ("", KEY)],
    ids=["wrong-key", "wrong-identity", "empty-identity"],
)
def test_wrong_psk_fails_within_the_bound(libcoap_server: LibcoapServer, identity: str, key: str) -> None:
    endpoint = libcoap_server.coaps(identity, key)
    started = time.monotonic()
    with pytest.raises(DtlsHandshakeFailed) as failure:
        endpoint.connect(handshake_timeout=BOUND)
    elapsed = time.monotonic() - started
    assert elapsed < BOUND + SLACK
    message = str(failure.value)
    assert f"127.0.0.1:{libcoap_server.secure_port}" in message and repr(identity) in message
    assert key not in message and KEY not in message
    if isinstance(failure.value, DtlsHandshakeTimeout):  # silence, as the SOP says a wrong PSK looks
        assert elapsed >= BOUND
    assert "psk" in message.lower()  # says what to check


def test_plain_coap_get_and_its_size_beside_coaps(libcoap_server: LibcoapServer) -> None:
    with libcoap_server.coap().connect() as plain:
        clear = plain.get("time", timeout=5)
    with libcoap_server.coaps(IDENTITY).connect(handshake_timeout=5) as secure:
        sealed = secure.get("time", timeout=5)
    assert clear.code == sealed.code == "2.05"
    assert plain.handshake is None
    # DTLS 1.2 adds a 13-byte record header and the AEAD's nonce/tag on both sides of the exchange
    assert sealed.wire.bytes_sent >= clear.wire.bytes_sent + 13
    assert sealed.wire.bytes_received >= clear.wire.bytes_received + 13


def test_close_sends_close_notify(libcoap_server: LibcoapServer) -> None:
    client = libcoap_server.coaps(IDENTITY).connect(handshake_timeout=5)
    before = client.stats.snapshot()
    client.close()
    sent = client.stats.since(before)
    assert sent.datagrams_sent == 1 and sent.bytes_sent > 13  # one encrypted alert record
    client.close()  # idempotent
    assert client.stats.since(before).datagrams_sent == 1
