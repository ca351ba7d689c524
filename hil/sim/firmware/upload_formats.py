"""The upload formats the device speaks (NVS ``ecowatt/wire``, :data:`hil.images.nvs_gen.WIRE_FORMATS`):
what one attempt of the upload cycle sends, and where.

The cycle (:mod:`hil.sim.firmware.upload`) is the same for every format (nonce, retries, TLS, log
lines); only building the request differs, so each format is a row of :data:`FORMATS`:

- ``ecowatt-api`` (PROTOCOL.md): ``POST /api/upload/data``, :func:`hil.protocol.upload.build_packet`;
  AES with the provisioned ``aes_key``.
- ``ecowatt-fw134`` (``ecowatt-fw134-wire.md``): ``POST /aggregated/<device_id>``, the readings
  bit-packed in a ``compressed_sensor_batch`` inside :func:`hil.protocol.fw134.build_envelope`; the
  AES key is derived from the HMAC key, and a stored nonce below the boot floor is raised at boot.

The ``mac-over-payload-only`` defect keeps its meaning in both: the MAC leaves the nonce out (api:
HMAC of the payload string; fw134: HMAC of the inner bytes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from hil.protocol import fw134
from hil.protocol.readings import Readings
from hil.protocol.upload import build_packet
from hil.sim.defects import DefectSet
from hil.sim.firmware.identity import NvsIdentity

API_UPLOAD_PATH = "/api/upload/data"
FW134_UPLOAD_PATH = "/aggregated/{device_id}"


@dataclass(frozen=True)
class OutgoingUpload:
    """One attempt's request: the path on the server, the JSON body, and what the log lines report."""

    path: str
    body: bytes
    nonce: int
    encrypted: bool


# (identity, readings, nonce, encrypt, active defects) -> the request; ProtocolError if the readings
# cannot be expressed in the format.
PacketBuilder = Callable[[NvsIdentity, Readings, int, bool, DefectSet], OutgoingUpload]


@dataclass(frozen=True)
class UploadFormat:
    """How one wire format builds its upload; ``boot_nonce_floor`` 0 means the stored nonce is used as is."""

    name: str
    build: PacketBuilder
    needs_aes_key: bool  # encryption uses the provisioned ecowatt/aes_key (else it derives its own)
    boot_nonce_floor: int = 0


def _mac_without_nonce(key: bytes, data: bytes) -> str:
    """The ``mac-over-payload-only`` defect's MAC: HMAC-SHA256 of *data* alone."""
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _api_packet(
    ident: NvsIdentity, readings: Readings, nonce: int, encrypt: bool, defects: DefectSet
) -> OutgoingUpload:
    packet = build_packet(readings, nonce=nonce, hmac_key=ident.hmac_key, aes_key=ident.aes_key if encrypt else None)
    if "mac-over-payload-only" in defects:
        packet = dataclasses.replace(packet, mac=_mac_without_nonce(ident.hmac_key, packet.payload.encode("ascii")))
    return OutgoingUpload(API_UPLOAD_PATH, packet.to_json(), nonce, packet.encrypted)


def _fw134_packet(
    ident: NvsIdentity, readings: Readings, nonce: int, encrypt: bool, defects: DefectSet
) -> OutgoingUpload:
    # the firmware scales and rounds its raw registers; sensors.sample_readings' 2-decimal floats fit that
    inner = fw134.encode_inner(fw134.batch_from_readings(readings))
    envelope = fw134.build_envelope(inner, nonce=nonce, hmac_key=ident.hmac_key, encrypt=encrypt)
    if "mac-over-payload-only" in defects:
        envelope = dataclasses.replace(envelope, mac=_mac_without_nonce(ident.hmac_key, inner))
    path = FW134_UPLOAD_PATH.format(device_id=ident.device_id)
    return OutgoingUpload(path, envelope.to_json(), nonce, envelope.encrypted)


# One row per hil.images.nvs_gen.WIRE_FORMATS entry (a self-test holds the two in step).
FORMATS: dict[str, UploadFormat] = {
    "ecowatt-api": UploadFormat("ecowatt-api", _api_packet, needs_aes_key=True),
    "ecowatt-fw134": UploadFormat(
        "ecowatt-fw134", _fw134_packet, needs_aes_key=False, boot_nonce_floor=fw134.BOOT_NONCE_FLOOR
    ),
}


def format_of(ident: NvsIdentity) -> UploadFormat | None:
    """The upload format *ident* was provisioned with; ``None`` for a value this firmware does not know."""
    return FORMATS.get(ident.wire)


def unknown_format_error(ident: NvsIdentity) -> str:
    """The log text for an unknown ``ecowatt/wire`` value: names it and what to provision instead."""
    wire = "".join(c if c.isprintable() else "?" for c in ident.wire)[:40]
    return f"unknown wire format {wire!r} in NVS ecowatt/wire; provision {' or '.join(FORMATS)}"
