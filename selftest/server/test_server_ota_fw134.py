"""OTA of the ``ecowatt-fw134`` wire profile (reference/ecowatt-fw134-wire.md "Firmware over the air"):
check, initiate, base64 chunks, progress/complete stored normalised, every admin fault, refusals 4xx."""

from __future__ import annotations

import base64
import http.client
import json
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from helpers_server import ADMIN_TOKEN, DEVICES, admin_get, http_request, make_config
from test_server_ota import events, fault

from hil.cli import main
from hil.images.fota import FotaFormatError, decrypt_stream, sha256_hex
from hil.images.fota_fw134 import verify_digest
from hil.images.keys import KeyStore
from hil.server import DeviceKeys, ServerHandle, create_app
from hil.server.ota import MAX_ERROR_MESSAGE, MAX_STATUS_BODY
from hil.server.storage import Storage
from hil.wire.profile import load_profile

FW134 = load_profile("ecowatt-fw134")
DEVICE = FW134.default_device_id  # ESP32_001
assert FW134.test_hmac_key is not None and FW134.test_aes_key is not None
FW134_DEVICES = {**DEVICES, DEVICE: DeviceKeys(DEVICE, FW134.test_hmac_key, FW134.test_aes_key)}
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
CHECK = f"/ota/check/{DEVICE}"
INFO_FIELDS = [
    "latest_version",
    "current_version",
    "original_size",
    "encrypted_size",
    "firmware_size",
    "sha256_hash",
    "signature",
    "iv",
    "chunk_size",
    "total_chunks",
    "release_notes",
]


def fw134_overrides(fota: Any, **changes: Any) -> dict[str, Any]:
    return {
        "wire": FW134,
        "devices": FW134_DEVICES,
        "firmware_dir": fota.firmware_dir,
        "fota_signing_key": fota.signing_key,
        **changes,
    }


@pytest.fixture
def ota(make_app: Callable[..., Flask], fota: Any) -> Any:
    return make_app(**fw134_overrides(fota)).test_client()


@pytest.fixture
def ota_server(tmp_path: Path, fota: Any) -> Any:
    with ServerHandle(make_config(tmp_path, **fw134_overrides(fota))) as handle:
        yield handle


def info(client: Any, running: str = "1.0.0") -> dict[str, Any]:
    reply = client.get(f"{CHECK}?version={running}")
    assert reply.status_code == 200, reply.get_data(as_text=True)
    doc = reply.get_json()
    assert doc["success"] is True and doc["update_available"] is True
    return doc["update_info"]


def initiate(client: Any, version: str = "2.0.0", device: str = DEVICE) -> Any:
    return client.post(f"/ota/initiate/{device}", json={"firmware_version": version})


def chunk(client: Any, n: int, version: str = "2.0.0", device: str = DEVICE) -> Any:
    return client.get(f"/ota/chunk/{device}?version={version}&chunk={n}")


def chunks(client: Any, version: str = "2.0.0") -> list[bytes]:
    """Every chunk of *version* (check, initiate, download), base64-decoded; each reply's own fields checked."""
    total = info(client)["total_chunks"] if version == "2.0.0" else None
    assert initiate(client, version).status_code == 201
    parts = []
    for n in range(total or 0):
        doc = chunk(client, n, version).get_json()
        assert (doc["success"], doc["device_id"], doc["chunk_index"]) == (True, DEVICE, n)
        data = base64.b64decode(doc["chunk_data"], validate=True)
        assert doc["chunk_size"] == len(data)
        parts.append(data)
    return parts


def refused(reply: Any, status: int) -> str:
    """The refusal's error text (after checking the fw134 refusal shape and *status*)."""
    assert reply.status_code == status, reply.get_data(as_text=True)
    doc = reply.get_json()
    assert set(doc) == {"success", "error"} and doc["success"] is False and doc["error"]
    return doc["error"]


def public_key(key: rsa.RSAPrivateKey | Path) -> rsa.RSAPublicKey:
    private = (
        key
        if isinstance(key, rsa.RSAPrivateKey)
        else serialization.load_pem_private_key(key.read_bytes(), password=None)
    )
    assert isinstance(private, rsa.RSAPrivateKey)
    return private.public_key()


