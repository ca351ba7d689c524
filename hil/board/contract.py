"""The device contract (PROTOCOL.md) as the harness drives it: console commands, the events that end
them, and how long a board may take. Scenarios use these instead of raw console text."""

from __future__ import annotations

from collections.abc import Callable

from hil.board.board import Board, BoardError
from hil.images.nvs_gen import DeviceIdentity

BOOT_TIMEOUT = 10.0
UPLOAD_TIMEOUT = 15.0  # one upload cycle, retries included, on a loaded CI runner

Provision = Callable[..., DeviceIdentity]
"""The ``provision`` fixture: ``provision(**identity_fields) -> DeviceIdentity`` flashes the app
under test with an NVS partition made for this test and waits until the app has loaded it."""


def wait_network_up(board: Board, timeout: float | None = None) -> str:
    """Wait for the firmware's network-up event (``net.up``: ESP-IDF's ``esp_netif_handlers: sta ip:
    ...`` line) after a boot, before its first upload or OTA check; returns the board's IP address.

    A board whose inventory declares ``network_address`` must come up with that address: captures
    and the server's records are filtered on it (:class:`BoardError` otherwise)."""
    match = board.console.expect_event("net.up", board.timing.network() if timeout is None else timeout)
    address = match.group("ip")
    declared = board.spec.network_address
    if declared and address != declared:
        raise BoardError(
            f"board {board.name} ({board.spec.port}) came up with IP {address}, but its inventory says "
            f"network_address = {declared!r}: captures filter on that address. Fix network_address in the "
            "boards file, or give the board a fixed address (a DHCP reservation on the bench AP)"
        )
    return address


def start_upload(board: Board) -> float:
    """Start one upload cycle: the ``upload`` console command, or (a firmware acting on its timers,
    :mod:`hil.board.trigger`) nothing — its next timer upload. Returns how long to wait for it."""
    if board.trigger.console:
        board.console.send("upload")
    return board.trigger.upload_bound(UPLOAD_TIMEOUT)


def upload_now(board: Board, nonce: int, timeout: float | None = None) -> None:
    """Run one upload cycle (:func:`start_upload`) and wait until the server accepted *nonce* (ends at
    once on a rejection, a give-up or a TLS failure). The board's network must be up: ``provision``
    waits for it (:func:`wait_network_up`; call it yourself after a reboot)."""
    bound = start_upload(board)
    board.console.expect_event(
        "upload.ok",
        bound if timeout is None else timeout,
        nonce=str(nonce),
        unless=["upload.rejected", "upload.gave_up", "tls.failed"],
    )
