"""The virtual board provisioned with ``wire = ecowatt-fw134`` updates itself in that format's OTA
protocol (``ecowatt-fw134-wire.md``), against a stand-in fw134 server that encrypts and signs with
``cryptography`` (:mod:`sim_ota.fw134_server`): the requests and bodies of the contract in its order,
the image in the secondary slot, every failure reported with the phrase the server maps to its
error code, the after-reboot ``complete`` reports, and the OTA defects' meaning in this format."""

from __future__ import annotations

import base64
import json
from contextlib import ExitStack

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st
from sim_boot.fakes import boot

from hil.images import mcuboot as mb
from hil.images.nvs_gen import WIRE_FORMATS
from hil.sim.firmware.identity import OtaAttempt
from hil.sim.firmware.ota import MAX_CHUNK_ATTEMPTS, ota_check
from hil.sim.firmware.ota_formats import FORMATS
from hil.sim.firmware.upload_formats import FORMATS as UPLOAD_FORMATS
from hil.sim.runtime import Reboot
from sim_ota.conftest import LAYOUT
from sim_ota.fw134_server import Fw134Package, Fw134Server, serving
from sim_ota.test_ota_fuzz import FAST, JSON_VALUES
from sim_ota.test_ota_update import erased, event, secondary

DEVICE = "EW-0001"
FW134 = "ecowatt-fw134"
PROGRESS_KEYS = ["phase", "progress", "message", "timestamp"]
AFTER_DOWNLOAD = ["download_complete", "verifying", "verification_success", "installing"]


@pytest.fixture(scope="module")
def packages(ota_images, identity) -> dict[str, Fw134Package]:
    """fw134 releases: ``v2``, ``selftest-fail`` (2.0.0 failing its self-test), ``forged`` (v2 signed
    by a key the device does not carry)."""

    def build(image: str, signing_pem: bytes) -> Fw134Package:
        return Fw134Package.build(
            "2.0.0", ota_images.signed[image], fota_key=identity.fota_key, signing_pem=signing_pem
        )

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return {
        "v2": build("v2", ota_images.fota_private_pem),
        "selftest-fail": build("selftest-fail", ota_images.fota_private_pem),
        "forged": build("v2", other),
    }


@pytest.fixture
def make_server(packages):
    """``make_server(package="v2")``: a running stand-in fw134 server, stopped at teardown."""
    with ExitStack() as stack:
        yield lambda package="v2": stack.enter_context(serving(Fw134Server(packages[package])))


@pytest.fixture
def make_device(make_ota_device):
    """``make_device(url, defects=(), wire=FW134)``: v1 started on a flash provisioned for *wire*."""
    return lambda url, defects=(), wire=FW134: make_ota_device(url, defects, wire=wire)


@pytest.fixture
def board(make_board):
    """``board(url)``: a whole fw134 board (bootloader, v1, NVS) to boot through the chain."""
    return lambda url: make_board(url, wire=FW134)


def progress(server: Fw134Server) -> list[dict]:
    return [r.body for r in server.requests if r.path == f"/ota/{DEVICE}/progress"]


def failure(server: Fw134Server) -> dict:
    """The last progress report, which must be the failure's."""
    report = progress(server)[-1]
    assert report["phase"] in ("failed", "verification_failed"), progress(server)
    return report


def failed_cleanly(rt, device) -> None:
    assert erased(rt), "secondary slot not erased after a failed update"
    assert "boot.pending" not in [n for n, _ in rt.checkpoints] and device.store.ota_attempt() is None


def test_the_wire_formats_agree():
    assert set(FORMATS) == set(UPLOAD_FORMATS) == set(WIRE_FORMATS)


def test_an_unknown_wire_format_is_a_logged_check_failure_and_sends_nothing(make_server, make_device):
    server = make_server()
    rt, device = make_device(server.url, wire="ecowatt-v9")
    assert ota_check(device) == "error"
    reason = event(rt, "ota.check_failed")[0]["reason"]
    assert "'ecowatt-v9' in NVS ecowatt/wire" in reason and "provision ecowatt-api or ecowatt-fw134" in reason
    assert server.requests == []


