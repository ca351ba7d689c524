"""The device contract (PROTOCOL.md) as the harness drives it: console commands, the events that end
them, and how long a board may take. Scenarios use these instead of raw console text."""

from __future__ import annotations

from collections.abc import Callable

from hil.board.board import Board
from hil.images.nvs_gen import DeviceIdentity

BOOT_TIMEOUT = 10.0
UPLOAD_TIMEOUT = 15.0  # one upload cycle, retries included, on a loaded CI runner

Provision = Callable[..., DeviceIdentity]
"""The ``provision`` fixture: ``provision(**identity_fields) -> DeviceIdentity`` flashes the app
under test with an NVS partition made for this test and waits until the app has loaded it."""


def upload_now(board: Board, nonce: int, timeout: float = UPLOAD_TIMEOUT) -> None:
    """Run one upload cycle on the board's console and wait until the server accepted *nonce*
    (ends at once on a rejection, a give-up or a TLS failure)."""
    board.console.send("upload")
    board.console.expect_event(
        "upload.ok", timeout, nonce=str(nonce), unless=["upload.rejected", "upload.gave_up", "tls.failed"]
    )
