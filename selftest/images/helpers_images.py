"""Independent parsers the image tests check hil's outputs with (no hil code involved)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path


def esptool_image_info(path: Path) -> str:
    """Text of ``esptool image-info`` (it exits 0 even for invalid images: callers parse the text)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ESPTOOL_")}  # they change esptool
    proc = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(path)], env=env,
                          cwd=path.parent, capture_output=True, text=True, timeout=60, check=False)
    return proc.stdout + proc.stderr


def mcuboot_tlvs(image: bytes) -> dict[int, bytes]:
    """TLV type -> value of an MCUboot image (unprotected area), parsed independently of hil."""
    hdr_size, prot = struct.unpack_from("<HH", image, 8)
    (img_size,) = struct.unpack_from("<I", image, 12)
    at = hdr_size + img_size + prot
    magic, total = struct.unpack_from("<HH", image, at)
    assert magic == 0x6907, f"TLV info magic {magic:#x}"
    tlvs, pos = {}, at + 4
    while pos < at + total:
        kind, length = image[pos], struct.unpack_from("<H", image, pos + 2)[0]
        tlvs[kind] = image[pos + 4:pos + 4 + length]
        pos += 4 + length
    return tlvs


def payload_of(image: bytes) -> bytes:
    """The ESP32 app image inside an MCUboot image."""
    hdr_size = struct.unpack_from("<H", image, 8)[0]
    (img_size,) = struct.unpack_from("<I", image, 12)
    return image[hdr_size:hdr_size + img_size]


def parse_nvs(data: bytes) -> dict[tuple[str, str], object]:
    """(namespace, key) -> value for u32, string and blob entries; asserts every page header CRC,
    entry CRC and data CRC (all ``zlib.crc32(x, 0xFFFFFFFF)``, per the NVS format)."""
    import zlib

    def crc(b: bytes) -> int:
        return zlib.crc32(b, 0xFFFFFFFF)

    namespaces, values = {0: ""}, {}
    for base in range(0, len(data), 4096):
        page = data[base:base + 4096]
        state = struct.unpack_from("<I", page)[0]
        if state == 0xFFFFFFFF:
            continue
        assert struct.unpack_from("<I", page, 28)[0] == crc(page[4:28]), f"page {base:#x} header CRC"
        i = 0
        while i < 126:
            if (page[32 + i // 4] >> (2 * (i % 4))) & 3 != 0b10:
                i += 1
                continue
            entry = page[64 + 32 * i:96 + 32 * i]
            assert struct.unpack_from("<I", entry, 4)[0] == crc(entry[:4] + entry[8:]), f"entry {i} CRC"
            ns, kind, span = entry[0], entry[1], entry[2]
            key = entry[8:24].split(b"\0", 1)[0].decode()
            if ns == 0:
                namespaces[entry[24]] = key
            elif kind == 0x04:
                values[(namespaces[ns], key)] = struct.unpack_from("<I", entry, 24)[0]
            elif kind in (0x21, 0x42):
                size, _, data_crc = struct.unpack_from("<HHI", entry, 24)
                raw = page[96 + 32 * i:96 + 32 * i + size]
                assert crc(raw) == data_crc, f"data CRC of {key}"
                if kind == 0x21:
                    values[(namespaces[ns], key)] = raw.rstrip(b"\0").decode()
                else:
                    values[(namespaces[ns], key)] = values.get((namespaces[ns], key), b"") + raw
            i += max(1, span)
    return values
