"""Each server defect flips exactly the row of the validation table that guards its property."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from helpers_server import DEVICES, doc, forged, packet, post, readings

from hil.net.forge import Forger
from hil.protocol.upload import MAX_BODY_BYTES, build_packet
from hil.server.defects import CATALOGUE, ServerDefects, UnknownServerDefectError
from hil.server import ServerHandle, close_app, create_app
from hil.server.state import EXTENSION_KEY
from hil.wire.profile import load_profile


def burn_then_valid(client: Any) -> int:
    post(client, forged(4_000_000_000))
    return post(client, packet(10001))[0]


def missing_mac(client: Any) -> int:
    return post(client, doc(10001, mac=...))[0]


def replay_same(client: Any) -> int:
    post(client, packet(10001))
    return post(client, packet(10001))[0]


def eleventh_upload(client: Any) -> int:
    return [post(client, packet(n))[0] for n in range(1, 12)][-1]


def malformed(client: Any) -> int:
    return post(client, b"{not json")[0]


def oversized_valid(client: Any) -> int:
    return post(client, doc(10001, padding="x" * (MAX_BODY_BYTES + 10)))[0]


def unknown_device(client: Any) -> int:
    stranger = build_packet(readings("EW-9999"), nonce=1, hmac_key=b"\x55" * 32)
    return post(client, stranger)[0]


def nonce_as_string(client: Any) -> int:
    return post(client, doc("10001"))[0]


def replay_after_restart(client: Any) -> int:
    post(client, packet(10001))
    state = client.application.extensions[EXTENSION_KEY]
    restarted = create_app(state.config, defects=tuple(state.defects))  # same database, new process state
    try:
        return post(restarted.test_client(), packet(10001))[0]
    finally:
        close_app(restarted)


def plaintext_names_other_device(client: Any) -> int:
    signed_by_a = Forger(load_profile()).craft("EW-0001", 10001, readings("EW-0002"), key=DEVICES["EW-0001"])
    return post(client, signed_by_a)[0]


def replayed_elsewhere_then_valid(client: Any) -> int:
    for _ in range(11):  # the device's own packet, replayed by someone else past the limit
        post(client, packet(10001), peer="10.9.9.9")
    return post(client, packet(10002), peer="10.0.0.23")[0]


def valid_at_the_limit(client: Any) -> int:
    body = json.dumps(packet(10001).to_dict()).encode()
    return post(client, body + b" " * (MAX_BODY_BYTES - len(body)))[0]


def admin_with_empty_token(client: Any) -> int:
    return int(client.get("/api/admin/events", headers={"Authorization": "Bearer "}).status_code)


def retries_inside_window_then_at_its_end(client: Any) -> int:
    clock = client.application.extensions[EXTENSION_KEY].config.clock
    for n in range(1, 11):  # the limit (10 per 60 s), all at one instant
        post(client, packet(n))
    for n in range(11, 21):  # a device retrying each second: refused, and not counted
        clock.advance(1)
        post(client, packet(n))
    clock.advance(50)  # the window of the first ten is over
    return post(client, packet(21))[0]


# defect -> (probe, status on the reference server, status with the defect)
FLIPS: dict[str, tuple[Callable[[Any], int], int, int]] = {
    "nonce-advanced-before-mac": (burn_then_valid, 200, 403),
    "missing-fields-skip-checks": (missing_mac, 400, 200),
    "replay-allowed-equal-nonce": (replay_same, 403, 200),
    "no-rate-limit": (eleventh_upload, 429, 200),
    "rate-limit-per-device": (replayed_elsewhere_then_valid, 200, 429),
    "malformed-json-500": (malformed, 400, 500),
    "no-body-limit": (oversized_valid, 413, 200),
    "unknown-device-accepted": (unknown_device, 404, 200),
    "field-type-errors-500": (nonce_as_string, 400, 500),
    "nonces-in-memory": (replay_after_restart, 403, 200),
    "plaintext-device-id-trusted": (plaintext_names_other_device, 400, 200),
    "device-id-copy-unchecked": (plaintext_names_other_device, 400, 200),
    "admin-token-prefix-accepted": (admin_with_empty_token, 401, 200),
    "body-limit-off-by-one": (valid_at_the_limit, 200, 413),
    "rate-limit-counts-refusals": (retries_inside_window_then_at_its_end, 200, 429),
}
# A race needs concurrent requests, which a test client cannot make: proven with parallel copies on a
# running server in selftest/wire/test_server_fw134.py (and by the scenario that claims it).
RACES = {"nonce-check-not-atomic"}
# Defects that change no status, only what the server records: proven by the invariant that sees them
# (selftest/invariants/test_invariants.py).
RECORD_ONLY = {"rate-limit-refusals-unlogged"}
# Defects of the OTA endpoints: flipped with packages to offer, in selftest/server/test_server_ota.py.
OTA = {"ota-newest-by-text"}


def test_every_catalogued_defect_has_a_flip() -> None:
    assert set(FLIPS) | RACES | RECORD_ONLY | OTA == {d.name for d in CATALOGUE}


@pytest.mark.parametrize("name", sorted(FLIPS))
def test_defect_flips_its_row(make_app, name: str) -> None:
    probe, reference, defective = FLIPS[name]
    assert probe(make_app().test_client()) == reference
    assert probe(make_app(defects=(name,)).test_client()) == defective


def test_missing_nonce_skips_the_replay_check_under_the_defect(make_app) -> None:
    client = make_app(defects=("missing-fields-skip-checks",)).test_client()
    body = {**packet(0).to_dict()}
    del body["nonce"]  # MAC computed over nonce 0, which the defective server substitutes
    assert [post(client, body)[0] for _ in range(2)] == [200, 200]


def test_unknown_defects_are_refused(make_app, tmp_path) -> None:
    with pytest.raises(UnknownServerDefectError, match="list-defects"):
        make_app(defects=("no-such-defect",))
    with pytest.raises(UnknownServerDefectError):
        "typo" in ServerDefects()
    with pytest.raises(UnknownServerDefectError):
        ServerHandle(None, defects=("nope",)).start()  # type: ignore[arg-type]
