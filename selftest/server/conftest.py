"""Fixtures for the reference-server self-tests: a fake clock, app/client factories, FOTA packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

import pytest
from flask import Flask
from helpers_server import FakeClock, make_config

from hil.images.fota import build_package
from hil.server import ServerHandle, close_app, create_app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app(tmp_path: Path, clock: FakeClock) -> Iterator[Callable[..., Flask]]:
    """``make_app(defects=(), **config_overrides)``; every app is closed at teardown."""
    apps: list[Flask] = []

    def factory(defects: tuple[str, ...] = (), **overrides: Any) -> Flask:
        db_dir = tmp_path / f"app{len(apps)}"
        db_dir.mkdir()
        app = create_app(make_config(db_dir, clock, **overrides), defects=defects)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        close_app(app)


@pytest.fixture
def client(make_app: Callable[..., Flask]) -> Any:
    return make_app().test_client()


class FotaMaterial(NamedTuple):
    """The OTA tests' packages and the TEST ONLY keys they were made with."""

    firmware_dir: Path
    fota_key: bytes
    public_pem: bytes
    plaintexts: dict[str, bytes]
    signing_key: Path  # the throwaway FOTA signing key (PEM), for formats that sign when they serve


@pytest.fixture(scope="session")
def fota(tmp_path_factory: pytest.TempPathFactory) -> FotaMaterial:
    """Packages 0.9.0, 1.0.0 and 2.0.0 (2.0.0: 5120 bytes, 5136 encrypted, 3 chunks) signed with a
    throwaway RSA key, encrypted with a fixed TEST ONLY AES key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    fota_key = bytes(range(100, 132))
    plaintexts = {"0.9.0": b"old image " * 300, "1.0.0": b"v1 image " * 400, "2.0.0": bytes(range(256)) * 20}
    out = tmp_path_factory.mktemp("firmware")
    for version, plaintext in plaintexts.items():
        build_package(plaintext, version, signing_key_pem=pem, fota_key=fota_key, out_dir=out)
    signing_key = tmp_path_factory.mktemp("fota-keys") / "fota-signing-key.pem"
    signing_key.write_bytes(pem)
    return FotaMaterial(out, fota_key, public, plaintexts, signing_key)


@pytest.fixture
def ota_server(tmp_path: Path, fota: FotaMaterial) -> Iterator[ServerHandle]:
    """The server with the ``fota`` packages on a real socket (faults that act on the TCP connection)."""
    db_dir = tmp_path / "ota-server"
    db_dir.mkdir()
    with ServerHandle(make_config(db_dir, firmware_dir=fota.firmware_dir)) as handle:
        yield handle
