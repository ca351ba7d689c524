"""FOTA packages: build → load → decrypt as one stream → the signed image; manifest codec; firmware dirs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from helpers_images import payload_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hil.cli import main
from hil.images.app_keys import find_fota_public_key
from hil.images.build import _intact
from hil.images.fota import (FotaFormatError, FotaManifest, build_package, chunk_count, decrypt_stream, encrypt,
                             load_package, load_packages, parse_version, sha256_hex, verify_signature)
from hil.images.fota_build import PACKAGED, firmware_dir_with
from hil.images.index import Index
from hil.images.keys import KeyStore

KEY = bytes(range(32))  # TEST ONLY
IV = bytes(range(16, 32))
PLAIN = bytes(range(256)) * 19 + b"tail" * 34  # 5000 bytes: 5008 encrypted, 3 chunks


def _keys(built: Index) -> KeyStore:
    return KeyStore(built.directory / "keys")


def _decrypt(package, fota_key: bytes) -> bytes:
    stream = decrypt_stream(fota_key, bytes.fromhex(package.manifest.aes_iv))
    out = b"".join(stream.update(package.chunk(n)) for n in range(package.manifest.total_chunks))
    return out + stream.finalize()


@pytest.fixture
def small(tmp_path: Path, built: Index):
    """A package of PLAIN signed with the build's FOTA key."""
    return build_package(PLAIN, "3.1.4", out_dir=tmp_path / "fw", iv=IV, fota_key=KEY,
                         signing_key_pem=_keys(built).path("fota-signing-key").read_bytes())


def test_build_indexes_a_package_per_packaged_image(built: Index) -> None:
    rows = {a.name: a for a in built.by_role("fota-package")}
    assert set(rows) == {f"fota-{n}" for n in PACKAGED}
    for name in PACKAGED:
        row = rows[f"fota-{name}"]
        assert row.version == built.get(name).version
        assert row.path == f"fota/{name}/{row.version}/manifest.json"
        assert load_package(built.directory / Path(row.path).parent).manifest.version == row.version


@pytest.mark.parametrize("name", ["app-v2", "selftest-fail", "other-key"])
def test_package_round_trip_to_the_signed_image(built: Index, name: str) -> None:
    package = load_package(built.directory / "fota" / name / built.get(name).version)
    plaintext = _decrypt(package, _keys(built).secret("fota-aes-key"))
    assert plaintext == built.path(name).read_bytes()
    assert package.manifest.file_size == len(plaintext)
    assert sha256_hex(plaintext) == package.manifest.sha256_hash
    # The running v1 app verifies with the key it carries, as the device does.
    trusted = find_fota_public_key(payload_of(built.path("app-v1").read_bytes()))
    signature = bytes.fromhex(package.manifest.rsa_signature)
    assert verify_signature(plaintext, signature, trusted)
    assert verify_signature(bytes.fromhex(package.manifest.sha256_hash), signature, trusted, prehashed=True)
    assert not verify_signature(plaintext[:-1] + bytes([plaintext[-1] ^ 1]), signature, trusted)


def test_signature_does_not_verify_under_another_key(built: Index, small) -> None:
    attacker = _keys(built).rsa_private("attacker-key").public_key()
    pem = attacker.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert not verify_signature(_decrypt(small, KEY), bytes.fromhex(small.manifest.rsa_signature), pem)
    with pytest.raises(FotaFormatError, match="PEM"):
        verify_signature(b"x", b"y", b"not a key")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_openssl_decrypts_the_ciphertext(small) -> None:
    proc = subprocess.run(["openssl", "enc", "-d", "-aes-256-cbc", "-K", KEY.hex(), "-iv", IV.hex(),
                           "-in", str(small.ciphertext_path)], capture_output=True, timeout=30, check=True)
    assert proc.stdout == PLAIN


def test_small_package_layout_and_chunks(small) -> None:
    m = small.manifest
    assert (m.file_size, m.chunk_size, m.total_chunks, m.aes_iv) == (5000, 2048, 3, IV.hex())
    assert small.ciphertext_path.name == "firmware-3.1.4.bin.enc"
    assert list(json.loads((small.directory / "manifest.json").read_text())) == list(m.to_dict())
    cipher = small.read_ciphertext()
    assert len(cipher) == 5008 and cipher == encrypt(PLAIN, KEY, IV)
    assert [len(small.chunk(n)) for n in range(3)] == [2048, 2048, 912]
    with pytest.raises(IndexError):
        small.chunk(3)
    with pytest.raises(IndexError):
        small.chunk(-1)
    assert chunk_count(5008, 2048) == 3 and chunk_count(4096, 2048) == 2 and chunk_count(0, 2048) == 0


def test_decrypt_stream_refuses_bad_padding_and_partial_blocks(small) -> None:
    cipher = small.read_ciphertext()
    short = decrypt_stream(KEY, IV)
    short.update(cipher[:-1])
    with pytest.raises(FotaFormatError, match="PKCS7"):
        short.finalize()
    # A last block that decrypts to a zero pad byte: built from the raw CBC of a crafted block.
    enc = Cipher(algorithms.AES(KEY), modes.CBC(IV)).encryptor()
    bad = enc.update(b"A" * 15 + b"\0") + enc.finalize()
    stream = decrypt_stream(KEY, IV)
    assert stream.update(bad) == b""  # the last block is held back: it carries the padding
    with pytest.raises(FotaFormatError):
        stream.finalize()
    with pytest.raises(FotaFormatError, match="32-byte key"):
        decrypt_stream(KEY[:16], IV)


