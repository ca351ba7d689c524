"""The reference server speaking ``ecowatt-fw134``, over a real socket: the public format, the secure way.

The known-answer packet of ``ecowatt-fw134-wire.md`` (``vectors/fw134-upload.json``) is accepted with the
public server's reply and its readings stored in physical units; a replay gets the public server's
wording. Then what the public server lacks (missing fields, body and rate limits, the nonce checked
after the MAC, malformed input never a 5xx) and the two defects of that format's servers.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hil.net.http import HttpMessage, build_request
from hil.net.replay import replay_http, send_http
from hil.protocol import fw134
from hil.protocol.readings import REGISTERS, Reading, Readings
from hil.server import DeviceKeys, ServerConfig, ServerHandle
from hil.wire.profile import load_profile

VECTOR = json.loads((Path(__file__).parents[1] / "protocol" / "vectors" / "fw134-upload.json").read_text())
KEY = bytes.fromhex(VECTOR["hmac_key"])  # TEST ONLY: the key published with the firmware
WIRE = load_profile("ecowatt-fw134")
KAT_BODY = fw134.Envelope(VECTOR["nonce"], base64.b64encode(VECTOR["inner"].encode()).decode(), VECTOR["mac"]).to_json()
# The vector's sample [2301, 52, 4998, ...] in the firmware's units (÷10, Fac1 ÷100, Pow/Pac ×1).
KAT_VALUES = {"Vac1": 230.1, "Iac1": 5.2, "Fac1": 49.98, "Vpv1": 360.5, "Vpv2": 359.0, "Ipv1": 8.1, "Ipv2": 7.9,
              "Temp": 41.2, "Pow": 1187.0, "Pac": 1150.0}  # fmt: skip
PUBLIC_REPLAY = r"Replay attack detected! Nonce 11001 <= last valid nonce 11001"
PARALLEL_COPIES = 32
ServerFactory = Callable[..., ServerHandle]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[ServerFactory]:
    """``start(*device_ids, defects=(), rate_limit=1000)``: a fw134 server with those devices registered."""
    handles: list[ServerHandle] = []

    def factory(*device_ids: str, defects: tuple[str, ...] = (), rate_limit: int = 1000) -> ServerHandle:
        config = ServerConfig(
            db_path=tmp_path / f"server{len(handles)}.sqlite",
            devices={d: DeviceKeys(d, KEY, KEY[:16]) for d in device_ids or ("ESP32_001",)},
            admin_token="selftest-admin",  # TEST ONLY
            rate_limit=rate_limit,
            max_body_bytes=WIRE.limits.body_bytes,
            clock=lambda: 1000.0,  # the rate-limit window never moves during a test
            wire=WIRE,
        )
        handles.append(ServerHandle(config, defects=defects).start())
        return handles[-1]

    yield factory
    for handle in handles:
        handle.stop()


def request(handle: ServerHandle, body: bytes, device_id: str = "ESP32_001") -> HttpMessage:
    """The upload request as the firmware sends it."""
    headers = {"Content-Type": "application/json"}
    return build_request("POST", WIRE.upload_path(device_id), body, host=f"127.0.0.1:{handle.port}", headers=headers)


def post(handle: ServerHandle, body: bytes, device_id: str = "ESP32_001") -> tuple[int, dict[str, Any]]:
    """(status, JSON reply) of one upload on a new connection."""
    reply = send_http(request(handle, body, device_id).raw, ("127.0.0.1", handle.port), method="POST")
    assert reply.status is not None
    return reply.status, json.loads(reply.body)


def signed(nonce: int, device_id: str = "ESP32_001", **fields: Any) -> bytes:
    """A fresh packet of *device_id* under the published key, with envelope *fields* overridden."""
    readings = Readings(device_id, 1764547200, tuple(Reading(r, 10.0 + i) for i, r in enumerate(REGISTERS)))
    return WIRE.body(WIRE.build(readings, nonce=nonce, hmac_key=KEY), **fields)


def test_the_known_answer_packet_is_accepted_and_stored_in_physical_units(start: ServerFactory) -> None:
    server = start()
    status, reply = post(server, KAT_BODY)
    message = "Compressed data processed and published"
    assert (status, reply) == (
        200,
        {"success": True, "device_id": "ESP32_001", "message": message, "samples_count": 10},
    )
    stored = server.state.storage.readings("ESP32_001")
    assert {r["register"]: r["value"] for r in stored} == pytest.approx(KAT_VALUES)
    assert {(r["nonce"], r["timestamp"]) for r in stored} == {(11001, 1764547200)}


def test_the_known_answer_packet_sent_again_is_refused_in_the_public_servers_words(start: ServerFactory) -> None:
    server = start()
    assert post(server, KAT_BODY)[0] == 200
    status, reply = post(server, KAT_BODY)
    assert status == 401 and reply["success"] is False
    assert re.search(re.escape(PUBLIC_REPLAY), reply["error"]), reply
    assert WIRE.nonce.learn(WIRE.classify(status, json.dumps(reply).encode())) == 11001
    assert len(server.state.storage.readings("ESP32_001")) == len(REGISTERS)  # stored once


@pytest.mark.parametrize("field", ["mac", "nonce"])
@pytest.mark.parametrize("how", ["missing", "null"])
def test_a_missing_or_null_security_field_is_refused_400(start: ServerFactory, field: str, how: str) -> None:
    server = start()
    doc = json.loads(KAT_BODY)
    if how == "missing":
        del doc[field]
    else:
        doc[field] = None
    status, reply = post(server, json.dumps(doc).encode())
    assert status == 400 and reply["success"] is False, reply
    assert server.state.storage.readings() == [] and server.state.storage.devices()[0]["last_nonce"] is None


def test_the_body_limit_is_the_devices_buffer(start: ServerFactory) -> None:
    server = start()
    room = WIRE.limits.body_bytes - len(signed(11001, padding=""))  # an extra field the server ignores
    over, at_limit = signed(11001, padding="x" * (room + 1)), signed(11001, padding="x" * room)
    assert (len(over), len(at_limit)) == (WIRE.limits.body_bytes + 1, WIRE.limits.body_bytes)
    assert post(server, over)[0] == 413
    assert post(server, at_limit)[0] == 200  # the refusal took no nonce, and the limit itself is allowed


def test_the_eleventh_upload_in_a_window_is_rate_limited_with_a_retry_time(start: ServerFactory) -> None:
    server = start(rate_limit=WIRE.limits.rate)
    statuses = [post(server, signed(11001 + i))[0] for i in range(WIRE.limits.rate)]
    assert statuses == [200] * WIRE.limits.rate
    status, reply = post(server, signed(11001 + WIRE.limits.rate))
    assert status == 429 and reply["success"] is False
    assert isinstance(reply["retry_after_seconds"], int) and reply["retry_after_seconds"] > 0
    assert server.state.storage.devices()[0]["last_nonce"] == 11000 + WIRE.limits.rate  # the refused one not taken


def test_a_forged_mac_does_not_burn_the_nonce(start: ServerFactory) -> None:
    server = start()
    status, reply = post(server, signed(11001, mac="0" * 64))
    assert status == 401 and "HMAC verification failed" in reply["error"], reply
    assert post(server, signed(11001))[0] == 200  # the nonce is checked after the MAC


MALFORMED = {
    "not-json": b"not json",
    "truncated": KAT_BODY[:40],
    "array": b"[1,2]",
    "deep": b"[" * 3000 + b"]" * 3000,
    "nonce-string": KAT_BODY.replace(b'"nonce":11001', b'"nonce":"11001"'),
    "nonce-huge": KAT_BODY.replace(b'"nonce":11001', b'"nonce":' + b"9" * 400),
    "mac-short": KAT_BODY.replace(VECTOR["mac"].encode(), b"ab" * 16),
    "encrypted-null": KAT_BODY.replace(b'"encrypted":false', b'"encrypted":null'),
    "compressed-true": KAT_BODY.replace(b'"compressed":false', b'"compressed":true'),
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED)
def test_malformed_input_is_answered_400_never_5xx(start: ServerFactory, body: bytes) -> None:
    assert body != KAT_BODY
    status, reply = post(start(), body)
    assert status == 400 and reply["success"] is False, reply


@pytest.mark.parametrize("body", [
    KAT_BODY.replace(b'"payload":"', b'"payload":"!!'),  # not base64
    KAT_BODY.replace(b'"encrypted":false', b'"encrypted":true'),  # not whole AES blocks
], ids=["payload-not-base64", "payload-not-ciphertext"])  # fmt: skip
def test_a_payload_that_cannot_be_unwrapped_is_refused_never_5xx(start: ServerFactory, body: bytes) -> None:
    """No MAC can be computed over it: refused (as a bad MAC, the same answer as bad padding), not a 5xx."""
    status, reply = post(start(), body)
    assert WIRE.classify(status, json.dumps(reply).encode()).outcome.refusal, (status, reply)


def test_a_path_id_that_differs_from_the_inner_device_id_is_refused(start: ServerFactory) -> None:
    server = start("ESP32_001", "ESP32_002")
    status, reply = post(server, KAT_BODY, device_id="ESP32_002")  # inner JSON: ESP32_001
    assert status == 400 and reply["success"] is False, reply
    assert server.state.storage.readings() == []


def test_device_id_copy_unchecked_files_a_captured_packet_under_another_device(start: ServerFactory) -> None:
    server = start("ESP32_001", "ESP32_002", defects=("device-id-copy-unchecked",))
    assert post(server, KAT_BODY, device_id="ESP32_002")[0] == 200
    assert {r["device_id"] for r in server.state.storage.readings()} == {"ESP32_002"}


def accepted_copies(server: ServerHandle) -> tuple[int, list[int | None]]:
    """How many of 32 copies of one packet, released at once, were accepted; and every status."""
    results = replay_http(request(server, KAT_BODY), ("127.0.0.1", server.port), times=PARALLEL_COPIES,
                          parallel=PARALLEL_COPIES, timeout=10)  # fmt: skip
    statuses = [r.status for r in results]
    return statuses.count(200), statuses


def test_parallel_copies_are_accepted_exactly_once(start: ServerFactory) -> None:
    server = start(rate_limit=0)
    accepted, statuses = accepted_copies(server)
    assert accepted == 1 and statuses.count(401) == PARALLEL_COPIES - 1, statuses
    assert len(server.state.storage.readings("ESP32_001")) == len(REGISTERS)


def held_race(server: ServerHandle, hold_s: float) -> list[int]:
    """Two copies of the KAT packet, the first held inside its store step (after its replay check,
    before anything it records afterwards) until the second arrives there or *hold_s* passes: the
    interleaving a lucky race produces, made certain. The two statuses, in sending order."""
    storage = server.state.storage
    store = storage.store_readings
    first_in, second_in = threading.Event(), threading.Event()

    def held(nonce: int, readings: Readings) -> None:
        if first_in.is_set():
            second_in.set()
        else:
            first_in.set()
            second_in.wait(hold_s)
        store(nonce, readings)

    storage.store_readings = held  # type: ignore[method-assign]  # this server's instance only
    statuses: list[int] = [0, 0]

    def send(index: int) -> None:
        statuses[index] = post(server, KAT_BODY)[0]

    first = threading.Thread(target=send, args=(0,))
    first.start()
    assert first_in.wait(5), "the first copy never reached the store step"
    send(1)
    first.join(10)
    return statuses


def test_nonce_check_not_atomic_lets_an_interleaved_copy_through(start: ServerFactory) -> None:
    """With the defect, a copy sent while the first is being stored passes the replay check (it read the
    old nonce): both accepted, both stored. Without it the second is refused at once (the first had
    advanced the nonce atomically before storing)."""
    defective = start(rate_limit=0, defects=("nonce-check-not-atomic",))
    assert held_race(defective, hold_s=5) == [200, 200]
    assert len(defective.state.storage.readings("ESP32_001")) == 2 * len(REGISTERS)
    sound = start(rate_limit=0)
    assert held_race(sound, hold_s=0.5) == [200, 401]
    assert len(sound.state.storage.readings("ESP32_001")) == len(REGISTERS)
