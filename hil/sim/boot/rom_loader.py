"""The ROM's second stage: load the bootloader image from flash, or refuse like a real chip.

The board has already printed the ROM banner and the ``rst:`` line. A valid bootloader prints the
ROM's SPI/load lines and hands over the MCUboot key it carries (the key block of
``hil.images.bootloader_key``). An erased or corrupt bootloader region makes the ROM print
``invalid header: 0x%08x`` (or the checksum error) again and again until the chip is stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

from hil.images.bootloader_key import find_key_block
from hil.sim.boot.esp_image import EspImage, ImageFault, parse_esp_image
from hil.sim.runtime import Runtime

BOOTLOADER_MAX_SIZE = 0x10000  # the region before the partition table on ESP32 (0x1000..0x8000+)
RETRY_INTERVAL_S = 0.5  # a real ESP32 repeats the complaint until its RTC watchdog fires


@dataclass(frozen=True)
class SecondStage:
    """What the ROM loaded: the bootloader image and the MCUboot key it trusts (``None`` if absent)."""

    image: EspImage
    trusted_key_der: bytes | None


def _rom_lines(rt: Runtime, image: EspImage) -> list[str]:
    """The lines a real ROM prints between the reset banner and the jump into the bootloader."""
    c6 = rt.chip.name != "esp32"
    lines = (
        []
        if c6
        else ["configsip: 0, SPIWP:0xee", "clk_drv:0x00,q_drv:0x00,d_drv:0x00,cs0_drv:0x00,hd_drv:0x00,wp_drv:0x00"]
    )
    if c6:
        lines.append("SPIWP:0xee")
    lines.append(f"mode:{image.spi_mode}, clock div:2")
    for seg in image.segments:
        size = f"0x{len(seg.data):x}" if c6 else str(len(seg.data))
        lines.append(f"load:0x{seg.load_addr:08x},len:{size}")
    lines.append(f"entry 0x{image.entry:08x}")
    return lines


def _complaint(image: EspImage) -> list[str]:
    if image.fault in (ImageFault.BAD_MAGIC, ImageFault.BAD_SEGMENTS):
        return [f"invalid header: 0x{image.magic_word:08x}"]
    stored, computed = image.checksum
    if image.fault is ImageFault.BAD_CHECKSUM:
        return [f"csum err:0x{stored & 0xFF:02x}!=0x{computed:02x}", "ets_main.c 371 "]
    return ["sha256 err", "ets_main.c 371 "]


def load_second_stage(rt: Runtime) -> SecondStage | None:
    """Load and check the bootloader. Returns ``None`` only when the ROM defect lets an erased
    region fall through to the app; otherwise a refused image never returns (``Halted`` ends it)."""
    data = rt.flash.read(rt.chip.bootloader_offset, BOOTLOADER_MAX_SIZE)
    image = parse_esp_image(data)
    if image.ok and image.chip_id == rt.chip.image_chip_id:
        for line in _rom_lines(rt, image):
            rt.write_line(line)
        key = next((k for k in (find_key_block(s.data) for s in image.segments) if k), None)
        return SecondStage(image, key)
    if image.ok:  # built for another chip: the ROM refuses it by chip id
        rt.write_line(f"Image chip id {image.chip_id} does not match {rt.chip.image_chip_id}")
    elif image.fault is ImageFault.BAD_MAGIC and "rom-boots-without-bootloader" in rt.defects:
        return None
    lines = _complaint(image) if not image.ok else ["ets_main.c 371 "]
    while True:
        for line in lines:
            rt.write_line(line)
        rt.wait(RETRY_INTERVAL_S)
