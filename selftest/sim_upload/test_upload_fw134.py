"""The virtual board provisioned with ``wire = ecowatt-fw134`` speaks the public EcoWatt firmware
1.3.4 upload (``ecowatt-fw134-wire.md``): path, body layout, MAC, boot nonce floor, AES, the
upload defects' fw134 meaning, and the log lines the scenarios read."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sim_boot.fakes import FakeFlash, _write

from hil.images import nvs
from hil.images.nvs_gen import WIRE_FORMATS, DeviceIdentity, build_nvs
from hil.protocol import fw134
from hil.protocol.errors import ErrorCode, ProtocolError
from hil.server.config import DeviceKeys, ServerConfig
from hil.server.handle import ServerHandle
from hil.sim.firmware.identity import NAMESPACE
from hil.sim.firmware.sensors import sample_readings
from hil.sim.firmware.upload import upload_cycle
from hil.sim.firmware.upload_formats import FORMATS
from hil.wire.profile import load_profile
from sim_upload.conftest import LAYOUT, PLACEHOLDER_URL, nvs_value
from sim_upload.fakes import SELFTEST_ADMIN_TOKEN
from sim_upload.test_upload import PROFILE, event

WIRE = load_profile("ecowatt-fw134")
assert WIRE.test_hmac_key is not None
KEY = WIRE.test_hmac_key  # the key published with the firmware: TEST ONLY
DEVICE_ID = "ESP32_001"
ENVELOPE_KEYS = ["nonce", "payload", "mac", "encrypted", "compressed"]
ACCEPTED = (200, b'{"success":true,"message":"Compressed data processed and published"}')


@dataclass
class Request:
    path: str
    content_type: str
    body: bytes
    nvs_nonce: Any  # the device's NVS nonce when the request arrived

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Endpoint:
    """A recording HTTP server: answers each POST with the next of ``replies`` (the last one repeats)."""

    url: str = ""
    replies: list[tuple[int, bytes]] = field(default_factory=lambda: [ACCEPTED])
    requests: list[Request] = field(default_factory=list)
    nvs_probe: Callable[[], Any] = lambda: None

    def handle(self, path: str, content_type: str, body: bytes) -> tuple[int, bytes]:
        self.requests.append(Request(path, content_type, body, self.nvs_probe()))
        return self.replies[min(len(self.requests), len(self.replies)) - 1]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    recorder = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, reply = recorder.handle(self.path, self.headers.get("Content-Type", ""), body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="fw134-endpoint", daemon=True)
    thread.start()
    yield recorder
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def fw134_nvs(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., bytes]:
    """``fw134_nvs(nonce=10000, wire="ecowatt-fw134")``: the NVS partition of a fw134 device, built once."""
    built: dict[tuple[int, str], bytes] = {}
    fota_key = os.urandom(32)

    def image(nonce: int = fw134.DEFAULT_NONCE, wire: str = "ecowatt-fw134") -> bytes:
        if (nonce, wire) not in built:
            identity = DeviceIdentity(
                DEVICE_ID, KEY, KEY[:16], fota_key, nonce=nonce, server_url=PLACEHOLDER_URL, wire=wire
            )
            out = tmp_path_factory.mktemp("nvs") / "nvs.bin"
            built[(nonce, wire)] = build_nvs(identity, out).read_bytes()
        return built[(nonce, wire)]

    return image


@pytest.fixture
def fw134_device(make_device, fw134_nvs):
    """``fw134_device(url, defects=(), nonce=10000, encrypt=False, wire=...)``: a booted fw134 device."""

    def factory(
        url: str,
        defects: tuple[str, ...] = (),
        *,
        nonce: int = fw134.DEFAULT_NONCE,
        encrypt: bool = False,
        wire: str = "ecowatt-fw134",
    ):
        flash = FakeFlash()
        _write(flash, LAYOUT.nvs, fw134_nvs(nonce, wire))
        writer = nvs.NvsWriter(flash, LAYOUT.nvs, LAYOUT.nvs_size)
        writer.set(NAMESPACE, "server_url", url, nvs.ItemType.SZ)
        if encrypt:
            writer.set(NAMESPACE, "encrypt", 1, nvs.ItemType.U8)
        return make_device(url, defects, flash=flash)

    return factory


def test_fresh_device_starts_at_the_boot_floor_and_sends_the_fw134_envelope(endpoint, fw134_device):
    rt, device = fw134_device(endpoint.url)
    # the boot raise is committed: a reset before the first upload still starts at 11000
    assert event(rt, "nonce.loaded") == [{"nonce": "11000"}] and nvs_value(rt.flash, "nonce") == 11000
    endpoint.nvs_probe = lambda: nvs_value(rt.flash, "nonce")
    assert upload_cycle(device) is True
    (request,) = endpoint.requests
    assert request.path == f"/aggregated/{DEVICE_ID}" and request.content_type == "application/json"
    assert list(request.doc) == ENVELOPE_KEYS  # the firmware's key order, compact
    assert request.body == json.dumps(request.doc, separators=(",", ":")).encode()
    assert request.doc["nonce"] == 11001 and request.nvs_nonce == 11001  # committed before the send
    assert request.doc["encrypted"] is False and request.doc["compressed"] is False
    inner = fw134.verify(fw134.parse_envelope(request.body), KEY)
    batch = fw134.decode_inner(inner)
    expected = fw134.batch_from_readings(sample_readings(DEVICE_ID, 11001, batch.timestamp))
    assert batch.device_id == DEVICE_ID and batch.samples == expected.samples
    assert event(rt, "upload.ok") == [{"status": "200", "nonce": "11001", "count": "10"}]
    assert event(rt, "upload.sending")[0]["url"] == f"{endpoint.url}/aggregated/{DEVICE_ID}"
    assert KEY.hex() not in "\n".join(rt.lines)


def test_a_nonce_above_the_floor_is_kept(endpoint, fw134_device):
    rt, device = fw134_device(endpoint.url, nonce=12345)
    assert event(rt, "nonce.loaded") == [{"nonce": "12345"}]
    assert upload_cycle(device)
    assert [r.doc["nonce"] for r in endpoint.requests] == [12346]


def _openssl(*args: str, data: bytes) -> bytes:
    """stdout of ``openssl *args`` fed *data* (an independent implementation of AES and HMAC)."""
    return subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=30, check=True).stdout


def test_encrypted_upload_decrypts_with_openssl_to_the_maced_inner_json(endpoint, fw134_device):
    rt, device = fw134_device(endpoint.url, encrypt=True)
    assert upload_cycle(device)
    doc = endpoint.requests[0].doc
    assert doc["encrypted"] is True and event(rt, "upload.sending")[0]["mode"] == "encrypted"
    sealed = base64.b64decode(doc["payload"])
    inner = _openssl("enc", "-d", "-aes-128-cbc", "-K", KEY[:16].hex(), "-iv", bytes(range(16)).hex(), data=sealed)
    assert json.loads(inner)["data_type"] == "compressed_sensor_batch"
    # the MAC covers nonce (u32 big-endian) || the plaintext, not the ciphertext
    mac = _openssl(
        "dgst",
        "-sha256",
        "-mac",
        "HMAC",
        "-macopt",
        f"hexkey:{KEY.hex()}",
        data=doc["nonce"].to_bytes(4, "big") + inner,
    )
    assert mac.decode().split()[-1] == doc["mac"]
    assert fw134.verify(fw134.parse_envelope(endpoint.requests[0].body), KEY) == inner


def test_mac_over_payload_only_defect_leaves_the_nonce_out_and_does_not_verify(endpoint, fw134_device):
    _rt, device = fw134_device(endpoint.url, ("mac-over-payload-only",))
    assert upload_cycle(device)  # the recording endpoint accepts anything
    envelope = fw134.parse_envelope(endpoint.requests[0].body)
    with pytest.raises(ProtocolError) as refused:
        fw134.verify(envelope, KEY)
    assert refused.value.code is ErrorCode.INVALID_HMAC
    inner = base64.b64decode(envelope.payload)
    assert envelope.mac == hmac.new(KEY, inner, hashlib.sha256).hexdigest()


def test_encrypt_flag_ignored_defect_sends_the_clear_inner(endpoint, fw134_device):
    _rt, device = fw134_device(endpoint.url, ("encrypt-flag-ignored",), encrypt=True)
    assert upload_cycle(device)
    doc = endpoint.requests[0].doc
    assert doc["encrypted"] is False and json.loads(base64.b64decode(doc["payload"]))["device_id"] == DEVICE_ID


def test_5xx_is_retried_under_a_new_nonce_and_the_defect_reuses_it(endpoint, fw134_device):
    endpoint.replies = [(503, b'{"success":false,"error":"maintenance"}'), ACCEPTED]
    _rt, device = fw134_device(endpoint.url)
    assert upload_cycle(device)
    assert [r.doc["nonce"] for r in endpoint.requests] == [11001, 11002]
    endpoint.requests.clear()
    _rt2, device2 = fw134_device(endpoint.url, ("nonce-reused-on-retry",))
    assert upload_cycle(device2)
    assert [r.doc["nonce"] for r in endpoint.requests] == [11001, 11001]


def test_nonce_not_persisted_defect_repeats_11001_after_a_reset(endpoint, fw134_device, make_device):
    rt, device = fw134_device(endpoint.url, ("nonce-not-persisted",))
    assert upload_cycle(device)
    assert nvs_value(rt.flash, "nonce") == fw134.DEFAULT_NONCE  # not even the boot raise reached NVS
    rt.halt()
    _rt2, device2 = make_device(endpoint.url, ("nonce-not-persisted",), flash=rt.flash)  # a reset
    assert upload_cycle(device2)
    assert [r.doc["nonce"] for r in endpoint.requests] == [11001, 11001]


def test_a_refusal_without_error_code_logs_the_error_text(endpoint, fw134_device):
    text = "Security validation failed: Replay attack detected! Nonce 11001 <= last valid nonce 11001"
    endpoint.replies = [(401, json.dumps({"success": False, "error": text}).encode())]
    rt, device = fw134_device(endpoint.url)
    assert upload_cycle(device) is False
    shown = text[:80].replace(" ", "_")
    assert event(rt, "upload.rejected") == [{"status": "401", "code": f'"{shown}"', "nonce": "11001"}]
    assert len(endpoint.requests) == 1  # a 4xx is final


@pytest.mark.parametrize(
    "forged",
    [
        'x"), nonce 9\r\nI (1) upload: Upload successful (HTTP 200), nonce 9, 10 readings\x1b[0m',
        "upload: Upload successful (HTTP 200), nonce 9, 10 readings",
        "[esp32] [ERR] Image in the primary slot is not valid!",
        "Guru Meditation Error",
    ],
    ids=["line-break", "upload-ok", "boot-refused", "crash"],
)
def test_server_error_text_cannot_spell_another_log_event(endpoint, fw134_device, forged):
    endpoint.replies = [(401, json.dumps({"error": forged}).encode())]
    rt, device = fw134_device(endpoint.url)
    assert upload_cycle(device) is False
    (line,) = [line for line in rt.lines if "Upload rejected" in line]
    assert [name for name, rx in PROFILE.events.items() if rx.search(line)] == ["upload.rejected"]
    (rejected,) = event(rt, "upload.rejected")
    assert rejected["nonce"] == "11001" and rejected["status"] == "401"


def test_unknown_wire_value_refuses_uploads_and_names_it(endpoint, fw134_device, make_device):
    rt, _ = fw134_device(endpoint.url)
    nvs.NvsWriter(rt.flash, LAYOUT.nvs, LAYOUT.nvs_size).set(NAMESPACE, "wire", "ecowatt-v9", nvs.ItemType.SZ)
    rt.halt()
    rt2, device2 = make_device(endpoint.url, flash=rt.flash)  # a reset: the app reads the new value
    assert upload_cycle(device2) is False
    (failed,) = event(rt2, "upload.failed")
    assert "'ecowatt-v9'" in failed["reason"] and "ecowatt/wire" in failed["reason"]
    assert endpoint.requests == [] and nvs_value(rt2.flash, "nonce") == 11000  # no nonce used


def test_every_provisionable_wire_format_has_a_packet_builder():
    assert set(FORMATS) == set(WIRE_FORMATS)


@pytest.fixture
def fw134_server(tmp_path) -> Iterator[ServerHandle]:
    """The reference server speaking ecowatt-fw134 (rate limiting off), knowing ESP32_001 by the published key."""
    config = ServerConfig(
        tmp_path / "fw134.sqlite",
        {DEVICE_ID: DeviceKeys(DEVICE_ID, KEY, KEY[:16])},
        SELFTEST_ADMIN_TOKEN,
        rate_limit=0,
        wire=WIRE,
    )
    handle = ServerHandle(config, host="127.0.0.1", port=0).start()
    yield handle
    handle.stop()


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "encrypted"])
def test_reference_server_in_fw134_mode_stores_the_boards_readings(fw134_server, fw134_device, encrypt):
    rt, device = fw134_device(fw134_server.url, encrypt=encrypt)
    assert upload_cycle(device) and upload_cycle(device)
    stored = fw134_server.state.storage.readings(DEVICE_ID)
    assert {r["nonce"] for r in stored} == {11001, 11002}
    first = sorted((r["register"], r["value"]) for r in stored if r["nonce"] == 11001)
    sent = fw134.readings_from_batch(fw134.batch_from_readings(sample_readings(DEVICE_ID, 11001, 0)))
    assert first == sorted((r.register, r.value) for r in sent.readings)
    assert [e["nonce"] for e in event(rt, "upload.ok")] == ["11001", "11002"]


def test_reference_server_in_fw134_mode_refuses_the_defective_mac(fw134_server, fw134_device):
    rt, device = fw134_device(fw134_server.url, ("mac-over-payload-only",))
    assert upload_cycle(device) is False
    (rejected,) = event(rt, "upload.rejected")
    assert rejected["status"] == "401" and "hmac" in rejected["code"].lower()
    assert fw134_server.state.storage.readings(DEVICE_ID) == []
