"""Upload scenarios against the server alone: what an attacker on the network (with or without a
device's key) can do to the upload endpoint. No board needed; each proven against the reference
server's defects (``fails_with``).
"""

from __future__ import annotations

import time

import pytest

from hil.images.nvs_gen import DeviceIdentity
from hil.net.attacker import Attacker, reply_json
from hil.net.forge import craft, to_body
from hil.protocol.readings import REGISTERS, Reading, Readings
from hil.protocol.upload import MAX_BODY_BYTES, UploadPacket
from hil.server.nonce_book import NonceBook
from hil.server.under_test import ServerFactory, ServerUnderTest

PARALLEL_COPIES = 32


def sample(device_id: str, seed: float = 0.0) -> Readings:
    """A plausible sample of every register."""
    return Readings(device_id, int(time.time()), tuple(Reading(r, round(100.0 + i + seed, 2))
                                                        for i, r in enumerate(REGISTERS)))


def valid_packet(device: DeviceIdentity, nonce: int) -> UploadPacket:
    """A packet the device itself could have sent (the attacker holds its key)."""
    return craft(device.device_id, nonce, sample(device.device_id, nonce), key=device.hmac_key)


def assert_refused(reply, status: int, code: str) -> None:
    doc = reply_json(reply)
    assert (reply.status, doc.get("error_code")) == (status, code), \
        f"expected HTTP {status} {code}, got HTTP {reply.status} {doc}"


@pytest.mark.stride("S", threat="a device that is not in the registry gets readings stored")
@pytest.mark.fails_with("unknown-device-accepted")
def test_unknown_device_refused(remote_attacker: Attacker, server: ServerUnderTest) -> None:
    """A well-formed packet from an unregistered device id is refused 404 DEVICE_NOT_FOUND, stores
    nothing, and is recorded as a security event."""
    stranger = DeviceIdentity("EW-ROGUE", b"\x11" * 32, b"\x22" * 16, b"\x33" * 32)
    assert_refused(remote_attacker.send(valid_packet(stranger, 1)), 404, "DEVICE_NOT_FOUND")
    if server.builtin:
        assert server.readings("EW-ROGUE") == []
        assert [e["code"] for e in server.events(device_id="EW-ROGUE")] == ["DEVICE_NOT_FOUND"]


MISSING_FIELDS = [pytest.param(field, how, id=f"{field}-{how}") for field in ("mac", "nonce")
                  for how in ("missing", "null")]


@pytest.mark.stride("S", "T", threat="a packet without its security fields skips the checks")
@pytest.mark.fails_with("missing-fields-skip-checks")
@pytest.mark.parametrize("field, how", MISSING_FIELDS)
def test_missing_security_fields_never_bypass(remote_attacker: Attacker, server: ServerUnderTest,
                                              lab_device: DeviceIdentity, nonce_book: NonceBook,
                                              field: str, how: str) -> None:
    """A packet whose mac or nonce is missing or null is 400 INVALID_PAYLOAD — never a bypass of the
    MAC or replay check — and changes nothing on the server."""
    packet = valid_packet(lab_device, nonce_book.block() + 1)
    body = to_body(packet, remove=(field,)) if how == "missing" else to_body(packet, **{field: None})
    assert_refused(remote_attacker.send(body), 400, "INVALID_PAYLOAD")
    if server.builtin:  # a fresh database: nothing stored, no nonce accepted
        assert server.readings(lab_device.device_id) == []
        assert server.last_nonce(lab_device.device_id) is None


_MAC = b'"mac":"' + b"0" * 64 + b'"'
NOT_JSON = {  # refused by the JSON parser
    "not-json": b"this is not json",
    "truncated-json": b'{"device_id":"EW-0001","nonce":1',
    "array": b"[1,2,3]",
    "string": b'"EW-0001"',
    "invalid-utf8": b'{"device_id":"\xff\xfe"}',
    "deep-nesting": b"[" * 5000 + b"]" * 5000,
    "empty": b"",
}
BAD_FIELDS = {  # JSON objects refused by the schema
    "nonce-string": b'{"device_id":"EW-0001","nonce":"1","payload":"eA==",' + _MAC + b"}",
    "nonce-negative": b'{"device_id":"EW-0001","nonce":-1,"payload":"eA==",' + _MAC + b"}",
    "nonce-float": b'{"device_id":"EW-0001","nonce":1.5,"payload":"eA==",' + _MAC + b"}",
    "nonce-bignum": b'{"device_id":"EW-0001","nonce":1' + b"0" * 400 + b',"payload":"eA==",' + _MAC + b"}",
    "mac-not-hex": b'{"device_id":"EW-0001","nonce":1,"payload":"eA==","mac":"' + b"z" * 64 + b'"}',
    "device-id-object": b'{"device_id":{"$ne":null},"nonce":1,"payload":"eA==",' + _MAC + b"}",
}
MALFORMED = [pytest.param(body, id=name, marks=pytest.mark.fails_with("malformed-json-500"))
             for name, body in NOT_JSON.items()] + \
            [pytest.param(body, id=name, marks=pytest.mark.fails_with("field-type-errors-500"))
             for name, body in BAD_FIELDS.items()]