def test_update_follows_the_contract_and_writes_exactly_the_plaintext_image(make_server, make_device, packages):
    server = make_server()
    rt, device = make_device(server.url)
    with pytest.raises(Reboot):
        ota_check(device)
    image, total = packages["v2"].image, packages["v2"].total_chunks
    capacity = LAYOUT.slot_size - mb.TRAILER_SIZE  # the trailer holds the test-swap request
    assert secondary(rt)[:capacity] == image + b"\xff" * (capacity - len(image))
    chunks = [f"GET /ota/chunk/{DEVICE}"] * total
    progress_route = f"POST /ota/{DEVICE}/progress"
    routes = [route for route in server.routes() if route != progress_route]
    assert routes == [f"GET /ota/check/{DEVICE}", f"POST /ota/initiate/{DEVICE}", *chunks]
    check, initiate = server.requests[0], server.requests[1]
    assert check.query == {"version": "1.0.0"} and check.body is None
    assert initiate.body == {"firmware_version": "2.0.0"}
    got = [r.query for r in server.requests if r.path == f"/ota/chunk/{DEVICE}"]
    assert got == [{"version": "2.0.0", "chunk": str(n)} for n in range(total)]  # in order, each once
    reports = progress(server)
    assert all(list(r) == PROGRESS_KEYS and isinstance(r["timestamp"], int) for r in reports)
    assert isinstance(reports[0]["message"], str) and reports[0]["message"]
    percents = [r["progress"] for r in reports if r["phase"] == "downloading"]
    assert [r["phase"] for r in reports] == ["downloading"] * len(percents) + AFTER_DOWNLOAD
    assert percents == [int(e["percent"]) for e in event(rt, "ota.progress")] and percents[-1] == 100
    assert {r.connection for r in server.requests} == {1}  # one kept-alive connection for the update
    assert event(rt, "ota.available") == [{"version": "2.0.0", "size": str(len(image))}]
    assert event(rt, "ota.verified") and event(rt, "ota.rebooting") == [{"version": "2.0.0"}]
    assert "RSA-PKCS1v15" in "\n".join(rt.lines) and "RSA-PSS" not in "\n".join(rt.lines)
    assert device.store.ota_attempt() == OtaAttempt("1.0.0", "2.0.0")


def complete_reports(server: Fw134Server) -> list[tuple[str | None, dict]]:
    """Each ``complete`` report with the route that came just before it (the status query)."""
    return [
        (server.requests[i - 1].route if i else None, r.body)
        for i, r in enumerate(server.requests)
        if r.path == f"/ota/{DEVICE}/complete"
    ]


def test_after_the_reboot_the_image_confirms_and_reports_complete_success(make_server, board):
    server = make_server()
    flash = board(server.url)
    with pytest.raises(Reboot):
        boot(flash, inputs=("ota check",))
    after = boot(flash)
    assert event(after, "ota.confirmed") == [{"version": "2.0.0"}]
    ((before, report),) = complete_reports(server)
    assert before == "GET /ota/status"
    assert list(report) == ["version", "status", "timestamp"] and report["version"] == "2.0.0"
    assert report["status"] == "success" and isinstance(report["timestamp"], int)


def test_a_failing_self_test_reports_failed_then_the_old_app_reports_rolled_back(make_server, board):
    server = make_server("selftest-fail")
    flash = board(server.url)
    with pytest.raises(Reboot):
        boot(flash, inputs=("ota check",))
    trial = boot(flash)
    assert event(trial, "ota.selftest_failed") and not event(trial, "ota.confirmed")
    back = boot(flash)
    assert event(back, "ota.reverted") == [{"attempted": "2.0.0", "version": "1.0.0"}]
    (first, failed), (second, rolled_back) = complete_reports(server)
    assert first == second == "GET /ota/status"
    assert (failed["version"], failed["status"]) == ("2.0.0", "failed")
    assert "self-test failed" in failed["error_msg"]
    assert (rolled_back["version"], rolled_back["status"]) == ("2.0.0", "rolled_back")
    assert list(rolled_back) == ["version", "status", "timestamp", "error_msg"]
    assert "MCUboot reverted to 1.0.0" in rolled_back["error_msg"]


def test_a_corrupted_chunk_is_a_hash_mismatch_the_slot_is_erased_and_v1_runs(make_server, make_device, board):
    server = make_server()
    server.corrupt.add(5)
    rt, device = make_device(server.url)
    assert ota_check(device) == "HASH_MISMATCH"
    failed_cleanly(rt, device)
    assert event(rt, "ota.hash_mismatch") == [{"version": "2.0.0"}]
    report = failure(server)
    assert report["phase"] == "verification_failed" and "hash mismatch" in report["message"]
    assert [r["phase"] for r in progress(server)][-3:] == ["download_complete", "verifying", "verification_failed"]


def test_a_corrupted_first_chunk_is_refused_before_the_rest_is_downloaded(make_server, make_device):
    server = make_server()
    server.corrupt.add(0)  # CBC: the first block decrypts to garbage, so no MCUboot magic
    rt, device = make_device(server.url)
    assert ota_check(device) == "HASH_MISMATCH"
    failed_cleanly(rt, device)
    assert [r.query["chunk"] for r in server.requests if r.path.startswith("/ota/chunk/")] == ["0"]
    assert "hash mismatch" in failure(server)["message"] and "does not start with 3db8f396" in "\n".join(rt.lines)


