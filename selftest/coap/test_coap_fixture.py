"""``coap_endpoints`` on a virtual board (provisioned by the harness's fixtures): the board's address
and TEST ONLY PSK, registered as a secret; our client and libcoap's coap-client both get ``/sensor``
over CoAPS with it and nothing with a wrong key; clients are closed at teardown."""

from __future__ import annotations

import json

import pytest

from hil.board.board import Board
from hil.coap.board import BoardCoap
from hil.coap.errors import CoapError, DtlsHandshakeFailed
from hil.coap.libcoap import run_client
from hil.report.environment import Environment

WRONG_KEY = "not-the-board-psk"


def test_endpoints_are_the_boards(coap_endpoints: BoardCoap, board: Board, hil_environment: Environment) -> None:
    assert coap_endpoints.coaps.host == board.spec.network_address == coap_endpoints.coap.host
    assert (coap_endpoints.coap.port, coap_endpoints.coaps.port) == (5683, 5684)
    assert "TEST ONLY" in coap_endpoints.psk_source
    key = coap_endpoints.coaps.psk_key.decode()
    assert hil_environment.secrets.find(f"log line with {key} in it")  # scrubbed wherever it lands


def test_our_client_reads_the_sensor_over_coaps(coap_endpoints: BoardCoap) -> None:
    client = coap_endpoints.connect()
    response = client.get("sensor", timeout=5)
    assert response.code == "2.05" and "val" in response.json()
    assert client.handshake is not None and client.handshake.duration_s < 3.0
    with pytest.raises(DtlsHandshakeFailed):
        coap_endpoints.connect(key=WRONG_KEY, handshake_timeout=1.5)
    coap_endpoints.close()
    with pytest.raises(CoapError, match=r"no DTLS session"):  # closed at teardown (here: by hand)
        client.get("sensor", timeout=1)


def test_libcoap_coap_client_against_the_board(coap_endpoints: BoardCoap) -> None:
    url = f"{coap_endpoints.coaps.url}/sensor"
    identity, key = coap_endpoints.coaps.psk_identity, coap_endpoints.coaps.psk_key
    good = run_client(url, identity=identity, key=key, timeout=5)
    assert good.responded, good
    assert "val" in json.loads(good.payload)
    bad = run_client(url, identity=identity, key=WRONG_KEY, timeout=2)
    assert not bad.responded and WRONG_KEY not in repr(bad)
