"""The upload validation table of PROTOCOL.md: every error code, its status, and the order of checks."""

from __future__ import annotations

import base64
import zlib

import pytest

from hil.protocol.upload import MAX_BODY_BYTES, compute_mac
from helpers_server import DEVICES, admin_get, doc, forged, packet, post


def mac_ok(payload: str, nonce: int = 10001, device_id: str = "EW-0001", **changes) -> dict:
    """A packet whose MAC is valid over a chosen payload (server gets past MAC and nonce)."""
    return doc(nonce, device_id, payload=payload,
               mac=compute_mac(DEVICES[device_id].hmac_key, nonce, payload), **changes)


TABLE = [
    # (name, body, status, error_code)
    ("not json", b"{nope", 400, "INVALID_PAYLOAD"),
    ("json array", b"[]", 400, "INVALID_PAYLOAD"),
    ("invalid utf-8", b'{"device_id":"\xff"}', 400, "INVALID_PAYLOAD"),
    ("deep nesting", b"[" * 8000 + b"]" * 8000, 400, "INVALID_PAYLOAD"),
    ("missing mac", doc(mac=...), 400, "INVALID_PAYLOAD"),
    ("null mac", doc(mac=None), 400, "INVALID_PAYLOAD"),
    ("missing nonce", doc(nonce=...), 400, "INVALID_PAYLOAD"),
    ("null nonce", doc(nonce=None), 400, "INVALID_PAYLOAD"),
    ("nonce as string", doc(nonce="10001"), 400, "INVALID_PAYLOAD"),
    ("nonce huge", doc(nonce=10**30), 400, "INVALID_PAYLOAD"),
    ("payload as list", doc(payload=[1]), 400, "INVALID_PAYLOAD"),
    ("device_id as object", doc(device_id={"a": 1}), 400, "INVALID_PAYLOAD"),
    ("encrypted as string", doc(encrypted="true"), 400, "INVALID_PAYLOAD"),
    ("too large", b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}", 413, "PAYLOAD_TOO_LARGE"),
    ("unknown device", doc(device_id="EW-9999"), 404, "DEVICE_NOT_FOUND"),
    ("bad mac", forged(10001), 403, "INVALID_HMAC"),
    ("key of another device", {**doc(10001, "EW-0002"), "device_id": "EW-0001"}, 403, "INVALID_HMAC"),
    ("bad base64", mac_ok("!!!not base64!!!"), 400, "INVALID_PAYLOAD"),
    ("not zlib", mac_ok(base64.b64encode(b"garbage").decode()), 400, "DECOMPRESSION_FAILED"),
    ("undecryptable", mac_ok(base64.b64encode(b"\0" * 20).decode(), encrypted=True), 400, "DECOMPRESSION_FAILED"),
    ("plaintext not readings", mac_ok(base64.b64encode(zlib.compress(b'{"x":1}')).decode()), 400, "INVALID_PAYLOAD"),
]


@pytest.mark.parametrize("name, body, status, code", TABLE, ids=[row[0] for row in TABLE])
def test_rejection_table(client, name, body, status, code) -> None:
    got_status, reply = post(client, body)
    assert (got_status, reply.get("error_code"), reply.get("status")) == (status, code, "error")
    assert isinstance(reply.get("message"), str) and reply["message"]


def test_every_upload_error_code_is_in_the_table() -> None:
    codes = {row[3] for row in TABLE} | {"RATE_LIMIT_EXCEEDED", "REPLAY_ATTACK"}  # those two: tests below
    assert codes == {"INVALID_PAYLOAD", "PAYLOAD_TOO_LARGE", "DEVICE_NOT_FOUND", "RATE_LIMIT_EXCEEDED",
                     "INVALID_HMAC", "REPLAY_ATTACK", "DECOMPRESSION_FAILED"}


def test_valid_upload_success_shape(client) -> None:
    assert post(client, packet(10001, n=3)) == (200, {"status": "success", "samples_received": 3,
                                                      "nonce_updated": 10001})


def test_replay_reports_both_nonces(client) -> None:
    assert post(client, packet(10005))[0] == 200
    status, reply = post(client, packet(10005))
    assert (status, reply["error_code"], reply["received_nonce"], reply["last_nonce"]) == (403, "REPLAY_ATTACK",
                                                                                         10005, 10005)
    assert post(client, packet(10004))[1]["error_code"] == "REPLAY_ATTACK"
    assert post(client, packet(10006))[0] == 200


