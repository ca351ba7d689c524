"""TLS records of a real handshake (Python's ssl over memory BIOs) and hand-built DTLS datagrams."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from hil.net.records import RecordParseError, looks_like_dtls, looks_like_tls, parse_dtls, parse_tls, type_counts


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "c.pem", tmp / "k.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _tls_streams(tmp: Path, version: ssl.TLSVersion) -> tuple[bytes, bytes]:
    """Run a handshake plus one application record each way; return the client and server byte streams."""
    cert, key = _self_signed(tmp)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cert, key)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.check_hostname, cctx.verify_mode = False, ssl.CERT_NONE
    for ctx in (sctx, cctx):
        ctx.minimum_version = ctx.maximum_version = version
    pipes = {side: (ssl.MemoryBIO(), ssl.MemoryBIO()) for side in ("c", "s")}
    client = cctx.wrap_bio(*pipes["c"], server_hostname="localhost")
    server = sctx.wrap_bio(*pipes["s"], server_side=True)
    streams = {"c": bytearray(), "s": bytearray()}

    def pump() -> None:
        for src, dst in (("c", "s"), ("s", "c")):
            data = pipes[src][1].read()
            streams[src] += data
            pipes[dst][0].write(data)

    for _ in range(10):  # bounded: a TLS handshake needs at most a few flights
        for end in (client, server):
            try:
                end.do_handshake()
            except ssl.SSLWantReadError:
                pass
        pump()
        if client.version() and server.version():
            break
    client.write(b"upload secret")
    pump()
    assert server.read() == b"upload secret"
    server.write(b"ok")
    pump()
    return bytes(streams["c"]), bytes(streams["s"])


def test_tls12_handshake_records(tmp_path: Path) -> None:
    c2s, s2c = _tls_streams(tmp_path, ssl.TLSVersion.TLSv1_2)
    crec, ctrail = parse_tls(c2s)
    srec, strail = parse_tls(s2c)
    assert ctrail == strail == 0 and looks_like_tls(c2s)
    assert crec[0].handshake_name == "client_hello"
    assert srec[0].handshake_name == "server_hello" and srec[0].version_name == "TLS 1.2"
    names = [r.handshake_name or r.type_name for r in crec]
    assert "change_cipher_spec" in names and names[-1] == "application_data"
    # after ChangeCipherSpec the Finished is encrypted: it must not be named as a plaintext handshake type
    after_ccs = crec[names.index("change_cipher_spec") + 1]
    assert after_ccs.type_name == "handshake" and after_ccs.handshake_name is None
    assert type_counts(srec)["application_data"] == 1


def test_tls13_records_are_application_data_after_hello(tmp_path: Path) -> None:
    c2s, s2c = _tls_streams(tmp_path, ssl.TLSVersion.TLSv1_3)
    srec, _ = parse_tls(s2c)
    assert srec[0].handshake_name == "server_hello"
    assert {r.type_name for r in srec[1:]} <= {"change_cipher_spec", "application_data"}


def test_incomplete_tail_is_counted_and_garbage_raises() -> None:
    rec = b"\x17\x03\x03\x00\x04abcd"
    records, trailing = parse_tls(rec + rec[:7])
    assert len(records) == 1 and trailing == 7
    with pytest.raises(RecordParseError):
        parse_tls(b"GET / HTTP/1.1\r\n\r\n")
    assert parse_tls(rec + b"GET / HTTP/1.1", strict=False) == ([records[0]], 14)


def _dtls(ctype: int, epoch: int, seq: int, body: bytes, version: int = 0xFEFD) -> bytes:
    return bytes([ctype]) + version.to_bytes(2, "big") + epoch.to_bytes(2, "big") + seq.to_bytes(6, "big") + \
        len(body).to_bytes(2, "big") + body


def test_dtls_several_records_per_datagram_with_epoch_and_seq() -> None:
    dgram = _dtls(22, 0, 5, b"\x10" + b"\x00" * 20) + _dtls(20, 0, 6, b"\x01") + _dtls(22, 1, 0, b"\xaa" * 40)
    recs = parse_dtls(dgram)
    assert [r.describe() for r in recs] == [
        "client_key_exchange DTLS 1.2 len=21 epoch=0 seq=5",
        "change_cipher_spec DTLS 1.2 len=1 epoch=0 seq=6",
        "handshake DTLS 1.2 len=40 epoch=1 seq=0",  # encrypted Finished: epoch 1, not named
    ]
    assert looks_like_dtls(dgram) and not looks_like_tls(dgram)


@pytest.mark.parametrize("dgram", [_dtls(23, 1, 1, b"x" * 10)[:-3], _dtls(23, 1, 1, b"x", version=0x0303),
                                   b"\x40\x01\x00\x01"])  # truncated, TLS version, a CoAP header
def test_dtls_rejects_non_dtls(dgram: bytes) -> None:
    with pytest.raises(RecordParseError):
        parse_dtls(dgram)
    assert parse_dtls(dgram, strict=False) == []
