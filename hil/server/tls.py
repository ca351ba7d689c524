"""TEST ONLY PKI for the reference server: a test CA and a server certificate for 127.0.0.1/localhost
(and the address boards reach the server at, given in ``names``), plus an unrelated "MITM" CA and
certificate (same names) for interception scenarios.

Keys are ECDSA P-256 (what mbedTLS on an ESP32 handles fast). Nothing here is fit for production:
every subject carries "hil TEST ONLY".
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ORGANISATION = "hil TEST ONLY"
SERVER_NAMES = ("localhost", "127.0.0.1", "::1")
VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True)
class CertPair:
    """A PEM certificate and its private key file."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class TestPki:
    """Paths of a generated PKI: the trusted CA and server pair, and the unrelated MITM ones."""

    __test__ = False  # not a pytest test class despite the name

    ca_cert: Path
    server: CertPair
    mitm_ca_cert: Path
    mitm_server: CertPair


def generate_test_pki(directory: Path, *, names: tuple[str, ...] = SERVER_NAMES) -> TestPki:
    """Write ``ca.pem``, ``server.pem``/``server.key``, ``mitm-ca.pem``, ``mitm-server.pem``/``.key`` into *directory*.

    Overwrites existing files. Key files are created with mode 0600.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    real = _issue_chain(directory, "", "hil TEST ONLY CA", names)
    mitm = _issue_chain(directory, "mitm-", "hil TEST ONLY MITM CA", names)
    return TestPki(ca_cert=real[0], server=real[1], mitm_ca_cert=mitm[0], mitm_server=mitm[1])


def _issue_chain(directory: Path, prefix: str, ca_name: str, names: tuple[str, ...]) -> tuple[Path, CertPair]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_subject = subject_name(ca_name)
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)  # tolerate small clock skew
    ca_cert = (
        _builder(ca_subject, ca_subject, ca_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        _builder(subject_name(names[0]), ca_subject, server_key.public_key(), now)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([general_name(n) for n in names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / f"{prefix}ca.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pair = CertPair(directory / f"{prefix}server.pem", directory / f"{prefix}server.key")
    pair.cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    write_private(
        pair.key,
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    return ca_path, pair


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, not_before: dt.datetime
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + VALIDITY)
    )


def subject_name(common_name: str) -> x509.Name:
    """A TEST ONLY subject: the harness's organisation and *common_name*."""
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def general_name(name: str) -> x509.GeneralName:
    """A subjectAltName entry: an IP address when *name* is one, else a DNS name."""
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def write_private(path: Path, data: bytes) -> None:
    """Write key material to *path*, readable by its owner only."""
    # Create with 0600 from the start: no window in which the key is world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
