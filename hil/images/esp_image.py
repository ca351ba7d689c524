"""ESP32 application and bootloader images, built with esptool's own image classes (no toolchain).

An app image is what ESP-IDF's ``elf2image`` would write: 0xE9 header, a DROM segment at the start
of the flash data map whose first 256 bytes are ``esp_app_desc_t`` (image offset 0x20), an IROM
segment, DRAM and IRAM segments, the XOR checksum and the appended SHA-256. Segment contents are
deterministic, code-like filler: compressible about as well as real firmware (~50 % with zlib), so
flashing exercises esptool's compressed path the way a real image does.

The bootloader image holds only RAM segments (the ROM loads it), starting with
``esp_bootloader_desc_t`` and carrying the trusted MCUboot key block (see ``bootloader_key``).
"""

from __future__ import annotations

import hashlib
import random
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from esptool.bin_image import ELFSection, ESP32C6FirmwareImage, ESP32FirmwareImage, LoadFirmwareImage
from esptool.targets import ESP32C6ROM, ESP32ROM
from esptool.util import FatalError

from hil.images.app_desc import APP_DESC_OFFSET, AppDesc
from hil.images.app_keys import embeddable_pem
from hil.images.bootloader_key import pack_key_block

_SEG_HEADER = 8
_PAGE = 0x10000  # flash MMU page: flash-mapped segments must keep vaddr % page == file offset % page
MIN_APP_SIZE = 0x30000
BOOTLOADER_CODE_SIZE = 0x5000  # a real MCUboot-for-ESP32 bootloader is ~30 KiB


@dataclass(frozen=True)
class ChipImageSpec:
    """Where a chip's app and bootloader segments are loaded, and its esptool image class."""

    image_class: type[Any]  # an esptool BaseFirmwareImage subclass (esptool ships no type information)
    rom: type[Any]  # the esptool ROM class of the chip
    app_dram: int
    app_iram: int
    app_entry: int
    boot_dram: int
    boot_iram: int
    max_rev_full: int

    @property
    def drom(self) -> int:
        """Load address of the app descriptor segment (start of the data map + header)."""
        return self.rom.DROM_MAP_START + 0x20

    @property
    def irom(self) -> int:
        """Load address of the code segment executed in place from flash."""
        return self.rom.IROM_MAP_START + 0x20


CHIP_IMAGES: dict[str, ChipImageSpec] = {
    "esp32": ChipImageSpec(
        ESP32FirmwareImage,
        ESP32ROM,
        app_dram=0x3FFB0000,
        app_iram=0x40080000,
        app_entry=0x40081000,
        boot_dram=0x3FFF0000,
        boot_iram=0x40080400,
        max_rev_full=399,
    ),
    "esp32c6": ChipImageSpec(
        ESP32C6FirmwareImage,
        ESP32C6ROM,
        app_dram=0x40820000,
        app_iram=0x40800000,
        app_entry=0x40800100,
        boot_dram=0x40860000,
        boot_iram=0x40868000,
        max_rev_full=99,
    ),
}


def chip_image_spec(chip: str) -> ChipImageSpec:
    """Image facts for ``chip``; raises ``ValueError`` naming the supported chips."""
    try:
        return CHIP_IMAGES[chip]
    except KeyError:
        raise ValueError(f"no image layout for chip {chip!r}: expected one of {sorted(CHIP_IMAGES)}") from None


def code_like(size: int, seed: bytes) -> bytes:
    """``size`` deterministic bytes that look and compress like machine code.

    Real code is a small vocabulary of instruction sequences repeated with varying immediates:
    here, recurring "basic blocks" drawn with a skewed distribution, interleaved with fresh
    random words. The mix gives a zlib ratio of about 0.5.
    """
    rng = random.Random(hashlib.sha256(seed).digest())
    vocab = [rng.randbytes(rng.randrange(8, 52, 4)) for _ in range(4096)]
    out = bytearray()
    while len(out) < size:
        if rng.random() < 0.6:
            out += rng.randbytes(rng.randrange(4, 24, 4))  # literals, addresses, immediates
        else:  # a few blocks are very common (prologues, loops), most are rare
            out += vocab[min(int(rng.paretovariate(0.3)) - 1, len(vocab) - 1)]
    return bytes(out[:size])


def compress_ratio(data: bytes) -> float:
    """zlib (level 9) compressed size divided by raw size — the figure esptool's upload sees."""
    return len(zlib.compress(data, 9)) / max(1, len(data))


def _new_image(spec: ChipImageSpec, entry: int) -> Any:  # an esptool firmware image
    image = spec.image_class()
    image.entrypoint = entry
    image.flash_mode = 2  # DIO
    rom = spec.rom
    image.flash_size_freq = rom.FLASH_SIZES["4MB"] | rom.FLASH_FREQUENCY.get("40m", 0)
    image.min_rev_full = 0
    image.max_rev_full = spec.max_rev_full
    return image


