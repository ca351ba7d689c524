"""HTTPS with the TEST ONLY CA the harness generates, and the unrelated MITM CA."""

from __future__ import annotations

import socket
import ssl

import pytest
from cryptography import x509
from helpers_server import UPLOAD, http_request, make_config, packet

from hil.server import ServerHandle
from hil.server.tls import generate_test_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return generate_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def https_server(tmp_path, pki):
    with ServerHandle(make_config(tmp_path), tls_cert=pki.server.cert, tls_key=pki.server.key) as handle:
        yield handle


def test_upload_over_https_with_the_test_ca(https_server, pki) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    assert https_server.url.startswith("https://127.0.0.1:")
    assert http_request(https_server.url, "POST", UPLOAD, packet(1).to_json(), context=context)[0] == 200
    localhost = https_server.url.replace("127.0.0.1", "localhost")
    assert http_request(localhost, "POST", UPLOAD, packet(2).to_json(), context=context)[0] == 200


def test_the_mitm_ca_does_not_validate_the_real_server(https_server, pki) -> None:
    context = ssl.create_default_context(cafile=str(pki.mitm_ca_cert))
    with pytest.raises(ssl.SSLCertVerificationError):
        http_request(https_server.url, "POST", UPLOAD, packet(1).to_json(), context=context)


def test_mitm_pair_is_a_valid_chain_of_its_own(tmp_path, pki) -> None:
    with ServerHandle(make_config(tmp_path), tls_cert=pki.mitm_server.cert, tls_key=pki.mitm_server.key) as mitm:
        context = ssl.create_default_context(cafile=str(pki.mitm_ca_cert))
        assert http_request(mitm.url, "POST", UPLOAD, packet(1).to_json(), context=context)[0] == 200


def test_a_silent_client_does_not_block_the_accept_loop(https_server, pki) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    with socket.create_connection(("127.0.0.1", https_server.port), timeout=5):
        # Connected but never sends a ClientHello; others must still be served.
        assert http_request(https_server.url, "POST", UPLOAD, packet(1).to_json(), context=context, timeout=5)[0] == 200


def test_private_keys_are_owner_only(pki) -> None:
    for key in (pki.server.key, pki.mitm_server.key):
        assert key.stat().st_mode & 0o077 == 0
    for cert in (pki.ca_cert, pki.server.cert, pki.mitm_ca_cert):
        assert "O=hil TEST ONLY" in x509.load_pem_x509_certificate(cert.read_bytes()).subject.rfc4514_string()
