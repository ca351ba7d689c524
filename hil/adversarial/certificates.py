"""TEST ONLY adversarial server certificates: chains that are valid but wrong in exactly one way each
(host name, validity period, usage, issuer), and one control chain that is right in every way.

Each case is the control with one thing changed, so a client that refuses a case can only have
refused it for that thing, and one that accepts it is missing exactly that check. A case is data
that prints itself (:func:`format_cases`, ``python -m hil.adversarial.certificates``): its name, what
is wrong, what a correct TLS client must do (refuse; accept the control) and the error OpenSSL's
verifier reports first (``openssl verify -CAfile ca.pem -untrusted intermediates.pem -purpose
sslserver -verify_hostname HOST leaf.pem``, checked in ``selftest/adversarial``). The control chain is
what real servers present: leaf, then an intermediate CA, rooted at the CA the client trusts.

:func:`generate_certificate_set` writes the set into a directory (EC P-256 keys, some 30 ms
in all; the CA keys are never written): ``ca.pem``, the one CA a client must trust, and per case
``<name>/chain.pem`` (leaf then intermediates: what a server presents), ``<name>/key.pem`` (0600),
``<name>/leaf.pem`` and ``<name>/intermediates.pem`` (what a verifier is given). Nothing here is fit
for production: every subject carries "hil TEST ONLY".
"""

from __future__ import annotations

import argparse
import datetime as dt
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from hil.server.tls import SERVER_NAMES, CertPair, general_name, subject_name, write_private

CLOCK_SKEW = dt.timedelta(minutes=5)  # the control starts this early: a client clock a little behind accepts it
LEAF_VALIDITY = dt.timedelta(days=90)
CA_VALIDITY = dt.timedelta(days=825)  # the CAs span every leaf's period, the expired and future ones included
OTHER_HOST = "another-host.invalid"  # RFC 2606: a name no real host has
_EXTENDED_USAGES = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH, "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH}
_KEY_USAGES = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement",
               "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")  # fmt: skip


class Issuer(enum.Enum):
    """Who signs a case's leaf (the value says it in words)."""

    INTERMEDIATE = "the trusted intermediate CA"
    LEAF_AS_CA = "a certificate of the trusted CA with basicConstraints CA:FALSE (an end-entity used as a CA)"
    UNTRUSTED = "the intermediate of an unrelated CA, one the client does not trust"
    ITSELF = "the leaf itself (self-signed)"


class X509Error(enum.IntEnum):
    """The ``X509_V_ERR_*`` codes ``openssl verify`` reports for the cases, as OpenSSL 3 numbers them
    (``x509_vfy.h``; 1.1 numbered INVALID_CA 24, and texts change: "self signed" became "self-signed")."""

    CERT_NOT_YET_VALID = 9
    CERT_HAS_EXPIRED = 10
    DEPTH_ZERO_SELF_SIGNED_CERT = 18
    UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20
    INVALID_CA = 79
    INVALID_PURPOSE = 26
    HOSTNAME_MISMATCH = 62
    IP_ADDRESS_MISMATCH = 64  # HOSTNAME_MISMATCH when the client checks an IP address (``-verify_ip``)


@dataclass(frozen=True)
class CertificateCase:
    """One server certificate chain: the control's fields, at most one of them changed. Times are
    relative to the moment the set is generated."""

    name: str
    wrong: str  # what is wrong with it, in words ("" for the control)
    openssl_error: X509Error | None = None  # what ``openssl verify`` reports first; None: it verifies
    issuer: Issuer = Issuer.INTERMEDIATE
    other_host: bool = False  # subject and SAN name OTHER_HOST only, none of the server's names
    starts: dt.timedelta = -CLOCK_SKEW  # notBefore
    ends: dt.timedelta = LEAF_VALIDITY  # notAfter
    extended_usage: tuple[str, ...] = ("serverAuth",)  # extendedKeyUsage purposes
    key_usage: tuple[str, ...] = ("digital_signature",)  # keyUsage bits (x509.KeyUsage's field names)

    @property
    def must_accept(self) -> bool:
        """What a correct TLS client does with this chain: True for the control, False for every other case."""
        return self.openssl_error is None

    def describe(self) -> str:
        """One line: name, what a correct client must do, what is wrong, what OpenSSL reports."""
        if self.openssl_error is None:
            return f"{self.name}: must be accepted (a valid chain for the server's names: the control)"
        return f"{self.name}: must be refused, {self.wrong} (openssl verify: X509_V_ERR_{self.openssl_error.name})"


