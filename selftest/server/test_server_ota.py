"""OTA endpoints (PROTOCOL.md "Firmware over the air"): check, manifest, download, status, and every fault."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from helpers_server import ADMIN_TOKEN, admin_get, http_request, make_config

from hil.cli import main
from hil.images.fota import FotaFormatError, FotaManifest, decrypt_stream, sha256_hex, verify_signature
from hil.images.keys import KeyStore
from hil.server import ServerHandle, create_app
from hil.server.ota import MAX_ERROR_MESSAGE, MAX_STATUS_BODY

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHECK = "/api/ota/check/EW-0001"
STATUS = "/api/ota/status"


@pytest.fixture
def ota(make_app, fota) -> Any:
    return make_app(firmware_dir=fota.firmware_dir).test_client()


def fault(client: Any, name: str, **params: Any) -> None:
    reply = client.post("/api/admin/faults", json={"name": name, "params": params}, headers=AUTH)
    assert reply.status_code == 201, reply.get_data(as_text=True)


def manifest(client: Any, version: str = "2.0.0") -> dict[str, Any]:
    reply = client.get(f"/api/ota/manifest/{version}")
    assert reply.status_code == 200 and reply.mimetype == "application/json"
    return reply.get_json()


def chunks(client: Any, version: str = "2.0.0") -> list[bytes]:
    total = manifest(client, version)["total_chunks"]
    replies = [client.get(f"/api/ota/download/{version}/{n}") for n in range(total)]
    assert all(r.status_code == 200 and r.mimetype == "application/octet-stream" for r in replies)
    return [r.get_data() for r in replies]


def error(reply: Any, status: int, code: str) -> None:
    assert reply.status_code == status, reply.get_data(as_text=True)
    assert reply.get_json()["error_code"] == code


def events(client: Any, code: str) -> list[dict[str, Any]]:
    return admin_get(client, f"/api/admin/events?code={code}")["events"]


# -- check ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("running,offered", [("0.1.0", "2.0.0"), ("1.0.0", "2.0.0"), ("1.10.0", "2.0.0")])
def test_check_offers_the_highest_newer_package(ota, fota, running, offered) -> None:
    assert ota.get(f"{CHECK}?version={running}").get_json() == {
        "update_available": True, "firmware_version": offered,
        "file_size": len(fota.plaintexts[offered]), "manifest_url": f"/api/ota/manifest/{offered}"}


@pytest.mark.parametrize("running", ["2.0.0", "10.0.0"])
def test_check_without_newer_package(ota, running) -> None:
    assert ota.get(f"{CHECK}?version={running}").get_json() == {"update_available": False, "current_version": running}


def test_check_refusals_are_recorded(ota) -> None:
    error(ota.get("/api/ota/check/EW-9999?version=1.0.0"), 404, "DEVICE_NOT_FOUND")
    error(ota.get(CHECK), 400, "INVALID_PAYLOAD")
    error(ota.get(f"{CHECK}?version=1.0"), 400, "INVALID_PAYLOAD")
    error(ota.get("/api/ota/check/bad%20id?version=1.0.0"), 400, "INVALID_PAYLOAD")
    assert [e["device_id"] for e in events(ota, "DEVICE_NOT_FOUND")] == ["EW-9999"]
    assert [e["device_id"] for e in events(ota, "INVALID_PAYLOAD")] == ["EW-0001", "EW-0001", None]


def test_no_firmware_dir_offers_nothing(client) -> None:
    assert client.get(f"{CHECK}?version=1.0.0").get_json()["update_available"] is False
    error(client.get("/api/ota/manifest/2.0.0"), 404, "VERSION_NOT_FOUND")


# -- manifest and download -----------------------------------------------------------------------
def test_manifest_and_chunks_decrypt_to_the_signed_plaintext(ota, fota) -> None:
    doc = manifest(ota)
    assert list(doc) == ["version", "file_name", "file_size", "chunk_size", "total_chunks", "sha256_hash",
                         "rsa_signature", "aes_iv", "created_at"]
    assert doc == json.loads((fota.firmware_dir / "2.0.0" / "manifest.json").read_text())
    parts = chunks(ota)
    assert [len(p) for p in parts] == [2048, 2048, 1040]
    stream = decrypt_stream(fota.fota_key, bytes.fromhex(doc["aes_iv"]))
    plaintext = b"".join(stream.update(p) for p in parts) + stream.finalize()
    assert plaintext == fota.plaintexts["2.0.0"] and sha256_hex(plaintext) == doc["sha256_hash"]
    assert verify_signature(plaintext, bytes.fromhex(doc["rsa_signature"]), fota.public_pem)


@pytest.mark.parametrize("path,code", [
    ("/api/ota/download/2.0.0/3", "CHUNK_NOT_FOUND"), ("/api/ota/download/2.0.0/-1", "CHUNK_NOT_FOUND"),
    ("/api/ota/download/2.0.0/x", "CHUNK_NOT_FOUND"), ("/api/ota/download/2.0.0/99999999999999", "CHUNK_NOT_FOUND"),
    ("/api/ota/download/3.0.0/0", "CHUNK_NOT_FOUND"), ("/api/ota/manifest/3.0.0", "VERSION_NOT_FOUND"),
    ("/api/ota/manifest/2.0.0%00", "VERSION_NOT_FOUND"),
])
def test_missing_chunks_and_versions_are_404_and_recorded(ota, path, code) -> None:
    error(ota.get(path), 404, code)
    assert len(events(ota, code)) == 1


def test_a_chunk_past_the_end_says_which_exist(ota) -> None:
    """The refusal tells a client (and a reader of the event log) the valid range: 2.0.0 has 3 chunks."""
    reply = ota.get("/api/ota/download/2.0.0/3")
    assert reply.get_json()["message"] == "firmware 2.0.0 has chunks 0..2", reply.get_json()


# -- status --------------------------------------------------------------------------------------
def status(**changes: Any) -> dict[str, Any]:
    doc = {"device_id": "EW-0001", "firmware_version": "2.0.0", "status": "failed", "progress_percent": 100,
           "error_code": "HASH_MISMATCH", "error_message": "sha256 differs", "old_version": "1.0.0",
           "rolled_back_to": None, **changes}
    return {k: v for k, v in doc.items() if v is not ...}


def test_status_reports_are_stored_and_listed(ota) -> None:
    assert ota.post(STATUS, json=status(status="downloading", error_code=None, progress_percent=50)).status_code == 200
    assert ota.post(STATUS, json=status()).get_json() == {"status": "success"}
    assert ota.post(STATUS, json=status(device_id="EW-0002", status="rolled_back", error_code="BOOT_FAILED",
                                        rolled_back_to="1.0.0", extra="ignored")).status_code == 200
    rows = admin_get(ota, "/api/admin/ota-status?device_id=EW-0001")["statuses"]
    assert [(r["status"], r["progress_percent"], r["error_code"]) for r in rows] == [
        ("downloading", 50, None), ("failed", 100, "HASH_MISMATCH")]
    assert rows[1]["old_version"] == "1.0.0" and rows[1]["peer"] == "127.0.0.1"
    assert len(admin_get(ota, "/api/admin/ota-status")["statuses"]) == 3


@pytest.mark.parametrize("changes", [
    {"device_id": ...}, {"device_id": "bad id"}, {"firmware_version": ...}, {"firmware_version": "2"},
    {"status": "done"}, {"status": None}, {"progress_percent": 101}, {"progress_percent": -1},
    {"progress_percent": True}, {"progress_percent": "50"}, {"error_code": "OOPS"}, {"error_code": None},
    {"error_message": 5}, {"error_message": "x" * 501}, {"old_version": "one"}, {"rolled_back_to": 1},
])
def test_status_validation(ota, changes) -> None:
    error(ota.post(STATUS, json=status(**changes)), 400, "INVALID_PAYLOAD")
    assert admin_get(ota, "/api/admin/ota-status")["statuses"] == []
    (event,) = events(ota, "INVALID_PAYLOAD")
    # the event names the device a malformed report claims to be from, when that is a device id at all
    assert event["device_id"] == (None if "device_id" in changes else "EW-0001"), event


def test_status_refuses_unknown_devices_garbage_and_huge_bodies(ota) -> None:
    error(ota.post(STATUS, json=status(device_id="EW-9999")), 404, "DEVICE_NOT_FOUND")
    error(ota.post(STATUS, data=b"\xff{", content_type="application/json"), 400, "INVALID_PAYLOAD")
    error(ota.post(STATUS, data=b"[]", content_type="application/json"), 400, "INVALID_PAYLOAD")
    error(ota.post(STATUS, data=json.dumps(status(error_message="x" * 5000)), content_type="application/json"),
          413, "PAYLOAD_TOO_LARGE")
    assert admin_get(ota, "/api/admin/ota-status")["statuses"] == []


def test_status_limits_at_their_edges(ota) -> None:
    """A body of exactly MAX_STATUS_BODY bytes and a message of exactly MAX_ERROR_MESSAGE characters
    are stored; one more of either is refused."""
    def body_of(size: int, **changes: Any) -> bytes:
        raw = json.dumps(status(**changes)).encode()
        return raw + b" " * (size - len(raw))  # JSON allows whitespace after the value

    at = ota.post(STATUS, data=body_of(MAX_STATUS_BODY), content_type="application/json")
    assert at.status_code == 200, at.get_data(as_text=True)
    error(ota.post(STATUS, data=body_of(MAX_STATUS_BODY + 1), content_type="application/json"),
          413, "PAYLOAD_TOO_LARGE")
    assert ota.post(STATUS, json=status(error_message="x" * MAX_ERROR_MESSAGE)).status_code == 200
    error(ota.post(STATUS, json=status(error_message="x" * (MAX_ERROR_MESSAGE + 1))), 400, "INVALID_PAYLOAD")
    assert len(admin_get(ota, "/api/admin/ota-status")["statuses"]) == 2


@pytest.mark.parametrize("path, status, suffix", [
    ("/api/ota/manifest/{long}", 404, ""), ("/api/ota/download/{long}/0", 404, ""),
    ("/api/ota/download/2.0.0/{long}", 404, ""), ("/api/ota/check/{long}?version=1.0.0", 400, ": malformed device_id"),
])
def test_a_refusal_records_at_most_100_characters_of_the_path(ota, path, status, suffix) -> None:
    """A hostile client chooses the path: the event log keeps its first 100 characters, no more, and
    a message quotes at most 40 of a version it names."""
    long = "9" * 300
    target = path.format(long=long)
    reply = ota.get(target)
    assert reply.status_code == status
    (event,) = admin_get(ota, "/api/admin/events")["events"]
    assert event["detail"] == f"GET {target.split('?')[0][:100]}{suffix}", event
    if "{long}/0" in path or "manifest" in path:
        assert reply.get_json()["message"] == f"no firmware {long[:40]!r} on this server"


# -- faults on chunks ----------------------------------------------------------------------------
def test_corrupt_chunk_flips_one_byte_of_that_chunk_only(ota) -> None:
    clean = chunks(ota)
    fault(ota, "corrupt_chunk", chunk=1)
    bad = chunks(ota)
    assert bad[0] == clean[0] and bad[2] == clean[2]
    assert sum(a != b for a, b in zip(bad[1], clean[1])) == 1 and len(bad[1]) == len(clean[1])


def test_corrupt_chunk_breaks_the_hash(ota, fota) -> None:
    fault(ota, "corrupt_chunk", chunk=0)
    stream = decrypt_stream(fota.fota_key, bytes.fromhex(manifest(ota)["aes_iv"]))
    plaintext = b"".join(stream.update(p) for p in chunks(ota)) + stream.finalize()
    assert sha256_hex(plaintext) != manifest(ota)["sha256_hash"]


def test_truncate_chunk_sends_a_short_complete_body(ota) -> None:
    fault(ota, "truncate_chunk", chunk=0)
    fault(ota, "truncate_chunk", chunk=2, bytes=100)
    assert [len(p) for p in chunks(ota)] == [1024, 2048, 100]


def test_chunk_fault_without_chunk_applies_to_every_chunk(ota) -> None:
    fault(ota, "truncate_chunk", bytes=10)
    assert [len(p) for p in chunks(ota)] == [10, 10, 10]


def test_malformed_fault_params_are_ignored_and_unknown_faults_listed(ota) -> None:
    clean = chunks(ota)
    fault(ota, "corrupt_chunk", chunk="1")
    fault(ota, "delay_chunk", chunk=0, ms=10**9)
    fault(ota, "something_else", chunk=0)
    assert chunks(ota) == clean
    assert [f["name"] for f in admin_get(ota, "/api/admin/faults")["faults"]] == [
        "corrupt_chunk", "delay_chunk", "something_else"]


def test_delay_chunk_holds_only_that_chunk(ota_server) -> None:
    _post_fault(ota_server, "delay_chunk", chunk=1, ms=300)
    started = time.monotonic()
    assert _get(ota_server, "/api/ota/download/2.0.0/0")[0] == 200
    fast = time.monotonic() - started
    started = time.monotonic()
    assert _get(ota_server, "/api/ota/download/2.0.0/1")[0] == 200
    assert time.monotonic() - started >= 0.3 > fast


def _get(server: ServerHandle, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", path)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def _post_fault(server: ServerHandle, name: str, **params: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("POST", "/api/admin/faults", body=json.dumps({"name": name, "params": params}), headers=AUTH)
        assert conn.getresponse().status == 201
    finally:
        conn.close()


def test_drop_connection_cuts_the_tcp_stream_times_times(ota_server) -> None:
    _post_fault(ota_server, "drop_connection", chunk=1, times=2)
    for _ in range(2):
        with pytest.raises(http.client.IncompleteRead) as excinfo:
            _get(ota_server, "/api/ota/download/2.0.0/1")
        assert len(excinfo.value.partial) == 1024
    status, body = _get(ota_server, "/api/ota/download/2.0.0/1")
    assert status == 200 and len(body) == 2048
    assert _get(ota_server, "/api/ota/download/2.0.0/0")[0] == 200
    assert ota_server.state.storage.faults() == [{"name": "drop_connection", "params": {"chunk": 1, "times": 0}}]


def test_drop_connection_without_times_drops_once(ota_server) -> None:
    _post_fault(ota_server, "drop_connection", chunk=1)  # PROTOCOL.md: times defaults to 1
    with pytest.raises(http.client.IncompleteRead):
        _get(ota_server, "/api/ota/download/2.0.0/1")
    status, body = _get(ota_server, "/api/ota/download/2.0.0/1")
    assert status == 200 and len(body) == 2048, "the drop fired more than once without a times"


def test_drop_connection_times_hold_under_concurrency(ota_server) -> None:
    _post_fault(ota_server, "drop_connection", chunk=0, times=3)

    def attempt(_: int) -> str:
        try:
            return "ok" if _get(ota_server, "/api/ota/download/2.0.0/0")[0] == 200 else "status"
        except (http.client.IncompleteRead, ConnectionError):
            return "dropped"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(12)))
    assert outcomes.count("dropped") == 3 and outcomes.count("ok") == 9


def test_drop_connection_in_the_test_client_is_a_short_body(ota) -> None:
    fault(ota, "drop_connection", chunk=0)
    reply = ota.get("/api/ota/download/2.0.0/0")
    assert reply.headers["Content-Length"] == "2048" and len(reply.get_data()) == 1024


# -- faults on the manifest and the check --------------------------------------------------------
def _signature_ok(doc: dict[str, Any], fota) -> bool:
    return verify_signature(fota.plaintexts[doc["version"]], bytes.fromhex(doc["rsa_signature"]), fota.public_pem)


def test_bad_hash(ota, fota) -> None:
    good = manifest(ota)
    fault(ota, "bad_hash")
    doc = manifest(ota)
    assert doc["sha256_hash"] != good["sha256_hash"] and FotaManifest.from_dict(doc)
    assert {k: v for k, v in doc.items() if k != "sha256_hash"} == {k: v for k, v in good.items() if k != "sha256_hash"}
    assert _signature_ok(doc, fota)


def test_bad_signature(ota, fota) -> None:
    fault(ota, "bad_signature")
    doc = manifest(ota)
    assert FotaManifest.from_dict(doc) and not _signature_ok(doc, fota)
    assert doc["sha256_hash"] == sha256_hex(fota.plaintexts["2.0.0"])


def test_wrong_signing_key_signs_with_a_throwaway_key(ota, fota) -> None:
    fault(ota, "wrong_signing_key")
    doc = manifest(ota)
    assert FotaManifest.from_dict(doc) and not _signature_ok(doc, fota)
    assert doc["sha256_hash"] == sha256_hex(fota.plaintexts["2.0.0"])  # only the key is wrong


def test_wrong_signing_key_uses_the_configured_attacker_key(make_app, fota, tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    keys.ensure()
    client = make_app(firmware_dir=fota.firmware_dir, attacker_key=keys.path("attacker-key")).test_client()
    fault(client, "wrong_signing_key")
    doc = manifest(client)
    attacker_pem = keys.rsa_private("attacker-key").public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert verify_signature(fota.plaintexts["2.0.0"], bytes.fromhex(doc["rsa_signature"]), attacker_pem)
    assert not _signature_ok(doc, fota)


def test_offer_version_forces_a_downgrade(ota, fota) -> None:
    fault(ota, "offer_version", version="0.9.0")
    reply = ota.get(f"{CHECK}?version=2.0.0").get_json()
    assert reply == {"update_available": True, "firmware_version": "0.9.0", "file_size": len(fota.plaintexts["0.9.0"]),
                     "manifest_url": "/api/ota/manifest/0.9.0"}
    assert manifest(ota, "0.9.0")["version"] == "0.9.0"


def test_offer_version_of_a_missing_package_is_ignored(ota) -> None:
    fault(ota, "offer_version", version="7.7.7")
    assert ota.get(f"{CHECK}?version=2.0.0").get_json()["update_available"] is False


def test_relabel_version_serves_an_older_package_as_newer(ota, fota) -> None:
    """The attack of a server that cannot sign: an old signed package under a new label. Check,
    manifest and chunks say 3.0.0; the image, its hash and its signature are 0.9.0's, unchanged."""
    fault(ota, "relabel_version", version="0.9.0", label="3.0.0")
    reply = ota.get(f"{CHECK}?version=1.0.0").get_json()
    assert reply == {"update_available": True, "firmware_version": "3.0.0", "file_size": len(fota.plaintexts["0.9.0"]),
                     "manifest_url": "/api/ota/manifest/3.0.0"}
    doc, old = manifest(ota, "3.0.0"), manifest(ota, "0.9.0")
    assert doc["version"] == "3.0.0" and {k: v for k, v in doc.items() if k != "version"} == \
        {k: v for k, v in old.items() if k != "version"}
    assert chunks(ota, "3.0.0") == chunks(ota, "0.9.0")
    assert verify_signature(fota.plaintexts["0.9.0"], bytes.fromhex(doc["rsa_signature"]), fota.public_pem)


