"""The build: skipped when nothing changed, redone when an input or output changes; keys reused."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from hil.cli import main
from hil.images.build import build_images
from hil.images.index import Index
from hil.images.keys import KEY_SPECS, KeyFileError, KeyStore

SMALL = 0x40000


def test_build_skip_rebuild_and_cli(small_out: Path, built: Index) -> None:
    """One build directory through its life: CLI build with keys kept elsewhere, no-op rebuild,
    tamper, size change."""
    keys_dir = small_out.parent / "shared-keys"
    (small_out / "keys").rename(keys_dir)
    args = ["images", "build", "--out", str(small_out), "--size", hex(SMALL), "--keys", str(keys_dir)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0
        assert main(args) == 0
        assert main(["images", "info", str(small_out / "app-v2.bin")]) == 0
        assert main(["images", "info", str(keys_dir / "fota-signing-key.pem")]) == 0
    text = out.getvalue()
    assert "built in" in text and "up to date" in text
    assert "MCUboot image: version 2.0.0+0" in text and "KEYHASH" in text and "hash valid" in text
    assert "RSA-2048 private key, fingerprint" in text and "BEGIN" not in text

    first = build_images(small_out, size=SMALL, keys_dir=keys_dir)
    assert first.skipped and first.generated_keys == ()
    assert not (small_out / "keys").exists()
    assert first.index.path("mcuboot-signing-key") == (keys_dir / "mcuboot-signing-key.pem").resolve()
    # keys were reused, not regenerated: same fingerprints as the session build they came from
    fingerprints = {n: first.index.get(n).fingerprint for n in KEY_SPECS}
    assert fingerprints == {n: built.get(n).fingerprint for n in KEY_SPECS}
    assert (keys_dir / "mcuboot-signing-key.pem").read_text().startswith("# TEST ONLY")

    (small_out / "variants" / "bitflip.bin").write_bytes(b"tampered")
    again = build_images(small_out, size=SMALL, keys_dir=keys_dir)
    assert not again.skipped
    assert again.index.get("bitflip").size == first.index.get("bitflip").size

    bigger = build_images(small_out, size=SMALL + 0x10000, keys_dir=keys_dir)
    assert not bigger.skipped
    assert bigger.index.get("app-v1").size > first.index.get("app-v1").size
    assert bigger.index.input_fingerprint != first.index.input_fingerprint


def test_missing_key_is_generated_and_reported(small_out: Path, built: Index) -> None:
    keys = KeyStore(small_out / "keys")
    (small_out / "keys" / "attacker-key.pem").unlink()
    assert keys.ensure() == ["attacker-key"]
    assert keys.fingerprint("attacker-key") != built.get("attacker-key").fingerprint
    assert keys.ensure() == []


def test_damaged_key_stops_the_build_and_is_kept(small_out: Path) -> None:
    path = small_out / "keys" / "fota-aes-key.hex"
    path.write_text("# TEST ONLY\nnot-hex\n")
    with pytest.raises(KeyFileError, match="fota-aes-key"):
        build_images(small_out, size=SMALL)
    assert path.read_text() == "# TEST ONLY\nnot-hex\n"


def test_keystore_derives_stable_device_keys(built: Index) -> None:
    keys = KeyStore(built.directory / "keys")
    hmac_key, aes_key = keys.device_keys("EW-0001")
    assert (len(hmac_key), len(aes_key)) == (32, 16)
    assert keys.device_keys("EW-0001") == (hmac_key, aes_key) != keys.device_keys("EW-0002")
    registry = json.loads((built.directory / "devices.json").read_text())
    assert registry["devices"] == [
        {"device_id": "EW-0001", "hmac_key": hmac_key.hex(), "aes_key": aes_key.hex()}]


def test_size_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="out of range"):
        build_images(tmp_path, size=0x150000)
