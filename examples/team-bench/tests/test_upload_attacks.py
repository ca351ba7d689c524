"""What an attacker who sniffs the board's uploads can do with them: nothing the server accepts."""

from __future__ import annotations

import pytest

from hil.board.board import Board
from hil.board.contract import upload_now
from hil.images.nvs_gen import DeviceIdentity
from hil.net.attacker import Attacker, reply_json
from hil.net.forge import flip_mac, with_nonce
from hil.server.under_test import ServerUnderTest


@pytest.mark.stride("S", "T", threat="a sniffed upload is replayed")
def test_replayed_upload_refused(
    provisioned_board: Board, device: DeviceIdentity, server: ServerUnderTest, attacker: Attacker
) -> None:
    """The board's upload, captured and re-sent verbatim, is 403 REPLAY_ATTACK and stores nothing."""
    upload_now(provisioned_board, device.nonce + 1)
    (request,) = attacker.captured_requests()
    stored = len(server.readings(device.device_id))
    (result,) = attacker.replay(request)
    assert result.response is not None, result.error
    assert (result.response.status, reply_json(result.response).get("error_code")) == (403, "REPLAY_ATTACK")
    assert len(server.readings(device.device_id)) == stored


@pytest.mark.stride("S", "T", threat="an attacker without the key forges an upload")
def test_forged_mac_refused(
    provisioned_board: Board, device: DeviceIdentity, server: ServerUnderTest, attacker: Attacker
) -> None:
    """The captured packet with the next nonce and a flipped MAC is 403 INVALID_HMAC, and the board's
    own next upload (with that nonce) is still accepted: the forgery burnt nothing."""
    upload_now(provisioned_board, device.nonce + 1)
    (sent,) = attacker.captured_uploads()
    reply = attacker.send(flip_mac(with_nonce(sent, sent.nonce + 1)))
    assert (reply.status, reply_json(reply).get("error_code")) == (403, "INVALID_HMAC"), reply.body
    upload_now(provisioned_board, sent.nonce + 1)
