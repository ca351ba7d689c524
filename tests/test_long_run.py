"""The slow tier (``--hil-slow``, run nightly): what only shows over time and repetition on one board —
hundreds of uploads across resets, and several update attempts in a row. Each asserts the state
around the outcome too: what the server stored, the nonces on the wire, the version running; the
invariants check the rest after each (secondary slot, NVS nonce, security log)."""

from __future__ import annotations

from typing import Any

import pytest

from hil.board.board import Board
from hil.board.contract import BOOT_TIMEOUT, Provision, upload_now
from hil.net.attacker import Attacker
from hil.net.fallback import Capture
from hil.ota.board import OtaBoard
from hil.protocol.readings import REGISTERS
from hil.server.under_test import ServerFactory
from hil.wire.profile import WireProfile

UPLOADS = 200
RESET_EVERY = 50
FAULT_CHUNK = 1


@pytest.mark.slow
@pytest.mark.stride("S", "T", threat="a nonce repeats or the server loses readings after many uploads and resets")
@pytest.mark.fails_with("nonce-not-persisted")
def test_hundreds_of_uploads_across_resets(provision: Provision, board: Board, server_factory: ServerFactory,
                                           capture: Capture, wire: WireProfile, evidence) -> None:
    """200 uploads, the board reset after every 50: each is accepted with the next nonce (one more than
    the last, also across the resets), the wire carries each nonce exactly once and in order, and the
    server holds every reading of every upload once, its last nonce the board's. (The built-in
    server's rate limit is off: 200 uploads in a minute is the point here, not a flood.)"""
    server = server_factory.start(rate_limit=0)
    device = provision(server_url=server.url)
    attacker, first = Attacker(server, capture, wire), device.nonce + 1
    for i in range(UPLOADS):
        if i and i % RESET_EVERY == 0:
            board.reset()
            board.console.expect_event("nonce.loaded", BOOT_TIMEOUT, nonce=str(first + i - 1))
        upload_now(board, first + i)
    sent = [p.nonce for p in attacker.captured_uploads()]
    evidence.note(f"{UPLOADS} uploads, nonces {sent[0]}..{sent[-1]} on the wire, a reset every {RESET_EVERY}")
    assert sent == list(range(first, first + UPLOADS)), f"nonces on the wire are not {first}..{first + UPLOADS - 1}"
    if server.builtin:
        rows = server.readings(device.device_id)
        assert len(rows) == UPLOADS * len(REGISTERS), f"{len(rows)} readings stored for {UPLOADS} uploads"
        assert sorted({r["nonce"] for r in rows}) == sent
        assert server.last_nonce(device.device_id) == first + UPLOADS - 1


ATTEMPTS: list[tuple[str, dict[str, Any], str]] = [
    ("corrupt_chunk", {"chunk": FAULT_CHUNK}, "HASH_MISMATCH"),
    ("truncate_chunk", {"chunk": FAULT_CHUNK}, "DOWNLOAD_FAILED"),
    ("bad_hash", {}, "HASH_MISMATCH"),
    ("bad_signature", {}, "SIGNATURE_INVALID"),
    ("wrong_signing_key", {}, "SIGNATURE_INVALID"),
]


@pytest.mark.slow
@pytest.mark.stride("T", "D", threat="failed updates pile up until the device cannot update, or installs a bad one")
@pytest.mark.fails_with("ota-skip-hash", "ota-skip-signature", "ota-keep-partial-on-failure")
def test_failed_updates_in_a_row_then_one_succeeds(ota_board: OtaBoard) -> None:
    """Five update attempts in a row on one board, each served damaged in another way, each refused
    with its own code while the board stays on v1 with its secondary slot erased; then the undamaged
    update installs and confirms: failures leave nothing behind that stops the next update."""
    v1 = ota_board.running
    for fault, params, code in ATTEMPTS:
        ota_board.server.add_fault(fault, **params)
        ota_board.check()
        ota_board.console.expect_event("ota.available", 10, version=ota_board.version_of("app-v2"))
        ota_board.expect_failed(code)
        ota_board.assert_slot_erased_and_boots(v1)
        ota_board.server.clear_faults()
    ota_board.update("app-v2")
    codes = [r["error_code"] for r in ota_board.server.statuses(ota_board.device.device_id) if r["status"] == "failed"]
    assert codes == [code for _, _, code in ATTEMPTS], f"failed reports {codes}"
