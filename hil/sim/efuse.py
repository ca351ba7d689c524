"""The virtual board's eFuses: MAC address and security fields, one-time programmable, persisted.

Stored as ``<state-dir>/efuse.json`` next to the flash, so a restarted ``hil sim`` keeps its MAC.
The MAC is the chip family's Espressif OUI plus three bytes derived from the state directory, so
two boards with different state dirs differ and one board keeps its MAC across restarts.
This module also knows how each chip exposes the fuses as read registers (what esptool reads).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import struct
from dataclasses import dataclass, field
from pathlib import Path

from hil.sim.chips import ChipSpec

EFUSE_FILE = "efuse.json"

# Security fields with their ROM names; burning only sets bits, as on silicon.
DEFAULT_FIELDS: dict[str, int] = {
    "SECURE_BOOT_EN": 0,
    "FLASH_CRYPT_CNT": 0,
    "SECURE_DOWNLOAD_ENABLE": 0,
    "DIS_DOWNLOAD_MANUAL_ENCRYPT": 0,
    "SECURE_VERSION": 0,
}


def parse_mac(text: str) -> bytes:
    """Parse ``AA:BB:CC:DD:EE:FF`` (``-`` also accepted); ``ValueError`` names the bad input."""
    parts = text.replace("-", ":").split(":")
    try:
        mac = bytes(int(p, 16) for p in parts)
    except ValueError:
        mac = b""
    if len(mac) != 6 or any(len(p) != 2 for p in parts):
        raise ValueError(f"bad MAC {text!r}: expected six hex bytes like 24:0a:c4:12:34:56")
    if mac[0] & 1:
        raise ValueError(f"bad MAC {text!r}: a multicast address cannot be a base MAC")
    return mac


def format_mac(mac: bytes) -> str:
    """``24:0a:c4:12:34:56`` (lowercase, as esptool prints it)."""
    return ":".join(f"{b:02x}" for b in mac)


def derive_mac(chip: ChipSpec, state_dir: Path | None) -> bytes:
    """The chip OUI plus 3 bytes of SHA-256 of the resolved state dir (random when there is none)."""
    if state_dir is None:
        tail = secrets.token_bytes(3)
    else:
        tail = hashlib.sha256(b"hil-sim-mac:" + os.fsencode(Path(state_dir).resolve())).digest()[:3]
    return chip.mac_oui + tail


def crc8_mac(mac: bytes) -> int:
    """ESP32 MAC CRC8 (Dallas/Maxim, reflected poly 0x8C) stored in BLK0 word 2 bits 16..23."""
    crc = 0
    for byte in mac:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8C if crc & 1 else crc >> 1
    return crc


@dataclass
class Efuses:
    """The fuses of one chip; use ``load_or_create`` to get the persisted instance of a board."""

    chip: ChipSpec
    mac: bytes
    fields: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_FIELDS))
    path: Path | None = None

    @classmethod
    def load_or_create(cls, chip: ChipSpec, state_dir: Path | None, mac: bytes | None = None) -> Efuses:
        """Load ``efuse.json`` from ``state_dir`` or create (and save) a fresh set of fuses."""
        path = Path(state_dir) / EFUSE_FILE if state_dir is not None else None
        if path is not None and path.exists():
            data = json.loads(path.read_text())
            if data.get("chip") != chip.name:
                raise ValueError(
                    f"state dir {state_dir} holds a {data.get('chip')} board, not {chip.name}: use another --state-dir"
                )
            stored = parse_mac(data["mac"])
            if mac is not None and mac != stored:
                raise ValueError(
                    f"board in {state_dir} has MAC {format_mac(stored)} burned in eFuse; "
                    f"cannot change it to {format_mac(mac)}: drop --mac or use another --state-dir"
                )
            fields = dict(DEFAULT_FIELDS)
            fields.update({k: int(v) for k, v in data.get("fields", {}).items()})
            return cls(chip, stored, fields, path)
        fuses = cls(chip, mac if mac is not None else derive_mac(chip, state_dir), path=path)
        fuses.save()
        return fuses

    def save(self) -> None:
        """Persist to ``efuse.json`` (atomic replace); no-op for a board without a state dir."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"chip": self.chip.name, "mac": format_mac(self.mac), "fields": self.fields}, indent=2, sort_keys=True
            )
        )
        os.replace(tmp, self.path)

    def burn(self, name: str, value: int) -> int:
        """OR ``value`` into fuse ``name`` (bits never clear) and persist; returns the new value."""
        if name not in self.fields:
            raise KeyError(f"unknown eFuse {name!r}; known: {sorted(self.fields)}")
        self.fields[name] |= int(value)
        self.save()
        return self.fields[name]

    # -- what the ROM loader exposes ---------------------------------------------------------------
    def security_flags(self) -> int:
        """GET_SECURITY_INFO flag word (bit map from the ROM)."""
        return (1 if self.fields["SECURE_BOOT_EN"] else 0) | (4 if self.fields["SECURE_DOWNLOAD_ENABLE"] else 0)

    def crypt_cnt(self) -> int:
        """Flash-encryption counter as GET_SECURITY_INFO reports it."""
        return self.fields["FLASH_CRYPT_CNT"] & 0xFF

    def registers(self) -> dict[int, int]:
        """eFuse read registers (address → 32-bit value) as esptool reads them from this chip."""
        if self.chip.name == "esp32":
            return self._esp32_registers()
        if self.chip.name == "esp32c6":
            return self._esp32c6_registers()
        raise ValueError(f"no eFuse register map for chip {self.chip.name!r}")

    def _esp32_registers(self) -> dict[int, int]:
        base = 0x3FF5A000
        mac = self.mac
        word0 = (self.fields["FLASH_CRYPT_CNT"] & 0x7F) << 20
        word1 = struct.unpack(">I", mac[2:6])[0]
        word2 = (crc8_mac(mac) << 16) | (mac[0] << 8) | mac[1]
        word3 = (1 << 9) | (1 << 15)  # pkg D0WD, rev bit0 → "ESP32-D0WD-V3"
        word4 = 100  # CK8M calibration: ROM xtal estimate = 40 MHz
        word5 = (1 << 20) | (1 << 24)  # rev bit1, minor revision 1 → "revision v3.1"
        word6 = (1 << 4) if self.fields["SECURE_BOOT_EN"] else 0  # ABS_DONE_0
        return {base + 4 * n: v & 0xFFFFFFFF for n, v in enumerate((word0, word1, word2, word3, word4, word5, word6))}

    def _esp32c6_registers(self) -> dict[int, int]:
        base = 0x600B0800
        mac = self.mac
        mac0 = struct.unpack(">I", mac[2:6])[0]
        mac1 = 0xFFFE0000 | (mac[0] << 8) | mac[1]  # high half: EUI-64 ext bytes ff:fe
        crypt = (self.fields["FLASH_CRYPT_CNT"] & 0x7) << 18
        secure_boot = (1 << 20) if self.fields["SECURE_BOOT_EN"] else 0
        return {
            base + 0x030: 0,
            base + 0x034: crypt,
            base + 0x038: secure_boot,
            base + 0x044: mac0,
            base + 0x048: mac1,
            base + 0x050: 1 << 18,  # pkg 0 (QFN40), v0.1
            base + 0x054: 0,
        }