def signature_ok(update: dict[str, Any], plaintext: bytes, key: rsa.RSAPrivateKey | Path) -> bool:
    return verify_digest(bytes.fromhex(sha256_hex(plaintext)), base64.b64decode(update["signature"]), public_key(key))


# -- check ---------------------------------------------------------------------------------------
def test_check_offers_update_info_in_the_reference_shape(ota, fota) -> None:
    reply = ota.get(f"{CHECK}?version=1.0.0").get_json()
    assert list(reply) == ["success", "device_id", "update_available", "update_info"]
    assert (reply["success"], reply["device_id"], reply["update_available"]) == (True, DEVICE, True)
    update = reply["update_info"]
    assert list(update) == INFO_FIELDS
    manifest = json.loads((fota.firmware_dir / "2.0.0" / "manifest.json").read_text())
    assert {k: update[k] for k in INFO_FIELDS if k not in ("signature", "iv", "release_notes")} == {
        "latest_version": "2.0.0",
        "current_version": "1.0.0",
        "original_size": 5120,
        "encrypted_size": 5136,
        "firmware_size": 5120,
        "sha256_hash": sha256_hex(fota.plaintexts["2.0.0"]),
        "chunk_size": 2048,
        "total_chunks": 3,
    }
    assert base64.b64decode(update["iv"], validate=True) == bytes.fromhex(manifest["aes_iv"])
    assert len(base64.b64decode(update["signature"], validate=True)) == 256


@pytest.mark.parametrize("running", ["2.0.0", "10.0.0"])
def test_no_update_when_current_is_the_newest(ota, running) -> None:
    assert ota.get(f"{CHECK}?version={running}").get_json() == {
        "success": True,
        "device_id": DEVICE,
        "update_available": False,
    }


def test_check_offers_the_newest_and_compares_numerically(ota) -> None:
    assert info(ota, "1.10.0")["latest_version"] == "2.0.0"
    assert info(ota, "0.9.0")["latest_version"] == "2.0.0"


# -- the whole download, checked by real peers (openssl) -----------------------------------------
def test_download_decrypts_with_openssl_and_the_signature_is_pkcs1v15(ota, fota, tmp_path: Path) -> None:
    update = info(ota)
    reply = initiate(ota)
    assert reply.status_code == 201
    session = reply.get_json()
    assert (session["success"], session["device_id"]) == (True, DEVICE)
    assert re.fullmatch(rf"{DEVICE}_2\.0\.0_\d{{10}}", session["session_id"])
    ciphertext = b"".join(chunks(ota))
    assert len(ciphertext) == update["encrypted_size"]
    (tmp_path / "cipher.bin").write_bytes(ciphertext)
    iv = base64.b64decode(update["iv"]).hex()
    subprocess.run(
        [
            "openssl",
            "enc",
            "-d",
            "-aes-256-cbc",
            "-K",
            fota.fota_key.hex(),
            "-iv",
            iv,
            "-in",
            str(tmp_path / "cipher.bin"),
            "-out",
            str(tmp_path / "image.bin"),
        ],
        check=True,
    )
    image = (tmp_path / "image.bin").read_bytes()
    assert image == fota.plaintexts["2.0.0"] and sha256_hex(image) == update["sha256_hash"]
    (tmp_path / "pub.pem").write_bytes(fota.public_pem)
    (tmp_path / "sig.bin").write_bytes(base64.b64decode(update["signature"]))
    verify = [
        "openssl",
        "dgst",
        "-sha256",
        "-verify",
        str(tmp_path / "pub.pem"),
        "-signature",
        str(tmp_path / "sig.bin"),
    ]
    ok = subprocess.run([*verify, str(tmp_path / "image.bin")], capture_output=True, text=True)
    assert ok.returncode == 0 and "Verified OK" in ok.stdout, ok.stdout + ok.stderr
    as_pss = subprocess.run(
        [*verify, "-sigopt", "rsa_padding_mode:pss", str(tmp_path / "image.bin")], capture_output=True, text=True
    )
    assert as_pss.returncode != 0  # PKCS#1 v1.5, not the api profile's PSS


