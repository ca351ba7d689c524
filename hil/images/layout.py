"""Flash maps of the supported chips (Espressif MCUboot port defaults).

One source of truth for offsets: the image builder writes them into ``index.json``, the virtual
board's boot chain reads the slots from here, and the harness flashes at the offsets the index names.
"""

from __future__ import annotations

from dataclasses import dataclass

FLASH_SIZE = 4 * 1024 * 1024
SECTOR_SIZE = 0x1000
MCUBOOT_HEADER_SIZE = 0x200


@dataclass(frozen=True)
class FlashLayout:
    """Where each region of a chip's flash lives. All offsets and sizes in bytes."""

    chip: str
    bootloader: int
    partition_table: int
    nvs: int
    nvs_size: int
    primary_slot: int
    secondary_slot: int
    slot_size: int
    scratch: int
    scratch_size: int
    flash_size: int = FLASH_SIZE

    def slot_offset(self, slot: int) -> int:
        """Offset of MCUboot slot 0 (primary) or 1 (secondary)."""
        return (self.primary_slot, self.secondary_slot)[slot]

    def trailer_sector(self, slot: int) -> int:
        """Offset of the last sector of a slot, which holds its MCUboot trailer."""
        return self.slot_offset(slot) + self.slot_size - SECTOR_SIZE

    def boot_state_sectors(self) -> dict[str, int]:
        """The sectors holding MCUboot's swap state (both trailers, the scratch status): erased,
        the bootloader sees no pending, interrupted or revertible swap."""
        return {
            "primary trailer": self.trailer_sector(0),
            "secondary trailer": self.trailer_sector(1),
            "scratch status": self.scratch + self.scratch_size - SECTOR_SIZE,
        }


_COMMON = dict(
    partition_table=0x8000,
    nvs=0x9000,
    nvs_size=0x6000,
    primary_slot=0x20000,
    secondary_slot=0x170000,
    slot_size=0x150000,
    scratch=0x3E0000,
    scratch_size=0x1F000,
)

LAYOUTS: dict[str, FlashLayout] = {
    "esp32": FlashLayout(chip="esp32", bootloader=0x1000, **_COMMON),
    "esp32c6": FlashLayout(chip="esp32c6", bootloader=0x0, **_COMMON),
}


def layout_for(chip: str) -> FlashLayout:
    """Return the flash layout of ``chip`` (``esp32`` or ``esp32c6``)."""
    try:
        return LAYOUTS[chip]
    except KeyError:
        raise ValueError(f"unknown chip {chip!r}: expected one of {sorted(LAYOUTS)}") from None
