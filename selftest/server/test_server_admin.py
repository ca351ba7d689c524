"""Admin API: bearer token, events/readings/devices queries, generic fault storage."""

from __future__ import annotations

import pytest
from helpers_server import ADMIN_TOKEN, admin_get, forged, packet, post

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PATHS = ["/api/admin/events", "/api/admin/readings", "/api/admin/devices", "/api/admin/faults"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN},
                                     {"Authorization": f"Basic {ADMIN_TOKEN}"},
                                     {"Authorization": f"Bearer {ADMIN_TOKEN}x"}])
@pytest.mark.parametrize("path", PATHS)
def test_admin_needs_the_bearer_token(client, path, headers) -> None:
    reply = client.get(path, headers=headers)
    assert reply.status_code == 401 and reply.get_json()["error_code"] == "UNAUTHORIZED"
    assert reply.headers["WWW-Authenticate"] == "Bearer"


def test_admin_refusals_are_security_events_and_writes_are_refused(client) -> None:
    assert client.delete("/api/admin/faults").status_code == 401
    assert client.post("/api/admin/faults", json={"name": "bad_hash"}).status_code == 401
    events = admin_get(client, "/api/admin/events?code=UNAUTHORIZED")["events"]
    assert [e["detail"].split(":")[0] for e in events] == ["DELETE /api/admin/faults", "POST /api/admin/faults"]
    assert admin_get(client, "/api/admin/faults") == {"faults": []}


def test_events_filters(client) -> None:
    post(client, forged(1))
    post(client, forged(1, "EW-0002"))
    post(client, b"junk")
    assert len(admin_get(client, "/api/admin/events")["events"]) == 3
    assert [e["device_id"] for e in admin_get(client, "/api/admin/events?device_id=EW-0002")["events"]] == ["EW-0002"]
    assert len(admin_get(client, "/api/admin/events?code=INVALID_HMAC&limit=1")["events"]) == 1
    assert client.get("/api/admin/events?limit=0", headers=AUTH).status_code == 400
    assert client.get("/api/admin/events?limit=²", headers=AUTH).status_code == 400


def test_readings_and_devices(client) -> None:
    post(client, packet(7, n=3))
    post(client, packet(9, "EW-0002", n=1))
    rows = admin_get(client, "/api/admin/readings?device_id=EW-0001")["readings"]
    assert [(r["register"], r["value"], r["nonce"], r["timestamp"]) for r in rows] == [
        ("Vac1", 230.0, 7, 1700000000), ("Iac1", 231.0, 7, 1700000000), ("Fac1", 232.0, 7, 1700000000)]
    assert len(admin_get(client, "/api/admin/readings")["readings"]) == 4
    assert admin_get(client, "/api/admin/devices") == {"devices": [{"device_id": "EW-0001", "last_nonce": 7},
                                                                   {"device_id": "EW-0002", "last_nonce": 9}]}


def test_faults_are_stored_generically(client) -> None:
    reply = client.post("/api/admin/faults", headers=AUTH, json={"name": "corrupt_chunk", "params": {"n": 3}})
    assert reply.status_code == 201
    client.post("/api/admin/faults", headers=AUTH, json=[{"name": "bad_hash"}, {"name": "delay_chunk",
                                                                                "params": {"n": 1, "ms": 500}}])
    assert admin_get(client, "/api/admin/faults")["faults"] == [
        {"name": "corrupt_chunk", "params": {"n": 3}}, {"name": "bad_hash", "params": {}},
        {"name": "delay_chunk", "params": {"n": 1, "ms": 500}}]
    assert client.delete("/api/admin/faults?name=bad_hash", headers=AUTH).get_json() == {"removed": 1}
    assert client.delete("/api/admin/faults", headers=AUTH).get_json() == {"removed": 2}
    assert admin_get(client, "/api/admin/faults") == {"faults": []}


@pytest.mark.parametrize("body", [b"nope", b'{"params":{}}', b'{"name":"Bad Name"}', b'{"name":"x","params":[1]}',
                                  b"[1]"])
def test_bad_fault_bodies_are_400(client, body) -> None:
    reply = client.post("/api/admin/faults", headers=AUTH, data=body, content_type="application/json")
    assert reply.status_code == 400 and reply.get_json()["error_code"] == "INVALID_PAYLOAD"