# -- sessions and chunk refusals -----------------------------------------------------------------
def test_a_chunk_needs_a_session_of_that_device_and_version(ota) -> None:
    assert "POST /ota/initiate" in refused(chunk(ota, 0), 400)
    assert initiate(ota, "1.0.0").status_code == 201
    refused(chunk(ota, 0, "2.0.0"), 400)  # a session is per version ...
    refused(chunk(ota, 0, "1.0.0", device="EW-0001"), 400)  # ... and per device
    refused(chunk(ota, 0, "3.0.0"), 400)
    assert chunk(ota, 0, "1.0.0").status_code == 200
    assert [e["device_id"] for e in events(ota, "CHUNK_NOT_FOUND")] == [DEVICE, DEVICE, "EW-0001", DEVICE]


@pytest.mark.parametrize("n", ["3", "-1", "x", "", "99999999999999", "1.0"])
def test_chunks_past_the_end_or_malformed_are_400(ota, n) -> None:
    assert initiate(ota).status_code == 201
    refused(ota.get(f"/ota/chunk/{DEVICE}?version=2.0.0&chunk={n}"), 400)
    assert len(admin_get(ota, "/api/admin/events")["events"]) == 1


def test_refusals_say_what_exists_and_quote_bounded_text(ota) -> None:
    """Past the end: the valid range. Without a session: at most 40 characters of the version. The
    event's detail: at most 120 characters of the request (the client chooses its length)."""
    assert initiate(ota).status_code == 201
    assert refused(ota.get(f"/ota/chunk/{DEVICE}?version=2.0.0&chunk=3"), 400) == "firmware 2.0.0 has chunks 0..2"
    long = "9" * 300
    target = f"/ota/chunk/{DEVICE}?version={long}&chunk=0"
    assert refused(ota.get(target), 400) == (
        f"no OTA session of {DEVICE} for version {long[:40]!r}: POST /ota/initiate/{DEVICE} first")
    assert admin_get(ota, "/api/admin/events")["events"][-1]["detail"] == f"GET {target[:120]}"


def test_a_chunk_index_is_at_most_nine_digits(ota) -> None:
    assert initiate(ota).status_code == 201
    nine, ten = "123456789", "1234567890"
    assert refused(ota.get(f"/ota/chunk/{DEVICE}?version=2.0.0&chunk={nine}"), 400) == "firmware 2.0.0 has chunks 0..2"
    assert refused(ota.get(f"/ota/chunk/{DEVICE}?version=2.0.0&chunk={ten}"), 400) == "query parameter chunk must be an index"


def test_a_progress_body_of_exactly_the_limit_is_read(ota) -> None:
    info(ota)
    raw = json.dumps({"phase": "downloading", "progress": 40, "message": None, "timestamp": 1}).encode()
    at = ota.post(f"/ota/{DEVICE}/progress", data=raw + b" " * (MAX_STATUS_BODY - len(raw)), content_type="application/json")
    assert at.status_code == 200, at.get_data(as_text=True)
    over = raw + b" " * (MAX_STATUS_BODY + 1 - len(raw))
    refused(ota.post(f"/ota/{DEVICE}/progress", data=over, content_type="application/json"), 413)


@pytest.mark.parametrize("progress, stored_ok", [(0, True), (100, True), (-1, False), (101, False), (0.5, True)])
def test_progress_percent_bounds(ota, progress, stored_ok) -> None:
    info(ota)
    body = {"phase": "downloading", "progress": progress, "timestamp": 0}  # 0: the device's clock at boot
    reply = ota.post(f"/ota/{DEVICE}/progress", json=body)
    assert reply.status_code == (200 if stored_ok else 400), reply.get_data(as_text=True)
    assert [r["progress_percent"] for r in stored(ota)] == ([progress] if stored_ok else [])


