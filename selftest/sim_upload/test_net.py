"""The device's network side: HTTPS with the provisioned CA, a MITM certificate refused before
anything is sent, what the TLS defects let through, the Wi-Fi-like MSS clamp, and the kept-alive
HttpSession."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hil.adversarial.certificates import CertificateSet, IssuedCertificate, generate_certificate_set
from hil.sim.firmware import net
from hil.sim.firmware.upload import upload_cycle
from sim_upload.conftest import nvs_value
from sim_upload.test_upload import event


def test_https_with_the_provisioned_ca_uploads(make_server, make_device):
    server = make_server(tls="real")
    assert server.url.startswith("https://")
    rt, device = make_device(server.url)
    assert upload_cycle(device)
    assert event(rt, "upload.ok")[0]["nonce"] == "10001" and len(server.stored()) == 10


def test_https_mitm_certificate_is_refused_and_nothing_is_sent(make_server, make_device):
    server = make_server(tls="mitm")
    rt, device = make_device(server.url)
    assert upload_cycle(device) is False
    assert event(rt, "tls.failed")[0]["reason"].startswith("certificate verify failed")
    assert server.recorder.uploads == [] and server.stored() == []
    assert not event(rt, "upload.retry")  # a certificate failure is final, not retried


def test_tls_no_verify_defect_accepts_the_mitm_certificate(make_server, make_device):
    server = make_server(tls="mitm")
    rt, device = make_device(server.url, ("tls-no-verify",))
    assert upload_cycle(device)
    assert not event(rt, "tls.failed") and server.recorder.nonces == [10001]


def _handshake_completes(issued: IssuedCertificate, ca_pem: str, verify: net.Verify) -> bool:
    """The device's TLS context (server name 127.0.0.1) against a server presenting *issued*."""
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(issued.pair.cert, issued.pair.key)
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def serve() -> None:
            conn, _ = listener.accept()
            try:
                server_side.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()  # the client refused the chain

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        sock = net.open_socket("127.0.0.1", listener.getsockname()[1])
        try:
            net.tls_context(ca_pem, verify=verify).wrap_socket(sock, server_hostname="127.0.0.1").close()
        except ssl.SSLCertVerificationError:
            return False
        finally:
            sock.close()
            thread.join(5)
    return True


@pytest.fixture(scope="module")
def certificate_set(tmp_path_factory) -> CertificateSet:
    return generate_certificate_set(tmp_path_factory.mktemp("certificates"))


@pytest.mark.parametrize("defects, verify", [((), net.Verify.FULL),
                                             (("tls-hostname-not-checked",), net.Verify.CHAIN_ONLY),
                                             (("tls-no-verify",), net.Verify.NONE),
                                             (("tls-no-verify", "tls-hostname-not-checked"), net.Verify.NONE)])
def test_the_tls_defects_let_through_what_they_name(certificate_set, defects, verify) -> None:
    """Against the adversarial certificate set: the full check accepts only the control; without the
    name check the chain for another host gets through too, and nothing else; without verification, all."""
    assert net.verification(defects) is verify
    ca_pem = certificate_set.ca_cert.read_text()
    accepted = {i.case.name for i in certificate_set.issued if _handshake_completes(i, ca_pem, verify)}
    everything = {i.case.name for i in certificate_set.issued}
    assert accepted == {net.Verify.FULL: {"control"}, net.Verify.CHAIN_ONLY: {"control", "wrong-host"},
                        net.Verify.NONE: everything}[verify]


def test_https_without_a_provisioned_ca_is_refused():
    endpoint = net.Endpoint.parse("https://127.0.0.1:1")
    with pytest.raises(net.TlsError, match="no CA certificate provisioned"):
        net.post_json(endpoint, "/x", b"{}", ca_pem="")


def test_connection_refused_is_a_net_error_naming_the_server():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(net.NetError, match=f"127.0.0.1:{port}: connection refused"):
        net.open_socket("127.0.0.1", port)


