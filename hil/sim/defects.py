"""The virtual board's catalogue of named defects.

A defect is a deliberate, documented deviation from correct behaviour that a virtual board can be
started with (``hil sim --defect NAME``). Every security scenario is shown to fail against the
defect that breaks the property it checks (the defect meta-tests in ``selftest/``). The catalogue is
data: adding a defect is adding a row here and honouring it at the one place it changes behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Defect:
    """One named defect: where it lives and what it breaks."""

    name: str
    area: str  # rom | loader | mcuboot | app | upload | ota | coap
    summary: str


CATALOGUE: tuple[Defect, ...] = (
    Defect("rom-boots-without-bootloader", "rom",
           "with the bootloader region erased the ROM jumps straight to the primary slot's app"),
    Defect("loader-stale-md5", "loader",
           "SPI_FLASH_MD5 answers from a stale flash cache until the loader's first write: digests "
           "taken before writing are wrong (skip-if-identical rewrites), verification after is right"),
    Defect("mcuboot-accept-unsigned", "mcuboot",
           "MCUboot boots an image that has no signature TLV or a signature that does not verify"),
    Defect("mcuboot-skip-hash", "mcuboot",
           "MCUboot neither checks the SHA-256 TLV nor the signature: any payload change boots"),
    Defect("mcuboot-trust-embedded-key", "mcuboot",
           "MCUboot skips the key-hash check and verifies with the public key the image carries"),
    Defect("mcuboot-ignore-magic", "mcuboot",
           "MCUboot does not check the image header magic and boots what follows the header"),
    Defect("mcuboot-ignore-size", "mcuboot",
           "MCUboot hashes only the bytes present in the slot, so a truncated image boots"),
    Defect("mcuboot-never-revert", "mcuboot",
           "a test image that never confirmed itself is kept instead of reverted on the next boot"),
    Defect("app-version-hardcoded", "app",
           "the app prints 'Firmware Version: 1.0.0' whatever its esp_app_desc_t says"),
    Defect("nonce-not-persisted", "upload",
           "the upload nonce is incremented in RAM only, never committed to NVS: after a reset it is reused"),
    Defect("mac-over-payload-only", "upload",
           "the upload HMAC covers the payload string only, not the nonce (server answers INVALID_HMAC)"),
    Defect("nonce-reused-on-retry", "upload",
           "a retried upload re-sends the nonce of the failed attempt instead of a new one"),
    Defect("tls-no-verify", "upload",
           "the HTTPS client does not verify the server certificate: a MITM certificate is accepted"),
)

BY_NAME: dict[str, Defect] = {d.name: d for d in CATALOGUE}


class UnknownDefectError(ValueError):
    """A defect name that is not in the catalogue."""


class DefectSet:
    """An immutable set of active defects, validated against the catalogue."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        names = frozenset(names)
        unknown = sorted(names - BY_NAME.keys())
        if unknown:
            raise UnknownDefectError(
                f"unknown defect(s) {', '.join(unknown)}; `hil sim --list-defects` lists the catalogue")
        self._names = names

    def __contains__(self, name: str) -> bool:
        if name not in BY_NAME:  # a typo at a check site must not silently mean "not active"
            raise UnknownDefectError(f"defect {name!r} checked but not in the catalogue")
        return name in self._names

    def __iter__(self):
        return iter(sorted(self._names))

    def __bool__(self) -> bool:
        return bool(self._names)

    def __repr__(self) -> str:
        return f"DefectSet({sorted(self._names)!r})"


def format_catalogue() -> str:
    """The catalogue as a table, for ``hil sim --list-defects``."""
    width = max(len(d.name) for d in CATALOGUE)
    return "\n".join(f"{d.name:<{width}}  [{d.area}] {d.summary}" for d in CATALOGUE)