def test_load_package_names_what_is_broken(small, tmp_path: Path) -> None:
    broken = tmp_path / "broken" / "3.1.4"
    shutil.copytree(small.directory, broken)
    (broken / small.manifest.file_name).write_bytes(b"short")
    with pytest.raises(FotaFormatError, match=r"broken/3\.1\.4.*5 bytes.*5008"):
        load_package(broken)
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(FotaFormatError, match="not UTF-8 JSON"):
        load_package(broken)
    (broken / "manifest.json").unlink()
    with pytest.raises(FotaFormatError, match="cannot read manifest.json"):
        load_package(broken)
    misnamed = tmp_path / "misnamed"
    shutil.copytree(small.directory, misnamed / "9.9.9")
    with pytest.raises(FotaFormatError, match="does not match the directory"):
        load_packages(misnamed)
    with pytest.raises(FotaFormatError, match="not a directory"):
        load_packages(tmp_path / "nowhere")
    assert set(load_packages(small.directory.parent)) == {"3.1.4"}


def test_parse_version() -> None:
    assert parse_version("2.0.0") == (2, 0, 0) and parse_version("10.20.300") > parse_version("9.99.999")
    for bad in ("2.0", "2.0.0.1", "02.0.0", "v2.0.0", " 2.0.0", "2.0.0-rc1", "٢.0.0", 2, None, ["2.0.0"]):
        with pytest.raises(FotaFormatError, match="semantic version"):
            parse_version(bad)


def _valid(small) -> dict:
    return small.manifest.to_dict()


@pytest.mark.parametrize("field,value,why", [
    ("version", "1.0", "semantic version"), ("file_name", "../x", "file_name"), ("file_name", 7, "file_name must be str"),
    ("file_size", 0, "file_size must be"), ("file_size", True, "file_size must be int"),
    ("chunk_size", 2048.0, "chunk_size must be int"), ("total_chunks", 4, "total_chunks is 4"),
    ("sha256_hash", "AB" * 32, "sha256_hash must be 64 lowercase hex"), ("rsa_signature", "00" * 255, "rsa_signature"),
    ("aes_iv", "zz" * 16, "aes_iv"), ("created_at", "2026-13-01T00:00:00Z", "created_at"),
    ("created_at", "2026-01-01 00:00:00", "created_at"),
])
def test_manifest_field_errors_name_the_field(small, field: str, value, why: str) -> None:
    doc = {**_valid(small), field: value}
    with pytest.raises(FotaFormatError, match=why):
        FotaManifest.from_dict(doc)
    missing = {k: v for k, v in _valid(small).items() if k != field}
    with pytest.raises(FotaFormatError, match=f"no '{field}'"):
        FotaManifest.from_dict(missing)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=4),
                     max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_json, field=st.sampled_from(list(FotaManifest.__dataclass_fields__)), value=_json)
def test_from_dict_raises_only_fota_format_error(small, doc, field: str, value) -> None:
    for candidate in (doc, {**_valid(small), field: value}):
        try:
            parsed = FotaManifest.from_dict(candidate)
        except FotaFormatError:
            continue
        assert FotaManifest.from_dict(parsed.to_dict()) == parsed


def test_firmware_dir_with_links_exactly_the_asked_packages(built: Index, tmp_path: Path) -> None:
    dest = firmware_dir_with(built, ["app-v2", "fota-downgrade"], tmp_path / "fw")
    assert sorted(p.name for p in dest.iterdir()) == ["0.9.0", "2.0.0"]
    packages = load_packages(dest)
    assert packages["2.0.0"].directory.resolve() == (built.directory / "fota" / "app-v2" / "2.0.0").resolve()
    with pytest.raises(ValueError, match="both version 2.0.0"):
        firmware_dir_with(built.directory, ["app-v2", "selftest-fail"], tmp_path / "fw2")
    with pytest.raises(KeyError, match="no FOTA package 'fota-bitflip'"):
        firmware_dir_with(built, ["bitflip"], tmp_path / "fw3")
    with pytest.raises(FileExistsError):
        firmware_dir_with(built, ["app-v2"], dest)


def test_cli_fota_packages_a_signed_image(built: Index, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    keys = str(built.directory / "keys")
    image = str(built.path("app-v2"))
    assert main(["images", "fota", "--image", image, "--version", "2.0.0", "--out", str(tmp_path), "--keys", keys]) == 0
    package = load_package(tmp_path / "2.0.0")
    assert _decrypt(package, _keys(built).secret("fota-aes-key")) == built.path("app-v2").read_bytes()
    assert main(["images", "fota", "--image", image, "--version", "3.0.0", "--out", str(tmp_path), "--keys", keys]) == 2
    assert "header says 2.0.0" in capsys.readouterr().out
    payload = str(built.directory / "payloads" / "ecowatt-2.0.0.bin")
    assert main(["images", "fota", "--image", payload, "--version", "2.0.0", "--out", str(tmp_path), "--keys", keys]) == 2
    out = capsys.readouterr().out
    assert "not an MCUboot image" in out and _keys(built).secret("fota-aes-key").hex() not in out


def test_a_cut_package_ciphertext_makes_the_build_stale(built: Index, tmp_path: Path) -> None:
    copy = tmp_path / "fb"
    shutil.copytree(built.directory, copy, symlinks=True)
    fingerprint = built.input_fingerprint
    assert _intact(copy, fingerprint) is not None  # the copy is up to date: a build would be skipped
    package = load_package(copy / "fota" / "app-v2" / "2.0.0")
    package.ciphertext_path.write_bytes(package.read_ciphertext()[:-16])
    assert _intact(copy, fingerprint) is None  # the manifest is unchanged, the ciphertext is not
