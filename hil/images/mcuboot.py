"""MCUboot image and trailer codec (pure functions; no imgtool import).

Image: 32-byte header, payload at ``hdr_size``, then an optional protected TLV area and the TLV
area (see /work/shared/reference/image-formats.md). Trailer: the last bytes of a slot (magic,
image_ok, copy_done, swap_info, swap_size) and the swap-type table MCUboot derives from the
trailers of both slots. Images are produced with imgtool; this module only reads and checks them.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

IMAGE_MAGIC = 0x96F3B83D
HEADER_FORMAT = "<IIHHIIBBHI"  # magic, load_addr, hdr_size, protect_tlv_size, img_size, flags, ver
HEADER_STRUCT_SIZE = struct.calcsize(HEADER_FORMAT)
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908

TLV_KEYHASH = 0x01
TLV_PUBKEY = 0x02
TLV_SHA256 = 0x10
TLV_RSA2048_PSS = 0x20
TLV_SEC_CNT = 0x50

PSS_SALT_LENGTH = 32

# Trailer (BOOT_MAX_ALIGN 8, swap-using-scratch, imgtool defaults: --align 4, max_sectors 128).
BOOT_MAGIC = bytes.fromhex("77c295f360d2ef7f3552500f2cb67980")
BOOT_MAX_ALIGN = 8
MAX_SECTORS = 128
WRITE_SIZE = 4
MAGIC_OFFSET = -16  # from the end of the slot
IMAGE_OK_OFFSET = -16 - BOOT_MAX_ALIGN
COPY_DONE_OFFSET = IMAGE_OK_OFFSET - BOOT_MAX_ALIGN
SWAP_INFO_OFFSET = COPY_DONE_OFFSET - BOOT_MAX_ALIGN
SWAP_SIZE_OFFSET = SWAP_INFO_OFFSET - BOOT_MAX_ALIGN
# imgtool's _trailer_size: status area + 4 aligned fields + magic.
TRAILER_SIZE = MAX_SECTORS * 3 * WRITE_SIZE + BOOT_MAX_ALIGN * 4 + len(BOOT_MAGIC)
FLAG_SET = 0x01
ERASED = 0xFF


class McubootFormatError(ValueError):
    """The bytes are not a well-formed MCUboot image (header, TLV area)."""


@dataclass(frozen=True)
class ImageHeader:
    """The fixed MCUboot image header."""

    magic: int
    load_addr: int
    hdr_size: int
    protect_tlv_size: int
    img_size: int
    flags: int
    version: tuple[int, int, int, int]

    @property
    def magic_ok(self) -> bool:
        return self.magic == IMAGE_MAGIC

    @property
    def signed_size(self) -> int:
        """Length of the hashed/signed region: header + payload + protected TLVs."""
        return self.hdr_size + self.img_size + self.protect_tlv_size

    @property
    def version_str(self) -> str:
        major, minor, rev, build = self.version
        return f"{major}.{minor}.{rev}+{build}"


@dataclass(frozen=True)
class Tlv:
    """One TLV entry; ``protected`` when it sits in the protected (signed) area."""

    type: int
    data: bytes
    protected: bool = False


@dataclass(frozen=True)
class ParsedImage:
    """Header and TLVs of an image; ``total_size`` is where the TLV area ends."""

    header: ImageHeader
    tlvs: tuple[Tlv, ...]
    total_size: int

    def tlv(self, tlv_type: int) -> bytes | None:
        """Data of the first TLV of ``tlv_type`` (``None`` if absent)."""
        return next((t.data for t in self.tlvs if t.type == tlv_type), None)


def parse_header(data: bytes) -> ImageHeader:
    """Parse the 32-byte header. Does not judge the magic (see ``ImageHeader.magic_ok``)."""
    if len(data) < HEADER_STRUCT_SIZE:
        raise McubootFormatError(f"image too short for an MCUboot header: {len(data)} bytes")
    magic, load, hdr, prot, size, flags, major, minor, rev, build = struct.unpack_from(HEADER_FORMAT, data)
    return ImageHeader(magic, load, hdr, prot, size, flags, (major, minor, rev, build))


def _parse_tlv_area(data: bytes, offset: int, magic: int, protected: bool) -> tuple[list[Tlv], int]:
    if offset + 4 > len(data):
        raise McubootFormatError(f"TLV area at 0x{offset:x} is past the end of the data")
    info_magic, total = struct.unpack_from("<HH", data, offset)
    if info_magic != magic:
        raise McubootFormatError(f"TLV info magic 0x{info_magic:04x} at 0x{offset:x}, expected 0x{magic:04x}")
    end = offset + total
    if end > len(data) or total < 4:
        raise McubootFormatError(f"TLV area at 0x{offset:x} (0x{total:x} bytes) overruns the data")
    tlvs, at = [], offset + 4
    while at < end:
        if at + 4 > end:
            raise McubootFormatError(f"truncated TLV entry at 0x{at:x}")
        tlv_type, _, length = struct.unpack_from("<BBH", data, at)
        if at + 4 + length > end:
            raise McubootFormatError(f"TLV 0x{tlv_type:02x} at 0x{at:x} overruns its area")
        tlvs.append(Tlv(tlv_type, bytes(data[at + 4 : at + 4 + length]), protected))
        at += 4 + length
    return tlvs, end


def parse_image(data: bytes) -> ParsedImage:
    """Parse header and TLV areas; raises ``McubootFormatError`` when they are missing/broken."""
    header = parse_header(data)
    offset = header.hdr_size + header.img_size
    tlvs: list[Tlv] = []
    if header.protect_tlv_size:
        prot, offset = _parse_tlv_area(data, offset, TLV_PROT_INFO_MAGIC, True)
        if offset != header.hdr_size + header.img_size + header.protect_tlv_size:
            raise McubootFormatError("protected TLV area size disagrees with the header")
        tlvs += prot
    unprot, end = _parse_tlv_area(data, offset, TLV_INFO_MAGIC, False)
    return ParsedImage(header, tuple(tlvs + unprot), end)


def image_hash(data: bytes, header: ImageHeader) -> bytes:
    """SHA-256 of the signed region (what the SHA256 TLV holds)."""
    return hashlib.sha256(memoryview(data)[: header.signed_size]).digest()


def key_hash(public_key_der: bytes) -> bytes:
    """SHA-256 of a DER ``RSAPublicKey`` (what the KEYHASH TLV holds)."""
    return hashlib.sha256(public_key_der).digest()


def load_public_key(der: bytes) -> rsa.RSAPublicKey:
    """Load a DER RSA public key (PKCS#1 ``RSAPublicKey`` or SubjectPublicKeyInfo)."""
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise McubootFormatError(f"not a DER RSA public key ({len(der)} bytes): {exc}") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise McubootFormatError("public key is not RSA")
    return key


def verify_pss(public_key_der: bytes, message: bytes, signature: bytes) -> bool:
    """RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32) check of ``message``; ``False`` if it fails."""
    key = load_public_key(public_key_der)
    try:
        key.verify(
            signature,
            message,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=PSS_SALT_LENGTH),
            hashes.SHA256(),
        )
    except InvalidSignature:
        return False
    return True


