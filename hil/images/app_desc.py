"""``esp_app_desc_t``: the 256-byte application descriptor at offset 0x20 of an ESP32 app image."""

from __future__ import annotations

import struct
from dataclasses import dataclass

APP_DESC_MAGIC = 0xABCD5432
APP_DESC_OFFSET = 0x20  # within the ESP32 app image (first DROM segment, vaddr 0x3F400020)
APP_DESC_SIZE = 256
# magic, secure_version, reserv1[2], version[32], project_name[32], time[16], date[16],
# idf_ver[32], app_elf_sha256[32], reserv2[20]
_FMT = "<II8s32s32s16s16s32s32s80s"
assert struct.calcsize(_FMT) == APP_DESC_SIZE


def _cstr(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


@dataclass(frozen=True)
class AppDesc:
    """The fields of ``esp_app_desc_t`` the harness and the virtual board use."""

    version: str
    project_name: str
    secure_version: int = 0
    time: str = "00:00:00"
    date: str = "Jan  1 2026"
    idf_ver: str = "v5.3.1"
    elf_sha256: bytes = bytes(32)

    def pack(self) -> bytes:
        """Serialise to the 256-byte C layout."""
        return struct.pack(
            _FMT,
            APP_DESC_MAGIC,
            self.secure_version,
            b"",
            self.version.encode(),
            self.project_name.encode(),
            self.time.encode(),
            self.date.encode(),
            self.idf_ver.encode(),
            self.elf_sha256,
            b"",
        )

    @classmethod
    def unpack(cls, raw: bytes) -> AppDesc:
        """Parse 256 bytes; raises ``ValueError`` when the magic is wrong or data is short."""
        if len(raw) < APP_DESC_SIZE:
            raise ValueError(f"app descriptor truncated: {len(raw)} of {APP_DESC_SIZE} bytes")
        magic, secver, _, ver, proj, tm, dt, idf, sha, _ = struct.unpack(_FMT, raw[:APP_DESC_SIZE])
        if magic != APP_DESC_MAGIC:
            raise ValueError(f"app descriptor magic 0x{magic:08x}, expected 0x{APP_DESC_MAGIC:08x}")
        return cls(_cstr(ver), _cstr(proj), secver, _cstr(tm), _cstr(dt), _cstr(idf), sha)


def find_app_desc(app_image: bytes) -> AppDesc:
    """Read the descriptor from an ESP32 app image (as stored in a slot after the MCUboot header)."""
    return AppDesc.unpack(app_image[APP_DESC_OFFSET : APP_DESC_OFFSET + APP_DESC_SIZE])
