"""``hil images info PATH``: say what a file is — MCUboot image, ESP32 app/bootloader image, NVS
partition, TEST ONLY key — with the facts a person debugging a bench wants. Keys are shown by
fingerprint only; NVS entries by name and type, never by value.
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from hil.images.app_keys import find_fota_public_key
from hil.images.bootloader_key import find_key_block
from hil.images.esp_image import check_esp_image
from hil.images.keys import rsa_fingerprint, secret_fingerprint
from hil.images.layout import SECTOR_SIZE

MCUBOOT_MAGIC = 0x96F3B83D
ESP_IMAGE_MAGIC = 0xE9
_TLV_NAMES = {0x01: "KEYHASH", 0x02: "PUBKEY", 0x10: "SHA256", 0x20: "RSA2048_PSS", 0x50: "SEC_CNT"}
_NVS_TYPES = {
    0x01: "u8",
    0x02: "u16",
    0x04: "u32",
    0x08: "u64",
    0x11: "i8",
    0x12: "i16",
    0x14: "i32",
    0x18: "i64",
    0x21: "string",
    0x42: "blob-data",
    0x48: "blob-index",
}
_CHIP_BY_ID = {0: "esp32", 13: "esp32c6"}


def describe(path: Path) -> list[str]:
    """Lines describing the file at ``path``."""
    data = Path(path).read_bytes()
    head = [f"{path}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}"]
    if len(data) >= 32 and struct.unpack_from("<I", data)[0] == MCUBOOT_MAGIC:
        return [*head, *_mcuboot(data)]
    if data[:1] == bytes([ESP_IMAGE_MAGIC]):
        return [*head, *_esp(data)]
    if len(data) >= SECTOR_SIZE and len(data) % SECTOR_SIZE == 0 and data[8] == 0xFE:
        return [*head, *_nvs(data)]
    if b"-----BEGIN" in data:
        return [*head, *_pem(data)]
    if path.suffix == ".hex":
        body = "".join(ln for ln in data.decode("ascii", "replace").splitlines() if not ln.startswith("#"))
        try:
            secret = bytes.fromhex(body.strip())
        except ValueError:
            return [*head, "a .hex file that is not a hex key"]
        return [*head, f"symmetric key: {len(secret)} bytes, fingerprint {secret_fingerprint(secret)}"]
    if path.name == "index.json":
        doc = json.loads(data)
        return [
            *head,
            f"index of {len(doc['artifacts'])} artifacts for {doc['chip']}",
            *(
                f"  {a['name']:<20} {a['role']:<20} {a['version'] or '':<7} "
                f"{'' if a['offset'] is None else hex(a['offset']):<9} boots={a['boots']}"
                for a in doc["artifacts"]
            ),
        ]
    return [*head, "not a format hil knows (MCUboot, ESP32 image, NVS, PEM key, hex key, index.json)"]


def _mcuboot(data: bytes) -> list[str]:
    _, _load, hdr, prot, img_size, flags, major, minor, rev, build = struct.unpack_from("<IIHHIIBBHI", data)
    lines = [
        f"MCUboot image: version {major}.{minor}.{rev}+{build}, header {hdr:#x}, payload {img_size:#x} "
        f"bytes, protected TLVs {prot:#x}, flags {flags:#x}"
    ]
    at = hdr + img_size
    if at + 4 > len(data):
        lines.append(f"TRUNCATED: file ends at {len(data):#x}, the TLV area starts at {at:#x}")
    else:
        lines.append("TLVs: " + ", ".join(_tlvs(data, at)))
    payload = data[hdr : hdr + img_size]
    if payload[:1] == bytes([ESP_IMAGE_MAGIC]):
        lines += ["payload: " + ln for ln in _esp(payload)]
    return lines


def _tlvs(data: bytes, at: int) -> list[str]:
    found = []
    while at + 4 <= len(data):
        magic, total = struct.unpack_from("<HH", data, at)
        if magic not in (0x6907, 0x6908):
            break
        end, at = at + total, at + 4
        while at + 4 <= min(end, len(data)):
            kind, length = data[at], struct.unpack_from("<H", data, at + 2)[0]
            value = data[at + 4 : at + 4 + length]
            label = _TLV_NAMES.get(kind, f"0x{kind:02x}")
            found.append(f"{label} {value[:8].hex()}" if kind in (0x01, 0x10) else f"{label} ({length} B)")
            at += 4 + length
        at = end
    return found or ["none"]


def _esp(data: bytes) -> list[str]:
    chip = _CHIP_BY_ID.get(int.from_bytes(data[12:14], "little"), "esp32")
    try:
        check = check_esp_image(data, chip)
    except ValueError as exc:
        return [f"ESP image that esptool cannot parse: {exc}"]
    verdict = {True: "valid", False: "INVALID"}
    lines = [
        f"ESP32 image for {chip}: {check.segments} segments, checksum "
        f"{verdict[check.checksum_valid]}, hash {verdict[check.hash_valid]}"
    ]
    if check.app_desc is not None:
        lines.append(
            f"app: {check.app_desc.project_name} {check.app_desc.version} "
            f"(secure_version {check.app_desc.secure_version})"
        )
    fota = find_fota_public_key(data)
    if fota is not None:
        lines.append(f"app trusting FOTA key {_key_fingerprint(serialization.load_pem_public_key(fota))}")
    key = find_key_block(data)
    if key is not None:
        pub = serialization.load_der_public_key(key)  # accepts PKCS#1 DER
        lines.append(f"bootloader trusting MCUboot key {_key_fingerprint(pub)}")
    return lines


def _key_fingerprint(public: PublicKeyTypes) -> str:
    """The fingerprint of an RSA public key; a key of another type is named, not fingerprinted."""
    if not isinstance(public, rsa.RSAPublicKey):
        return f"of unexpected type {type(public).__name__} (not RSA)"
    return rsa_fingerprint(public)


def _nvs(data: bytes) -> list[str]:
    lines, names = [], []
    for page_no in range(len(data) // SECTOR_SIZE):
        page = data[page_no * SECTOR_SIZE : (page_no + 1) * SECTOR_SIZE]
        state, seq = struct.unpack_from("<II", page)
        if state == 0xFFFFFFFF:
            continue
        crc_ok = struct.unpack_from("<I", page, 28)[0] == zlib.crc32(page[4:28], 0xFFFFFFFF)
        lines.append(f"page {page_no}: state {state:#010x}, seq {seq}, header crc {'ok' if crc_ok else 'BAD'}")
        index = 0
        while index < 126:
            if (page[32 + index // 4] >> (2 * (index % 4))) & 3 != 0b10:
                index += 1
                continue
            entry = page[64 + 32 * index : 96 + 32 * index]
            kind, span = entry[1], max(1, entry[2])
            key = entry[8:24].split(b"\0", 1)[0].decode("ascii", "replace")
            names.append(f"ns{entry[0]}/{key}:{_NVS_TYPES.get(kind, hex(kind))}")
            index += span
    return ["NVS partition", *lines, "entries: " + ", ".join(names)]


def _pem(data: bytes) -> list[str]:
    try:
        key = serialization.load_pem_private_key(data, password=None)
        public = key.public_key()
        what = "private"
    except ValueError:
        public = serialization.load_pem_public_key(data)
        what = "public"
    comment = [ln for ln in data.decode("ascii", "replace").splitlines() if ln.startswith("#")]
    if not isinstance(public, rsa.RSAPublicKey):
        return [f"{what} key of type {type(public).__name__}", *comment]
    return [f"RSA-{public.key_size} {what} key, fingerprint {rsa_fingerprint(public)}", *comment]
