"""HTTP/1.1 persistent connections (hil.server.keepalive): many requests over one connection, every
response delimited, clients that ask to close (or speak HTTP/1.0) closed, TLS, the chunk faults on a
kept-alive connection, unread request bodies, the harness's one-request clients, and a stop() that
does not wait for idle connections."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time

import pytest
from helpers_server import ADMIN_TOKEN, UPLOAD, make_config, packet

from hil.net.http import HttpMessage, build_request, parse_message
from hil.net.mitm import MitmProxy
from hil.net.relay import RecordingRelay
from hil.net.replay import replay_http, send_http
from hil.net.flows import flows_from_pcap
from hil.server import ServerHandle
from hil.server.handle import STOP_GRACE_S
from hil.server.keepalive import DRAIN_LIMIT
from hil.server.tls import generate_test_pki

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
CHUNK = "/api/ota/download/2.0.0/{}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return generate_test_pki(tmp_path_factory.mktemp("pki"))


def _connect(server: ServerHandle) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def _exchange(sock: socket.socket, raw: bytes, method: str = "GET") -> HttpMessage:
    """Send one request on *sock* and read exactly its response (the connection stays usable)."""
    sock.sendall(raw)
    buf = b""
    while True:
        parsed = parse_message(buf, is_response=True, request_method=method)
        if parsed is not None:
            assert parsed[1] == len(buf), "bytes after the response: the server sent more than one"
            return parsed[0]
        data = sock.recv(65536)
        assert data, f"connection closed after {len(buf)} bytes, before a complete response"
        buf += data


def _until_eof(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a socket timeout here means it never closed)."""
    buf = b""
    while True:
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return buf
        if not data:
            return buf
        buf += data


def _get(path: str, *extra: str, version: str = "HTTP/1.1") -> bytes:
    return (f"GET {path} {version}\r\nHost: 127.0.0.1\r\n" + "".join(f"{h}\r\n" for h in extra) + "\r\n").encode()


def test_many_requests_share_one_connection_and_every_response_has_a_length(ota_server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", ota_server.port, timeout=10)
    calls = [("GET", CHUNK.format(n), None, {}) for n in range(3)] + [
        ("GET", "/api/ota/check/EW-0001?version=1.0.0", None, {}),
        ("GET", "/api/ota/manifest/2.0.0", None, {}),
        ("GET", "/no/such/route", None, {}),
        ("GET", CHUNK.format(99), None, {}),
        ("POST", "/api/ota/status", b"not json", {"Content-Type": "application/json"}),
        ("POST", "/api/admin/faults", json.dumps({"name": "bad_hash", "params": {}}).encode(), AUTH),
        ("GET", "/api/admin/faults", None, {"Authorization": "Bearer wrong"}),
        ("POST", UPLOAD, packet(1).to_json(), {"Content-Type": "application/json"}),
        ("DELETE", UPLOAD, None, {}),
    ]
    statuses = []
    try:
        for method, path, body, headers in calls:
            conn.request(method, path, body=body, headers=headers)
            reply = conn.getresponse()
            reply.read()
            statuses.append(reply.status)
            assert reply.getheader("Content-Length") is not None, (path, reply.headers)
            assert reply.getheader("Connection") is None and not reply.will_close, (path, reply.headers)
    finally:
        conn.close()
    assert statuses == [200, 200, 200, 200, 200, 404, 404, 400, 201, 401, 200, 405]
    assert ota_server.connections.wait_closed(5)
    assert (ota_server.connections.accepted, ota_server.connections.requests) == (1, len(calls))


@pytest.mark.parametrize("version, headers", [
    ("HTTP/1.1", ("Connection: close",)),
    ("HTTP/1.0", ()),
    ("HTTP/1.0", ("Connection: keep-alive",)),  # HTTP/1.0 keep-alive is not offered
], ids=["http11-close", "http10", "http10-keep-alive"])
def test_clients_that_ask_to_close_are_closed(ota_server, version, headers) -> None:
    with _connect(ota_server) as sock:
        sock.sendall(_get(CHUNK.format(0), *headers, version=version))
        data = _until_eof(sock)
    reply, end = parse_message(data, is_response=True, eof=True)
    assert reply.status == 200 and len(reply.body) == 2048 and end == len(data)
    assert reply.header("Connection") == "close"


def test_a_body_of_unknown_length_is_chunked_for_http11_and_close_delimited_for_http10(ota_server) -> None:
    def streamed(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])  # no Content-Length
        return iter([b"abc", b"def"])

    ota_server.app.wsgi_app = streamed  # type: ignore[method-assign]
    with _connect(ota_server) as sock:
        first = _exchange(sock, _get("/x"))
        second = _exchange(sock, _get("/y"))
        assert first.chunked and first.body == second.body == b"abcdef"
    with _connect(ota_server) as sock:
        sock.sendall(_get("/z", version="HTTP/1.0"))
        reply, _ = parse_message(_until_eof(sock), is_response=True, eof=True)
    assert not reply.chunked and reply.body == b"abcdef" and reply.header("Connection") == "close"


