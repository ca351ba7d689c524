"""Fixtures for the device-side OTA self-tests: MCUboot-signed apps that carry a FOTA public key,
real FOTA packages (``hil.images.fota.build_package``), the real reference server serving them,
and provisioned flashes/devices (NVS from ``esp-idf-nvs-partition-gen``, fakes from sim_boot/sim_upload)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from hil.images import nvs
from hil.images.app_desc import AppDesc
from hil.images.app_keys import embeddable_pem
from hil.images.fota import build_package
from hil.images.layout import layout_for
from hil.images.nvs_gen import DeviceIdentity
from hil.images.variants import SELFTEST_FAIL_PROJECT
from hil.server.handle import ServerHandle
from hil.server.tls import TestPki
from hil.sim.booted import BootedImage
from hil.sim.firmware import Device, start
from hil.sim.firmware.identity import NAMESPACE
from sim_boot.fakes import FakeFlash, _write, der_public, imgtool, make_bootloader, make_esp_image
from sim_upload.conftest import identity, nvs_image, pki  # noqa: F401  (shared session fixtures)
from sim_upload.fakes import ThreadedRuntime, start_reference_server

LAYOUT = layout_for("esp32")
APP_SIZE = 0x14000  # 80 KiB: 41 chunks of 2048, and the swap spans two 64 KiB chunks


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_fota_app(version: str, fota_public_pem: bytes | None, project: str = "ecowatt") -> bytes:
    """An ESP32 app whose rodata holds ``esp_app_desc_t`` then the FOTA public key (like keys.h)."""
    desc = AppDesc(version=version, project_name=project, secure_version=1).pack()
    key = embeddable_pem(fota_public_pem) if fota_public_pem else b""
    drom = desc + key + bytes(range(256)) * ((APP_SIZE - len(desc) - len(key)) // 256)
    return make_esp_image([(0x3F400020, drom), (0x40080000, b"\x36\x41\x00" * 300)], 0x40080404)


@dataclass(frozen=True)
class OtaImages:
    """Keys, the bootloader trusting the MCUboot key, app payloads and their signed images."""

    fota_private_pem: bytes = field(repr=False)
    bootloader: bytes = field(repr=False)
    payloads: dict[str, bytes] = field(repr=False)
    signed: dict[str, bytes] = field(repr=False)

    def booted(self, name: str) -> BootedImage:
        """What MCUboot would hand the app of ``name`` (for tests that start the app directly)."""
        return BootedImage(LAYOUT.primary_slot, None, self.payloads[name], 0x40080404)  # type: ignore[arg-type]


RELEASES = {"v1": ("1.0.0", "ecowatt"), "v2": ("2.0.0", "ecowatt"), "v0.9": ("0.9.0", "ecowatt"),
            "selftest-fail": ("2.0.0", SELFTEST_FAIL_PROJECT)}


@pytest.fixture(scope="session")
def ota_images(tmp_path_factory: pytest.TempPathFactory) -> OtaImages:
    tmp = tmp_path_factory.mktemp("ota-images")
    mcuboot_key, fota_key = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    (tmp / "mcuboot.pem").write_bytes(_pem(mcuboot_key))
    fota_public = fota_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo)
    payloads = {name: make_fota_app(version, fota_public, project) for name, (version, project) in RELEASES.items()}
    payloads["no-key"] = make_fota_app("1.0.0", None)

    def sign(name: str) -> bytes:
        (tmp / f"{name}.raw").write_bytes(payloads[name])
        version = RELEASES.get(name, ("1.0.0",))[0]
        imgtool("sign", "--header-size", "0x200", "--align", "4", "--version", version, "--pad-header",
                "--slot-size", hex(LAYOUT.slot_size), "--key", str(tmp / "mcuboot.pem"),
                str(tmp / f"{name}.raw"), str(tmp / f"{name}.bin"))
        return (tmp / f"{name}.bin").read_bytes()

    with ThreadPoolExecutor() as pool:  # imgtool runs as subprocesses: overlap them
        signed = dict(zip(payloads, pool.map(sign, payloads)))
    return OtaImages(_pem(fota_key), make_bootloader(der_public(mcuboot_key)), payloads, signed)


@pytest.fixture(scope="session")
def firmware_dirs(ota_images: OtaImages, identity: DeviceIdentity,  # noqa: F811
                  tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Firmware dirs of packages: ``main`` (2.0.0 and 0.9.0), ``selftest-fail`` (2.0.0 failing its
    self-test), ``small`` (4.0.0, 4 KiB of signed noise: quick to download, for fuzzing)."""
    root = tmp_path_factory.mktemp("fota")
    sets = {"main": [("v2", "2.0.0"), ("v0.9", "0.9.0")], "selftest-fail": [("selftest-fail", "2.0.0")]}
    dirs = {}
    for dir_name, packages in sets.items():
        for image, version in packages:
            build_package(ota_images.signed[image], version, signing_key_pem=ota_images.fota_private_pem,
                          fota_key=identity.fota_key, out_dir=root / dir_name)
        dirs[dir_name] = root / dir_name
    build_package(os.urandom(4096), "4.0.0", signing_key_pem=ota_images.fota_private_pem,
                  fota_key=identity.fota_key, out_dir=root / "small")
    dirs["small"] = root / "small"
    return dirs