def test_a_message_of_exactly_the_limit_is_stored(ota) -> None:
    info(ota)
    at = {"phase": "downloading", "progress": 1, "message": "x" * MAX_ERROR_MESSAGE}
    assert ota.post(f"/ota/{DEVICE}/progress", json=at).status_code == 200
    over = {**at, "message": "x" * (MAX_ERROR_MESSAGE + 1)}
    refused(ota.post(f"/ota/{DEVICE}/progress", json=over), 400)
    assert [r["error_message"] for r in stored(ota)] == ["x" * MAX_ERROR_MESSAGE]


def test_a_relabel_cleared_inside_the_session_serves_nothing(ota) -> None:
    label = "3.0.0"
    fault(ota, "relabel_version", version="0.9.0", label=label)
    assert initiate(ota, label).status_code == 201
    assert ota.delete("/api/admin/faults", headers=AUTH).status_code == 200
    reply = ota.get(f"/ota/chunk/{DEVICE}?version={label}&chunk=0")
    assert reply.status_code == 404 and reply.get_json()["error"] == f"no firmware {label[:40]!r} on this server"


def test_complete_ends_the_session(ota) -> None:
    assert initiate(ota).status_code == 201 and chunk(ota, 0).status_code == 200
    assert ota.post(f"/ota/{DEVICE}/complete", json={"version": "2.0.0", "status": "success"}).status_code == 200
    refused(chunk(ota, 0), 400)


def test_initiate_refuses_missing_versions(ota) -> None:
    refused(initiate(ota, "3.0.0"), 404)
    assert [e["device_id"] for e in events(ota, "VERSION_NOT_FOUND")] == [DEVICE]


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/ota/check/{d}?version=1.0.0"),
        ("POST", "/ota/initiate/{d}"),
        ("GET", "/ota/chunk/{d}?version=2.0.0&chunk=0"),
        ("POST", "/ota/{d}/progress"),
        ("POST", "/ota/{d}/complete"),
    ],
)
def test_unknown_and_malformed_devices_are_refused_on_every_step(ota, method, path) -> None:
    body = {"firmware_version": "2.0.0", "phase": "downloading", "progress": 1, "version": "2.0.0", "status": "success"}
    refused(ota.open(path.format(d="EW-9999"), method=method, json=body), 404)
    refused(ota.open(path.format(d="bad%20id"), method=method, json=body), 400)
    assert [e["device_id"] for e in events(ota, "DEVICE_NOT_FOUND")] == ["EW-9999"]


def test_the_api_routes_are_not_served_in_fw134(ota, make_app, fota) -> None:
    refused(ota.get("/api/ota/check/EW-0001?version=1.0.0"), 404)
    api = make_app(firmware_dir=fota.firmware_dir).test_client()
    assert api.get(f"{CHECK}?version=1.0.0").status_code == 404


# -- reports, normalised -------------------------------------------------------------------------
PROGRESS_CASES = [  # (phase, message) -> (status, error_code): the contract's mapping, written out
    ("downloading", "Progress: [ 33%]    1/   3 chunks", "downloading", None),
    ("download_complete", None, "downloading", None),
    ("verifying", "checking", "verifying", None),
    ("verification_success", None, "verifying", None),
    ("installing", None, "verifying", None),
    ("verification_failed", "Hash comparison result: MISMATCH", "failed", "HASH_MISMATCH"),
    ("verification_failed", "sha256 hash mismatch", "failed", "HASH_MISMATCH"),
    ("verification_failed", "SHA-256 hash differs from update_info", "failed", "HASH_MISMATCH"),
    ("verification_failed", "RSA signature verification failed", "failed", "SIGNATURE_INVALID"),
    ("failed", "Downgrade refused: 0.9.0 is not newer than 2.0.0", "failed", "DOWNGRADE_REFUSED"),
    ("failed", "chunk 2: HTTP 500", "failed", "DOWNLOAD_FAILED"),
    ("failed", None, "failed", "DOWNLOAD_FAILED"),
]
COMPLETE_CASES = [  # (status, error_msg) -> (status, error_code)
    ("success", None, "success", None),
    ("pending_verify", None, "success", None),
    ("rolled_back", "self-test failed", "rolled_back", "BOOT_FAILED"),
    ("failed", "self-test failed: application check failed", "failed", "BOOT_FAILED"),
    ("failed", None, "failed", "BOOT_FAILED"),
]


