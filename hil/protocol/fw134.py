"""The upload of the public EcoWatt firmware 1.3.4 (wire profile ``ecowatt-fw134``) as pure functions.

Reference: ``ecowatt-fw134-wire.md``. ``POST /aggregated/<device_id>`` carries an :class:`Envelope`
``{"nonce","payload","mac","encrypted","compressed"}``; ``payload`` is base64 of the inner JSON (or of
``AES-128-CBC(first 16 key bytes, IV 00..0f, PKCS7(inner))`` when ``encrypted``), and
``mac = HMAC-SHA256(key, nonce as u32 big-endian ‖ plaintext inner bytes)``. The inner JSON is a
``compressed_sensor_batch`` whose registers travel BITPACK-coded (:mod:`hil.protocol.bitpack`).

Decisions where the reference is silent (strict side, documented so servers and tests agree):

- ``encrypted``/``compressed`` missing → ``false``; present as ``null`` or a non-bool → refused
  (the firmware always writes both as bools). Missing or ``null`` ``nonce``/``payload``/``mac`` → refused.
  ``compressed: true`` → refused: 1.3.4 never compresses and the reference defines no such codec.
- ``payload`` must be canonical padded base64, so one inner cannot travel as several payload strings.
- :func:`verify` answers a bad AES padding with the same ``INVALID_HMAC`` as a bad MAC: the format
  decrypts before it authenticates, and distinct answers would be a padding oracle.
- ``total_samples``: the firmware writes its packet count; :func:`encode_inner` emits one packet, so
  it is also the sample count. :func:`decode_inner` accepts either meaning and nothing else.

Every malformed input is a :class:`~hil.protocol.errors.ProtocolError`, never another exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from hil.protocol.bitpack import bitpack, bitunpack
from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.fw134_inner import (
    MAX_INNER_BYTES,
    SCALES,
    Batch,
    batch_from_readings,
    decode_inner,
    encode_inner,
    readings_from_batch,
)
from hil.protocol.jsonio import load_json_object

__all__ = [
    "BOOT_NONCE_FLOOR",
    "DEFAULT_NONCE",
    "FIXED_IV",
    "MAX_INNER_BYTES",
    "NONCE_MAX",
    "SCALES",
    "Batch",
    "Envelope",
    "aes_key_of",
    "batch_from_readings",
    "bitpack",
    "bitunpack",
    "build_envelope",
    "compute_mac",
    "decode_inner",
    "encode_inner",
    "mac_message",
    "parse_envelope",
    "readings_from_batch",
    "seal",
    "unseal",
    "verify",
]

DEFAULT_NONCE = 10000  # NVS security/nonce default
BOOT_NONCE_FLOOR = 11000  # the firmware raises a lower stored nonce to this at boot
NONCE_MAX = 2**32 - 1  # the nonce travels as 4 bytes in the MAC input
FIXED_IV = bytes(range(16))  # the firmware's constant IV 00 01 .. 0f
HMAC_KEY_BYTES = 32
AES_KEY_BYTES = 16
_MAC_PATTERN = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Envelope:
    """One ``POST /aggregated/<device_id>`` body; the device id travels in the path, not here."""

    nonce: int
    payload: str
    mac: str
    encrypted: bool = False
    compressed: bool = False

    def to_json(self) -> bytes:
        """The body as the firmware sends it: compact JSON, keys nonce, payload, mac, encrypted, compressed."""
        doc = {
            "nonce": self.nonce,
            "payload": self.payload,
            "mac": self.mac,
            "encrypted": self.encrypted,
            "compressed": self.compressed,
        }
        return json.dumps(doc, separators=(",", ":")).encode("ascii")


def aes_key_of(hmac_key: bytes) -> bytes:
    """The upload AES-128 key: the first 16 bytes of the 32-byte HMAC key (the firmware's derivation)."""
    _check_key(hmac_key)
    return hmac_key[:AES_KEY_BYTES]


def mac_message(nonce: int, inner: bytes) -> bytes:
    """The MAC'd bytes: ``nonce`` as u32 big-endian ‖ the plaintext inner bytes."""
    if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce <= NONCE_MAX:
        raise ValueError(f"nonce {nonce!r} does not fit the 4-byte MAC input (0..{NONCE_MAX})")
    return nonce.to_bytes(4, "big") + inner


def compute_mac(hmac_key: bytes, nonce: int, inner: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of :func:`mac_message`."""
    return hmac.new(hmac_key, mac_message(nonce, inner), hashlib.sha256).hexdigest()


def seal(inner: bytes, *, aes_key: bytes | None) -> str:
    """The ``payload`` string: base64 of *inner*, or of ``AES-128-CBC(aes_key, FIXED_IV, PKCS7(inner))``."""
    if aes_key is None:
        return base64.b64encode(inner).decode("ascii")
    _check_len("aes_key", aes_key, AES_KEY_BYTES)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(inner) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.CBC(FIXED_IV)).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode("ascii")


def unseal(payload: str, *, encrypted: bool, aes_key: bytes | None) -> bytes:
    """Inverse of :func:`seal`: strict base64 (``INVALID_PAYLOAD``), then decrypt (``DECOMPRESSION_FAILED``)."""
    raw = _strict_b64decode(payload, what="payload")
    if not raw:
        raise _invalid("payload is empty; it must carry the base64 of the inner JSON")
    if not encrypted:
        return raw
    if aes_key is None:
        raise _undecryptable("payload is marked encrypted but no AES key was given to decrypt it")
    _check_len("aes_key", aes_key, AES_KEY_BYTES)
    if len(raw) % 16:
        raise _undecryptable(f"encrypted payload is {len(raw)} bytes, not a whole number of AES blocks")
    decryptor = Cipher(algorithms.AES(aes_key), modes.CBC(FIXED_IV)).decryptor()
    padded = decryptor.update(raw) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise _undecryptable("encrypted payload does not decrypt (bad PKCS7 padding): wrong key or tampered") from None


def build_envelope(inner: bytes, *, nonce: int, hmac_key: bytes, encrypt: bool = False) -> Envelope:
    """The envelope the firmware sends for *inner* at *nonce* (1.3.4 itself never sets *encrypt*)."""
    _check_key(hmac_key)
    aes_key = aes_key_of(hmac_key) if encrypt else None
    return Envelope(
        nonce=nonce,
        payload=seal(inner, aes_key=aes_key),
        mac=compute_mac(hmac_key, nonce, inner),
        encrypted=encrypt,
    )


def parse_envelope(data: bytes | str | Mapping[str, Any]) -> Envelope:
    """Schema check of a request body (JSON bytes/str or a decoded object); ``INVALID_PAYLOAD`` saying why.

    Required: ``nonce`` (integer 0..2³²−1), ``payload`` (ASCII string), ``mac`` (64 hex digits).
    Optional: ``encrypted`` and ``compressed`` (bools; missing means ``false``, ``null`` is refused).
    Other fields are ignored (the server reads none and the MAC covers none).
    """
    doc = data if isinstance(data, Mapping) else load_json_object(data, what="fw134 upload body")
    nonce, payload, mac = (doc.get(k) for k in ("nonce", "payload", "mac"))
    if isinstance(nonce, bool) or not isinstance(nonce, int) or not 0 <= nonce <= NONCE_MAX:
        raise _invalid(f"nonce must be an integer between 0 and {NONCE_MAX} (it is MAC'd as 4 bytes)")
    if not isinstance(payload, str) or not payload.isascii():
        raise _invalid("payload must be an ASCII (base64) string")
    if not isinstance(mac, str) or _MAC_PATTERN.fullmatch(mac) is None:
        raise _invalid("mac must be 64 hex digits (HMAC-SHA256)")
    encrypted, compressed = _flag(doc, "encrypted"), _flag(doc, "compressed")
    if compressed:
        raise _invalid(
            "compressed:true is refused: firmware 1.3.4 never compresses the envelope and the fw134 "
            "format defines no envelope-level codec (the registers are BITPACKed inside the inner JSON)"
        )
    return Envelope(nonce, payload, mac, encrypted, compressed)


def verify(envelope: Envelope, hmac_key: bytes) -> bytes:
    """Unseal and check the MAC in constant time; the plaintext inner bytes, or ``INVALID_HMAC``."""
    _check_key(hmac_key)
    if envelope.compressed:
        raise _invalid("compressed:true is refused: the fw134 format defines no envelope-level codec")
    refused = ProtocolError(
        ErrorCode.INVALID_HMAC,
        f"MAC of upload nonce {envelope.nonce} does not verify (HMAC-SHA256 over nonce_be32 ‖ inner): "
        "wrong upload key or tampered packet",
    )
    aes_key = aes_key_of(hmac_key) if envelope.encrypted else None
    try:
        inner = unseal(envelope.payload, encrypted=envelope.encrypted, aes_key=aes_key)
    except ProtocolError as exc:
        if exc.code is ErrorCode.DECOMPRESSION_FAILED:
            raise refused from None  # same answer as a bad MAC: no padding oracle
        raise
    if not hmac.compare_digest(compute_mac(hmac_key, envelope.nonce, inner), envelope.mac.lower()):
        raise refused
    return inner


def _strict_b64decode(text: str, *, what: str) -> bytes:
    """Standard padded base64 in its one canonical spelling (no whitespace, no stray bits)."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{what} is not valid standard base64 (with padding)") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise _invalid(f"{what} is not canonical base64 (non-zero padding bits)")
    return raw


def _flag(doc: Mapping[str, Any], key: str) -> bool:
    if key not in doc:
        return False
    value = doc[key]
    if not isinstance(value, bool):
        raise _invalid(f"{key} must be true or false when present (got {type(value).__name__})")
    return value


def _check_key(hmac_key: bytes) -> None:
    _check_len("upload HMAC key", hmac_key, HMAC_KEY_BYTES)


def _check_len(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")


def _invalid(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.INVALID_PAYLOAD, message)


def _undecryptable(message: str) -> ProtocolError:
    return ProtocolError(ErrorCode.DECOMPRESSION_FAILED, message)
