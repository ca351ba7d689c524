"""The upload packet of PROTOCOL.md as pure functions: build, parse, verify, open.

Device pipeline (:func:`build_packet`): readings JSON → zlib → optional AES-128-CBC with a random
IV and PKCS7 → ``payload = base64(IV ‖ ciphertext)`` (or ``base64(compressed)``) →
``mac = HMAC-SHA256(hmac_key, ascii(decimal nonce) ‖ ascii(payload))``.

Server side: :func:`parse_packet` is the schema check (``INVALID_PAYLOAD``), :func:`verify_mac` the
constant-time MAC check, :func:`open_payload` the unwrap done only after the MAC and the nonce
passed (``INVALID_PAYLOAD`` for bad base64, ``DECOMPRESSION_FAILED`` for anything that does not
decrypt or inflate). Every failure is a :class:`~hil.protocol.errors.ProtocolError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.jsonio import load_json_object
from hil.protocol.readings import Readings, decode_readings, encode_readings, valid_device_id

MAX_BODY_BYTES = 16 * 1024  # request body limit (413 above it)
MAX_PLAINTEXT_BYTES = 64 * 1024  # inflate limit: a 16 KiB zlib bomb must not become megabytes
NONCE_MAX = 2**32 - 1  # the device keeps the nonce as a u32 in NVS
HMAC_KEY_BYTES = 32
AES_KEY_BYTES = 16
IV_BYTES = 16
COMPRESSION_TYPE = "zlib"
ZLIB_LEVEL = 6  # zlib's default; pinned so the known-answer vectors stay stable
_MAC_PATTERN = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class UploadPacket:
    """One ``POST /api/upload/data`` body. ``timestamp`` is the packet's ISO-8601 send time."""

    device_id: str
    nonce: int
    payload: str
    mac: str
    compressed: bool = True
    encrypted: bool = False
    compression_type: str | None = COMPRESSION_TYPE
    timestamp: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, keys in the firmware's order; ``None`` fields are left out."""
        doc: dict[str, Any] = {
            "device_id": self.device_id,
            "nonce": self.nonce,
            "payload": self.payload,
            "mac": self.mac,
            "compressed": self.compressed,
        }
        if self.compression_type is not None:
            doc["compression_type"] = self.compression_type
        doc["encrypted"] = self.encrypted
        if self.timestamp is not None:
            doc["timestamp"] = self.timestamp
        return doc

    def to_json(self) -> bytes:
        """The request body as sent on the wire (compact UTF-8 JSON)."""
        return json.dumps(self.to_dict(), separators=(",", ":")).encode("utf-8")


def mac_message(nonce: int, payload: str) -> bytes:
    """The MAC'd bytes: ``ascii(decimal nonce) ‖ ascii(payload string)``."""
    return str(nonce).encode("ascii") + payload.encode("ascii")


def compute_mac(hmac_key: bytes, nonce: int, payload: str) -> str:
    """Lowercase hex HMAC-SHA256 of :func:`mac_message`."""
    return hmac.new(hmac_key, mac_message(nonce, payload), hashlib.sha256).hexdigest()


def verify_mac(hmac_key: bytes, packet: UploadPacket) -> bool:
    """Constant-time check of ``packet.mac`` (hex, either case) against the expected MAC."""
    return hmac.compare_digest(compute_mac(hmac_key, packet.nonce, packet.payload), packet.mac.lower())


def compress(plaintext: bytes) -> bytes:
    """zlib-compress at :data:`ZLIB_LEVEL` (the device's ``compressed:true`` step)."""
    return zlib.compress(plaintext, ZLIB_LEVEL)