def test_the_cases_cover_every_phase_and_status_of_the_contract() -> None:
    assert {c[0] for c in PROGRESS_CASES} == {
        "downloading",
        "download_complete",
        "verifying",
        "verification_failed",
        "verification_success",
        "installing",
        "failed",
    }
    assert {c[0] for c in COMPLETE_CASES} == {"success", "pending_verify", "rolled_back", "failed"}


def stored(client: Any) -> list[dict[str, Any]]:
    return admin_get(client, f"/api/admin/ota-status?device_id={DEVICE}")["statuses"]


@pytest.mark.parametrize("phase,message,status,code", PROGRESS_CASES)
def test_progress_is_stored_normalised(ota, phase, message, status, code) -> None:
    info(ota)  # the device was offered 2.0.0: its progress reports are about it
    body = {"phase": phase, "progress": 40, "message": message, "timestamp": 123456}
    reply = ota.post(f"/ota/{DEVICE}/progress", json=body)
    assert (reply.status_code, reply.get_json()) == (200, {"success": True})
    (row,) = stored(ota)
    assert {
        k: row[k]
        for k in ("firmware_version", "status", "progress_percent", "error_code", "error_message", "fw134_phase")
    } == {
        "firmware_version": "2.0.0",
        "status": status,
        "progress_percent": 40,
        "error_code": code,
        "error_message": message,
        "fw134_phase": phase,
    }


@pytest.mark.parametrize("status_in,message,status,code", COMPLETE_CASES)
def test_complete_is_stored_normalised(ota, status_in, message, status, code) -> None:
    info(ota)  # offered 2.0.0 while on 1.0.0: the server knows the version the device left
    body = {"version": "2.0.0", "status": status_in, "timestamp": 99, "error_msg": message}
    assert ota.post(f"/ota/{DEVICE}/complete", json=body).get_json() == {"success": True}
    (row,) = stored(ota)
    assert (row["old_version"], row["rolled_back_to"]) == ("1.0.0", "1.0.0" if status == "rolled_back" else None)
    assert (row["firmware_version"], row["status"], row["error_code"], row["error_message"], row["fw134_phase"]) == (
        "2.0.0",
        status,
        code,
        message,
        f"complete:{status_in}",
    )


def test_progress_follows_the_session_and_needs_an_offer(ota) -> None:
    refused(ota.post(f"/ota/{DEVICE}/progress", json={"phase": "downloading", "progress": 0}), 400)
    assert initiate(ota, "1.0.0").status_code == 201
    assert ota.post(f"/ota/{DEVICE}/progress", json={"phase": "downloading", "progress": 5}).status_code == 200
    assert [r["firmware_version"] for r in stored(ota)] == ["1.0.0"]


def test_status_answers_the_servers_view(ota) -> None:
    assert initiate(ota).status_code == 201
    assert ota.get("/ota/status").get_json() == {
        "success": True,
        "latest_version": "2.0.0",
        "available_versions": ["0.9.0", "1.0.0", "2.0.0"],
        "active_sessions": 1,
    }


