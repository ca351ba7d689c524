"""What an attacker who sniffs the board's uploads can do with them: nothing the server accepts."""

from __future__ import annotations

import pytest

from hil.board.board import Board
from hil.board.contract import upload_now
from hil.images.nvs_gen import DeviceIdentity
from hil.net.attacker import Attacker
from hil.server.under_test import ServerUnderTest
from hil.wire.expect import expect_outcome
from hil.wire.outcome import Outcome
from hil.wire.profile import WireProfile


@pytest.mark.stride("S", "T", threat="a sniffed upload is replayed")
def test_replayed_upload_refused(
    provisioned_board: Board, device: DeviceIdentity, server: ServerUnderTest, attacker: Attacker, wire: WireProfile
) -> None:
    """The board's upload, captured and re-sent verbatim, is refused as replay and stores nothing."""
    upload_now(provisioned_board, device.nonce + 1)
    (request,) = attacker.captured_requests()
    stored = len(server.readings(device.device_id))
    (result,) = attacker.replay(request)
    expect_outcome(wire, result.response, Outcome.REPLAY, what="the board's upload replayed verbatim")
    assert len(server.readings(device.device_id)) == stored


@pytest.mark.stride("S", "T", threat="an attacker without the key forges an upload")
def test_forged_mac_refused(
    provisioned_board: Board, device: DeviceIdentity, server: ServerUnderTest, attacker: Attacker, wire: WireProfile
) -> None:
    """The captured packet with the next nonce and a flipped MAC is refused for a bad MAC, and the board's
    own next upload (with that nonce) is still accepted: the forgery burnt nothing."""
    upload_now(provisioned_board, device.nonce + 1)
    (sent,) = attacker.captured_uploads()
    forged = attacker.forge.flip_mac(attacker.forge.with_nonce(sent, sent.nonce + 1))
    expect_outcome(wire, attacker.send(forged), Outcome.BAD_MAC, what="the board's packet, next nonce, MAC flipped")
    upload_now(provisioned_board, sent.nonce + 1)
