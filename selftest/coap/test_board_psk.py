"""Where a board's CoAPS PSK comes from: a real board's from the environment only (a clear error
naming the board and the variables otherwise, never the key), a virtual board's from its
provisioning identity unless the environment says otherwise."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from hil.coap.board import DEFAULT_PSK, DEFAULT_PSK_ID, BoardCoap, board_psk
from hil.coap.errors import CoapError

ENV = {"identity_env": "HIL_COAP_PSK_ID", "key_env": "HIL_COAP_PSK"}


@dataclass
class Identity:
    psk_id: str = "lab-id"
    psk: str = "lab-psk-0123456789"


def test_a_real_board_needs_the_environment() -> None:
    with pytest.raises(CoapError, match=r"board bench-1: .*export HIL_COAP_PSK_ID=<identity> and HIL_COAP_PSK="):
        board_psk("bench-1", virtual=False, device=Identity(), environ={}, **ENV)


def test_a_real_board_takes_the_environment() -> None:
    psk = board_psk(
        "bench-1", virtual=False, device=None, environ={"HIL_COAP_PSK_ID": "dev7", "HIL_COAP_PSK": "k" * 16}, **ENV
    )
    assert (psk.identity, psk.key) == ("dev7", b"k" * 16)
    assert "k" * 16 not in repr(psk) and "$HIL_COAP_PSK" in psk.source


def test_a_key_without_identity_is_refused_without_showing_the_key() -> None:
    with pytest.raises(CoapError, match="HIL_COAP_PSK_ID is not") as failure:
        board_psk("bench-1", virtual=False, device=None, environ={"HIL_COAP_PSK": "topsecret-psk"}, **ENV)
    assert "topsecret-psk" not in str(failure.value)


def test_a_virtual_board_uses_its_provisioning_identity() -> None:
    psk = board_psk("sim-0", virtual=True, device=Identity(), environ={}, **ENV)
    assert (psk.identity, psk.key) == ("lab-id", b"lab-psk-0123456789") and "TEST ONLY" in psk.source
    fallback = board_psk("sim-0", virtual=True, device=object(), environ={}, **ENV)
    assert (fallback.identity, fallback.key) == (DEFAULT_PSK_ID, DEFAULT_PSK.encode())


def test_board_endpoints_carry_the_psk_without_showing_it() -> None:
    psk = board_psk("sim-0", virtual=True, device=Identity(), environ={}, **ENV)
    endpoints = BoardCoap.for_board("sim-0", "127.1.2.3", psk)
    assert endpoints.coap.url == "coap://127.1.2.3:5683" and endpoints.coaps.url == "coaps://127.1.2.3:5684"
    assert endpoints.coaps.psk_identity == "lab-id" and endpoints.coaps.psk_key == psk.key
    assert "lab-psk" not in repr(endpoints)
    wrong = endpoints.coaps.with_psk(key="another-key-123")
    assert wrong.psk_identity == "lab-id" and wrong.psk_key == b"another-key-123"
