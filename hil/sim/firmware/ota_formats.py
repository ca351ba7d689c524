"""The OTA wire formats the device speaks (NVS ``ecowatt/wire``, like the upload formats of
:mod:`hil.sim.firmware.upload_formats`): which client talks to the update server, how the image is
signed, and what its first plaintext bytes must be.

The update flow (:mod:`hil.sim.firmware.ota`) and the after-reboot settling
(:mod:`hil.sim.firmware.ota_boot`) are the same for every format; each format is a row of
:data:`FORMATS`:

- ``ecowatt-api`` (PROTOCOL.md): :class:`~hil.sim.firmware.ota_client.OtaClient`, RSASSA-PSS over
  the image's SHA-256.
- ``ecowatt-fw134`` (``ecowatt-fw134-wire.md``): :class:`~hil.sim.firmware.ota_fw134.Fw134Client`,
  RSASSA-PKCS1-v1_5 over the image's SHA-256, the plaintext must open with the MCUboot image magic.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding as asym
from cryptography.hazmat.primitives.asymmetric.padding import AsymmetricPadding

from hil.images import mcuboot as mb
from hil.sim.firmware.device import Device
from hil.sim.firmware.identity import NvsIdentity
from hil.sim.firmware.ota_client import Manifest, Offer, OtaClient, UpdatePhase
from hil.sim.firmware.ota_fw134 import Fw134Client


class OtaChannel(Protocol):
    """What the update flow asks of a format's client (one kept-alive connection, closed on exit).

    ``check``/``manifest`` raise ``net.NetError`` or ``OtaReplyError``; ``chunk`` raises
    ``net.NetError`` for anything but the chunk's exact ciphertext; reports never raise.
    """

    def __enter__(self) -> OtaChannel: ...
    def __exit__(self, *exc: object) -> None: ...
    def check_url(self, version: str) -> str: ...
    def check(self, version: str) -> Offer | None: ...
    def manifest(self, offer: Offer) -> Manifest: ...
    def chunk(self, manifest: Manifest, chunk: int) -> bytes: ...
    def progress(self, version: str, percent: int) -> None: ...
    def phase(self, phase: UpdatePhase, version: str) -> None: ...
    def failed(self, version: str, code: str, message: str) -> None: ...
    def report(self, status: str, version: str, **fields: object) -> bool: ...


@dataclass(frozen=True)
class SignatureScheme:
    """How the image's SHA-256 is signed; ``name`` is what the log lines call it."""

    name: str
    padding: AsymmetricPadding


@dataclass(frozen=True)
class OtaFormat:
    """One OTA wire format: its client, its signature, the step that precedes the download (for
    error messages) and the bytes the decrypted image must start with (empty: not checked)."""

    name: str
    open: Callable[[Device, float], OtaChannel]
    signature: SignatureScheme
    prepare_step: str
    image_magic: bytes = b""


RSA_PSS = SignatureScheme("RSA-PSS", asym.PSS(asym.MGF1(hashes.SHA256()), 32))
RSA_PKCS1V15 = SignatureScheme("RSA-PKCS1v15", asym.PKCS1v15())
MCUBOOT_MAGIC = struct.pack("<I", mb.IMAGE_MAGIC)

# One row per hil.images.nvs_gen.WIRE_FORMATS entry (a self-test holds them in step).
FORMATS: dict[str, OtaFormat] = {
    "ecowatt-api": OtaFormat("ecowatt-api", OtaClient, RSA_PSS, prepare_step="manifest"),
    "ecowatt-fw134": OtaFormat(
        "ecowatt-fw134", Fw134Client, RSA_PKCS1V15, prepare_step="initiate", image_magic=MCUBOOT_MAGIC
    ),
}


def format_of(ident: NvsIdentity) -> OtaFormat | None:
    """The OTA format *ident* was provisioned with; ``None`` for a value this firmware does not know."""
    return FORMATS.get(ident.wire)