CONTROL = CertificateCase("control", "")
CASES: tuple[CertificateCase, ...] = (
    CONTROL,
    CertificateCase(
        "wrong-host",
        f"a valid chain from the trusted CA, but for {OTHER_HOST} only (SAN and CN): not the host the client asked for",
        X509Error.HOSTNAME_MISMATCH,
        other_host=True,
    ),
    CertificateCase(
        "expired",
        "its notAfter was a day before the set was made",
        X509Error.CERT_HAS_EXPIRED,
        starts=-LEAF_VALIDITY - dt.timedelta(days=1),
        ends=-dt.timedelta(days=1),
    ),
    CertificateCase(
        "not-yet-valid",
        "its notBefore is a day after the set was made",
        X509Error.CERT_NOT_YET_VALID,
        starts=dt.timedelta(days=1),
        ends=LEAF_VALIDITY + dt.timedelta(days=1),
    ),
    CertificateCase(
        "client-auth-only",
        "its extendedKeyUsage allows clientAuth only, not serverAuth",
        X509Error.INVALID_PURPOSE,
        extended_usage=("clientAuth",),
    ),
    CertificateCase(
        "no-signature-usage",
        "its keyUsage is contentCommitment (nonRepudiation) only: no bit a TLS server key needs (digitalSignature "
        "for ECDHE-ECDSA)",
        X509Error.INVALID_PURPOSE,
        key_usage=("content_commitment",),
    ),
    CertificateCase(
        "untrusted-ca",
        "issued, with the server's names, under an unrelated CA the client does not trust (a MITM's own CA)",
        X509Error.UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
        issuer=Issuer.UNTRUSTED,
    ),
    CertificateCase(
        "leaf-as-ca",
        "signed by a certificate of the trusted CA whose basicConstraints say CA:FALSE (an end-entity used as "
        "a CA, the basicConstraints bug of CVE-2002-0862 and CVE-2011-0228)",
        X509Error.INVALID_CA,
        issuer=Issuer.LEAF_AS_CA,
    ),
    CertificateCase(
        "self-signed",
        "self-signed, with the server's names and usages: no chain to the trusted CA",
        X509Error.DEPTH_ZERO_SELF_SIGNED_CERT,
        issuer=Issuer.ITSELF,
    ),
)
BY_NAME: dict[str, CertificateCase] = {case.name: case for case in CASES}