# -- malformed input: 4xx in the profile's shape, never a 5xx, nothing stored ---------------------
MALFORMED = [
    ("/ota/initiate/{d}", b""),
    ("/ota/initiate/{d}", b"\xff{"),
    ("/ota/initiate/{d}", b"[]"),
    ("/ota/initiate/{d}", b"null"),
    ("/ota/initiate/{d}", b"{}"),
    ("/ota/initiate/{d}", b'{"firmware_version":2}'),
    ("/ota/initiate/{d}", b'{"firmware_version":"2.0"}'),
    ("/ota/initiate/{d}", b'{"firmware_version":"02.0.0"}'),
    ("/ota/{d}/progress", b"{"),
    ("/ota/{d}/progress", b'{"phase":"done","progress":1}'),
    ("/ota/{d}/progress", b'{"phase":"downloading"}'),
    ("/ota/{d}/progress", b'{"phase":"downloading","progress":"5"}'),
    ("/ota/{d}/progress", b'{"phase":"downloading","progress":101}'),
    ("/ota/{d}/progress", b'{"phase":"downloading","progress":true}'),
    ("/ota/{d}/progress", b'{"phase":"downloading","progress":NaN}'),
    ("/ota/{d}/progress", b'{"phase":"failed","progress":1,"message":5}'),
    ("/ota/{d}/progress", b'{"phase":"failed","progress":1,"message":"' + b"x" * 501 + b'"}'),
    ("/ota/{d}/progress", b'{"phase":"failed","progress":1,"timestamp":-1}'),
    ("/ota/{d}/progress", b'{"phase":"failed","progress":1,"timestamp":"now"}'),
    ("/ota/{d}/complete", b'{"status":"success"}'),
    ("/ota/{d}/complete", b'{"version":"2.0.0","status":"ok"}'),
    ("/ota/{d}/complete", b'{"version":"2.0.0","status":"failed","error_msg":[]}'),
    ("/ota/{d}/complete", b'{"version":"2.0.0","status":"success","timestamp":Infinity}'),
    ("/ota/{d}/complete", b'[{"version":"2.0.0"}]'),
]


@pytest.mark.parametrize("path,body", MALFORMED)
def test_malformed_bodies_are_400_and_change_nothing(ota, path, body) -> None:
    info(ota)
    refused(ota.post(path.format(d=DEVICE), data=body, content_type="application/json"), 400)
    assert stored(ota) == [] and ota.get("/ota/status").get_json()["active_sessions"] == 0
    assert len(events(ota, "INVALID_PAYLOAD")) == 1


@pytest.mark.parametrize("path", ["/ota/initiate/{d}", "/ota/{d}/progress", "/ota/{d}/complete"])
def test_huge_bodies_are_refused_unread(ota, path) -> None:
    refused(ota.post(path.format(d=DEVICE), data=b"{" + b" " * 5000 + b"}", content_type="application/json"), 413)


@pytest.mark.parametrize("query", ["", "?version=", "?version=1.0", "?version=1.0.0.0", "?version=%00"])
def test_check_refuses_malformed_versions(ota, query) -> None:
    refused(ota.get(f"{CHECK}{query}"), 400)


# -- faults --------------------------------------------------------------------------------------
def test_corrupt_chunk_changes_one_byte_of_that_chunk(ota) -> None:
    clean = chunks(ota)
    fault(ota, "corrupt_chunk", chunk=1)
    bad = chunks(ota)
    assert bad[0] == clean[0] and bad[2] == clean[2] and len(bad[1]) == len(clean[1])
    assert sum(a != b for a, b in zip(bad[1], clean[1], strict=True)) == 1


def test_corrupt_chunk_breaks_the_hash(ota, fota) -> None:
    update = info(ota)
    fault(ota, "corrupt_chunk", chunk=0)
    stream = decrypt_stream(fota.fota_key, base64.b64decode(update["iv"]))
    plaintext = b"".join(stream.update(p) for p in chunks(ota)) + stream.finalize()
    assert sha256_hex(plaintext) != update["sha256_hash"]


def test_truncate_chunk_shortens_the_data_and_its_stated_size(ota) -> None:
    fault(ota, "truncate_chunk", chunk=0)
    fault(ota, "truncate_chunk", chunk=2, bytes=100)
    assert [len(p) for p in chunks(ota)] == [1024, 2048, 100]  # chunks() checks chunk_size == len


def test_bad_hash_changes_only_the_hash(ota, fota) -> None:
    good = info(ota)
    fault(ota, "bad_hash")
    update = info(ota)
    assert update["sha256_hash"] != good["sha256_hash"] and re.fullmatch("[0-9a-f]{64}", update["sha256_hash"])
    assert {k: v for k, v in update.items() if k != "sha256_hash"} == {
        k: v for k, v in good.items() if k != "sha256_hash"
    }