def seal_payload(body: bytes, *, aes_key: bytes | None = None, iv: bytes | None = None) -> str:
    """base64 of *body*, or with *aes_key* of ``IV ‖ AES-128-CBC(PKCS7(body))`` (random IV unless given)."""
    if aes_key is None:
        return base64.b64encode(body).decode("ascii")
    _check_len("aes_key", aes_key, AES_KEY_BYTES)
    iv = os.urandom(IV_BYTES) if iv is None else iv
    _check_len("iv", iv, IV_BYTES)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(body) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(iv)).encryptor()
    return base64.b64encode(iv + encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def build_packet(
    readings: Readings,
    *,
    nonce: int,
    hmac_key: bytes,
    aes_key: bytes | None = None,
    iv: bytes | None = None,
    timestamp: str | None = None,
) -> UploadPacket:
    """Build a packet the way the device does; encrypted iff *aes_key* is given.

    *timestamp* defaults to the readings' unix time in ISO-8601 UTC, so equal inputs give equal packets.
    """
    _check_len("hmac_key", hmac_key, HMAC_KEY_BYTES)
    if not 0 <= nonce <= NONCE_MAX:
        raise ValueError(f"nonce {nonce} is outside the u32 range the device stores")
    payload = seal_payload(compress(encode_readings(readings)), aes_key=aes_key, iv=iv)
    if timestamp is None:
        timestamp = iso_time(readings.timestamp)
    return UploadPacket(
        device_id=readings.device_id,
        nonce=nonce,
        payload=payload,
        mac=compute_mac(hmac_key, nonce, payload),
        encrypted=aes_key is not None,
        timestamp=timestamp,
    )


def iso_time(unix_time: int) -> str:
    """*unix_time* as the envelope's ISO-8601 UTC ``timestamp``."""
    return datetime.fromtimestamp(unix_time, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_packet(data: bytes | str | Mapping[str, Any]) -> UploadPacket:
    """Schema check of a request body (bytes/str JSON or an already decoded object).

    Required: ``device_id`` (1–32 of ``[A-Za-z0-9_-]``), ``nonce`` (integer 0..2³²−1), ``payload``
    (ASCII string, the MAC is defined over its ASCII bytes), ``mac`` (64 hex). Optional: ``compressed``
    (bool, default true), ``encrypted`` (bool, default false), ``compression_type`` (``"zlib"`` when
    compressed), ``timestamp`` (string). Missing or ``null`` required fields are errors, never skipped.
    """
    doc = data if isinstance(data, Mapping) else load_json_object(data, what="upload body")
    device_id, nonce, payload, mac = (doc.get(k) for k in ("device_id", "nonce", "payload", "mac"))
    if not valid_device_id(device_id):
        raise _invalid("device_id must be 1-32 chars of [A-Za-z0-9_-]")
    if not isinstance(nonce, int) or isinstance(nonce, bool) or not 0 <= nonce <= NONCE_MAX:
        raise _invalid("nonce must be an integer between 0 and 4294967295")
    if not isinstance(payload, str) or not payload.isascii():
        raise _invalid("payload must be an ASCII (base64) string")
    if not isinstance(mac, str) or _MAC_PATTERN.fullmatch(mac) is None:
        raise _invalid("mac must be 64 hex digits (HMAC-SHA256)")
    compressed = _optional(doc, "compressed", bool, True)
    encrypted = _optional(doc, "encrypted", bool, False)
    compression_type = _optional(doc, "compression_type", str, None)
    timestamp = _optional(doc, "timestamp", str, None)
    if compressed and compression_type not in (None, COMPRESSION_TYPE):
        raise _invalid(f"compression_type must be {COMPRESSION_TYPE!r}")
    return UploadPacket(device_id, nonce, payload, mac, compressed, encrypted, compression_type, timestamp)


def open_payload(packet: UploadPacket, *, aes_key: bytes | None) -> bytes:
    """Unwrap the payload to plaintext bytes: base64 → decrypt (if ``encrypted``) → inflate (if ``compressed``)."""
    try:
        raw = base64.b64decode(packet.payload, validate=True)
    except binascii.Error:
        raise _invalid("payload is not valid base64") from None
    if packet.encrypted:
        if aes_key is None:
            raise ProtocolError(ErrorCode.DECOMPRESSION_FAILED, "payload is encrypted but no AES key is known")
        raw = _decrypt(aes_key, raw)
    return _inflate(raw) if packet.compressed else raw


def open_packet(packet: UploadPacket, *, hmac_key: bytes, aes_key: bytes | None) -> Readings:
    """Verify the MAC, unwrap and decode: what a server does minus the nonce and storage steps."""
    if not verify_mac(hmac_key, packet):
        raise ProtocolError(ErrorCode.INVALID_HMAC, f"MAC of {packet.device_id} nonce {packet.nonce} does not verify")
    readings = decode_readings(open_payload(packet, aes_key=aes_key))
    check_readings_owner(packet, readings)
    return readings


def check_readings_owner(packet: UploadPacket, readings: Readings) -> None:
    """The plaintext must name the device that signed the packet (no cross-device injection)."""
    if readings.device_id != packet.device_id:
        raise _invalid(f"plaintext device_id {readings.device_id!r} differs from packet device_id")


def _decrypt(aes_key: bytes, raw: bytes) -> bytes:
    _check_len("aes_key", aes_key, AES_KEY_BYTES)
    if len(raw) < 2 * IV_BYTES or len(raw) % 16:
        raise ProtocolError(
            ErrorCode.DECOMPRESSION_FAILED,
            f"encrypted payload is {len(raw)} bytes; expected IV + a whole number of AES blocks",
        )
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(raw[:IV_BYTES])).decryptor()
    padded = decryptor.update(raw[IV_BYTES:]) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise ProtocolError(ErrorCode.DECOMPRESSION_FAILED, "payload does not decrypt (bad PKCS7 padding)") from None


def _inflate(raw: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(raw, MAX_PLAINTEXT_BYTES + 1)
    except zlib.error as exc:
        raise ProtocolError(ErrorCode.DECOMPRESSION_FAILED, f"payload does not inflate ({exc})") from None
    if len(out) > MAX_PLAINTEXT_BYTES or inflater.unconsumed_tail:
        raise ProtocolError(ErrorCode.DECOMPRESSION_FAILED, f"payload inflates beyond {MAX_PLAINTEXT_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise ProtocolError(ErrorCode.DECOMPRESSION_FAILED, "payload is a truncated or padded zlib stream")
    return out


def _optional(doc: Mapping[str, Any], key: str, kind: type, default: Any) -> Any:
    value = doc.get(key)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise _invalid(f"{key} must be a {kind.__name__} when present")
    return value


def _check_len(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")


def _invalid(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_PAYLOAD, message)
