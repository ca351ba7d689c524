"""Fixtures of the CoAP self-tests: libcoap's coap-server with the SOP's PSK, a peer nobody here wrote."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from helpers_coap import IDENTITY, KEY

from hil.coap.libcoap import LibcoapServer


@pytest.fixture(params=["openssl", "gnutls"])
def libcoap_server(request: pytest.FixtureRequest) -> Iterator[LibcoapServer]:
    """``coap-server-<flavour> -k KEY -h IDENTITY``, accepting KEY for IDENTITY only (``-i``)."""
    with LibcoapServer(KEY, hint=IDENTITY, only_identity=IDENTITY, flavour=request.param) as server:
        yield server
