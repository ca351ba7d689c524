"""The reference server's admin API (security events, stored readings, fault injection) as an attacker
on the bench network sees it: nothing without the exact bearer token, every refusal recorded, and its
inputs checked at their limits. Only the built-in server has this API; against ``--hil-server-url``
these scenarios are skipped."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from hil.net.http import HttpMessage, build_request
from hil.net.replay import send_http
from hil.server.admin import MAX_LIMIT
from hil.server.under_test import ServerUnderTest

# How a token can be wrong; each gets 401 (None: no Authorization header at all).
WRONG_TOKENS: dict[str, Callable[[str], str | None]] = {
    "no Authorization header": lambda token: None,
    "an empty bearer token": lambda token: "Bearer ",
    "another token": lambda token: "Bearer not-the-admin-token",
    "the token cut short by one character": lambda token: f"Bearer {token[:-1]}",
    "the token with one character more": lambda token: f"Bearer {token}x",
    "the token without its scheme": lambda token: token,
    "the token as Basic credentials": lambda token: f"Basic {token}",
}
ENDPOINTS = [("GET", "/api/admin/events"), ("GET", "/api/admin/readings"), ("POST", "/api/admin/faults"),
             ("DELETE", "/api/admin/faults")]  # fmt: skip
FAULT = json.dumps({"name": "drop_connection", "params": {"n": 1}}).encode()


def admin(server: ServerUnderTest, method: str, path: str, authorization: str | None, body: bytes = b"") -> HttpMessage:
    """One admin request over plain HTTP on a new connection."""
    if server.scheme != "http":
        pytest.skip(f"admin requests are sent over plain HTTP; the server under test is {server.url}")
    host, port = server.address
    headers = {"Content-Type": "application/json"} if body else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    request = build_request(method, path, body, host=f"{host}:{port}", headers=headers)
    return send_http(request.raw, server.address, method=method)


# A token compared as a prefix lets in exactly the ones that are a prefix of the real one.
PREFIX_OF_TOKEN = pytest.mark.fails_with("admin-token-prefix-accepted")
HOW = [pytest.param(how, marks=[PREFIX_OF_TOKEN] if how in ("no Authorization header", "an empty bearer token",
                                                            "the token cut short by one character") else [])
       for how in WRONG_TOKENS]  # fmt: skip


@pytest.mark.stride("E", "R", threat="someone on the bench network reads the audit trail or injects faults")
@pytest.mark.parametrize("how", HOW)
def test_admin_api_refuses_a_wrong_token(server: ServerUnderTest, how: str) -> None:
    """Every admin endpoint answers 401 with a Bearer challenge to a request whose token is wrong in one
    way, reveals nothing, changes nothing (no fault is added), and records each refusal; with the real
    token the recorded refusals are there to read."""
    token = server.state.config.admin_token
    authorization = WRONG_TOKENS[how](token)
    for method, path in ENDPOINTS:
        reply = admin(server, method, path, authorization, FAULT if method == "POST" else b"")
        assert reply.status == 401, f"{method} {path} with {how}: HTTP {reply.status} {reply.body[:200]!r}"
        assert reply.header("WWW-Authenticate") == "Bearer", f"{method} {path}: no Bearer challenge"
        assert b'"events"' not in reply.body and b'"readings"' not in reply.body and b'"faults"' not in reply.body
    assert server.state.storage.faults() == [], f"a fault was added with {how}"
    refusals = server.events(code="UNAUTHORIZED")
    assert len(refusals) == len(ENDPOINTS), f"{len(ENDPOINTS)} refusals answered, {len(refusals)} recorded"
    reply = admin(server, "GET", "/api/admin/events?code=UNAUTHORIZED", f"Bearer {token}")
    assert reply.status == 200, f"the real token was refused: HTTP {reply.status}"
    assert len(json.loads(reply.body)["events"]) == len(ENDPOINTS)


LIMITS = [pytest.param("0", 400, id="below"), pytest.param("1", 200, id="lowest"),
          pytest.param(str(MAX_LIMIT), 200, id="highest"), pytest.param(str(MAX_LIMIT + 1), 400, id="above"),
          pytest.param("-1", 400, id="negative"), pytest.param("1e3", 400, id="not-an-integer"),
          pytest.param("", 400, id="empty")]  # fmt: skip


@pytest.mark.stride("D", threat="an admin query without bounds makes the server dump its whole database")
@pytest.mark.parametrize("limit, status", LIMITS)
def test_admin_query_limit_checked_at_its_bounds(server: ServerUnderTest, limit: str, status: int) -> None:
    """``limit`` is an integer from 1 to the documented maximum: just inside is answered (with at most
    that many records), just outside is refused as invalid — never a 5xx, never unbounded."""
    token = f"Bearer {server.state.config.admin_token}"
    for _ in range(2):  # two records, so that limit=1 visibly cuts the answer
        admin(server, "GET", "/api/admin/events", None)
    reply = admin(server, "GET", f"/api/admin/events?limit={limit}", token)
    assert reply.status == status, f"limit={limit!r}: HTTP {reply.status} {reply.body[:200]!r}, expected {status}"
    if status == 200:
        assert len(json.loads(reply.body)["events"]) == min(int(limit), 2)


BAD_FAULTS = [pytest.param(b"[1]", id="not-an-object"), pytest.param(b'{"params": {}}', id="no-name"),
              pytest.param(b'{"name": 7}', id="name-not-text"),
              pytest.param(b'{"name": "Drop-It"}', id="name-not-snake"),
              pytest.param(b'{"name": "drop_connection", "params": [1]}', id="params-not-object"),
              pytest.param(b'[{"name": "drop_connection"}, {"name": 7}]', id="one-bad-of-two")]  # fmt: skip


@pytest.mark.stride("T", threat="a malformed fault request half-applies or crashes the server")
@pytest.mark.parametrize("body", BAD_FAULTS)
def test_malformed_fault_refused_and_nothing_added(server: ServerUnderTest, body: bytes) -> None:
    """A fault request that is malformed anywhere is refused as invalid as a whole: no fault of it is
    added, not even the well-formed ones before the bad one; a well-formed one is then added."""
    token = f"Bearer {server.state.config.admin_token}"
    reply = admin(server, "POST", "/api/admin/faults", token, body)
    assert reply.status == 400, f"{body!r}: HTTP {reply.status} {reply.body[:200]!r}"
    assert server.state.storage.faults() == [], f"{body!r} added a fault"
    reply = admin(server, "POST", "/api/admin/faults", token, FAULT)
    assert reply.status == 201 and len(server.state.storage.faults()) == 1
