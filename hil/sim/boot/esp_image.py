"""ESP32 image reader as the ROM and the bootloader see it: header, segments, checksum, SHA-256.

Layout (image-formats.md): 24-byte header (magic 0xE9, segment count, SPI mode/size/freq, entry,
extended header with chip id and ``hash_appended``), segments ``{u32 addr, u32 len, data}``, a
checksum byte (0xEF XOR all segment data) ending a 16-byte aligned pad, then SHA-256 of all before.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass

ESP_IMAGE_MAGIC = 0xE9
HEADER_SIZE = 24
CHECKSUM_SEED = 0xEF
MAX_SEGMENTS = 16
SPI_MODES = {0: "QIO", 1: "QOUT", 2: "DIO", 3: "DOUT"}


class ImageFault(enum.Enum):
    """Why an image was refused, in the order the ROM checks."""

    BAD_MAGIC = "invalid header"
    BAD_SEGMENTS = "segment table out of range"
    BAD_CHECKSUM = "checksum mismatch"
    BAD_HASH = "appended SHA-256 mismatch"


@dataclass(frozen=True)
class Segment:
    load_addr: int
    data: bytes
    file_offset: int  # of the data, within the image


@dataclass(frozen=True)
class EspImage:
    """A parsed image; ``fault`` is ``None`` when every check passed."""

    magic_word: int  # first 4 bytes LE, as the ROM prints them in ``invalid header``
    entry: int
    spi_mode: str
    chip_id: int
    segments: tuple[Segment, ...]
    checksum: tuple[int, int]  # (stored, computed)
    fault: ImageFault | None
    length: int

    @property
    def ok(self) -> bool:
        return self.fault is None


def parse_esp_image(data: bytes) -> EspImage:
    """Parse and check an ESP32 image found at the start of ``data``."""
    magic_word = struct.unpack_from("<I", data)[0] if len(data) >= 4 else 0xFFFFFFFF
    if len(data) < HEADER_SIZE or data[0] != ESP_IMAGE_MAGIC or not 0 < data[1] <= MAX_SEGMENTS:
        return EspImage(magic_word, 0, "DIO", 0, (), (0, 0), ImageFault.BAD_MAGIC, 0)
    count, mode, entry = data[1], data[2], struct.unpack_from("<I", data, 4)[0]
    chip_id = struct.unpack_from("<H", data, 12)[0]
    hash_appended = data[23] == 1
    segments: list[Segment] = []
    at, csum = HEADER_SIZE, CHECKSUM_SEED
    for _ in range(count):
        addr, length = struct.unpack_from("<II", data, at) if at + 8 <= len(data) else (0, -1)
        body = data[at + 8 : at + 8 + length]
        if len(body) != length:  # a segment header or body runs past the end of the image
            return EspImage(
                magic_word,
                entry,
                SPI_MODES.get(mode, "DIO"),
                chip_id,
                tuple(segments),
                (0, 0),
                ImageFault.BAD_SEGMENTS,
                at,
            )
        segments.append(Segment(addr, bytes(body), at + 8))
        for byte in body:  # XOR checksum over segment data, as the ROM does
            csum ^= byte
        at += 8 + length
    checksum_at = at + (15 - at % 16)  # checksum byte closes the 16-byte aligned pad
    stored = data[checksum_at] if checksum_at < len(data) else -1
    end = checksum_at + 1
    fault = None if stored == csum else ImageFault.BAD_CHECKSUM
    if fault is None and hash_appended:
        digest = data[end : end + 32]
        if hashlib.sha256(data[:end]).digest() != digest:
            fault = ImageFault.BAD_HASH
        end += 32
    return EspImage(magic_word, entry, SPI_MODES.get(mode, "DIO"), chip_id, tuple(segments), (stored, csum), fault, end)


def segment_kind(load_addr: int) -> str:
    """Memory a segment loads into, as the bootloader names it in its log (ESP32 and C6 maps;
    the C6's unified SRAM is reported as IRAM)."""
    if 0x3F400000 <= load_addr < 0x3F800000 or 0x42800000 <= load_addr < 0x43000000:
        return "DROM"
    if 0x400D0000 <= load_addr < 0x40400000 or 0x42000000 <= load_addr < 0x42800000:
        return "IROM"
    if 0x3FF80000 <= load_addr < 0x40000000:
        return "DRAM"
    return "IRAM"
