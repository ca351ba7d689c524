"""What a board runs for a scenario: bootloader, NVS and the app under test from the firmware index,
with MCUboot's state sectors cleared, flashed skip-if-identical."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hil.board.board import Board
from hil.flashing import FlashRegion, FlashReport, PlannedRegion, plan_from_index
from hil.images.index import Index
from hil.images.layout import SECTOR_SIZE, layout_for

# What a board needs besides the app: the bootloader that trusts our key, and its identity.
BASE_ARTIFACTS: tuple[str, ...] = ("bootloader", "nvs")
DEFAULT_APP = "app-v1"
FIRMWARE_README = "README.md#firmware"  # where a bench reads how to provide its own build's index


class VirtualFirmwareOnRealBoard(RuntimeError):
    """The index's images run only on the virtual board, and the board is real."""


def check_firmware_fits_board(board: Board, firmware: Index) -> None:
    """Refuse, before any write, images built for the virtual board on a board that is not virtual
    (random filler code would be flashed and every verdict about it would be meaningless)."""
    if firmware.virtual_only and not board.spec.has("virtual"):
        raise VirtualFirmwareOnRealBoard(
            f"board {board.name} ({board.spec.port}) is a real board, but the firmware index "
            f"{firmware.index_path} was built by `hil images build` for the virtual board (its apps are filler "
            "code no ESP32 runs); nothing was written. Give --hil-firmware-dir=DIR (ini hil_firmware_dir) "
            'with your firmware build\'s images and its index.json ("target": "device"; see '
            f"{FIRMWARE_README}), or run on virtual boards (--hil-virtual)"
        )


def boot_state_reset(index: Index) -> list[FlashRegion]:
    """Erased MCUboot state sectors (trailers, scratch status), so each test starts with no swap
    pending from an earlier one. Usually already erased: skip-if-identical makes them free."""
    return [
        FlashRegion(offset, b"\xff" * SECTOR_SIZE, name)
        for name, offset in layout_for(index.chip).boot_state_sectors().items()
    ]


def _fill_primary_slot(region: FlashRegion, index: Index) -> FlashRegion:
    """The app region padded with erased bytes up to the primary slot's trailer sector.

    Skip-if-identical compares only what a region covers: an image shorter than the one before it
    (a truncated variant after v2) would otherwise leave the old image's tail in flash, be reported
    "skipped", and a verdict would depend on what the board held before. Erased blocks that already
    read as erased cost nothing (delta flashing writes only the 64 KiB blocks that differ).
    """
    layout = layout_for(index.chip)
    end = layout.trailer_sector(0)  # the trailer sector itself is boot_state_reset's
    if region.offset != layout.primary_slot or region.offset + len(region.data) >= end:
        return region
    padded = region.data + b"\xff" * (end - region.offset - len(region.data))
    return replace(region, data=padded)


def flash_plan(index: Index, app: str, *extra: FlashRegion, nvs: PlannedRegion | None = None) -> list[PlannedRegion]:
    """Bootloader, NVS and ``app`` from the index (the app filling the primary slot up to its
    trailer), MCUboot state cleared, plus ``extra`` regions. ``nvs`` replaces the index's factory
    NVS partition (a device provisioned for this test)."""
    base = [name for name in BASE_ARTIFACTS if not (nvs is not None and name == "nvs")]
    own_nvs: list[PlannedRegion] = [nvs] if nvs is not None else []
    regions = [_fill_primary_slot(region, index) for region in plan_from_index(index, [*base, app])]
    return [*regions, *own_nvs, *boot_state_reset(index), *extra]


def flash_app(
    board: Board, firmware: Index, app: str, *extra: FlashRegion, nvs: PlannedRegion | None = None, **kwargs: Any
) -> FlashReport:
    """Flash bootloader, NVS (the factory one unless ``nvs`` is given) and ``app`` (with no swap
    pending, plus ``extra`` regions) onto ``board``, skip-if-identical, and reset it. Nothing is
    written unless the detected chip is the one ``firmware`` is built for (and the inventory's), nor
    images built for the virtual board onto a real one (:func:`check_firmware_fits_board`)."""
    check_firmware_fits_board(board, firmware)
    kwargs.setdefault("images_chip", firmware.chip)
    kwargs.setdefault("images_source", f"the firmware index {firmware.directory / 'index.json'}")
    return board.flash(flash_plan(firmware, app, *extra, nvs=nvs), **kwargs)