def format_cases(cases: Iterable[CertificateCase] = CASES) -> str:
    """The cases as a table: name, what a correct client must do, what OpenSSL reports, what is wrong."""
    rows = [
        (c.name, "accept" if c.must_accept else "refuse", c.openssl_error.name if c.openssl_error else "OK", c.wrong)
        for c in cases
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{n:<{widths[0]}}  {m:<{widths[1]}}  {e:<{widths[2]}}  {w}".rstrip() for n, m, e, w in rows)


@dataclass(frozen=True)
class IssuedCertificate:
    """One case written out: what a server presents (``pair``: the chain, leaf first, and the leaf's
    TEST ONLY key) and what a verifier is given (the leaf, and the intermediates when there are any)."""

    case: CertificateCase
    pair: CertPair
    leaf: Path
    intermediates: Path | None


@dataclass(frozen=True)
class CertificateSet:
    """The set as written: the CA a correct client trusts, the names the right chains are for, and the
    issued cases (``certificate_set["wrong-host"]``)."""

    directory: Path
    ca_cert: Path
    names: tuple[str, ...]
    issued: tuple[IssuedCertificate, ...]

    def __getitem__(self, name: str) -> IssuedCertificate:
        for issued in self.issued:
            if issued.case.name == name:
                return issued
        raise KeyError(f"no certificate case {name!r}; the cases are {', '.join(BY_NAME)}")


@dataclass(frozen=True)
class _Signer:
    """A certificate and its key, signing what it issues."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def generate_certificate_set(
    directory: Path,
    *,
    names: tuple[str, ...] = SERVER_NAMES,
    cases: Sequence[CertificateCase] = CASES,
    now: dt.datetime | None = None,
) -> CertificateSet:
    """Write ``ca.pem`` and every case into *directory* (see the module docstring); the right chains are
    for *names* (host names and IP addresses), the first of them their subject. Overwrites existing files."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    moment = now or dt.datetime.now(dt.timezone.utc)
    root = _ca("hil TEST ONLY adversarial root CA", None, moment, path_length=1)
    signers = {
        Issuer.INTERMEDIATE: _ca("hil TEST ONLY adversarial intermediate CA", root, moment),
        Issuer.LEAF_AS_CA: _ca("hil TEST ONLY end-entity used as a CA", root, moment, is_ca=False),
    }
    untrusted_root = _ca("hil TEST ONLY untrusted root CA", None, moment, path_length=1)
    signers[Issuer.UNTRUSTED] = _ca("hil TEST ONLY untrusted intermediate CA", untrusted_root, moment)
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(_pem(root.cert))
    issued = [_issue(directory / case.name, case, signers.get(case.issuer), names, moment) for case in cases]
    return CertificateSet(directory, ca_path, names, tuple(issued))


def _issue(
    folder: Path, case: CertificateCase, issuer: _Signer | None, names: tuple[str, ...], moment: dt.datetime
) -> IssuedCertificate:
    """Issue *case*'s leaf (signed by *issuer*, by itself when None) and write its files into *folder*."""
    key = ec.generate_private_key(ec.SECP256R1())
    hosts = (OTHER_HOST,) if case.other_host else names
    subject = subject_name(hosts[0])
    issuer_name, signing_key = (issuer.cert.subject, issuer.key) if issuer else (subject, key)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment + case.starts)
        .not_valid_after(moment + case.ends)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**{bit: bit in case.key_usage for bit in _KEY_USAGES}), critical=True)
        .add_extension(x509.ExtendedKeyUsage([_EXTENDED_USAGES[u] for u in case.extended_usage]), critical=False)
        .add_extension(x509.SubjectAlternativeName([general_name(n) for n in hosts]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
        .sign(signing_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    chain = [leaf] if issuer is None else [leaf, issuer.cert]
    pair = CertPair(folder / "chain.pem", folder / "key.pem")
    pair.cert.write_bytes(b"".join(_pem(c) for c in chain))
    write_private(
        pair.key,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    (folder / "leaf.pem").write_bytes(_pem(leaf))
    intermediates = None
    if issuer is not None:
        intermediates = folder / "intermediates.pem"
        intermediates.write_bytes(_pem(issuer.cert))
    return IssuedCertificate(case, pair, folder / "leaf.pem", intermediates)


def _ca(
    common_name: str, issuer: _Signer | None, moment: dt.datetime, *, path_length: int = 0, is_ca: bool = True
) -> _Signer:
    """A CA certificate (self-signed when *issuer* is None); ``is_ca=False`` changes only its
    basicConstraints, which is what the ``leaf-as-ca`` case is about."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = subject_name(common_name)
    issuer_name, signing_key = (issuer.cert.subject, issuer.key) if issuer else (subject, key)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(moment - CA_VALIDITY)
        .not_valid_after(moment + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=path_length if is_ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(**{bit: bit in ("key_cert_sign", "crl_sign") for bit in _KEY_USAGES}), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()), critical=False)
        .sign(signing_key, hashes.SHA256())
    )
    return _Signer(cert, key)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def main(argv: list[str] | None = None) -> int:
    """``python -m hil.adversarial.certificates [DIR]``: print the cases; with DIR, write the set there."""
    parser = argparse.ArgumentParser(prog="python -m hil.adversarial.certificates", description=main.__doc__)
    parser.add_argument("directory", nargs="?", type=Path, help="write ca.pem and the cases' chains and keys here")
    parser.add_argument("--name", action="append", help="a name the right chains are for (repeat; default: "
                        f"{', '.join(SERVER_NAMES)})")  # fmt: skip
    args = parser.parse_args(argv)
    print(format_cases())
    if args.directory is not None:
        written = generate_certificate_set(args.directory, names=tuple(args.name or SERVER_NAMES))
        print(f"\nwritten to {written.directory} (TEST ONLY keys); trust {written.ca_cert}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