def test_relabel_version_of_a_missing_package_offers_nothing_new(ota) -> None:
    fault(ota, "relabel_version", version="7.7.7", label="9.0.0")
    assert ota.get(f"{CHECK}?version=2.0.0").get_json()["update_available"] is False
    assert ota.get("/api/ota/manifest/9.0.0").status_code == 404


def test_relabel_version_with_a_label_that_is_no_version(ota, fota) -> None:
    """A label need not be a version (the scenarios offer ``v2.0.0``, ``2.0``): served as given."""
    fault(ota, "relabel_version", version="2.0.0", label="v2.0.0")
    assert ota.get(f"{CHECK}?version=1.0.0").get_json()["firmware_version"] == "v2.0.0"
    assert manifest(ota, "v2.0.0")["version"] == "v2.0.0"


@pytest.mark.parametrize("defects, offered", [((), None), (("ota-newest-by-text",), "2.0.0")])
def test_newest_by_text_offers_an_older_version(make_app, fota, defects, offered) -> None:
    """``ota-newest-by-text``: to a device on 10.0.0, "2.0.0" sorts newer as text (and is offered,
    a downgrade); by number nothing is newer."""
    client = make_app(defects=defects, firmware_dir=fota.firmware_dir).test_client()
    reply = client.get(f"{CHECK}?version=10.0.0").get_json()
    assert reply.get("firmware_version") == offered, reply


