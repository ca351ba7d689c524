"""FOTA packages (PROTOCOL.md "Firmware over the air"): manifest codec, packaging and the crypto
helpers the server, the device model and the tests share.

A package is a directory ``<version>/`` holding ``manifest.json`` and ``firmware-<version>.bin.enc``
= AES-256-CBC(fota_key, aes_iv, PKCS7(plaintext)); the plaintext is the MCUboot-signed image, the
manifest carries its SHA-256 and an RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32) signature over it.
Nothing here logs, and no error message contains key material.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.asymmetric import rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MANIFEST_FILE = "manifest.json"
CHUNK_SIZE = 2048
AES_BLOCK = 16
FOTA_KEY_BYTES = 32
SIGNATURE_BYTES = 256  # RSA-2048
PSS_SALT_BYTES = 32
MAX_FIRMWARE_BYTES = 16 * 1024 * 1024  # the largest ESP32 flash: nothing bigger can be an update
MAX_CHUNK_SIZE = 64 * 1024
_VERSION = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
_FILE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")  # no path separators: the server joins it
_CREATED_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


class FotaFormatError(ValueError):
    """A manifest, package or ciphertext that violates the FOTA format; the message names what."""


def parse_version(version: object) -> tuple[int, int, int]:
    """``"2.0.0"`` → ``(2, 0, 0)``; anything but a semantic x.y.z string is a FotaFormatError."""
    match = _VERSION.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        shown = repr(version[:40]) if isinstance(version, str) else f"of type {type(version).__name__}"
        raise FotaFormatError(f"version {shown} is not a semantic version x.y.z (decimal, no leading zeros)")
    return (int(match[1]), int(match[2]), int(match[3]))


def padded_size(plaintext_size: int) -> int:
    """Ciphertext size of a PKCS7-padded plaintext (always at least one byte of padding)."""
    return (plaintext_size // AES_BLOCK + 1) * AES_BLOCK


def chunk_count(cipher_len: int, chunk_size: int = CHUNK_SIZE) -> int:
    """How many chunks of ``chunk_size`` carry ``cipher_len`` bytes (the last may be short)."""
    if chunk_size <= 0 or cipher_len < 0:
        raise ValueError(f"chunk_count({cipher_len}, {chunk_size}): need cipher_len >= 0, chunk_size > 0")
    return math.ceil(cipher_len / chunk_size)


def sha256_hex(data: bytes) -> str:
    """Lowercase hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _pss() -> asym_padding.PSS:
    return asym_padding.PSS(asym_padding.MGF1(hashes.SHA256()), PSS_SALT_BYTES)


def sign_plaintext(plaintext_or_digest: bytes, private_key: rsa.RSAPrivateKey, *, prehashed: bool = False) -> bytes:
    """RSASSA-PSS signature over the plaintext (or over its SHA-256 ``digest`` when ``prehashed``:
    the same signature, for a signer that holds only the manifest, like the server's faults)."""
    algorithm = utils.Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
    return private_key.sign(plaintext_or_digest, _pss(), algorithm)


def verify_signature(
    plaintext_or_digest: bytes, signature: bytes, public_key_pem: bytes, *, prehashed: bool = False
) -> bool:
    """True iff ``signature`` is the FOTA PSS signature of the plaintext (or of the 32-byte SHA-256
    digest when ``prehashed``) under ``public_key_pem``. A malformed key is a FotaFormatError."""
    try:
        key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, TypeError):
        raise FotaFormatError("FOTA public key is not a PEM SubjectPublicKeyInfo") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise FotaFormatError(f"FOTA public key is {type(key).__name__}, expected RSA")
    if prehashed and len(plaintext_or_digest) != hashlib.sha256().digest_size:
        return False
    algorithm = utils.Prehashed(hashes.SHA256()) if prehashed else hashes.SHA256()
    try:
        key.verify(signature, plaintext_or_digest, _pss(), algorithm)
    except InvalidSignature:
        return False
    return True


class DecryptStream:
    """AES-256-CBC decryption of a ciphertext fed in pieces (chunks), PKCS7 removed at :meth:`finalize`.

    ``update`` may return fewer bytes than it was given: the last block is held back until the end
    because it carries the padding.
    """

    def __init__(self, fota_key: bytes, iv: bytes) -> None:
        if len(fota_key) != FOTA_KEY_BYTES or len(iv) != AES_BLOCK:
            raise FotaFormatError(
                f"AES-256-CBC needs a {FOTA_KEY_BYTES}-byte key and a {AES_BLOCK}-byte IV "
                f"(got {len(fota_key)} and {len(iv)} bytes)"
            )
        self._decryptor = Cipher(algorithms.AES(fota_key), modes.CBC(iv)).decryptor()
        self._unpadder = padding.PKCS7(AES_BLOCK * 8).unpadder()

    def update(self, chunk: bytes) -> bytes:
        """Plaintext available after ``chunk``."""
        return self._unpadder.update(self._decryptor.update(chunk))

    def finalize(self) -> bytes:
        """The rest of the plaintext; FotaFormatError on a partial block or bad padding."""
        try:
            tail = self._decryptor.finalize()
            return self._unpadder.update(tail) + self._unpadder.finalize()
        except ValueError:
            raise FotaFormatError(
                "ciphertext does not decrypt to PKCS7-padded data (wrong key/IV, corrupt or truncated ciphertext)"
            ) from None