def _peer_mss(clamp: bool) -> int:
    """MSS the server side of a loopback connection may send with (what the client advertised)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        client = net.open_socket("127.0.0.1", port) if clamp else socket.create_connection(("127.0.0.1", port))
        with client, listener.accept()[0] as accepted:
            return accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)


def test_mss_is_clamped_like_wifi():
    assert _peer_mss(clamp=True) <= net.WIFI_MSS
    assert _peer_mss(clamp=False) > net.WIFI_MSS  # unclamped loopback: ~64 KiB segments


def test_source_address_comes_from_the_runtime(make_server, make_device):
    server = make_server()
    rt, device = make_device(server.url)
    rt.net_address = "127.0.0.2"
    assert upload_cycle(device)
    assert server.recorder.peers == ["127.0.0.2"]
    assert nvs_value(rt.flash, "nonce") == 10001


def test_endpoint_parsing():
    ep = net.Endpoint.parse("https://[::1]:8443/prefix/")
    assert (ep.scheme, ep.host, ep.port, ep.base_path) == ("https", "::1", 8443, "/prefix")
    assert ep.url("/api/upload/data") == "https://[::1]:8443/prefix/api/upload/data"
    assert net.Endpoint.parse("http://h").port == 80
    with pytest.raises(ValueError, match="not http"):
        net.Endpoint.parse("coap://h")


# -- HttpSession: one kept-alive connection, a new one only after a failure or an announced close --
class _Scripted(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive test server: ``/close`` announces a close, ``/vanish`` answers and then
    closes without saying so, ``/big`` answers 100 bytes; anything else answers ``ok``."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        body = b"x" * 100 if self.path == "/big" else b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/close":
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        if self.path == "/vanish":
            self.close_connection = True
        self.server.peers.append(self.client_address)  # type: ignore[attr-defined]

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[net.Endpoint]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.daemon_threads = True
    server.peers = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield net.Endpoint("http", "127.0.0.1", server.server_address[1], "")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_session_reuses_one_connection(make_server) -> None:
    server = make_server()
    with net.HttpSession(net.Endpoint.parse(server.url)) as session:
        replies = [session.get("/api/ota/check/EW-0001?version=1.0.0") for _ in range(3)]
        replies.append(session.post_json("/api/ota/status", b"{}"))
        assert session.connected and (session.connections, session.requests) == (1, 4)
    assert [r.status for r in replies] == [200, 200, 200, 400] and not session.connected
    assert server.handle.connections.wait_closed(5) and server.handle.connections.accepted == 1


def test_session_reconnects_after_an_announced_close(scripted) -> None:
    with net.HttpSession(scripted) as session:
        assert session.get("/close").body == b"ok" and not session.connected
        assert session.get("/a").body == b"ok" and session.get("/b").body == b"ok"
        assert session.connections == 2


def test_a_silent_close_fails_the_next_request_and_the_one_after_reconnects(scripted) -> None:
    with net.HttpSession(scripted) as session:
        assert session.get("/vanish").body == b"ok" and session.connected  # nothing said it would close
        with pytest.raises(net.NetError, match="failed"):
            session.get("/a")  # never re-sent behind the firmware's back
        assert not session.connected
        assert session.get("/a").body == b"ok" and session.connections == 2


def test_a_reply_longer_than_read_drops_the_connection(scripted) -> None:
    with net.HttpSession(scripted) as session:
        assert len(session.get("/big", max_bytes=10).body) == 10 and not session.connected
        assert session.get("/a").body == b"ok" and session.connections == 2


def test_an_exception_in_on_sent_closes_the_connection(scripted) -> None:
    class Cut(Exception):
        pass

    def cut() -> None:
        raise Cut

    with net.HttpSession(scripted) as session:
        session.get("/a")
        with pytest.raises(Cut):
            session.post_json("/a", b"{}", on_sent=cut)
        assert not session.connected


def test_a_tls_failure_leaves_no_connection(make_server, pki) -> None:
    server = make_server(tls="mitm")
    session = net.HttpSession(net.Endpoint.parse(server.url), ca_pem=pki.ca_cert.read_text())
    with pytest.raises(net.TlsError, match="certificate verify failed"):
        session.get("/api/ota/check/EW-0001?version=1.0.0")
    assert not session.connected and session.connections == 0 and session.requests == 0
