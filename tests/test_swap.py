"""MCUboot swap scenarios driven over serial: an image placed in the secondary slot and marked for
a test swap runs once, and is reverted on the next boot because it never confirmed itself."""

from __future__ import annotations

import pytest

from hil.board.board import Board
from hil.board.flash_app import flash_app
from hil.flashing import FlashRegion
from hil.images import mcuboot
from hil.images.index import Index
from hil.images.layout import SECTOR_SIZE, layout_for


def queue_test_swap(index: Index, app: str) -> list[FlashRegion]:
    """``app`` in the secondary slot and its trailer asking for a test swap (``boot_set_pending``)."""
    layout = layout_for(index.chip)
    trailer = bytearray(b"\xff" * SECTOR_SIZE)
    for offset_from_end, data in mcuboot.pending_writes(permanent=False):
        at = SECTOR_SIZE + offset_from_end
        trailer[at:at + len(data)] = data
    image = index.path(app).read_bytes()
    return [FlashRegion(layout.secondary_slot, image, f"{app} (secondary slot)"),
            FlashRegion(layout.trailer_sector(1), bytes(trailer), "secondary trailer: test swap")]


@pytest.mark.stride("T", "D", threat="an update that never proved itself stays installed for good")
@pytest.mark.fails_with("mcuboot-never-revert")
def test_unconfirmed_test_image_is_reverted(board: Board, firmware: Index) -> None:
    """v1 running, v2 queued for a test swap: v2 boots once, then MCUboot reverts to v1."""
    v1, v2 = firmware.get("app-v1"), firmware.get("app-v2")
    flash_app(board, firmware, "app-v1", *queue_test_swap(firmware, "app-v2"))
    console = board.console
    swap = board.timing.boot() + board.timing.swap(layout_for(firmware.chip).slot_size)  # a swap, then the load
    console.expect_event("boot.swap", swap, swap_type="test")
    console.expect_event("boot.version", swap, version=v2.version)
    board.reset()  # v2 did not confirm (image_ok unset): the next boot must put v1 back
    console.expect_event("boot.swap", swap, swap_type="revert", unless=["boot.validated"])
    console.expect_event("boot.version", swap, version=v1.version)
    board.reset()  # the revert is permanent
    console.expect_event("boot.swap", swap, swap_type="none")
    console.expect_event("boot.version", swap, version=v1.version)