def test_tls_connection_is_kept_alive_and_stop_closes_it_at_once(tmp_path, pki) -> None:
    server = ServerHandle(make_config(tmp_path), tls_cert=pki.server.cert, tls_key=pki.server.key).start()
    context = ssl.create_default_context(cafile=str(pki.ca_cert))
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, timeout=10, context=context)
    try:
        for nonce in (1, 2, 3):
            conn.request("POST", UPLOAD, body=packet(nonce).to_json(), headers={"Content-Type": "application/json"})
            reply = conn.getresponse()
            assert reply.status == 200 and json.loads(reply.read())["nonce_updated"] == nonce
        assert server.connections.accepted == 1 and server.connections.open == 1
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < STOP_GRACE_S  # the idle connection did not hold it
        with pytest.raises((OSError, http.client.HTTPException)):
            conn.request("POST", UPLOAD, body=packet(4).to_json(), headers={"Content-Type": "application/json"})
            conn.getresponse().read()
    finally:
        conn.close()
        server.stop()


def test_stop_with_idle_and_silent_connections_is_prompt(ota_server) -> None:
    idle = [_connect(ota_server) for _ in range(3)]
    silent = _connect(ota_server)  # connected, never sends a byte
    half = _connect(ota_server)
    try:
        for sock in idle:
            assert _exchange(sock, _get(CHUNK.format(0))).status == 200
        half.sendall(b"GET /api/ota/download/2.0.0/0 HTTP/1.1\r\nHost: x\r\n")  # headers never end
        assert ota_server.connections.requests == 3
        started = time.monotonic()
        ota_server.stop()
        assert time.monotonic() - started < STOP_GRACE_S
        for sock in [*idle, silent, half]:
            assert _until_eof(sock) == b""  # closed by the server, nothing more sent
    finally:
        for sock in [*idle, silent, half]:
            sock.close()


def test_stop_gives_a_request_in_progress_a_bounded_grace(ota_server) -> None:
    ota_server.state.storage.add_fault("delay_chunk", {"chunk": 0, "ms": 4000})
    with _connect(ota_server) as sock:
        sock.sendall(_get(CHUNK.format(0)))
        assert ota_server.connections.wait_until(lambda c: c.requests == 1, 5)  # held in the delay now
        started = time.monotonic()
        ota_server.stop()
        assert time.monotonic() - started < 2 * STOP_GRACE_S + 1.0  # not the 4 s of the delay
        assert _until_eof(sock) == b""