def build_app_image(
    desc: AppDesc, chip: str = "esp32", size: int = 0x100000, fota_public_pem: bytes | None = None
) -> bytes:
    """An ESP32 app image of about ``size`` bytes (never more) whose descriptor is ``desc`` and
    whose rodata carries ``fota_public_pem`` (the FOTA key the app trusts) when given.

    Content depends only on the arguments: the same inputs give the same bytes.
    """
    if size < MIN_APP_SIZE:
        raise ValueError(f"app image size {size:#x} too small: at least {MIN_APP_SIZE:#x} bytes")
    spec = chip_image_spec(chip)
    seed = f"{chip}|{desc.project_name}|{desc.version}|{size}".encode()
    dram_len = 0x4000
    iram_len = min(0x10000, size // 16) & ~3
    # DROM ends just short of a page so a small padding segment (split from DRAM, as elf2image
    # does) puts the IROM header where page alignment wants it: the image size stays predictable.
    drom_len = max(1, round(size / 4 / _PAGE)) * _PAGE - 0x40
    fixed = APP_DESC_OFFSET + drom_len + 0x38 + 3 * _SEG_HEADER + dram_len - 0x30 + iram_len + 16 + 32
    irom_len = (size - fixed) & ~3
    if irom_len < 0x1000:
        raise ValueError(f"app image size {size:#x} leaves no room for code; use a larger size")
    embedded = embeddable_pem(fota_public_pem) if fota_public_pem else b""
    rodata = desc.pack() + embedded + code_like(drom_len - 256 - len(embedded), seed + b"|drom")
    ram = [
        ELFSection(b".dram0.data", spec.app_dram, code_like(dram_len, seed + b"|dram"), 0),
        ELFSection(b".iram0.text", spec.app_iram, code_like(iram_len, seed + b"|iram"), 0),
    ]
    code = code_like(irom_len, seed + b"|irom")
    while True:
        image = _new_image(spec, spec.app_entry)
        image.segments = [
            ELFSection(b".flash.appdesc", spec.drom, rodata, 0),
            ELFSection(b".flash.text", spec.irom, code, 0),
            *ram,
        ]
        data = image.save(None)
        if len(data) <= size:
            break
        # a chip-specific MMU workaround in esptool padded a segment: give the bytes back
        code = code[: (len(code) - (len(data) - size)) & ~3]
    assert data[APP_DESC_OFFSET : APP_DESC_OFFSET + 256] == desc.pack(), "app descriptor misplaced"
    return data


def bootloader_desc(version: int = 1, idf_ver: str = "v5.3.1", date_time: str = "Jan  1 2026 00:00:00") -> bytes:
    """``esp_bootloader_desc_t`` (80 bytes, magic byte 0x50), as esptool image-info reads it."""
    return (
        bytes([0x50, 0, 0, 0])
        + version.to_bytes(4, "little")
        + idf_ver.encode().ljust(32, b"\0")
        + date_time.encode().ljust(24, b"\0")
        + bytes(16)
    )


def build_bootloader_image(trusted_key_der: bytes, chip: str = "esp32") -> bytes:
    """The MCUboot bootloader image: RAM segments only, trusting the DER RSAPublicKey given."""
    spec = chip_image_spec(chip)
    seed = f"{chip}|mcuboot-bootloader".encode()
    dram = bootloader_desc() + pack_key_block(trusted_key_der)
    dram += code_like(0x800, seed + b"|dram")
    image = _new_image(spec, spec.boot_iram + 0x100)
    image.segments = [
        ELFSection(b".dram0.bootdesc", spec.boot_dram, dram, 0),
        ELFSection(b".iram_loader.text", spec.boot_iram, code_like(BOOTLOADER_CODE_SIZE, seed + b"|iram"), 0),
    ]
    return image.save(None)


@dataclass(frozen=True)
class EspImageCheck:
    """What esptool's own parser says about an ESP32 image."""

    chip_id: int
    segments: int
    checksum_valid: bool
    hash_valid: bool
    app_desc: AppDesc | None


def check_esp_image(data: bytes, chip: str = "esp32") -> EspImageCheck:
    """Parse ``data`` with esptool's image loader and report checksum/hash validity.

    Raises ``ValueError`` when esptool cannot parse it at all (wrong magic, truncated).
    """
    try:
        image = LoadFirmwareImage(chip, data)
    except (FatalError, struct.error, RuntimeError, ValueError) as exc:  # esptool's "not an image"
        raise ValueError(f"not a valid {chip} image: {exc}") from exc
    try:
        desc = AppDesc.unpack(data[APP_DESC_OFFSET : APP_DESC_OFFSET + 256])
    except ValueError:
        desc = None
    return EspImageCheck(
        chip_id=image.chip_id,
        segments=len(image.segments),
        checksum_valid=image.checksum == image.calculate_checksum(),
        hash_valid=bool(image.append_digest) and image.stored_digest == image.calc_digest,
        app_desc=desc,
    )