# ---------------------------------------------------------------- trailer and swap type


class MagicState(enum.Enum):
    GOOD = "good"
    UNSET = "unset"
    BAD = "bad"


class Flag(enum.Enum):
    SET = 0x01
    UNSET = 0xFF
    BAD = -1

    @classmethod
    def from_byte(cls, value: int) -> Flag:
        return {FLAG_SET: cls.SET, ERASED: cls.UNSET}.get(value, cls.BAD)


class SwapType(enum.Enum):
    """MCUboot's BOOT_SWAP_TYPE_* values and their log names."""

    NONE = 1
    TEST = 2
    PERM = 3
    REVERT = 4
    FAIL = 5
    PANIC = 0xFF

    @property
    def log_name(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class TrailerState:
    """The fields MCUboot reads from a slot trailer."""

    magic: MagicState
    image_ok: Flag
    copy_done: Flag
    swap_info: int = ERASED


def trailer_tail_size() -> int:
    """How many bytes at the end of a slot ``parse_trailer`` needs."""
    return -SWAP_SIZE_OFFSET


def parse_trailer(tail: bytes) -> TrailerState:
    """Parse the trailer from the last ``trailer_tail_size()`` (or more) bytes of a slot."""
    if len(tail) < trailer_tail_size():
        raise ValueError(f"trailer needs {trailer_tail_size()} bytes, got {len(tail)}")
    end = len(tail)
    magic_raw = tail[end + MAGIC_OFFSET :]
    if magic_raw == BOOT_MAGIC:
        magic = MagicState.GOOD
    elif magic_raw == b"\xff" * len(BOOT_MAGIC):
        magic = MagicState.UNSET
    else:
        magic = MagicState.BAD
    return TrailerState(
        magic,
        Flag.from_byte(tail[end + IMAGE_OK_OFFSET]),
        Flag.from_byte(tail[end + COPY_DONE_OFFSET]),
        tail[end + SWAP_INFO_OFFSET],
    )


def pending_writes(permanent: bool) -> list[tuple[int, bytes]]:
    """Trailer writes (offset from slot end, bytes) that request a test or permanent swap of the
    secondary slot (``boot_set_pending``). Apply them to an erased trailer."""
    writes = [(MAGIC_OFFSET, BOOT_MAGIC)]
    if permanent:
        writes.append((IMAGE_OK_OFFSET, bytes([FLAG_SET])))
    return writes


def confirm_writes() -> list[tuple[int, bytes]]:
    """Trailer write that confirms the running image (``boot_set_confirmed``: image_ok = 1)."""
    return [(IMAGE_OK_OFFSET, bytes([FLAG_SET]))]


def swapped_writes(swap_type: SwapType) -> list[tuple[int, bytes]]:
    """Primary-slot trailer after a completed swap: magic + copy_done, and image_ok when the
    result is permanent (perm, or a revert that restores the confirmed image)."""
    writes = [
        (MAGIC_OFFSET, BOOT_MAGIC),
        (COPY_DONE_OFFSET, bytes([FLAG_SET])),
        (SWAP_INFO_OFFSET, bytes([swap_type.value])),
    ]
    if swap_type in (SwapType.PERM, SwapType.REVERT):
        writes.append((IMAGE_OK_OFFSET, bytes([FLAG_SET])))
    return writes


def swap_type_for(primary: TrailerState, secondary: TrailerState) -> SwapType:
    """MCUboot's ``boot_swap_tables``: the swap requested by the two trailers."""
    if secondary.magic is MagicState.GOOD:
        if secondary.image_ok is Flag.UNSET:
            return SwapType.TEST
        if secondary.image_ok is Flag.SET:
            return SwapType.PERM
    if (
        secondary.magic is MagicState.UNSET
        and primary.magic is MagicState.GOOD
        and primary.image_ok is Flag.UNSET
        and primary.copy_done is Flag.SET
    ):
        return SwapType.REVERT
    return SwapType.NONE