def test_a_bad_signature_is_refused_as_signature(make_server, make_device):
    server = make_server("forged")
    rt, device = make_device(server.url)
    assert ota_check(device) == "SIGNATURE_INVALID"
    failed_cleanly(rt, device)
    assert event(rt, "ota.signature_invalid") == [{"version": "2.0.0"}]
    report = failure(server)
    assert report["phase"] == "verification_failed" and "signature" in report["message"]
    assert "hash" not in report["message"].lower()  # the server tries the hash phrase first


def test_an_older_version_is_refused_and_nothing_is_initiated(make_server, make_device):
    server = make_server()
    server.info["latest_version"] = "0.9.0"
    rt, device = make_device(server.url)
    assert ota_check(device) == "DOWNGRADE_REFUSED"
    assert event(rt, "ota.downgrade_refused") == [{"offered": "0.9.0", "current": "1.0.0"}]
    assert server.routes() == [f"GET /ota/check/{DEVICE}", f"POST /ota/{DEVICE}/progress"]
    report = failure(server)
    assert report["phase"] == "failed" and "downgrade" in report["message"]
    failed_cleanly(rt, device)


@pytest.mark.parametrize(
    "field,value,reason",
    [
        ("signature", 12345, "field 'signature' missing or not a str"),
        ("signature", "not base64!", "field 'signature' is not 1..512 bytes of base64"),
        ("iv", base64.b64encode(bytes(8)).decode(), "field 'iv' is not 16 bytes of base64"),
        ("sha256_hash", None, "field 'sha256_hash' missing or not a str"),
        ("total_chunks", "41", "field 'total_chunks' missing or not a int"),
        ("total_chunks", 3, "total_chunks 3 does not match encrypted_size"),
        ("encrypted_size", 16, "update_info sizes disagree"),
        ("chunk_size", True, "field 'chunk_size' missing or not a int"),
    ],
)
def test_a_malformed_update_info_is_a_logged_check_failure(make_server, make_device, field, value, reason):
    server = make_server()
    server.info[field] = value
    rt, device = make_device(server.url)
    assert ota_check(device) == "error"
    (failed,) = event(rt, "ota.check_failed")
    assert reason in failed["reason"] and erased(rt)
    assert server.routes() == [f"GET /ota/check/{DEVICE}"]  # nothing initiated, nothing reported


@pytest.mark.parametrize(
    "body,reason",
    [
        (b"<html>404</html>", "check reply is not valid UTF-8 JSON"),
        (b'{"success": true, "device_id": "EW-0001", "update_available": "yes"}', "'update_available' missing"),
        (b'{"success": true, "device_id": "EW-0001", "update_available": true}', "'update_info' missing"),
        (b'{"success": true, "device_id": "ESP32_002", "update_available": false}', "names another device"),
        (b'{"device_id": "EW-0001", "update_available": false}', "field 'success' missing or not a bool"),
    ],
)
def test_a_malformed_check_reply_is_a_logged_check_failure(make_server, make_device, body, reason):
    server = make_server()
    server.replies[f"/ota/check/{DEVICE}"] = (200, body)
    rt, device = make_device(server.url)
    assert ota_check(device) == "error"
    assert reason in event(rt, "ota.check_failed")[0]["reason"]


@pytest.mark.parametrize(
    "path,body,code,reason",
    [
        (
            f"/ota/initiate/{DEVICE}",
            b'{"success": true, "device_id": "EW-0001"}',
            "DOWNLOAD_FAILED",
            "initiate: field 'session_id' missing or not a str",
        ),
        (
            f"/ota/initiate/{DEVICE}",
            b'{"success": false, "error": "Firmware not found"}',
            "DOWNLOAD_FAILED",
            "initiate: field 'success' is false",
        ),
        (
            f"/ota/chunk/{DEVICE}",
            b'{"success": true, "device_id": "EW-0001", "chunk_index": "0"}',
            "DOWNLOAD_FAILED",
            "chunk 0: field 'chunk_index' missing or not a int (3 attempts)",
        ),
    ],
)
def test_a_malformed_download_reply_fails_the_update_cleanly(make_server, make_device, path, body, code, reason):
    server = make_server()
    server.replies[path] = (200, body)
    rt, device = make_device(server.url)
    assert ota_check(device) == code
    assert event(rt, "ota.failed")[-1]["reason"] == reason
    report = failure(server)
    assert report["phase"] == "failed" and report["message"] == f"download failed: {reason}"
    failed_cleanly(rt, device)


