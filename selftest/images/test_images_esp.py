"""ESP32 app and bootloader images: esptool (the peer) must call them valid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from helpers_images import esptool_image_info, payload_of

from hil.images.app_desc import AppDesc, find_app_desc
from hil.images.app_keys import find_fota_public_key
from hil.images.bootloader_key import find_key_block
from hil.images.esp_image import (MIN_APP_SIZE, build_app_image, build_bootloader_image,
                                  check_esp_image, code_like, compress_ratio)
from hil.images.index import Index
from hil.images.keys import KeyStore


def _footer_valid(text: str) -> tuple[bool, bool]:
    checksum = re.search(r"^Checksum: 0x[0-9a-f]+ \((.+)\)$", text, re.M)
    digest = re.search(r"^Validation hash: [0-9a-f]{64} \((.+)\)$", text, re.M)
    assert checksum and digest, f"esptool image-info output not understood:\n{text}"
    return checksum.group(1) == "valid", digest.group(1) == "valid"


@pytest.mark.parametrize("name,version", [("app-v1", "1.0.0"), ("app-v2", "2.0.0")])
def test_esptool_calls_signed_app_payload_valid(built: Index, tmp_path: Path, name: str,
                                                version: str) -> None:
    payload = tmp_path / f"{name}.esp.bin"
    payload.write_bytes(payload_of(built.path(name).read_bytes()))
    text = esptool_image_info(payload)
    assert _footer_valid(text) == (True, True)
    assert re.search(rf"^App version: {re.escape(version)}$", text, re.M)
    assert re.search(r"^Project name: ecowatt$", text, re.M)
    assert "Chip ID: 0 (ESP32)" in text


def test_esptool_calls_bootloader_valid(built: Index) -> None:
    text = esptool_image_info(built.path("bootloader"))
    assert _footer_valid(text) == (True, True)
    assert "Bootloader Information" in text


def test_esptool_notices_corruption(built: Index, tmp_path: Path) -> None:
    """Negative control: the text parsing above can fail."""
    payload = bytearray(payload_of(built.path("app-v1").read_bytes()))
    payload[0x30000] ^= 0x10  # inside the DROM segment
    bad = tmp_path / "bad.bin"
    bad.write_bytes(payload)
    assert _footer_valid(esptool_image_info(bad)) == (False, False)


def test_default_app_is_about_one_mib_and_code_like(built: Index) -> None:
    payload = payload_of(built.path("app-v1").read_bytes())
    assert 0xF0000 <= len(payload) <= 0x100000
    assert 0.4 <= compress_ratio(payload) <= 0.7
    assert find_app_desc(payload) == AppDesc("1.0.0", "ecowatt")


def test_app_carries_the_fota_public_key(built: Index) -> None:
    pem = find_fota_public_key(payload_of(built.path("app-v2").read_bytes()))
    assert pem is not None
    ours = KeyStore(built.directory / "keys").rsa_private("fota-signing-key").public_key()
    assert serialization.load_pem_public_key(pem).public_numbers() == ours.public_numbers()
    assert find_fota_public_key(b"no key here") is None


def test_c6_image_carries_chip_id_13(tmp_path: Path) -> None:
    image = tmp_path / "c6.bin"
    image.write_bytes(build_app_image(AppDesc("1.0.0", "ecowatt"), "esp32c6", MIN_APP_SIZE))
    text = esptool_image_info(image)
    assert "Chip ID: 13 (ESP32-C6)" in text
    assert _footer_valid(text) == (True, True)
    assert re.search(r"^App version: 1\.0\.0$", text, re.M)


def test_app_image_is_deterministic_and_sized() -> None:
    desc = AppDesc("1.0.0", "ecowatt")
    a = build_app_image(desc, "esp32", 0x50001)
    assert a == build_app_image(desc, "esp32", 0x50001)
    assert 0x50001 - 16 <= len(a) <= 0x50001
    assert a != build_app_image(AppDesc("2.0.0", "ecowatt"), "esp32", 0x50001)
    check = check_esp_image(a)
    assert (check.checksum_valid, check.hash_valid, check.app_desc) == (True, True, desc)


def test_too_small_app_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        build_app_image(AppDesc("1.0.0", "ecowatt"), "esp32", MIN_APP_SIZE - 4)


def test_code_like_is_deterministic_per_seed() -> None:
    assert code_like(4096, b"a") == code_like(4096, b"a") != code_like(4096, b"b")
    assert len(code_like(4099, b"a")) == 4099


def test_bootloader_holds_key_block() -> None:
    der = bytes(range(256)) + b"tail"
    image = build_bootloader_image(der)
    assert find_key_block(image) == der
    assert check_esp_image(image).hash_valid


def test_check_esp_image_rejects_non_images() -> None:
    with pytest.raises(ValueError, match="not a valid esp32 image"):
        check_esp_image(b"\xff" * 64)
