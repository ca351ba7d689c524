"""Fixtures for the upload-cycle self-tests: real NVS bytes (esp-idf-nvs-partition-gen) in a fake
flash, the device app started on a fake runtime, and the real reference server on 127.0.0.1:0."""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from hil.images import nvs
from hil.images.layout import layout_for
from hil.images.nvs_gen import DeviceIdentity, build_nvs
from hil.server.handle import ServerHandle
from hil.server.tls import TestPki, generate_test_pki
from hil.sim.booted import BootedImage
from hil.sim.firmware import Device, start
from hil.sim.firmware.identity import NAMESPACE
from sim_boot.fakes import FakeFlash, _write, make_app
from sim_upload.fakes import SELFTEST_ADMIN_TOKEN, ThreadedRuntime, start_reference_server

LAYOUT = layout_for("esp32")
ADMIN_TOKEN = SELFTEST_ADMIN_TOKEN
PLACEHOLDER_URL = "http://127.0.0.1:1"


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def identity(pki: TestPki) -> DeviceIdentity:
    return DeviceIdentity("EW-0001", os.urandom(32), os.urandom(16), os.urandom(32),
                          server_url=PLACEHOLDER_URL, ca_cert=pki.ca_cert.read_text())


@pytest.fixture(scope="session")
def nvs_image(identity: DeviceIdentity, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The factory NVS partition of ``identity`` (nonce 10000, the test CA)."""
    return build_nvs(identity, tmp_path_factory.mktemp("nvs") / "nvs.bin").read_bytes()


@pytest.fixture(scope="session")
def booted() -> BootedImage:
    return BootedImage(LAYOUT.primary_slot, None, make_app("2.0.0"), 0x40080404)  # type: ignore[arg-type]


def nvs_value(flash: FakeFlash, key: str) -> Any:
    """``ecowatt/<key>`` as it is on flash right now."""
    return nvs.parse(flash.read(LAYOUT.nvs, LAYOUT.nvs_size)).get(NAMESPACE, key)


@dataclass
class Recorder:
    """WSGI middleware in front of the server: records each upload body with the device's NVS nonce
    at the moment the request arrives; answers 503 to the first ``fail_first`` uploads."""

    app: Callable
    nvs_probe: Callable[[], Any] | None = None
    fail_first: int = 0
    uploads: list[tuple[dict, Any]] = field(default_factory=list)
    peers: list[str] = field(default_factory=list)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        if environ.get("PATH_INFO") != "/api/upload/data":
            return self.app(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        self.uploads.append((json.loads(body), self.nvs_probe() if self.nvs_probe else None))
        self.peers.append(environ.get("REMOTE_ADDR", ""))
        if len(self.uploads) <= self.fail_first:
            start_response("503 Service Unavailable", [("Content-Type", "application/json")])
            return [b'{"status":"error","error_code":"UNAVAILABLE","message":"maintenance"}']
        environ["wsgi.input"] = io.BytesIO(body)
        return self.app(environ, start_response)

    @property
    def nonces(self) -> list[int]:
        return [doc["nonce"] for doc, _ in self.uploads]


@dataclass
class Server:
    handle: ServerHandle
    recorder: Recorder

    @property
    def url(self) -> str:
        return self.handle.url

    def stored(self, device_id: str = "EW-0001") -> list[dict]:
        return self.handle.state.storage.readings(device_id)


@pytest.fixture
def make_server(tmp_path: Path, identity: DeviceIdentity, pki: TestPki) -> Iterator[Callable[..., Server]]:
    """``make_server(tls=None|"real"|"mitm")``: the reference server with a :class:`Recorder`."""
    handles: list[ServerHandle] = []

    def factory(tls: str | None = None) -> Server:
        handle, recorder = start_reference_server(tmp_path / f"db{len(handles)}.sqlite", identity, pki, tls, Recorder)
        handles.append(handle)
        return Server(handle, recorder)

    yield factory
    for handle in handles:
        handle.stop()


@pytest.fixture
def make_device(nvs_image: bytes, booted: BootedImage) -> Iterator[Callable[..., tuple[ThreadedRuntime, Device]]]:
    """``make_device(url, defects=(), encrypt=False, period=None, flash=None)``: provision (or reuse)
    a flash, then run the app's start-up on a fresh runtime. Every runtime is halted at teardown."""
    runtimes: list[ThreadedRuntime] = []

    def factory(url: str, defects: tuple[str, ...] = (), *, encrypt: bool = False, period: int | None = None,
                flash: FakeFlash | None = None) -> tuple[ThreadedRuntime, Device]:
        if flash is None:
            flash = FakeFlash()
            _write(flash, LAYOUT.nvs, nvs_image)
            writer = nvs.NvsWriter(flash, LAYOUT.nvs, LAYOUT.nvs_size)
            writer.set(NAMESPACE, "server_url", url, nvs.ItemType.SZ)
            if encrypt:
                writer.set(NAMESPACE, "encrypt", 1, nvs.ItemType.U8)
            if period is not None:
                writer.set(NAMESPACE, "upload_period_s", period, nvs.ItemType.U32)
        rt = ThreadedRuntime(flash, defects)
        runtimes.append(rt)
        return rt, start(rt, booted)

    yield factory
    for rt in runtimes:
        rt.halt()
