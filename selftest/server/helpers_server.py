"""Helpers of the reference-server self-tests: TEST ONLY devices, packets, a fake clock, HTTP shortcuts."""

from __future__ import annotations

import http.client
import json
import ssl
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hil.server.clock import ManualClock
from hil.protocol import Reading, Readings, UploadPacket, build_packet
from hil.server import ServerConfig, devices_from_entries

ADMIN_TOKEN = "test-admin-token"  # TEST ONLY
DEVICES = devices_from_entries([
    {"device_id": "EW-0001", "hmac_key": "11" * 32, "aes_key": "22" * 16},   # TEST ONLY keys
    {"device_id": "EW-0002", "hmac_key": "33" * 32, "aes_key": "44" * 16},
])
UPLOAD = "/api/upload/data"


FakeClock = ManualClock  # the clock the tests move by hand (rate-limit windows without waiting)


def readings(device_id: str = "EW-0001", n: int = 2) -> Readings:
    """*n* samples of *device_id*."""
    regs = ("Vac1", "Iac1", "Fac1", "Pac")
    return Readings(device_id, 1700000000, tuple(Reading(regs[i % 4], 230.0 + i) for i in range(n)))


def packet(nonce: int, device_id: str = "EW-0001", *, encrypted: bool = False, n: int = 2) -> UploadPacket:
    """A valid packet signed with the device's registered keys."""
    keys = DEVICES[device_id]
    return build_packet(readings(device_id, n), nonce=nonce, hmac_key=keys.hmac_key,
                        aes_key=keys.aes_key if encrypted else None)


def doc(nonce: Any = 10001, device_id: Any = "EW-0001", **changes: Any) -> dict[str, Any]:
    """A packet dict signed for (nonce, device_id) when those are valid, with *changes* applied on top.

    Any field set to ``...`` is removed, so ``doc(mac=...)`` is "mac missing".
    """
    signable = isinstance(nonce, int) and not isinstance(nonce, bool) and 0 <= nonce < 2**32
    signer = device_id if isinstance(device_id, str) and device_id in DEVICES else "EW-0001"
    out = {**packet(nonce if signable else 10001, signer).to_dict(), "nonce": nonce, "device_id": device_id,
           **changes}
    return {k: v for k, v in out.items() if v is not ...}


def forged(nonce: int, device_id: str = "EW-0001") -> dict[str, Any]:
    """A well-formed packet with a wrong MAC."""
    return doc(nonce, device_id, mac="0" * 64)


def post(client: Any, body: dict | bytes | UploadPacket, *, peer: str = "127.0.0.1") -> tuple[int, dict[str, Any]]:
    """POST an upload body from *peer*; return (status, JSON reply)."""
    if isinstance(body, UploadPacket):
        body = body.to_json()
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = client.post(UPLOAD, data=data, content_type="application/json", environ_overrides={"REMOTE_ADDR": peer})
    return reply.status_code, reply.get_json(silent=True) or {}


def admin_get(client: Any, path: str) -> Any:
    """GET an admin endpoint with the token; the JSON body."""
    reply = client.get(path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert reply.status_code == 200, reply.get_data(as_text=True)
    return reply.get_json()


def make_config(tmp_path: Path, clock: FakeClock | None = None, **overrides: Any) -> ServerConfig:
    """A config on a fresh database in *tmp_path*."""
    config = ServerConfig(db_path=tmp_path / "server.sqlite", devices=DEVICES, admin_token=ADMIN_TOKEN)
    if clock is not None:
        config = replace(config, clock=clock)
    return replace(config, **overrides)


def http_request(url: str, method: str, path: str, body: bytes | None = None, *,
                 context: ssl.SSLContext | None = None, headers: dict[str, str] | None = None,
                 timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """One request over a real socket (stdlib only); (status, JSON reply)."""
    parts = urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read() or b"{}")
    finally:
        conn.close()
