"""The adversarial certificate set against a verifier nobody here wrote: ``openssl verify`` accepts the
control and refuses every other case with the error the case names, by host name and by IP address;
the set prints itself, and its key files are private."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from hil.adversarial.certificates import (
    CASES,
    CONTROL,
    OTHER_HOST,
    CertificateSet,
    X509Error,
    format_cases,
    generate_certificate_set,
    main,
)

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed (apt-get install openssl; "
                                                           ".ci/install does): the real peer these checks need")  # fmt: skip
HOSTS = [pytest.param("localhost", "-verify_hostname", id="by-name"), pytest.param("127.0.0.1", "-verify_ip", id="by-ip")]
_ERROR = re.compile(r"^error (\d+) at (\d+) depth lookup: (.*)$", re.MULTILINE)


@pytest.fixture(scope="module")
def certificate_set(tmp_path_factory: pytest.TempPathFactory) -> CertificateSet:
    return generate_certificate_set(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module")
def openssl_3() -> str:
    """The openssl command; the expected codes are OpenSSL 3's (1.1 numbered INVALID_CA differently)."""
    assert OPENSSL is not None
    version = subprocess.run([OPENSSL, "version"], capture_output=True, text=True, timeout=30, check=True).stdout
    if not version.startswith("OpenSSL 3"):
        pytest.skip(f"the expected X509_V_ERR codes are OpenSSL 3's; this openssl is {version.strip()}")
    return OPENSSL


@needs_openssl
@pytest.mark.parametrize("host, how", HOSTS)
@pytest.mark.parametrize("case", [c.name for c in CASES])
def test_openssl_verify_gives_each_case_its_verdict(certificate_set: CertificateSet, openssl_3: str, case: str,
                                                    host: str, how: str) -> None:
    """``openssl verify -purpose sslserver`` for the case's host: OK for the control, else the case's
    error first (the wrong host is an IP address mismatch when the client checks an IP)."""
    issued = certificate_set[case]
    untrusted = ["-untrusted", str(issued.intermediates)] if issued.intermediates else []
    cmd = [openssl_3, "verify", "-CAfile", str(certificate_set.ca_cert), *untrusted, "-purpose", "sslserver",
           how, host, str(issued.leaf)]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    output = done.stdout + done.stderr
    errors = [(X509Error(int(code)) if int(code) in X509Error._value2member_map_ else int(code), int(depth), text)
              for code, depth, text in _ERROR.findall(output)]  # fmt: skip
    expected = issued.case.openssl_error
    if expected is X509Error.HOSTNAME_MISMATCH and how == "-verify_ip":
        expected = X509Error.IP_ADDRESS_MISMATCH
    if expected is None:
        assert done.returncode == 0 and f"{issued.leaf}: OK" in output, f"{' '.join(cmd)}:\n{output}"
        return
    assert done.returncode != 0, f"openssl verified {case}, which must be refused:\n{output}"
    assert errors and errors[0][0] == expected, f"{case}: expected {expected!r} first, openssl said {errors}"


@needs_openssl
def test_the_control_is_strictly_valid(certificate_set: CertificateSet, openssl_3: str) -> None:
    """The control passes ``-x509_strict`` too: the cases differ from a well-formed chain, not a sloppy one."""
    issued = certificate_set[CONTROL.name]
    assert issued.intermediates is not None
    done = subprocess.run([openssl_3, "verify", "-x509_strict", "-CAfile", str(certificate_set.ca_cert), "-untrusted",
                           str(issued.intermediates), "-purpose", "sslserver", str(issued.leaf)],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_case_differs_from_the_control_in_one_field() -> None:
    fields = ("issuer", "other_host", "starts", "ends", "extended_usage", "key_usage")
    for case in CASES:
        changed = [f for f in fields if getattr(case, f) != getattr(CONTROL, f)]
        # the validity period moves as one: both of its ends change together
        changed = ["validity" if f in ("starts", "ends") else f for f in changed]
        assert len(set(changed)) == (0 if case is CONTROL else 1), f"{case.name} changes {changed}"
        assert case.must_accept == (case is CONTROL) and bool(case.wrong) != case.must_accept


def test_the_chains_are_for_the_names_asked(tmp_path: Path) -> None:
    written = generate_certificate_set(tmp_path, names=("localhost", "192.0.2.7"))
    for issued in written.issued:
        leaf = x509.load_pem_x509_certificate(issued.leaf.read_bytes())
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = [*san.get_values_for_type(x509.DNSName), *map(str, san.get_values_for_type(x509.IPAddress))]
        assert names == ([OTHER_HOST] if issued.case.other_host else ["localhost", "192.0.2.7"]), issued.case.name
        chain = issued.pair.cert.read_bytes()
        assert chain.startswith(issued.leaf.read_bytes()), "a server presents the leaf first"
        assert chain.count(b"BEGIN CERTIFICATE") == (1 if issued.intermediates is None else 2)
        assert issued.pair.key.stat().st_mode & 0o077 == 0, f"{issued.pair.key}: TEST ONLY key readable by others"


def test_the_set_prints_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = format_cases()
    for case in CASES:
        assert case.name in table and case.describe().startswith(case.name)
    assert main([str(tmp_path)]) == 0
    assert table in capsys.readouterr().out
    assert (tmp_path / "ca.pem").exists() and (tmp_path / "wrong-host" / "chain.pem").exists()
