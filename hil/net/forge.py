"""Forged uploads: mutations of a captured upload packet and packets crafted from scratch.

Every mutation that changes MAC'd data (nonce, payload) takes ``key``: without it the MAC is kept
(an attacker without the key: the server must answer ``INVALID_HMAC``); with it the MAC is
recomputed (an attacker who has the key, or a test isolating a later check such as the replay
window). Fields outside the MAC (device id, flags) are forged the same way so scenarios stay
table-driven. :func:`to_body` writes bodies no valid :class:`UploadPacket` can hold (missing or null
fields, wrong types, a nonce past u32). Keys are only used, never logged or put in names.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from typing import Any

from hil.net.http import HttpMessage, build_request
from hil.protocol.readings import Readings, encode_readings
from hil.protocol.upload import NONCE_MAX, UploadPacket, compress, compute_mac, parse_packet, seal_payload

UPLOAD_PATH = "/api/upload/data"
_MISSING = object()


@dataclass(frozen=True)
class Forged:
    """One forged packet and how it was made (``resigned``: MAC recomputed with the real key)."""

    name: str
    packet: UploadPacket
    resigned: bool


def resign(packet: UploadPacket, key: bytes | None) -> UploadPacket:
    """*packet* with its MAC recomputed under *key*; unchanged when *key* is ``None``."""
    if key is None:
        return packet
    return replace(packet, mac=compute_mac(key, packet.nonce, packet.payload))


def flip_mac(packet: UploadPacket, index: int = 0, xor: int = 0x01) -> UploadPacket:
    """MAC with byte *index* (0..31) XOR *xor*: a MAC that is well-formed but wrong."""
    mac = bytearray(bytes.fromhex(packet.mac))
    mac[index] ^= xor
    return replace(packet, mac=mac.hex())


def with_nonce(packet: UploadPacket, nonce: int, *, key: bytes | None = None) -> UploadPacket:
    """Another nonce (0..2^32-1; use :func:`to_body` for out-of-range values)."""
    if not 0 <= nonce <= NONCE_MAX:
        raise ValueError(f"nonce {nonce} is outside u32; build the body with to_body(..., nonce=...)")
    return resign(replace(packet, nonce=nonce), key)


def nonce_old(packet: UploadPacket, *, by: int = 1, key: bytes | None = None) -> UploadPacket:
    """Nonce *by* below the packet's (an old nonce: the replay window must reject it)."""
    return with_nonce(packet, packet.nonce - by, key=key)


def nonce_equal(packet: UploadPacket, *, key: bytes | None = None) -> UploadPacket:
    """The same nonce again (a plain replay when sent after the original)."""
    return resign(packet, key)


def nonce_huge(packet: UploadPacket, *, key: bytes | None = None) -> UploadPacket:
    """The largest nonce the device can hold (2^32-1): accepted once, it would lock the device out."""
    return with_nonce(packet, NONCE_MAX, key=key)


def flip_payload(packet: UploadPacket, index: int = 0, xor: int = 0x01, *, key: bytes | None = None) -> UploadPacket:
    """Payload with decoded byte *index* XOR *xor*, re-encoded: still valid base64, different content."""
    raw = bytearray(base64.b64decode(packet.payload))
    raw[index] ^= xor
    return resign(replace(packet, payload=base64.b64encode(bytes(raw)).decode("ascii")), key)


def with_payload(packet: UploadPacket, raw: bytes, *, key: bytes | None = None) -> UploadPacket:
    """Payload replaced by base64(*raw*) (e.g. a zlib bomb, garbage, an uncompressed body)."""
    return resign(replace(packet, payload=base64.b64encode(raw).decode("ascii")), key)


def with_device_id(packet: UploadPacket, device_id: str, *, key: bytes | None = None) -> UploadPacket:
    """Another device id (the MAC does not cover it: *key* is the other device's key, if any)."""
    return resign(replace(packet, device_id=device_id), key)


