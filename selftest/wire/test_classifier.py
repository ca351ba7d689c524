"""The response classifier and the outcome assertions (hil.wire.classifier, hil.wire.expect).

The fw134 shapes are the public EcoWatt server's replies as ``ecowatt-fw134-wire.md`` lists them
("Replies of that server"); the reference server's own replies are produced by running it.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from hil.net.http import HttpMessage, build_response
from hil.protocol.readings import REGISTERS, Reading, Readings
from hil.server import DeviceKeys, ServerConfig, close_app, create_app
from hil.wire.classifier import Classifier, mismatch_hint
from hil.wire.expect import Finding, expect_not_accepted, expect_outcome, expect_refused
from hil.wire.outcome import Outcome
from hil.wire.profile import WireProfile, load_profile

FW134 = load_profile("ecowatt-fw134")
API = load_profile("ecowatt-api")
PUBLIC_SERVER_REPLIES = {  # (status, body) → outcome
    "accepted": (
        200,
        {
            "success": True,
            "device_id": "ESP32_001",
            "message": "Compressed data processed and published",
            "samples_count": 10,
        },
        Outcome.ACCEPTED,
    ),
    "replay": (
        401,
        {
            "success": False,
            "error": "Security validation failed: Replay attack detected! Nonce 11001 <= last valid nonce 11003",
        },
        Outcome.REPLAY,
    ),
    "hmac": (
        401,
        {"success": False, "error": "Security validation failed: HMAC verification failed! expected 3f.., got 00.."},
        Outcome.BAD_MAC,
    ),
    "verification-raised": (
        401,
        {"success": False, "error": "Security validation failed: Unexpected error during verification: 'mac'"},
        Outcome.INVALID,
    ),
    "content-type": (400, {"success": False, "error": "Content-Type must be application/json"}, Outcome.INVALID),
    "missing-field": (
        400,
        {"success": False, "error": "Missing compressed_data or aggregated_data field"},
        Outcome.INVALID,
    ),
}


def _reply(status: int, body: bytes | dict, reason: str = "X") -> HttpMessage:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return build_response(status, reason, raw)


@pytest.mark.parametrize("status, body, outcome", PUBLIC_SERVER_REPLIES.values(), ids=PUBLIC_SERVER_REPLIES)
def test_fw134_classifies_the_public_servers_replies(status: int, body: dict, outcome: Outcome) -> None:
    verdict = FW134.classify(status, json.dumps(body).encode())
    assert verdict.outcome is outcome, verdict.describe()


@pytest.mark.parametrize("status", [500, 502, 503, 504])
@pytest.mark.parametrize("body", [b'{"success":true}', b"<html>Internal Server Error</html>", b""])
def test_any_5xx_is_a_server_error_whatever_it_says(status: int, body: bytes) -> None:
    for profile in (FW134, API):
        assert profile.classify(status, body).outcome is Outcome.SERVER_ERROR


def test_an_html_404_is_unrecognised_and_the_hint_names_the_option() -> None:
    verdict = FW134.classify(404, b"<!DOCTYPE html><html><title>404 Not Found</title></html>")
    assert verdict.outcome is Outcome.UNRECOGNISED
    hint = mismatch_hint(verdict, method="POST", path="/aggregated/ESP32_001", profile=FW134.name)
    assert "`POST /aggregated/ESP32_001` answered 404 HTML" in hint
    assert "speaks another protocol" in hint and "--hil-wire-profile" in hint


def test_an_unknown_json_reply_hints_at_a_missing_rule_and_a_known_one_gives_no_hint() -> None:
    odd = API.classify(418, b'{"teapot":true}')
    assert odd.outcome is Outcome.UNRECOGNISED
    assert "add a [[responses]] rule" in mismatch_hint(odd, method="POST", path="/x", profile="ecowatt-api")
    known = API.classify(403, b'{"status":"error","error_code":"REPLAY_ATTACK","last_nonce":7}')
    assert mismatch_hint(known, method="POST", path="/x", profile="ecowatt-api") == ""


def test_the_last_nonce_is_learnt_from_the_replay_text_or_field() -> None:
    status, body, _ = PUBLIC_SERVER_REPLIES["replay"]
    assert FW134.nonce.learn(FW134.classify(status, json.dumps(body).encode())) == 11003
    assert FW134.nonce.learn(FW134.classify(401, b'{"success":false,"error":"Replay attack detected!"}')) is None
    api_replay = API.classify(403, b'{"status":"error","error_code":"REPLAY_ATTACK","last_nonce":10007}')
    assert API.nonce.learn(api_replay) == 10007
    assert API.nonce.learn(API.classify(403, b'{"error_code":"REPLAY_ATTACK","last_nonce":true}')) is None


# ---- the reference server's own replies, in each profile ---------------------------------------------


def _readings(device_id: str) -> Readings:
    return Readings(device_id, 1764547200, tuple(Reading(r, 1.0 + i) for i, r in enumerate(REGISTERS)))


@pytest.mark.parametrize("profile", [API, FW134], ids=lambda p: p.name)
def test_the_profile_classifies_the_reference_servers_own_replies(profile: WireProfile, tmp_path: Path) -> None:
    device = profile.default_device_id
    hmac_key, aes_key = profile.test_hmac_key or bytes(range(32)), profile.test_aes_key or bytes(16)
    config = ServerConfig(
        db_path=tmp_path / "db.sqlite",
        devices={device: DeviceKeys(device, hmac_key, aes_key)},
        admin_token="selftest-admin",  # TEST ONLY
        rate_limit=3,
        max_body_bytes=profile.limits.body_bytes,
        wire=profile,
    )
    app = create_app(config)
    client = app.test_client()

    def post(body: bytes, device_id: str = device) -> Outcome:
        reply = client.post(profile.upload_path(device_id), data=body, content_type="application/json")
        return profile.classify(reply.status_code, reply.get_data()).outcome

    def signed(nonce: int) -> bytes:
        return profile.body(profile.build(_readings(device), nonce=nonce, hmac_key=hmac_key))

    try:
        seen = [
            post(b"{not json"),
            post(b"x" * (profile.limits.body_bytes + 1)),
            post(profile.body(profile.build(_readings("STRANGER"), nonce=5, hmac_key=hmac_key)), "STRANGER"),
            post(signed(20001)),
            post(signed(20001)),
            post(profile.body(profile.build(_readings(device), nonce=20002, hmac_key=bytes(32)))),
            post(signed(20003)),  # the 4th upload of the device in the window (3 allowed)
        ]
    finally:
        close_app(app)
    assert seen == [
        Outcome.INVALID,
        Outcome.TOO_LARGE,
        Outcome.UNKNOWN_DEVICE,
        Outcome.ACCEPTED,
        Outcome.REPLAY,
        Outcome.BAD_MAC,
        Outcome.RATE_LIMITED,
    ]


# ---- hil.wire.expect -----------------------------------------------------------------------------


def test_expect_outcome_finding_names_what_was_sent_the_status_and_the_outcome() -> None:
    status, body, _ = PUBLIC_SERVER_REPLIES["replay"]
    with pytest.raises(Finding) as caught:
        expect_outcome(FW134, _reply(status, body), Outcome.ACCEPTED, what="the known-answer packet (nonce 11001)")
    text = str(caught.value)
    assert text.startswith("the known-answer packet (nonce 11001): expected accepted;")
    assert "HTTP 401" in text and "refused as replay" in text and "Replay attack detected" in text
    verdict = expect_outcome(FW134, _reply(status, body), Outcome.REPLAY, what="a replay")
    assert verdict.outcome is Outcome.REPLAY


def test_expect_outcome_against_another_protocol_says_which_option_to_change() -> None:
    with pytest.raises(Finding, match=r"speaks another protocol.*--hil-wire-profile"):
        expect_outcome(API, _reply(404, b"<html>Not Found</html>"), Outcome.REPLAY, what="a replayed packet")


def _without_rate_limit_reply(profile: WireProfile) -> WireProfile:
    """*profile* as for a server that has no rate-limit reply at all (declared ``absent``)."""
    rules = tuple(r for r in profile.classifier.rules if r.outcome is not Outcome.RATE_LIMITED)
    return replace(profile, classifier=Classifier(rules, frozenset({Outcome.RATE_LIMITED})))


def test_an_outcome_declared_absent_accepts_any_refusal_but_not_an_acceptance_or_5xx() -> None:
    hmac_reply = _reply(401, PUBLIC_SERVER_REPLIES["hmac"][1])
    with pytest.raises(Finding):  # the shipped profile has a rate-limit reply: a MAC refusal is not it
        expect_outcome(FW134, hmac_reply, Outcome.RATE_LIMITED, what="upload 11 of a burst")
    no_limit = _without_rate_limit_reply(FW134)
    assert not no_limit.declares(Outcome.RATE_LIMITED)
    verdict = expect_outcome(no_limit, hmac_reply, Outcome.RATE_LIMITED, what="upload 11 of a burst")
    assert verdict.outcome is Outcome.BAD_MAC
    for other in (_reply(200, PUBLIC_SERVER_REPLIES["accepted"][1]), _reply(503, b"busy"), None):
        with pytest.raises(Finding, match="upload 11 of a burst: expected refused as rate-limited"):
            expect_outcome(no_limit, other, Outcome.RATE_LIMITED, what="upload 11 of a burst")


def test_expect_refused_refuses_a_5xx_an_acceptance_and_an_unreadable_reply() -> None:
    assert expect_refused(FW134, _reply(400, PUBLIC_SERVER_REPLIES["content-type"][1]), what="x").outcome.refusal
    for reply, said in [
        (_reply(503, b"<html>Service Unavailable</html>"), "a server error (5xx)"),
        (_reply(200, PUBLIC_SERVER_REPLIES["accepted"][1]), "accepted"),
        (_reply(404, b"<html>nope</html>"), "does not recognise"),
    ]:
        with pytest.raises(Finding, match=r"a forged packet: expected refused; .*" + re.escape(said)):
            expect_refused(FW134, reply, what="a forged packet")


def test_expect_not_accepted_lets_a_dropped_connection_pass_but_not_a_5xx() -> None:
    assert expect_not_accepted(FW134, None, what="a flood").outcome is Outcome.NO_REPLY
    with pytest.raises(Finding, match="HTTP 500"):
        expect_not_accepted(FW134, _reply(500, b""), what="a flood")
