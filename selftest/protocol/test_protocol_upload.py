"""Behaviour of the upload codec beyond the vectors: rejections and their error codes."""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import replace

import pytest

from hil.protocol import ErrorCode, ProtocolError, Reading, Readings, build_packet, open_packet, parse_packet
from hil.protocol.readings import decode_readings
from hil.protocol.upload import MAX_PLAINTEXT_BYTES, compute_mac, open_payload, seal_payload, verify_mac

HMAC_KEY, AES_KEY = b"\x11" * 32, b"\x22" * 16
READINGS = Readings("EW-0001", 1700000000, (Reading("Vac1", 230.1), Reading("Pac", 1200.0)))


def packet_doc(**changes: object) -> dict:
    doc = build_packet(READINGS, nonce=10001, hmac_key=HMAC_KEY).to_dict()
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not ...}


def code_of(fn, *args, **kwargs) -> ErrorCode:
    with pytest.raises(ProtocolError) as info:
        fn(*args, **kwargs)
    return info.value.code


def test_round_trip_plain_and_encrypted_give_the_same_readings() -> None:
    plain = build_packet(READINGS, nonce=1, hmac_key=HMAC_KEY)
    enc = build_packet(READINGS, nonce=2, hmac_key=HMAC_KEY, aes_key=AES_KEY)
    assert enc.encrypted and not plain.encrypted and enc.payload != plain.payload
    assert open_packet(parse_packet(plain.to_json()), hmac_key=HMAC_KEY, aes_key=None) == READINGS
    assert open_packet(parse_packet(enc.to_json()), hmac_key=HMAC_KEY, aes_key=AES_KEY) == READINGS


def test_random_iv_makes_each_encrypted_payload_different() -> None:
    a, b = (build_packet(READINGS, nonce=5, hmac_key=HMAC_KEY, aes_key=AES_KEY) for _ in range(2))
    assert a.payload != b.payload


@pytest.mark.parametrize("changes", [
    {"mac": ...}, {"mac": None}, {"nonce": ...}, {"nonce": None}, {"device_id": ...}, {"payload": None},
    {"nonce": "10001"}, {"nonce": 10001.0}, {"nonce": True}, {"nonce": -1}, {"nonce": 2**32},
    {"mac": "ab" * 31}, {"mac": "zz" * 32}, {"device_id": "bad id"}, {"device_id": "x" * 33},
    {"payload": "é"}, {"compressed": "yes"}, {"encrypted": 1}, {"compression_type": "gzip"}, {"timestamp": 5},
])
def test_schema_rejections_are_invalid_payload(changes: dict) -> None:
    assert code_of(parse_packet, packet_doc(**changes)) is ErrorCode.INVALID_PAYLOAD


@pytest.mark.parametrize("body", [b"", b"not json", b"[1,2]", b"\xff\xfe", b"[" * 5000 + b"]" * 5000,
                                  b'{"nonce": ' + b"9" * 5000 + b"}"])
def test_malformed_bodies_are_invalid_payload(body: bytes) -> None:
    assert code_of(parse_packet, body) is ErrorCode.INVALID_PAYLOAD


def test_mac_covers_nonce_and_payload_and_accepts_uppercase_hex() -> None:
    packet = parse_packet(packet_doc())
    assert verify_mac(HMAC_KEY, packet) and verify_mac(HMAC_KEY, replace(packet, mac=packet.mac.upper()))
    assert not verify_mac(HMAC_KEY, replace(packet, nonce=packet.nonce + 1))
    assert not verify_mac(HMAC_KEY, replace(packet, payload=packet.payload[:-4]))
    assert not verify_mac(b"\x12" * 32, packet)
    assert code_of(open_packet, replace(packet, nonce=1), hmac_key=HMAC_KEY, aes_key=None) is ErrorCode.INVALID_HMAC


def sealed(body: bytes, **flags: bool):
    payload = base64.b64encode(body).decode()
    return replace(parse_packet(packet_doc()), payload=payload, mac=compute_mac(HMAC_KEY, 10001, payload), **flags)


@pytest.mark.parametrize("packet, code", [
    (lambda: replace(parse_packet(packet_doc()), payload="!!!"), ErrorCode.INVALID_PAYLOAD),
    (lambda: sealed(b"not zlib"), ErrorCode.DECOMPRESSION_FAILED),
    (lambda: sealed(zlib.compress(b"{}")[:-3]), ErrorCode.DECOMPRESSION_FAILED),
    (lambda: sealed(zlib.compress(b"{}") + b"junk"), ErrorCode.DECOMPRESSION_FAILED),
    (lambda: sealed(zlib.compress(b"\0" * (MAX_PLAINTEXT_BYTES + 1))), ErrorCode.DECOMPRESSION_FAILED),
    (lambda: sealed(b"\0" * 20, encrypted=True), ErrorCode.DECOMPRESSION_FAILED),
    (lambda: sealed(b"\0" * 48, encrypted=True), ErrorCode.DECOMPRESSION_FAILED),
])
def test_unwrap_failures(packet, code: ErrorCode) -> None:
    assert code_of(open_payload, packet(), aes_key=AES_KEY) is code


def test_uncompressed_payload_is_allowed_when_flagged() -> None:
    packet = replace(parse_packet(packet_doc()), compressed=False,
                     payload=seal_payload(b'{"a":1}'))
    assert open_payload(packet, aes_key=None) == b'{"a":1}'


@pytest.mark.parametrize("doc", [
    {"device_id": "EW-0001", "timestamp": 1, "readings": [{"register": "Nope", "value": 1}]},
    {"device_id": "EW-0001", "timestamp": 1, "readings": [{"register": "Vac1", "value": True}]},
    {"device_id": "EW-0001", "timestamp": 1, "readings": [{"register": "Vac1", "value": 10**400}]},
    {"device_id": "EW-0001", "timestamp": -1, "readings": []},
    {"device_id": "EW-0001", "timestamp": 1, "readings": {}},
    {"device_id": "", "timestamp": 1, "readings": []},
])
def test_readings_schema(doc: dict) -> None:
    assert code_of(decode_readings, json.dumps(doc).encode()) is ErrorCode.INVALID_PAYLOAD


def test_nan_reading_is_rejected() -> None:
    body = b'{"device_id":"EW-0001","timestamp":1,"readings":[{"register":"Vac1","value":NaN}]}'
    assert code_of(decode_readings, body) is ErrorCode.INVALID_PAYLOAD


def test_plaintext_naming_another_device_is_rejected() -> None:
    other = build_packet(replace(READINGS, device_id="EW-0002"), nonce=3, hmac_key=HMAC_KEY)
    forged = replace(other, device_id="EW-0001", mac=compute_mac(HMAC_KEY, 3, other.payload))
    assert code_of(open_packet, forged, hmac_key=HMAC_KEY, aes_key=None) is ErrorCode.INVALID_PAYLOAD


def test_build_refuses_bad_inputs() -> None:
    with pytest.raises(ValueError, match="nonce"):
        build_packet(READINGS, nonce=2**32, hmac_key=HMAC_KEY)
    with pytest.raises(ValueError, match="hmac_key"):
        build_packet(READINGS, nonce=1, hmac_key=b"short")
    with pytest.raises(ValueError, match="aes_key"):
        build_packet(READINGS, nonce=1, hmac_key=HMAC_KEY, aes_key=b"x" * 32)
