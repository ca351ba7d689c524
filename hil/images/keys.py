"""TEST ONLY keys: the MCUboot and FOTA signing keys, the FOTA AES key, an attacker's key, and the
master secret the test devices' HMAC/AES keys are derived from.

The keys are generated once and committed (``firmware_builds/keys/``) so every bench, CI run and
reference capture agrees on them. A key file that exists is always reused; a missing one is
generated and reported; a damaged one is an error, never silently replaced. Reports name keys by
fingerprint only (first 16 hex of a SHA-256), never by material.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TEST_ONLY_LINE = "# TEST ONLY key for the hil harness ({name}). Published on purpose: never use it on a real product."


@dataclass(frozen=True)
class KeySpec:
    """One key of the store: its file name, kind and (for secrets) length in bytes."""

    name: str
    kind: str  # "rsa-2048" | "secret"
    length: int = 0

    @property
    def filename(self) -> str:
        """File name inside the key directory."""
        return f"{self.name}.pem" if self.kind == "rsa-2048" else f"{self.name}.hex"


KEY_SPECS: dict[str, KeySpec] = {
    s.name: s
    for s in (
        KeySpec("mcuboot-signing-key", "rsa-2048"),  # imgtool signs images; bootloader trusts it
        KeySpec("fota-signing-key", "rsa-2048"),  # FOTA packager signs manifests; app trusts it
        KeySpec("attacker-key", "rsa-2048"),  # a valid key the device does not trust
        KeySpec("fota-aes-key", "secret", 32),  # AES-256-CBC key of FOTA packages
        KeySpec("device-master-key", "secret", 32),  # test devices' HMAC/AES keys derive from it
    )
}


class KeyFileError(RuntimeError):
    """A key file exists but cannot be used (damaged, wrong type or length)."""


def _read_hex(path: Path) -> bytes:
    lines = [ln.strip() for ln in path.read_text(encoding="ascii").splitlines()]
    body = "".join(ln for ln in lines if ln and not ln.startswith("#"))
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise KeyFileError(
            f"{path}: not a hex key file (expected '# comment' lines and hex); "
            "restore it from git rather than regenerating it"
        ) from None


def secret_fingerprint(secret: bytes) -> str:
    """Fingerprint of a symmetric key: first 16 hex of SHA-256 over a label and the key."""
    return hashlib.sha256(b"hil-key-fingerprint\0" + secret).hexdigest()[:16]


def rsa_public_der(public_key: rsa.RSAPublicKey) -> bytes:
    """DER ``RSAPublicKey`` (PKCS#1): the bytes imgtool hashes into KEYHASH and the bootloader holds."""
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)


def rsa_fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """First 16 hex of SHA-256 of the PKCS#1 public DER (= the start of imgtool's KEYHASH TLV)."""
    return hashlib.sha256(rsa_public_der(public_key)).hexdigest()[:16]


class KeyStore:
    """The TEST ONLY keys in one directory. Construction does no I/O; call ``ensure()`` first."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def path(self, name: str) -> Path:
        """Path of key ``name`` (one of ``KEY_SPECS``)."""
        return self.directory / self._spec(name).filename

    @staticmethod
    def _spec(name: str) -> KeySpec:
        try:
            return KEY_SPECS[name]
        except KeyError:
            raise KeyError(f"unknown key {name!r}: expected one of {sorted(KEY_SPECS)}") from None

    def ensure(self) -> list[str]:
        """Create the keys that are missing and check the present ones; return the names created."""
        self.directory.mkdir(parents=True, exist_ok=True)
        created = []
        for spec in KEY_SPECS.values():
            path = self.path(spec.name)
            if path.exists():
                self._load(spec)  # validates: a damaged committed key must stop the build
                continue
            if spec.kind == "rsa-2048":
                key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
                body = key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ).decode("ascii")
            else:
                body = os.urandom(spec.length).hex() + "\n"
            _write_new(path, TEST_ONLY_LINE.format(name=spec.name) + "\n" + body)
            created.append(spec.name)
        return created

    def _load(self, spec: KeySpec) -> bytes | rsa.RSAPrivateKey:
        return self._load_secret(spec) if spec.kind == "secret" else self._load_rsa(spec)

    def _load_secret(self, spec: KeySpec) -> bytes:
        path = self.path(spec.name)
        secret = _read_hex(path)
        if len(secret) != spec.length:
            raise KeyFileError(f"{path}: {len(secret)} bytes, expected {spec.length}")
        return secret

    def _load_rsa(self, spec: KeySpec) -> rsa.RSAPrivateKey:
        path = self.path(spec.name)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError as exc:
            raise KeyFileError(f"{path}: not a PEM private key ({exc}); restore it from git") from None
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != 2048:
            raise KeyFileError(f"{path}: expected an RSA-2048 private key")
        return key

    def rsa_private(self, name: str) -> rsa.RSAPrivateKey:
        """The RSA private key ``name`` (for the FOTA packager; imgtool reads the file itself)."""
        spec = self._spec(name)
        if spec.kind != "rsa-2048":
            raise KeyError(f"{name} is not an RSA key")
        return self._load_rsa(spec)

    def secret(self, name: str) -> bytes:
        """The symmetric key ``name`` as bytes."""
        spec = self._spec(name)
        if spec.kind != "secret":
            raise KeyError(f"{name} is not a symmetric key")
        return self._load_secret(spec)

    def public_der(self, name: str) -> bytes:
        """PKCS#1 DER of RSA key ``name``'s public half."""
        return rsa_public_der(self.rsa_private(name).public_key())

    def fingerprint(self, name: str) -> str:
        """Fingerprint of key ``name``, safe to print in logs and reports."""
        spec = self._spec(name)
        if spec.kind == "rsa-2048":
            return rsa_fingerprint(self.rsa_private(name).public_key())
        return secret_fingerprint(self.secret(name))

    def device_keys(self, device_id: str) -> tuple[bytes, bytes]:
        """(32-byte HMAC key, 16-byte AES key) of test device ``device_id``, derived with HKDF-SHA256
        from the device master key, so any number of test identities need no new key files."""
        master = self.secret("device-master-key")

        def derive(label: str, length: int) -> bytes:
            return HKDF(hashes.SHA256(), length, salt=None, info=f"hil {label} {device_id}".encode()).derive(master)

        return derive("hmac-key", 32), derive("aes-key", 16)


def _write_new(path: Path, text: str) -> None:
    """Create ``path`` exclusively: two builds racing must not both write a different key."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="ascii")
    try:
        os.link(tmp, path)  # fails if another process created it meanwhile: keep theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