def test_bad_signature_keeps_a_well_formed_signature_that_fails(ota, fota) -> None:
    good = info(ota)
    fault(ota, "bad_signature")
    update = info(ota)
    assert signature_ok(good, fota.plaintexts["2.0.0"], fota.signing_key)
    assert not signature_ok(update, fota.plaintexts["2.0.0"], fota.signing_key)
    assert len(base64.b64decode(update["signature"])) == 256 and update["sha256_hash"] == good["sha256_hash"]


def test_wrong_signing_key_signs_with_the_configured_attacker_key(make_app, fota, tmp_path: Path) -> None:
    keys = KeyStore(tmp_path / "keys")
    keys.ensure()
    client = make_app(**fw134_overrides(fota, attacker_key=keys.path("attacker-key"))).test_client()
    fault(client, "wrong_signing_key")
    update = info(client)
    assert signature_ok(update, fota.plaintexts["2.0.0"], keys.rsa_private("attacker-key"))
    assert not signature_ok(update, fota.plaintexts["2.0.0"], fota.signing_key)
    assert update["sha256_hash"] == sha256_hex(fota.plaintexts["2.0.0"])  # only the key is wrong


def test_offer_version_offers_a_downgrade(ota, fota) -> None:
    fault(ota, "offer_version", version="0.9.0")
    update = info(ota, "2.0.0")
    assert (update["latest_version"], update["current_version"], update["original_size"]) == (
        "0.9.0",
        "2.0.0",
        len(fota.plaintexts["0.9.0"]),
    )
    assert signature_ok(update, fota.plaintexts["0.9.0"], fota.signing_key)


def test_offer_version_of_a_missing_package_is_ignored(ota) -> None:
    fault(ota, "offer_version", version="7.7.7")
    assert ota.get(f"{CHECK}?version=2.0.0").get_json()["update_available"] is False


def test_relabel_version_serves_an_older_package_as_newer(ota, fota) -> None:
    """update_info, the session and the chunks say 3.0.0; size, hash, signature and bytes are 0.9.0's."""
    fault(ota, "relabel_version", version="0.9.0", label="3.0.0")
    update = info(ota, "1.0.0")
    assert (update["latest_version"], update["original_size"]) == ("3.0.0", len(fota.plaintexts["0.9.0"]))
    assert signature_ok(update, fota.plaintexts["0.9.0"], fota.signing_key)
    assert initiate(ota, "3.0.0").status_code == 201
    relabelled = [chunk(ota, n, "3.0.0").get_json()["chunk_data"] for n in range(update["total_chunks"])]
    fault(ota, "offer_version", version="0.9.0")  # the same package under its own version, for comparison
    assert initiate(ota, "0.9.0").status_code == 201
    assert relabelled == [chunk(ota, n, "0.9.0").get_json()["chunk_data"] for n in range(update["total_chunks"])]


def _open_session(server: ServerHandle) -> None:
    body = json.dumps({"firmware_version": "2.0.0"}).encode()
    assert http_request(server.url, "POST", f"/ota/initiate/{DEVICE}", body)[0] == 201


def _post_fault(server: ServerHandle, name: str, **params: Any) -> None:
    body = json.dumps({"name": name, "params": params}).encode()
    assert http_request(server.url, "POST", "/api/admin/faults", body, headers=AUTH)[0] == 201


def test_drop_connection_cuts_the_json_reply_times_times(ota_server) -> None:
    _open_session(ota_server)
    _post_fault(ota_server, "drop_connection", chunk=1, times=2)
    path = f"/ota/chunk/{DEVICE}?version=2.0.0&chunk=1"
    for _ in range(2):
        with pytest.raises(http.client.IncompleteRead):
            http_request(ota_server.url, "GET", path)
    status, doc = http_request(ota_server.url, "GET", path)
    assert status == 200 and len(base64.b64decode(doc["chunk_data"])) == 2048


