"""The upload cycle's edges that provisioning through the harness cannot reach, found by mutation
testing (bench/mutation.py, area device-upload): which HTTP statuses are retried (a 5xx, from 500)
and which are final (below 500), NVS settings of the wrong type, and a device without an identity
running no upload timer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hil.images import nvs
from hil.sim.firmware import upload
from hil.sim.firmware.identity import NAMESPACE
from hil.sim.firmware.upload import MAX_ATTEMPTS, UploadSettings, UploadTimer, upload_cycle
from sim_boot.fakes import FakeFlash, _write
from sim_upload.conftest import LAYOUT


class _Answers(BaseHTTPRequestHandler):
    """Answers every POST with the server's ``status`` and counts the requests."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.posts += 1  # type: ignore[attr-defined]
        body = b'{"status":"error","error_code":"X","message":"scripted"}'
        self.send_response(self.server.status)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    server.daemon_threads = True
    server.posts = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("status, attempts", [(500, MAX_ATTEMPTS), (503, MAX_ATTEMPTS), (499, 1), (403, 1)])
def test_a_5xx_is_retried_and_anything_below_500_is_final(
    status: int, attempts: int, answering: ThreadingHTTPServer, make_device, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(upload, "RETRY_DELAY_S", 0.0)  # the pause is the scenarios' (test_network)
    answering.status = status  # type: ignore[attr-defined]
    _rt, device = make_device(f"http://127.0.0.1:{answering.server_address[1]}")
    assert upload_cycle(device) is False
    assert answering.posts == attempts  # type: ignore[attr-defined]


def test_settings_of_the_wrong_type_leave_encryption_and_the_timer_off(make_device) -> None:
    rt, _device = make_device("http://127.0.0.1:1")
    writer = nvs.NvsWriter(rt.flash, LAYOUT.nvs, LAYOUT.nvs_size)
    writer.set(NAMESPACE, "upload_period_s", "60", nvs.ItemType.SZ)
    writer.set(NAMESPACE, "encrypt", 2, nvs.ItemType.U8)
    assert UploadSettings.load(rt) == UploadSettings(encrypt=False, period_s=0)


def test_a_device_without_an_identity_runs_no_upload_timer(make_device) -> None:
    rt, device = make_device("http://127.0.0.1:1", period=60)
    assert UploadTimer.from_nvs(device).period_s == 60
    device.identity = None
    assert UploadTimer.from_nvs(device).period_s == 0


def _short_aes_key(nvs_image: bytes, url: str, *, encrypt: bool) -> FakeFlash:
    flash = FakeFlash()
    _write(flash, LAYOUT.nvs, nvs_image)
    writer = nvs.NvsWriter(flash, LAYOUT.nvs, LAYOUT.nvs_size)
    writer.set(NAMESPACE, "server_url", url, nvs.ItemType.SZ)
    writer.set(NAMESPACE, "aes_key", b"\x11" * 8, nvs.ItemType.BLOB_IDX)  # half an AES-128 key
    writer.set(NAMESPACE, "encrypt", int(encrypt), nvs.ItemType.U8)
    return flash


@pytest.mark.parametrize("encrypt", [True, False])
def test_an_aes_key_of_the_wrong_size_stops_only_encrypted_uploads(
    encrypt: bool, nvs_image: bytes, make_server, make_device
) -> None:
    """Encryption on with half a key: nothing is sent (never the readings in the clear); encryption
    off: the key is not needed and the upload goes out as usual."""
    server = make_server()
    rt, device = make_device(server.url, flash=_short_aes_key(nvs_image, server.url, encrypt=encrypt))
    assert len(device.identity.aes_key) == 8
    assert upload_cycle(device) is (not encrypt)
    assert len(server.recorder.uploads) == (0 if encrypt else 1)
    if encrypt:
        assert any("no 16-byte aes_key" in line for line in rt.lines)


def test_a_device_without_an_identity_or_with_a_short_hmac_key_sends_nothing(
    nvs_image: bytes, make_server, make_device
) -> None:
    """No identity at all, or a server URL with an HMAC key of the wrong size: "not provisioned", no
    nonce used and no POST (never a packet MAC'd under half a key), and no exception."""
    server = make_server()
    rt, device = make_device(server.url)
    device.identity = None
    assert upload_cycle(device) is False
    flash = FakeFlash()
    _write(flash, LAYOUT.nvs, nvs_image)
    writer = nvs.NvsWriter(flash, LAYOUT.nvs, LAYOUT.nvs_size)
    writer.set(NAMESPACE, "server_url", server.url, nvs.ItemType.SZ)
    writer.set(NAMESPACE, "hmac_key", b"\x22" * 16, nvs.ItemType.BLOB_IDX)
    rt2, short = make_device(server.url, flash=flash)
    assert short.identity is not None and len(short.identity.hmac_key) == 16
    assert upload_cycle(short) is False
    assert server.recorder.uploads == []
    for lines in (rt.lines, rt2.lines):
        assert any("device not provisioned with device_id/hmac_key/server_url" in line for line in lines)
