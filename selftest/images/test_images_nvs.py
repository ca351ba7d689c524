"""NVS provisioning: esp-idf-nvs-partition-gen's output parses back (CRCs checked) to the identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_images import parse_nvs

from hil.images.index import Index
from hil.images.keys import KeyStore
from hil.images.nvs_gen import DeviceIdentity, NvsBuildError, build_nvs, lab_identity

CA = "-----BEGIN CERTIFICATE-----\nTUlJQlRFU1Q=\n-----END CERTIFICATE-----\n"


def test_default_nvs_holds_the_lab_identity(built: Index) -> None:
    nvs = built.path("nvs").read_bytes()
    assert len(nvs) == 0x6000
    values = parse_nvs(nvs)
    identity = lab_identity(KeyStore(built.directory / "keys"))
    assert values[("ecowatt", "device_id")] == "EW-0001"
    assert values[("ecowatt", "nonce")] == 10000
    assert values[("ecowatt", "hmac_key")] == identity.hmac_key
    assert values[("ecowatt", "aes_key")] == identity.aes_key
    assert values[("ecowatt", "fota_key")] == KeyStore(built.directory / "keys").secret("fota-aes-key")
    assert values[("ecowatt", "psk_id")] == "iotlab2024"
    assert values[("ecowatt", "psk")] == "secretkey123456"
    assert values[("ecowatt", "server_url")].startswith("http://")


def test_other_identity_with_ca_cert(built: Index, tmp_path: Path) -> None:
    keys = KeyStore(built.directory / "keys")
    identity = lab_identity(keys, "EW-0002", server_url="https://10.0.0.2:5001", nonce=7, ca_cert=CA)
    values = parse_nvs(build_nvs(identity, tmp_path / "nvs2.bin").read_bytes())
    assert values[("ecowatt", "device_id")] == "EW-0002"
    assert values[("ecowatt", "nonce")] == 7
    assert values[("ecowatt", "server_url")] == "https://10.0.0.2:5001"
    assert values[("ecowatt", "ca_cert")] == CA
    assert values[("ecowatt", "hmac_key")] != lab_identity(keys).hmac_key  # per-device derivation


def test_parser_detects_corruption(built: Index) -> None:
    nvs = bytearray(built.path("nvs").read_bytes())
    nvs[64 + 32 * 3 + 10] ^= 1  # a key name byte of the hmac_key entry (after ns and device_id)
    with pytest.raises(AssertionError, match="CRC"):
        parse_nvs(bytes(nvs))


def test_identity_repr_hides_secrets(built: Index) -> None:
    identity = lab_identity(KeyStore(built.directory / "keys"))
    text = repr(identity)
    assert "EW-0001" in text
    for secret in (identity.hmac_key.hex(), identity.aes_key.hex(), identity.fota_key.hex(), identity.psk):
        assert secret not in text


@pytest.mark.parametrize("change,match", [
    ({"device_id": "bad id!"}, "device_id"), ({"hmac_key": b"short"}, "hmac_key"),
    ({"nonce": -1}, "u32"), ({"psk": "x" * 65}, "64 bytes")])
def test_identity_is_validated(built: Index, change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        lab_identity(KeyStore(built.directory / "keys"), **change)


def test_generator_failure_is_reported_without_secrets(built: Index, tmp_path: Path) -> None:
    identity = lab_identity(KeyStore(built.directory / "keys"))
    with pytest.raises(NvsBuildError, match="EW-0001") as info:
        build_nvs(identity, tmp_path / "nvs.bin", size=0x1234)  # not a whole number of pages
    assert identity.hmac_key.hex() not in str(info.value)


def test_identity_constructs_directly() -> None:
    identity = DeviceIdentity("dev_1", bytes(32), bytes(16), bytes(32))
    assert identity.registry_entry() == {"device_id": "dev_1", "hmac_key": "00" * 32, "aes_key": "00" * 16}