def decrypt_stream(fota_key: bytes, iv: bytes) -> DecryptStream:
    """A :class:`DecryptStream` for one package (``iv`` = ``bytes.fromhex(manifest.aes_iv)``)."""
    return DecryptStream(fota_key, iv)


def encrypt(plaintext: bytes, fota_key: bytes, iv: bytes) -> bytes:
    """AES-256-CBC(fota_key, iv, PKCS7(plaintext))."""
    if len(fota_key) != FOTA_KEY_BYTES or len(iv) != AES_BLOCK:
        raise ValueError(f"AES-256-CBC needs a {FOTA_KEY_BYTES}-byte key and a {AES_BLOCK}-byte IV")
    padder = padding.PKCS7(AES_BLOCK * 8).padder()
    encryptor = Cipher(algorithms.AES(fota_key), modes.CBC(iv)).encryptor()
    return encryptor.update(padder.update(plaintext) + padder.finalize()) + encryptor.finalize()


def _utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class FotaManifest:
    """The manifest of one package, in PROTOCOL.md field order."""

    version: str
    file_name: str
    file_size: int
    chunk_size: int
    total_chunks: int
    sha256_hash: str
    rsa_signature: str
    aes_iv: str
    created_at: str

    @property
    def cipher_size(self) -> int:
        """Size of the encrypted file."""
        return padded_size(self.file_size)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, fields in PROTOCOL.md order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, doc: object) -> FotaManifest:
        """Validate an untrusted manifest; every defect is a FotaFormatError naming the field."""
        if not isinstance(doc, Mapping):
            raise FotaFormatError(f"manifest must be a JSON object, not {type(doc).__name__}")
        parse_version(_field(doc, "version", str))
        file_name = _field(doc, "file_name", str)
        if not _FILE_NAME.fullmatch(file_name):
            raise FotaFormatError("manifest file_name must be 1-128 chars of [A-Za-z0-9._-], not starting with '.'")
        file_size = _int_field(doc, "file_size", 1, MAX_FIRMWARE_BYTES)
        chunk_size = _int_field(doc, "chunk_size", AES_BLOCK, MAX_CHUNK_SIZE)
        expected = chunk_count(padded_size(file_size), chunk_size)
        total = _int_field(doc, "total_chunks", 1, 2**31)
        if total != expected:
            raise FotaFormatError(
                f"manifest total_chunks is {total}, but file_size {file_size} encrypts to "
                f"{padded_size(file_size)} bytes = {expected} chunks of {chunk_size}"
            )
        _hex_field(doc, "sha256_hash", 32)
        _hex_field(doc, "rsa_signature", SIGNATURE_BYTES)
        _hex_field(doc, "aes_iv", AES_BLOCK)
        created = _field(doc, "created_at", str)
        if not _CREATED_AT.fullmatch(created) or not _valid_time(created):
            raise FotaFormatError("manifest created_at must be ISO-8601 UTC like 2026-11-21T10:30:45Z")
        return cls(**{f.name: doc[f.name] for f in fields(cls)})


