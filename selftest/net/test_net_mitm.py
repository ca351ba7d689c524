"""MITM proxy: pass, drop, delay, corrupt and inject, per request and per response, with occurrence
counting; keep-alive preserved; stop() joins everything."""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from hil.net.http import build_response
from hil.net.mitm import MitmProxy
from hil.net.rules import Rule


def _post(proxy: MitmProxy, path: str, body: bytes = b"payload", conn: http.client.HTTPConnection | None = None):
    conn = conn or http.client.HTTPConnection(*proxy.address, timeout=5)
    conn.request("POST", path, body=body)
    return conn.getresponse()


def test_pass_through_keeps_keep_alive_and_logs_without_bodies(http_server) -> None:
    with MitmProxy(http_server.server_address[:2]) as proxy:
        conn = http.client.HTTPConnection(*proxy.address, timeout=5)
        for i in range(3):
            assert json.loads(_post(proxy, f"/a/{i}", conn=conn).read())["path"] == f"/a/{i}"
        conn.close()
        assert [e.describe() for e in proxy.events[:2]] == ["request POST /a/0: pass", "response POST /a/0 200: pass"]
        assert len({e.client for e in proxy.events}) == 1  # one client connection for three requests


def test_drop_request_closes_without_reaching_server(http_server) -> None:
    with MitmProxy(http_server.server_address[:2], rules=[Rule.drop(path="^/api/upload")]) as proxy:
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            _post(proxy, "/api/upload/data")
        assert _post(proxy, "/other").status == 200
    assert [h[1] for h in http_server.hits] == ["/other"]


def test_drop_response_after_server_processed_it(http_server) -> None:
    with MitmProxy(http_server.server_address[:2], rules=[Rule.drop("response")]) as proxy:
        with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
            _post(proxy, "/x")
    assert len(http_server.hits) == 1  # the server did see it: only the answer was lost


def test_corrupt_request_body_and_response_body(http_server) -> None:
    rules = [Rule.corrupt([0, -1], phase="request"), Rule.corrupt([0], phase="response", path="/r")]
    with MitmProxy(http_server.server_address[:2], rules=rules) as proxy:
        _post(proxy, "/q", b"abc").read()
        corrupted = _post(proxy, "/r").read()
    assert http_server.hits[0][2] == bytes([ord("a") ^ 0xFF]) + b"b" + bytes([ord("c") ^ 0xFF])
    assert corrupted[0] == ord("{") ^ 0xFF


def test_inject_answers_without_server_and_replaces_response(http_server) -> None:
    fake = build_response(200, "OK", b'{"update_available":true,"firmware_version":"0.9.0"}')
    rules = [Rule.inject(fake, path="^/api/ota/check"), Rule.inject(build_response(503, "Busy"), phase="response")]
    with MitmProxy(http_server.server_address[:2], rules=rules) as proxy:
        assert json.loads(_post(proxy, "/api/ota/check/EW-1").read())["firmware_version"] == "0.9.0"
        assert _post(proxy, "/y").status == 503
    assert [h[1] for h in http_server.hits] == ["/y"]


def test_skip_and_limit_select_occurrences(http_server) -> None:
    rule = Rule.inject(build_response(418, "Teapot"), path="/chunk", skip=1, limit=2)
    with MitmProxy(http_server.server_address[:2], rules=[rule]) as proxy:
        statuses = []
        for _ in range(5):
            resp = _post(proxy, "/chunk")
            resp.read()
            statuses.append(resp.status)
    assert statuses == [200, 418, 418, 200, 200]


def test_delay_holds_the_response_and_wait_for_sees_it(http_server) -> None:
    with MitmProxy(http_server.server_address[:2], rules=[Rule.delay(300, phase="response")]) as proxy:
        t0 = time.monotonic()
        assert _post(proxy, "/slow").status == 200
        assert time.monotonic() - t0 >= 0.3
        event = proxy.wait_for(lambda e: e.action == "delay", timeout=1)
        assert event is not None and event.status == 200


def test_stop_interrupts_a_long_delay_and_joins(http_server) -> None:
    proxy = MitmProxy(http_server.server_address[:2], rules=[Rule.delay(60_000)]).start()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            _post(proxy, "/never")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    assert proxy.wait_for(lambda e: e.action == "delay", timeout=5)
    t0 = time.monotonic()
    proxy.stop()
    thread.join(5)
    assert time.monotonic() - t0 < 3 and errors and not thread.is_alive()


def test_invalid_rules_are_rejected() -> None:
    with pytest.raises(ValueError, match="inject"):
        Rule("request", "inject")
    with pytest.raises(ValueError, match="offset"):
        Rule.corrupt([])
    with pytest.raises(ValueError, match="delay_ms"):
        Rule.delay(0)
