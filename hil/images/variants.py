"""The image variants, as data: what each is made from, whether a correct MCUboot boots it, why.

Every variant goes to the primary slot. Those with ``boots=False`` are attacks the bootloader must
refuse (``Image in the primary slot is not valid!``); the ones with ``boots=True`` are valid images
whose problem is for the OTA logic (downgrade) or the app's self-test to catch.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from hil.images.layout import MCUBOOT_HEADER_SIZE

APP_PROJECT = "ecowatt"
# The device model fails its post-OTA self-test (and so never confirms the image) when the running
# app's esp_app_desc_t project name is this: the marker is the contract with hil.sim's app model.
SELFTEST_FAIL_PROJECT = "ecowatt-selftest-fail"

IMGTOOL_OK = "Image was correctly validated"
IMGTOOL_NO_SIGNATURE = "No signature found for the given key"
IMGTOOL_BAD_HASH = "Image has an invalid hash"
IMGTOOL_BAD_MAGIC = "Invalid image magic; is this an MCUboot image?"
# imgtool 2.5 has no message for a cut TLV area: it crashes in struct.unpack
IMGTOOL_TRUNCATED = "unpack requires a buffer"


@dataclass(frozen=True)
class AppRelease:
    """A signed app built by the builder: index name, version and project name."""

    name: str
    version: str
    project: str = APP_PROJECT


RELEASES: tuple[AppRelease, ...] = (
    AppRelease("app-v1", "1.0.0"),
    AppRelease("app-v2", "2.0.0"),
    # A minor past 9: text and numeric order disagree between them (hil.adversarial.versions)
    AppRelease("app-v1.9", "1.9.0"),
    AppRelease("app-v1.10", "1.10.0"),
)


@dataclass(frozen=True)
class Variant:
    """One variant: ``payload`` (version, project) signed with ``sign_with`` (a key name or
    ``None``), then ``mutation`` applied to the signed bytes; ``verify`` is the verdict
    ``imgtool verify -k mcuboot-signing-key`` must print."""

    name: str
    version: str
    boots: bool
    why: str
    verify: str
    sign_with: str | None = "mcuboot-signing-key"
    public_key_format: str = "hash"
    mutation: str | None = None  # None | "bitflip" | "truncate" | "bad-magic"
    project: str = APP_PROJECT


VARIANTS: tuple[Variant, ...] = (
    Variant(
        "unsigned",
        "2.0.0",
        False,
        "no signature TLV: only the SHA-256 TLV is present",
        IMGTOOL_NO_SIGNATURE,
        sign_with=None,
    ),
    Variant(
        "other-key",
        "2.0.0",
        False,
        "signed by a key the bootloader does not trust, which the image carries in full",
        IMGTOOL_NO_SIGNATURE,
        sign_with="attacker-key",
        public_key_format="full",
    ),
    Variant(
        "bitflip",
        "2.0.0",
        False,
        "one payload bit flipped after signing: SHA-256 TLV mismatch",
        IMGTOOL_BAD_HASH,
        mutation="bitflip",
    ),
    Variant(
        "truncated",
        "2.0.0",
        False,
        "cut at half its size (an interrupted transfer): the TLVs and half the payload are gone",
        IMGTOOL_TRUNCATED,
        mutation="truncate",
    ),
    Variant(
        "bad-magic",
        "2.0.0",
        False,
        "MCUboot header magic altered: not an MCUboot image",
        IMGTOOL_BAD_MAGIC,
        mutation="bad-magic",
    ),
    Variant(
        "downgrade",
        "0.9.0",
        True,
        "validly signed but older than the running 1.0.0: OTA must refuse it; serial flash boots",
        IMGTOOL_OK,
    ),
    Variant(
        "selftest-fail",
        "2.0.0",
        True,
        f"validly signed v2 whose project name {SELFTEST_FAIL_PROJECT!r} makes the app's "
        "post-update self-test fail, so MCUboot reverts it",
        IMGTOOL_OK,
        project=SELFTEST_FAIL_PROJECT,
    ),
)

VARIANTS_BY_NAME: dict[str, Variant] = {v.name: v for v in VARIANTS}


def mutate(signed: bytes, mutation: str | None) -> tuple[bytes, str]:
    """Apply ``mutation`` to a signed image; returns the bytes and a note saying exactly what changed."""
    if mutation is None:
        return signed, ""
    if mutation == "bitflip":
        (img_size,) = struct.unpack_from("<I", signed, 12)
        at = MCUBOOT_HEADER_SIZE + img_size // 2
        flipped = bytearray(signed)
        flipped[at] ^= 0x01
        return bytes(flipped), f"bit 0 of byte {at:#x} inverted"
    if mutation == "truncate":
        keep = (len(signed) // 2) & ~0xFFF
        return signed[:keep], f"first {keep:#x} of {len(signed):#x} bytes kept"
    if mutation == "bad-magic":
        return bytes([signed[0] ^ 0xFF]) + signed[1:], "first header byte inverted (magic 0x96f3b8c2)"
    raise ValueError(f"unknown mutation {mutation!r}")