def with_flags(
    packet: UploadPacket,
    *,
    compressed: bool | None = None,
    encrypted: bool | None = None,
    compression_type: str | object | None = _MISSING,
    key: bytes | None = None,
) -> UploadPacket:
    """Flags changed (not MAC'd: a server must not trust them to skip a check)."""
    changes: dict[str, Any] = {}
    if compressed is not None:
        changes["compressed"] = compressed
    if encrypted is not None:
        changes["encrypted"] = encrypted
    if compression_type is not _MISSING:
        changes["compression_type"] = compression_type
    return resign(replace(packet, **changes), key)


def craft(
    device_id: str,
    nonce: int,
    plaintext: bytes | Readings,
    *,
    key: bytes | None,
    mac: str | None = None,
    compressed: bool = True,
    aes_key: bytes | None = None,
    timestamp: str | None = None,
) -> UploadPacket:
    """An upload from scratch: *plaintext* (Readings are serialised as the device does, bytes are used
    as given) → zlib if *compressed* → AES if *aes_key* → base64; MAC under *key*, else *mac* or zeros.
    With *compressed* and *key* it equals what :func:`hil.protocol.upload.build_packet` makes."""
    body = plaintext if isinstance(plaintext, bytes) else encode_readings(plaintext)
    payload = seal_payload(compress(body) if compressed else body, aes_key=aes_key)
    packet = UploadPacket(
        device_id=device_id,
        nonce=nonce,
        payload=payload,
        mac=mac or "0" * 64,
        compressed=compressed,
        encrypted=aes_key is not None,
        compression_type="zlib" if compressed else None,
        timestamp=timestamp,
    )
    return resign(packet, key)


def to_body(packet: UploadPacket | dict[str, Any], *, remove: tuple[str, ...] = (), **fields: Any) -> bytes:
    """The JSON body with *fields* overridden (any JSON value, ``None`` → null) and *remove* left out."""
    doc = dict(packet.to_dict() if isinstance(packet, UploadPacket) else packet)
    doc.update(fields)
    for name in remove:
        doc.pop(name, None)
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def upload_request(body: bytes | UploadPacket, *, host: str, path: str = UPLOAD_PATH) -> HttpMessage:
    """An HTTP/1.1 POST of *body* as the device sends it."""
    raw = body.to_json() if isinstance(body, UploadPacket) else body
    return build_request("POST", path, raw, host=host, headers={"Content-Type": "application/json"})


def packet_from_request(request: HttpMessage) -> UploadPacket:
    """The upload packet inside a captured request (raises ``ProtocolError`` if it is not one)."""
    return parse_packet(request.body)


def other_device_id(device_id: str) -> str:
    """A valid device id that differs from *device_id* (one character appended or changed)."""
    if len(device_id) < 32:
        return device_id + "X"
    return device_id[:-1] + ("Y" if device_id[-1] == "X" else "X")


def mutations(packet: UploadPacket, *, key: bytes | None) -> list[Forged]:
    """The standard table of forgeries of *packet*: each MAC'd-field change without and (if *key*) with
    the MAC recomputed, plus MAC byte flips. Names are stable identifiers for test ids."""
    variants: list[tuple[str, Any]] = [
        ("nonce-old", lambda k: nonce_old(packet, key=k)),
        ("nonce-equal", lambda k: nonce_equal(packet, key=k)),
        ("nonce-huge", lambda k: nonce_huge(packet, key=k)),
        ("payload-byte", lambda k: flip_payload(packet, key=k)),
        ("payload-last-byte", lambda k: flip_payload(packet, -1, key=k)),
        ("device-id", lambda k: with_device_id(packet, other_device_id(packet.device_id), key=k)),
        ("flags-uncompressed", lambda k: with_flags(packet, compressed=False, compression_type=None, key=k)),
        ("flags-encrypted", lambda k: with_flags(packet, encrypted=not packet.encrypted, key=k)),
    ]
    out = [Forged(f"mac-byte-{i}", flip_mac(packet, i), False) for i in (0, 31)]
    for name, make in variants:
        out.append(Forged(f"{name}-keep-mac", make(None), False))
        if key is not None:
            out.append(Forged(f"{name}-resigned", make(key), True))
    return out