def test_drop_connection_truly_shuts_a_kept_alive_connection(ota_server) -> None:
    ota_server.state.storage.add_fault("drop_connection", {"chunk": 1, "times": 1})
    with _connect(ota_server) as sock:
        assert len(_exchange(sock, _get(CHUNK.format(0))).body) == 2048
        sock.sendall(_get(CHUNK.format(1)))
        data = _until_eof(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Length: 2048" in head and b"Connection" not in head and len(body) == 1024
    with _connect(ota_server) as sock:  # the fault is used up: the retry on a new connection succeeds
        assert len(_exchange(sock, _get(CHUNK.format(1))).body) == 2048
    assert ota_server.connections.accepted == 2


def test_truncate_and_delay_answer_completely_and_keep_the_connection(ota_server) -> None:
    storage = ota_server.state.storage
    storage.add_fault("truncate_chunk", {"chunk": 0, "bytes": 100})
    storage.add_fault("delay_chunk", {"chunk": 1, "ms": 200})
    with _connect(ota_server) as sock:
        assert len(_exchange(sock, _get(CHUNK.format(0))).body) == 100  # a complete, short 200
        started = time.monotonic()
        assert len(_exchange(sock, _get(CHUNK.format(1))).body) == 2048
        assert time.monotonic() - started >= 0.2
        assert len(_exchange(sock, _get(CHUNK.format(2))).body) == 1040
    assert ota_server.connections.accepted == 1


def _post(path: str, body: bytes, *extra: str) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + "".join(f"{h}\r\n" for h in extra)
    return head.encode() + b"\r\n" + body


def test_unread_request_bodies_are_drained_and_the_connection_stays_in_step(ota_server) -> None:
    too_big = b"{" + b" " * (16 * 1024 + 10) + b"}"
    chunked = json.dumps({"device_id": "EW-0001", "firmware_version": "2.0.0", "status": "downloading"}).encode()
    with _connect(ota_server) as sock:
        # refused unread (Content-Length over the limit), read only in part, never read (404)
        assert _exchange(sock, _post(UPLOAD, too_big, f"Content-Length: {len(too_big)}"), "POST").status == 413
        status_body = b"[" + b"1," * 3000 + b"1]"
        assert _exchange(sock, _post("/api/ota/status", status_body, f"Content-Length: {len(status_body)}"),
                         "POST").status == 413
        assert _exchange(sock, _post("/nowhere", b"x" * 1000, "Content-Length: 1000"), "POST").status == 404
        framed = b"%x\r\n%s\r\n0\r\n\r\n" % (len(chunked), chunked)
        assert _exchange(sock, _post("/api/ota/status", framed, "Transfer-Encoding: chunked"), "POST").status == 200
        assert len(_exchange(sock, _get(CHUNK.format(2))).body) == 1040  # still in step
    assert ota_server.connections.accepted == 1


def test_a_body_too_large_to_drain_closes_the_connection_after_the_answer(ota_server) -> None:
    body = b"x" * (DRAIN_LIMIT + 4096)
    with _connect(ota_server) as sock:
        sock.sendall(_post("/nowhere", body, f"Content-Length: {len(body)}"))
        data = _until_eof(sock)
    reply, end = parse_message(data, is_response=True)
    assert reply.status == 404 and end == len(data)


def test_one_request_clients_of_the_harness_get_their_answer_and_close(ota_server) -> None:
    target = ("127.0.0.1", ota_server.port)
    raw = build_request("GET", CHUNK.format(0), host=f"127.0.0.1:{ota_server.port}").raw
    assert send_http(raw, target).status == 200
    results = replay_http(raw, target, times=4, parallel=2)
    assert [r.status for r in results] == [200] * 4
    assert ota_server.connections.wait_closed(5) and ota_server.connections.accepted == 5


def test_mitm_proxy_keeps_one_upstream_connection_per_client_connection(ota_server) -> None:
    with MitmProxy(("127.0.0.1", ota_server.port)) as proxy:
        host, port = proxy.address
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            for n in range(3):
                conn.request("GET", CHUNK.format(n))
                assert conn.getresponse().read()
        finally:
            conn.close()
        with socket.create_connection(proxy.address, timeout=5) as sock:  # asks to close: the proxy closes
            sock.sendall(_get(CHUNK.format(0), "Connection: close"))
            assert parse_message(_until_eof(sock), is_response=True, eof=True)[0].status == 200
        assert [e.action for e in proxy.events if e.phase == "request"] == ["pass"] * 4
    assert ota_server.connections.wait_closed(5) and ota_server.connections.accepted == 2


def test_recording_relay_records_a_kept_alive_connection_as_one_flow(ota_server, tmp_path) -> None:
    pcap = tmp_path / "relay.pcap"
    with RecordingRelay(pcap, upstream=("127.0.0.1", ota_server.port)) as relay:
        conn = http.client.HTTPConnection(*relay.address, timeout=10)
        try:
            for n in (0, 1, 2, 1):
                conn.request("GET", CHUNK.format(n))
                conn.getresponse().read()
        finally:
            conn.close()
        assert relay.wait_idle(5)
    (flow,) = flows_from_pcap(pcap)
    exchanges = flow.http_exchanges()
    assert [ex.request.target for ex in exchanges] == [CHUNK.format(n) for n in (0, 1, 2, 1)]
    assert [len(ex.response.body) for ex in exchanges] == [2048, 2048, 1040, 2048]
    assert ota_server.connections.accepted == 1


def test_a_broken_chunked_body_is_answered_and_the_connection_closed(ota_server) -> None:
    with _connect(ota_server) as sock:
        sock.sendall(_post("/api/ota/status", b"zz\r\nabc\r\n", "Transfer-Encoding: chunked"))
        data = _until_eof(sock)  # at once: "abc" is never taken for the next chunk's length
    reply, end = parse_message(data, is_response=True)
    assert reply.status == 500 and end == len(data)


def test_expect_100_continue_gets_one_interim_answer(ota_server) -> None:
    body = packet(1).to_json()
    with _connect(ota_server) as sock:
        sock.sendall(_post(UPLOAD, b"", f"Content-Length: {len(body)}", "Expect: 100-continue"))
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        reply = _exchange(sock, body, "POST")
        assert reply.status == 200 and json.loads(reply.body)["nonce_updated"] == 1
        assert _exchange(sock, _get(CHUNK.format(0))).status == 200