def _field(doc: Mapping, name: str, kind: type) -> Any:
    if name not in doc:
        raise FotaFormatError(f"manifest has no {name!r}")
    value = doc[name]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise FotaFormatError(f"manifest {name} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _int_field(doc: Mapping, name: str, low: int, high: int) -> int:
    value = _field(doc, name, int)
    if not low <= value <= high:
        raise FotaFormatError(f"manifest {name} must be {low}..{high}")
    return value


def _hex_field(doc: Mapping, name: str, size: int) -> None:
    value = _field(doc, name, str)
    if not re.fullmatch(f"[0-9a-f]{{{2 * size}}}", value):
        raise FotaFormatError(f"manifest {name} must be {2 * size} lowercase hex digits ({size} bytes)")


def _valid_time(text: str) -> bool:
    try:
        _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class FotaPackage:
    """A package on disk: its manifest and ``directory``; the ciphertext is read on demand."""

    manifest: FotaManifest
    directory: Path

    @property
    def ciphertext_path(self) -> Path:
        """The encrypted firmware file."""
        return self.directory / self.manifest.file_name

    def read_ciphertext(self) -> bytes:
        """The whole encrypted file."""
        return self.ciphertext_path.read_bytes()

    def chunk(self, n: int) -> bytes:
        """Chunk ``n`` (0-based) of the ciphertext; IndexError outside ``0..total_chunks-1``."""
        m = self.manifest
        if not 0 <= n < m.total_chunks:
            raise IndexError(f"chunk {n} of {m.version}: the package has chunks 0..{m.total_chunks - 1}")
        with self.ciphertext_path.open("rb") as f:
            f.seek(n * m.chunk_size)
            return f.read(m.chunk_size)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build_package(
    plaintext: bytes,
    version: str,
    *,
    signing_key_pem: bytes,
    fota_key: bytes,
    out_dir: Path,
    iv: bytes | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> FotaPackage:
    """Encrypt and sign ``plaintext`` (an MCUboot-signed image) as ``out_dir/<version>/``.

    The ciphertext is written before the manifest, each atomically, so a reader that finds a
    manifest finds its file complete. ``iv`` defaults to 16 random bytes.
    """
    parse_version(version)
    if not 1 <= len(plaintext) <= MAX_FIRMWARE_BYTES:
        raise ValueError(f"firmware {version}: {len(plaintext)} bytes, expected 1..{MAX_FIRMWARE_BYTES}")
    key = serialization.load_pem_private_key(signing_key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != SIGNATURE_BYTES * 8:
        raise ValueError("FOTA signing key must be an RSA-2048 private key (PEM)")
    iv = os.urandom(AES_BLOCK) if iv is None else iv
    ciphertext = encrypt(plaintext, fota_key, iv)
    manifest = FotaManifest(
        version=version,
        file_name=f"firmware-{version}.bin.enc",
        file_size=len(plaintext),
        chunk_size=chunk_size,
        total_chunks=chunk_count(len(ciphertext), chunk_size),
        sha256_hash=sha256_hex(plaintext),
        rsa_signature=sign_plaintext(plaintext, key).hex(),
        aes_iv=iv.hex(),
        created_at=_utc_now(),
    )
    FotaManifest.from_dict(manifest.to_dict())  # what we write must be what every reader accepts
    directory = Path(out_dir) / version
    directory.mkdir(parents=True, exist_ok=True)
    _write_atomic(directory / manifest.file_name, ciphertext)
    _write_atomic(directory / MANIFEST_FILE, (json.dumps(manifest.to_dict(), indent=2) + "\n").encode())
    return FotaPackage(manifest, directory)


def load_package(directory: Path | str) -> FotaPackage:
    """Read and validate ``directory/manifest.json`` and check the ciphertext file's size."""
    directory = Path(directory)
    try:
        doc = json.loads((directory / MANIFEST_FILE).read_bytes())
    except OSError as exc:
        raise FotaFormatError(f"FOTA package {directory}: cannot read {MANIFEST_FILE} ({exc.strerror})") from None
    except ValueError:
        raise FotaFormatError(f"FOTA package {directory}: {MANIFEST_FILE} is not UTF-8 JSON") from None
    try:
        manifest = FotaManifest.from_dict(doc)
    except FotaFormatError as exc:
        raise FotaFormatError(f"FOTA package {directory}: {exc}; rebuild it with `hil images fota`") from None
    path = directory / manifest.file_name
    size = path.stat().st_size if path.is_file() else None
    if size != manifest.cipher_size:
        raise FotaFormatError(
            f"FOTA package {directory}: {manifest.file_name} is "
            f"{'missing' if size is None else f'{size} bytes'}, the manifest needs "
            f"{manifest.cipher_size}; rebuild it with `hil images fota`"
        )
    return FotaPackage(manifest, directory)


def load_packages(firmware_dir: Path | str) -> dict[str, FotaPackage]:
    """Every package ``firmware_dir/<version>/``, keyed by version (the directory name must match)."""
    firmware_dir = Path(firmware_dir)
    if not firmware_dir.is_dir():
        raise FotaFormatError(
            f"firmware dir {firmware_dir} is not a directory: build packages with "
            "`hil images build` (they land in <out>/fota/) or `hil images fota`"
        )
    packages: dict[str, FotaPackage] = {}
    for sub in sorted(p for p in firmware_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        package = load_package(sub)
        if package.manifest.version != sub.name:
            raise FotaFormatError(
                f"FOTA package {sub}: manifest version {package.manifest.version} does not "
                f"match the directory name; the server routes by directory"
            )
        packages[sub.name] = package
    return packages
