"""Chip personalities of the virtual board: identity and the facts esptool reads from a chip."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChipSpec:
    """Identity of one chip family as the ROM, the loader and the boot chain present it."""

    name: str  # esptool's name: "esp32", "esp32c6"
    description: str  # as esptool prints it
    image_chip_id: int  # chip_id field of the app image header (0 ESP32, 13 ESP32-C6)
    bootloader_offset: int  # where the ROM loads the second-stage bootloader from
    rom_banner: str  # first ROM line after reset
    # Added for the loader/board (defaults keep the positional constructor of the fields above):
    mac_oui: bytes = b"\x24\x0a\xc4"  # Espressif OUI this family's base MACs start with
    download_boot: str = "boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))"  # rst-line tail, IO0 low
    flash_boot: str = "boot:0x13 (SPI_FAST_FLASH_BOOT)"  # rst-line tail, IO0 high


CHIPS: dict[str, ChipSpec] = {
    "esp32": ChipSpec("esp32", "ESP32-D0WD-V3 (revision v3.1)", 0, 0x1000, "ets Jul 29 2019 12:21:46"),
    "esp32c6": ChipSpec(
        "esp32c6",
        "ESP32-C6 (QFN40) (revision v0.1)",
        13,
        0x0,
        "ESP-ROM:esp32c6-20220919",
        mac_oui=b"\x60\x55\xf9",
        download_boot="boot:0x4 (DOWNLOAD_BOOT(USB/UART0/SDIO_FEI_FEO))",
    ),
}


def chip_spec(name: str) -> ChipSpec:
    """Return the personality for ``name``; raises ``ValueError`` naming the supported chips."""
    try:
        return CHIPS[name]
    except KeyError:
        raise ValueError(f"unknown chip {name!r}: the virtual board models {sorted(CHIPS)}") from None
