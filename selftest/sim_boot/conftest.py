"""Fixtures for the boot chain self-tests (fakes and builders live in ``fakes.py``)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sim_boot.fakes import Artifacts, FakeFlash, der_public, make_bootloader, sign_app


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Artifacts:
    """Keys, a bootloader trusting the first key, and every image variant."""
    tmp = tmp_path_factory.mktemp("boot-images")
    keys = {}
    for name in ("trusted", "attacker"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path = tmp / f"{name}.pem"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        keys[name] = (key, path)
    trusted_path, attacker_path = keys["trusted"][1], keys["attacker"][1]
    v1 = sign_app(tmp, trusted_path, "1.0.0", "v1")
    v2 = sign_app(tmp, trusted_path, "2.0.0", "v2")
    unsigned = sign_app(tmp, None, "2.0.0", "unsigned")
    other = sign_app(tmp, attacker_path, "2.0.0", "other", "--public-key-format", "full")
    padded = {"v2-pad-test": sign_app(tmp, trusted_path, "2.0.0", "pt", "--pad"),
              "v2-pad-confirm": sign_app(tmp, trusted_path, "2.0.0", "pc", "--pad", "--confirm")}
    bitflip = bytearray(v2)
    bitflip[0x200 + 0x400] ^= 0x01
    bad_magic = bytearray(v2)
    bad_magic[0] ^= 0xFF
    return Artifacts(der_public(keys["trusted"][0]), der_public(keys["attacker"][0]),
                     make_bootloader(der_public(keys["trusted"][0])),
                     {"v1": v1, "v2": v2, "unsigned": unsigned, "other-key": other,
                      "bitflip": bytes(bitflip), "truncated": v2[: len(v2) // 2],
                      "bad-magic": bytes(bad_magic), **padded})


@pytest.fixture
def flash() -> FakeFlash:
    return FakeFlash()