def test_a_server_refusing_a_chunk_is_quoted_and_retried(make_server, make_device):
    server = make_server()
    server.replies[f"/ota/chunk/{DEVICE}"] = (400, b'{"success": false, "error": "No active OTA session"}')
    rt, device = make_device(server.url)
    assert ota_check(device) == "DOWNLOAD_FAILED"
    assert len(event(rt, "ota.retry")) == MAX_CHUNK_ATTEMPTS - 1
    assert event(rt, "ota.download_failed")[0]["reason"] == 'HTTP 400 "No_active_OTA_session"'


def test_a_dropped_chunk_is_resumed_on_a_new_connection(make_server, make_device, packages):
    server = make_server()
    server.drop[7] = 2
    rt, device = make_device(server.url)
    with pytest.raises(Reboot):
        ota_check(device)
    assert [(e["chunk"], e["attempt"]) for e in event(rt, "ota.retry")] == [("7", "2"), ("7", "3")]
    assert server.connections == 3
    assert secondary(rt)[: len(packages["v2"].image)] == packages["v2"].image


def test_no_resume_defect_gives_up_at_the_first_drop(make_server, make_device):
    server = make_server()
    server.drop[7] = 1
    rt, device = make_device(server.url, ("ota-no-resume",))
    assert ota_check(device) == "DOWNLOAD_FAILED" and not event(rt, "ota.retry")
    assert failure(server)["message"].startswith("download failed: chunk 7:")


def test_skip_signature_defect_installs_a_badly_signed_image(make_server, make_device, packages):
    server = make_server("forged")
    rt, device = make_device(server.url, ("ota-skip-signature",))
    with pytest.raises(Reboot):
        ota_check(device)
    assert secondary(rt)[: len(packages["forged"].image)] == packages["forged"].image
    assert event(rt, "ota.unverified") == [{"skipped": "signature"}] and not event(rt, "ota.verified")
    assert [r["phase"] for r in progress(server)][-2:] == ["verification_success", "installing"]


def test_accept_downgrade_defect_installs_the_older_offer(make_server, make_device):
    server = make_server()
    server.info["latest_version"] = "0.9.0"
    rt, device = make_device(server.url, ("ota-accept-downgrade",))
    with pytest.raises(Reboot):
        ota_check(device)
    assert not event(rt, "ota.downgrade_refused") and device.store.ota_attempt() == OtaAttempt("1.0.0", "0.9.0")
    assert f"POST /ota/initiate/{DEVICE}" in server.routes()


def test_keep_partial_defect_leaves_the_download_in_the_slot(make_server, make_device):
    server = make_server()
    server.corrupt.add(5)
    rt, device = make_device(server.url, ("ota-keep-partial-on-failure",))
    assert ota_check(device) == "HASH_MISMATCH"
    assert not erased(rt) and secondary(rt)[:4] == bytes.fromhex("3db8f396")


def test_no_key_material_is_logged(make_server, make_device, identity):
    server = make_server()
    rt, device = make_device(server.url)
    with pytest.raises(Reboot):
        ota_check(device)
    text = "\n".join(rt.lines) + json.dumps([r.body for r in server.requests])
    assert identity.fota_key.hex() not in text and base64.b64encode(identity.fota_key).decode() not in text


# update_info fields the device checks (a changed latest_version/current_version/release_notes is still
# a valid offer: the signature covers the image only, as in the public firmware)
CHECKED = (
    "original_size",
    "encrypted_size",
    "firmware_size",
    "sha256_hash",
    "signature",
    "iv",
    "chunk_size",
    "total_chunks",
)

NEAR = {
    "sha256_hash": st.binary(min_size=32, max_size=32).map(bytes.hex),
    "signature": st.binary(min_size=1, max_size=300).map(lambda b: base64.b64encode(b).decode()),
    "iv": st.binary(min_size=16, max_size=16).map(lambda b: base64.b64encode(b).decode()),
}


@pytest.fixture
def fuzz_target(make_server, make_device):
    server = make_server()
    return server, make_device(server.url)


@given(data=st.data())
@FAST
def test_a_mangled_update_info_never_installs_nor_crashes(fuzz_target, packages, data):
    server, (rt, device) = fuzz_target
    original = packages["v2"].update_info("1.0.0")
    names = data.draw(st.lists(st.sampled_from(CHECKED), min_size=1, max_size=3, unique=True))
    server.info.clear()
    for name in names:  # a near miss (well-formed, wrong) or any JSON value; never the original
        near = NEAR.get(name, st.integers(0, 100_000))
        server.info[name] = data.draw((near | JSON_VALUES).filter(lambda v, old=original[name]: v != old))
    outcome = ota_check(device)  # any exception, Reboot included, fails the test
    assert outcome in ("error", "DOWNLOAD_FAILED", "HASH_MISMATCH", "SIGNATURE_INVALID"), outcome
    assert erased(rt) and device.store.ota_attempt() is None