@pytest.mark.stride("D", threat="malformed input crashes the server (5xx) or exhausts it")
@pytest.mark.parametrize("body", MALFORMED)
def test_malformed_body_gets_400(remote_attacker: Attacker, server: ServerUnderTest, body: bytes) -> None:
    """Malformed bodies are refused 400 INVALID_PAYLOAD, never a 5xx, and recorded as security events."""
    assert_refused(remote_attacker.send(body), 400, "INVALID_PAYLOAD")
    if server.builtin:
        assert [e["code"] for e in server.events()] == ["INVALID_PAYLOAD"]


@pytest.mark.stride("D", threat="an oversized body ties up server memory and CPU")
@pytest.mark.fails_with("no-body-limit")
def test_oversized_body_gets_413(remote_attacker: Attacker, lab_device: DeviceIdentity, nonce_book: NonceBook) -> None:
    """A body over 16 KiB is refused 413 PAYLOAD_TOO_LARGE (before it is parsed) even when it is an
    otherwise valid, signed packet."""
    packet = valid_packet(lab_device, nonce_book.block() + 1)
    body = to_body(packet, padding="x" * MAX_BODY_BYTES)
    assert_refused(remote_attacker.send(body), 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.stride("S", "T", threat="a race lets one captured packet be accepted several times")
@pytest.mark.fails_with("replay-allowed-equal-nonce")
def test_parallel_copies_accepted_once(server_factory: ServerFactory, lab_device: DeviceIdentity,
                                       nonce_book: NonceBook, evidence) -> None:
    """32 copies of one valid packet sent at the same instant: exactly one is accepted, the other 31
    are 403 REPLAY_ATTACK, and its readings are stored once (rate limiting off, so that only the
    replay check stands between the copies and the database)."""
    server = server_factory.start(rate_limit=0)
    remote_attacker = Attacker(server)
    packet = valid_packet(lab_device, nonce_book.block() + 1)
    results = remote_attacker.replay(remote_attacker.request(packet), times=PARALLEL_COPIES,
                                     parallel=PARALLEL_COPIES)
    statuses = sorted(str(r.status) if r.status is not None else f"error: {r.error}" for r in results)
    evidence.note(f"{PARALLEL_COPIES} parallel copies: " + ", ".join(statuses))
    codes = [reply_json(r.response).get("error_code") for r in results if r.response is not None and r.status != 200]
    assert statuses.count("200") == 1, f"accepted {statuses.count('200')} of {PARALLEL_COPIES} copies"
    assert codes == ["REPLAY_ATTACK"] * (PARALLEL_COPIES - 1)
    assert len(server.readings(lab_device.device_id)) == len(REGISTERS)


RATE_LIMIT = 3


@pytest.mark.stride("D", threat="a device (or its stolen key) floods the server")
@pytest.mark.fails_with("no-rate-limit")
def test_rate_limit_returns_429_with_retry_after(server_factory: ServerFactory, lab_device: DeviceIdentity,
                                                 nonce_book: NonceBook) -> None:
    """With a limit of 3 uploads per window, the 4th valid upload is 429 RATE_LIMIT_EXCEEDED with a
    positive ``retry_after_seconds``, and is not stored."""
    limited = server_factory.start(rate_limit=RATE_LIMIT)
    client = Attacker(limited)
    first = nonce_book.block() + 1
    for nonce in range(first, first + RATE_LIMIT):
        reply = client.send(valid_packet(lab_device, nonce))
        assert reply.status == 200, f"upload {nonce} within the limit: HTTP {reply.status} {reply.body[:200]!r}"
    reply = client.send(valid_packet(lab_device, first + RATE_LIMIT))
    doc = reply_json(reply)
    assert (reply.status, doc.get("error_code")) == (429, "RATE_LIMIT_EXCEEDED"), doc
    assert isinstance(doc.get("retry_after_seconds"), (int, float)) and doc["retry_after_seconds"] > 0, doc
    assert limited.last_nonce(lab_device.device_id) == first + RATE_LIMIT - 1