# -- start-up ------------------------------------------------------------------------------------
def test_a_broken_firmware_dir_stops_the_start(tmp_path: Path, fota) -> None:
    broken = tmp_path / "fw"
    (broken / "2.0.0").mkdir(parents=True)
    (broken / "2.0.0" / "manifest.json").write_text(json.dumps({"version": "2.0.0"}))
    with pytest.raises(FotaFormatError, match=r"fw/2\.0\.0.*file_name"):
        create_app(make_config(tmp_path, firmware_dir=broken))
    with pytest.raises(FotaFormatError, match="not a directory"):
        create_app(make_config(tmp_path, firmware_dir=tmp_path / "missing"))
    assert not (tmp_path / "server.sqlite").exists()  # refused before the database was created


def test_cli_refuses_a_broken_firmware_dir(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps({"devices": [{"device_id": "EW-0001", "hmac_key": "11" * 32, "aes_key": "22" * 16}]}))
    code = main(["server", "--port", "0", "--db", str(tmp_path / "db"), "--devices", str(devices),
                 "--admin-token", "t", "--firmware-dir", str(tmp_path / "nowhere")])
    assert code == 2 and "nowhere is not a directory" in capsys.readouterr().err


def test_cli_serves_the_firmware_dir(tmp_path: Path, fota) -> None:
    devices = tmp_path / "devices.json"
    devices.write_text(json.dumps({"devices": [{"device_id": "EW-0001", "hmac_key": "11" * 32, "aes_key": "22" * 16}]}))
    proc = subprocess.Popen([sys.executable, "-m", "hil.cli", "server", "--port", "0", "--db", str(tmp_path / "db"),
                             "--devices", str(devices), "--firmware-dir", str(fota.firmware_dir)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HIL_ADMIN_TOKEN": "cli-token"})
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        status, reply = http_request(url, "GET", f"{CHECK}?version=1.0.0")
        assert status == 200 and reply["firmware_version"] == "2.0.0"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
        log = proc.stderr.read()
    assert "OTA packages from" in log and fota.fota_key.hex() not in log


def test_claim_size_states_the_size_consistently_and_changes_nothing_else(ota, fota) -> None:
    true, chunks_before = manifest(ota), chunks(ota)
    fault(ota, "claim_size", bytes=10000)
    claimed = manifest(ota)
    assert true["total_chunks"] == 3
    assert claimed["file_size"] == 10000 and claimed["total_chunks"] == 5  # 10016 cipher bytes in 2048s
    assert {k: v for k, v in claimed.items() if k not in ("file_size", "total_chunks")} == \
        {k: v for k, v in true.items() if k not in ("file_size", "total_chunks")}
    assert ota.get(f"{CHECK}?version=1.0.0").get_json()["file_size"] == 10000
    assert ota.get("/api/ota/download/2.0.0/2").get_data() == chunks_before[2]  # the image served is the true one