@dataclass
class Tamper:
    """WSGI middleware in front of the real server: answers ``replies[path]`` = (status line, JSON
    body) instead of the server."""

    app: Callable
    replies: dict[str, tuple[str, bytes]] = field(default_factory=dict)

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        reply = self.replies.get(environ.get("PATH_INFO", ""))
        if reply is None:
            return self.app(environ, start_response)
        start_response(reply[0], [("Content-Type", "application/json"), ("Content-Length", str(len(reply[1])))])
        return [reply[1]]


@dataclass
class TamperableOtaServer:
    """The running reference server, its tamper middleware, and admin shortcuts."""

    handle: ServerHandle
    tamper: Tamper

    @property
    def url(self) -> str:
        return self.handle.url

    def fault(self, name: str, **params: Any) -> None:
        """Inject a fault, as ``POST /api/admin/faults`` does."""
        self.handle.state.storage.add_fault(name, params)

    def statuses(self, device_id: str = "EW-0001") -> list[tuple]:
        """``(status, firmware_version, progress, error_code, old_version, rolled_back_to)`` per report."""
        return [(s["status"], s["firmware_version"], s["progress_percent"], s["error_code"], s["old_version"],
                 s["rolled_back_to"]) for s in self.handle.state.storage.ota_statuses(device_id)]


@pytest.fixture
def make_ota_server(tmp_path: Path, identity: DeviceIdentity, pki: TestPki,  # noqa: F811
                    firmware_dirs: dict[str, Path]) -> Iterator[Callable[..., TamperableOtaServer]]:
    """``make_ota_server(packages="main", tls=None|"real"|"mitm")``; every server stopped at teardown."""
    handles: list[ServerHandle] = []

    def factory(packages: str = "main", tls: str | None = None) -> TamperableOtaServer:
        handle, tamper = start_reference_server(tmp_path / f"db{len(handles)}.sqlite", identity, pki, tls, Tamper,
                                                firmware_dir=firmware_dirs[packages])
        handles.append(handle)
        return TamperableOtaServer(handle, tamper)

    yield factory
    for handle in handles:
        handle.stop()


def provision(flash: FakeFlash, nvs_image: bytes, url: str, wire: str | None = None, **settings: int) -> None:
    """The factory NVS partition with ``server_url`` = ``url``, ``wire`` (None: absent, i.e. ecowatt-api)
    and u32 ``settings``."""
    _write(flash, LAYOUT.nvs, nvs_image)
    writer = nvs.NvsWriter(flash, LAYOUT.nvs, LAYOUT.nvs_size)
    writer.set(NAMESPACE, "server_url", url, nvs.ItemType.SZ)
    if wire is not None:
        writer.set(NAMESPACE, "wire", wire, nvs.ItemType.SZ)
    for key, value in settings.items():
        writer.set(NAMESPACE, key, value, nvs.ItemType.U32)


def install_board(flash: FakeFlash, images: OtaImages, nvs_image: bytes, url: str, primary: str = "v1",
                  wire: str | None = None) -> None:
    """Bootloader, ``primary`` in slot 0 and a provisioned NVS partition, as ``hil flash`` leaves a board."""
    _write(flash, LAYOUT.bootloader, images.bootloader)
    _write(flash, LAYOUT.primary_slot, images.signed[primary])
    provision(flash, nvs_image, url, wire)


@pytest.fixture
def make_ota_device(nvs_image: bytes, ota_images: OtaImages  # noqa: F811
                    ) -> Iterator[Callable[..., tuple[ThreadedRuntime, Device]]]:
    """``make_ota_device(url, defects=(), running="v1", wire=None)``: the app of ``running`` started on a
    provisioned flash (slot 0 left erased: nothing here boots). Runtimes are halted at teardown."""
    runtimes: list[ThreadedRuntime] = []

    def factory(url: str, defects: tuple[str, ...] = (), running: str = "v1", wire: str | None = None,
                **settings: int) -> tuple[ThreadedRuntime, Device]:
        flash = FakeFlash()
        provision(flash, nvs_image, url, wire, **settings)
        rt = ThreadedRuntime(flash, defects)
        runtimes.append(rt)
        return rt, start(rt, ota_images.booted(running))

    yield factory
    for rt in runtimes:
        rt.halt()


@pytest.fixture
def make_board(ota_images: OtaImages, nvs_image: bytes) -> Callable[..., FakeFlash]:  # noqa: F811
    """``make_board(url, wire=None)``: a flash as :func:`install_board` leaves it (boot it with
    ``sim_boot.fakes.boot``)."""

    def factory(url: str, wire: str | None = None) -> FakeFlash:
        flash = FakeFlash()
        install_board(flash, ota_images, nvs_image, url, wire=wire)
        return flash

    return factory