def test_delay_chunk_holds_only_that_chunk(ota_server) -> None:
    _open_session(ota_server)
    _post_fault(ota_server, "delay_chunk", chunk=1, ms=300)
    started = time.monotonic()
    assert http_request(ota_server.url, "GET", f"/ota/chunk/{DEVICE}?version=2.0.0&chunk=0")[0] == 200
    fast = time.monotonic() - started
    started = time.monotonic()
    assert http_request(ota_server.url, "GET", f"/ota/chunk/{DEVICE}?version=2.0.0&chunk=1")[0] == 200
    assert time.monotonic() - started >= 0.3 > fast


# -- start-up ------------------------------------------------------------------------------------
def test_fw134_packages_need_the_signing_key_they_were_built_with(tmp_path: Path, fota) -> None:
    with pytest.raises(FotaFormatError, match="--fota-signing-key"):
        create_app(make_config(tmp_path, **fw134_overrides(fota, fota_signing_key=None)))
    other = KeyStore(tmp_path / "keys")
    other.ensure()
    with pytest.raises(FotaFormatError, match=r"0\.9\.0: its signature does not verify with the FOTA signing key"):
        create_app(make_config(tmp_path, **fw134_overrides(fota, fota_signing_key=other.path("attacker-key"))))
    assert not (tmp_path / "server.sqlite").exists()  # refused before the database was created


def test_without_packages_no_key_is_needed(make_app) -> None:
    client = make_app(wire=FW134, devices=FW134_DEVICES).test_client()
    assert client.get(f"{CHECK}?version=1.0.0").get_json()["update_available"] is False


def test_cli_refuses_fw134_packages_without_the_key(tmp_path: Path, fota, capsys: pytest.CaptureFixture) -> None:
    code = main(
        [
            "server",
            "--port",
            "0",
            "--db",
            str(tmp_path / "db"),
            "--admin-token",
            "t",
            "--wire-profile",
            "ecowatt-fw134",
            f"--firmware-dir={fota.firmware_dir}",
        ]
    )
    assert code == 2 and "--fota-signing-key" in capsys.readouterr().err


def test_cli_serves_fw134_ota(tmp_path: Path, fota) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hil.cli",
            "server",
            "--port",
            "0",
            f"--db={tmp_path / 'db'}",
            "--admin-token",
            "cli-token",
            "--wire-profile",
            "ecowatt-fw134",
            f"--firmware-dir={fota.firmware_dir}",
            f"--fota-signing-key={fota.signing_key}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip() if proc.stdout else ""
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.poll() is not None else url
        status, reply = http_request(url, "GET", f"{CHECK}?version=1.0.0")
        assert status == 200 and reply["update_info"]["latest_version"] == "2.0.0"
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    log = proc.stderr.read() if proc.stderr else ""
    assert "OTA packages from" in log and fota.fota_key.hex() not in log
    assert fota.signing_key.read_text().splitlines()[1] not in log  # no line of the private key


def test_an_older_database_gains_the_phase_column(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE ota_status (id INTEGER PRIMARY KEY, time REAL NOT NULL, device_id TEXT NOT NULL, "
            "peer TEXT, firmware_version TEXT NOT NULL, status TEXT NOT NULL, progress_percent REAL, "
            "error_code TEXT, error_message TEXT, old_version TEXT, rolled_back_to TEXT)"
        )
    conn.close()
    with Storage(db) as storage:
        storage.record_ota_status(
            device_id=DEVICE,
            peer=None,
            report={"firmware_version": "2.0.0", "status": "downloading", "fw134_phase": "download_complete"},
        )
        assert storage.ota_statuses(DEVICE)[0]["fw134_phase"] == "download_complete"


def test_claim_size_states_all_four_sizes_consistently(ota) -> None:
    true = info(ota)
    fault(ota, "claim_size", bytes=10000)
    claimed = info(ota)
    assert claimed["original_size"] == claimed["firmware_size"] == 10000
    assert claimed["encrypted_size"] == 10016 and claimed["total_chunks"] == -(-10016 // claimed["chunk_size"])
    sizes = ("original_size", "firmware_size", "encrypted_size", "total_chunks")
    assert {k: v for k, v in claimed.items() if k not in sizes} == {k: v for k, v in true.items() if k not in sizes}
