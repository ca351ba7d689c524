"""The ``ecowatt-fw134`` view of a FOTA package: what that format's ``/ota/check`` offers.

EcoWatt firmware 1.3.4 (``reference/ecowatt-fw134-wire.md``, "Firmware over the air") downloads the
same ciphertext as PROTOCOL.md — AES-256-CBC(FOTA key, iv, PKCS7(image)) in 2048-byte chunks — but
learns the IV as base64 and checks an RSASSA-PKCS1-v1_5 (SHA-256) signature over the image's digest
instead of the manifest's PSS signature. So no second on-disk format: the view is built from a loaded
:class:`~hil.images.fota.FotaPackage` and the FOTA signing key (signing the manifest's digest, which
needs no decryption), once, when the server starts.

Documented deviation: the plaintext is the image the ``ecowatt-api`` profile ships (the MCUboot-signed
app image the virtual board's boot chain installs), not the public firmware's bare ESP-IDF app image
(first byte 0xE9, written with the Arduino ``Update`` API).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from hil.images.fota import SIGNATURE_BYTES, FotaFormatError, FotaPackage, parse_version, verify_signature

SIGNATURE_SCHEME = "rsassa-pkcs1v15-sha256"  # over the image's SHA-256 digest


def sign_digest(digest: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """RSASSA-PKCS1-v1_5 SHA-256 signature of the image whose SHA-256 is *digest* (= over the image)."""
    return private_key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))


def verify_digest(digest: bytes, signature: bytes, public_key: rsa.RSAPublicKey) -> bool:
    """True iff *signature* is the fw134 signature of the image whose SHA-256 is *digest*."""
    try:
        public_key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def load_signing_key(path: Path) -> rsa.RSAPrivateKey:
    """The FOTA RSA-2048 signing key at *path*; FotaFormatError naming the file (never its content)."""
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as exc:
        raise FotaFormatError(f"FOTA signing key {path}: cannot read it ({exc.strerror})") from None
    except (ValueError, TypeError):
        raise FotaFormatError(f"FOTA signing key {path}: not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != SIGNATURE_BYTES * 8:
        raise FotaFormatError(f"FOTA signing key {path}: expected an RSA-2048 private key")
    return key


@dataclass(frozen=True)
class Fw134Package:
    """One package as fw134 serves it; ``signature`` is PKCS#1 v1.5 over the plaintext's digest."""

    package: FotaPackage
    signature: bytes = field(repr=False)

    @property
    def version(self) -> str:
        """The package's version."""
        return self.package.manifest.version

    @property
    def total_chunks(self) -> int:
        """Chunks of ``chunk_size`` bytes the ciphertext is served in."""
        return self.package.manifest.total_chunks

    def chunk(self, n: int) -> bytes:
        """Ciphertext chunk *n* (IndexError outside ``0..total_chunks-1``)."""
        return self.package.chunk(n)

    def update_info(
        self, current_version: str, *, sha256_hash: str | None = None, signature: bytes | None = None
    ) -> dict[str, Any]:
        """The check reply's ``update_info``, in the reference's field order; *sha256_hash* and
        *signature* replace the true ones (the server's faults)."""
        m = self.package.manifest
        return {
            "latest_version": m.version,
            "current_version": current_version,
            "original_size": m.file_size,
            "encrypted_size": m.cipher_size,
            "firmware_size": m.file_size,
            "sha256_hash": m.sha256_hash if sha256_hash is None else sha256_hash,
            "signature": base64.b64encode(self.signature if signature is None else signature).decode("ascii"),
            "iv": base64.b64encode(bytes.fromhex(m.aes_iv)).decode("ascii"),
            "chunk_size": m.chunk_size,
            "total_chunks": m.total_chunks,
            "release_notes": f"EcoWatt firmware {m.version}",
        }


def fw134_package(package: FotaPackage, signing_key: rsa.RSAPrivateKey, *, key_path: Path | str) -> Fw134Package:
    """The fw134 view of *package*, signed with *signing_key* — which must be the key the package was
    built with (its PSS signature must verify), or the board would be offered an update it rejects."""
    digest = bytes.fromhex(package.manifest.sha256_hash)
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if not verify_signature(digest, bytes.fromhex(package.manifest.rsa_signature), public_pem, prehashed=True):
        raise FotaFormatError(
            f"FOTA package {package.directory}: its signature does not verify with the FOTA signing key "
            f"{key_path}; give the key the packages were built with (firmware_builds/keys/fota-signing-key.pem)"
        )
    return Fw134Package(package, sign_digest(digest, signing_key))


def fw134_packages(packages: Mapping[str, FotaPackage], signing_key_path: Path) -> dict[str, Fw134Package]:
    """The fw134 view of every package, newest last (FotaFormatError for an unusable key)."""
    key = load_signing_key(signing_key_path)
    ordered = sorted(packages, key=parse_version)
    return {v: fw134_package(packages[v], key, key_path=signing_key_path) for v in ordered}
