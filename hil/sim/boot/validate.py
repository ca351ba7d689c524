"""MCUboot's image validation (``bootutil_img_validate``) of one slot, with the defects that break it.

Checks, in MCUboot's order: header magic, image + TLVs fit the slot, SHA-256 TLV over header +
payload + protected TLVs, key (KEYHASH TLV, or a full PUBKEY TLV, against the key the bootloader
carries), RSA-2048 PSS signature over the same region.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from hil.images import mcuboot as mb
from hil.sim.defects import DefectSet


@dataclass(frozen=True)
class Verdict:
    """Outcome of validating a slot; ``reason`` names the failed (or defect-skipped) check."""

    valid: bool
    reason: str
    header: mb.ImageHeader | None = None
    image_size: int = 0  # header + payload + TLVs, when known
    signer_key: bytes | None = None  # set only when hash and signature were really verified

    def __bool__(self) -> bool:
        return self.valid


def _signer_key(parsed: mb.ParsedImage, trusted: bytes | None, defects: DefectSet) -> bytes | None:
    """The key to verify with: the trusted one if the image names it; else ``None``."""
    embedded = parsed.tlv(mb.TLV_PUBKEY)
    if "mcuboot-trust-embedded-key" in defects:
        return embedded or trusted
    if trusted is None:
        return None
    keyhash = parsed.tlv(mb.TLV_KEYHASH)
    if keyhash is not None:
        return trusted if hmac.compare_digest(keyhash, mb.key_hash(trusted)) else None
    if embedded is not None:
        return trusted if hmac.compare_digest(embedded, trusted) else None
    return None


def validate_slot(data: bytes, trusted_key_der: bytes | None, defects: DefectSet) -> Verdict:
    """Validate the image at the start of ``data`` (the whole slot, trailer included)."""
    header = mb.parse_header(data)
    if not header.magic_ok:
        if "mcuboot-ignore-magic" in defects:
            return Verdict(True, "header magic not checked (defect)", header)
        return Verdict(False, f"bad image magic 0x{header.magic:08x}", header)
    if header.signed_size + 4 > len(data) - mb.TRAILER_SIZE:
        return Verdict(False, f"image size 0x{header.img_size:x} exceeds the slot", header)
    try:
        parsed = mb.parse_image(data)
    except mb.McubootFormatError as exc:
        if "mcuboot-ignore-size" in defects:  # hashes what is there; the missing TLVs go unchecked
            return Verdict(True, f"truncated image accepted (defect): {exc}", header)
        return Verdict(False, f"TLV area: {exc}", header)
    size = parsed.total_size
    if size > len(data) - mb.TRAILER_SIZE:
        return Verdict(False, "TLV area runs into the trailer", header, size)
    if "mcuboot-skip-hash" in defects:
        return Verdict(True, "hash and signature not checked (defect)", header, size)
    digest = parsed.tlv(mb.TLV_SHA256)
    if digest is None or not hmac.compare_digest(digest, mb.image_hash(data, header)):
        return Verdict(False, "SHA-256 TLV missing or mismatched", header, size)
    signature = parsed.tlv(mb.TLV_RSA2048_PSS)
    key = _signer_key(parsed, trusted_key_der, defects)
    ok = signature is not None and key is not None and mb.verify_pss(key, bytes(data[: header.signed_size]), signature)
    if ok:
        return Verdict(True, "signature verified", header, size, signer_key=key)
    if "mcuboot-accept-unsigned" in defects:
        return Verdict(True, "signature not required (defect)", header, size)
    why = (
        "no signature TLV"
        if signature is None
        else "no trusted key matches the image"
        if key is None
        else "signature does not verify"
    )
    return Verdict(False, why, header, size)