def test_rate_limit_default_and_retry_after(client, clock) -> None:
    for nonce in range(1, 11):
        assert post(client, packet(nonce))[0] == 200
    clock.advance(30)
    status, reply = post(client, packet(11))
    assert (status, reply["error_code"], reply["retry_after_seconds"]) == (429, "RATE_LIMIT_EXCEEDED", 30)
    assert post(client, packet(1, "EW-0002"))[0] == 200  # per device
    clock.advance(30.5)
    assert post(client, packet(11))[0] == 200


def test_rate_limit_is_configurable(make_app) -> None:
    client = make_app(rate_limit=2).test_client()
    assert [post(client, packet(n))[0] for n in (1, 2, 3)] == [200, 200, 429]


@pytest.mark.parametrize("first, then, code", [
    (None, forged(9000), "INVALID_HMAC"),                                # bad MAC with an old nonce: MAC first
    (None, forged(1, "EW-9999"), "DEVICE_NOT_FOUND"),                     # unknown device with bad MAC
    (None, doc(device_id="EW-9999", nonce=None), "INVALID_PAYLOAD"),      # schema before device lookup
])
def test_order_of_checks(client, first, then, code) -> None:
    assert post(client, packet(10001))[0] == 200
    assert post(client, then)[1]["error_code"] == code


def test_rate_limit_comes_before_the_mac(make_app) -> None:
    client = make_app(rate_limit=1).test_client()
    assert post(client, packet(1))[0] == 200
    assert post(client, forged(2))[1]["error_code"] == "RATE_LIMIT_EXCEEDED"


def test_rejected_mac_does_not_burn_the_nonce(client) -> None:
    assert post(client, forged(4_000_000_000))[1]["error_code"] == "INVALID_HMAC"
    assert post(client, packet(10001))[0] == 200


def test_first_contact_accepts_any_nonce_then_enforces_order(client) -> None:
    assert post(client, packet(5))[0] == 200
    assert post(client, packet(4))[1]["error_code"] == "REPLAY_ATTACK"
    assert post(client, packet(0, "EW-0002"))[0] == 200  # a device's very first nonce, even 0
    assert post(client, packet(0, "EW-0002"))[1]["error_code"] == "REPLAY_ATTACK"


def test_authentic_but_undecodable_packet_moves_no_nonce(client) -> None:
    """The nonce moves only for a packet that is stored: an authentic packet whose plaintext does not
    decode is refused every time it is sent, and the device's next valid packet with that nonce is
    accepted (under one global key a relabelled packet passes the MAC: it must not burn a nonce)."""
    body = mac_ok(base64.b64encode(b"garbage").decode(), nonce=20)
    assert post(client, body)[1]["error_code"] == "DECOMPRESSION_FAILED"
    assert post(client, body)[1]["error_code"] == "DECOMPRESSION_FAILED"
    assert post(client, packet(20))[0] == 200


def test_encrypted_and_plain_payloads_are_stored_identically(client) -> None:
    assert post(client, packet(1))[0] == 200
    assert post(client, packet(2, encrypted=True))[0] == 200
    rows = admin_get(client, "/api/admin/readings?device_id=EW-0001")["readings"]
    strip = [{k: v for k, v in r.items() if k not in ("nonce", "received_at")} for r in rows]
    assert len(rows) == 4 and strip[:2] == strip[2:]
    assert [r["nonce"] for r in rows] == [1, 1, 2, 2]


def test_unrouted_and_wrong_method_answer_json(client) -> None:
    for reply, status in ((client.get("/nope"), 404), (client.get("/api/upload/data"), 405)):
        assert reply.status_code == status and reply.get_json()["status"] == "error"


def test_every_rejection_is_a_security_event_and_success_is_not(client) -> None:
    for body in (b"nope", forged(10001), doc(device_id="EW-9999"), packet(10001), packet(10001)):
        post(client, body)
    events = admin_get(client, "/api/admin/events")["events"]
    assert [e["code"] for e in events] == ["INVALID_PAYLOAD", "INVALID_HMAC", "DEVICE_NOT_FOUND", "REPLAY_ATTACK"]
    assert [e["device_id"] for e in events] == [None, "EW-0001", "EW-9999", "EW-0001"]
    assert all(e["peer"] == "127.0.0.1" and e["time"] > 0 and e["detail"] for e in events)
    assert events[3]["detail"] == "nonce 10001 <= last 10001"


def test_keys_never_leave_the_server(client) -> None:
    post(client, forged(1))
    post(client, packet(2))
    dumped = str([admin_get(client, p) for p in ("/api/admin/events", "/api/admin/devices", "/api/admin/readings")])
    for keys in DEVICES.values():
        assert keys.hmac_key.hex() not in dumped and keys.aes_key.hex() not in dumped
    assert "hmac_key" not in repr(DEVICES["EW-0001"])
