"""NonceBook: where each test's nonces start, per device, on the server under test."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import pytest

from hil.images.keys import KeyStore
from hil.images.nvs_gen import DEFAULT_DEVICE_ID, DEFAULT_NONCE, lab_identity
from hil.net.forge import craft, upload_request
from hil.net.replay import send_http
from hil.protocol.readings import Reading, Readings
from hil.server.under_test import ServerUnderTest


@dataclass
class NonceBook:
    """Where a test's nonces start, per device.

    A built-in server has a fresh database per test: every test starts at the factory nonce. An
    external server keeps its last nonces across tests and runs, so the book asks it once per device
    and session — a signed probe with nonce 0 is refused as ``REPLAY_ATTACK`` with the server's
    ``last_nonce`` — and hands each test a block above it. A rerun never starts as a replay.
    """

    server: ServerUnderTest | None
    keys: KeyStore | None = None
    block_size: int = 16  # a test uses a handful of nonces
    _next: dict[str, int] = field(default_factory=dict)

    def block(self, device_id: str = DEFAULT_DEVICE_ID) -> int:
        """The last nonce to provision *device_id* with (its first upload then uses this + 1)."""
        if self.server is None:
            return DEFAULT_NONCE
        if device_id not in self._next:
            self._next[device_id] = max(DEFAULT_NONCE, self._probe(device_id))
        start = self._next[device_id]
        self._next[device_id] = start + self.block_size
        return start

    def _probe(self, device_id: str) -> int:
        assert self.server is not None and self.keys is not None
        identity = lab_identity(self.keys, device_id)
        packet = craft(
            device_id, 0, Readings(device_id, int(time.time()), (Reading("Vac1", 0.0),)), key=identity.hmac_key
        )
        host, port = self.server.address
        reply = send_http(upload_request(packet, host=f"{host}:{port}").raw, self.server.address, method="POST")
        try:
            doc = json.loads(reply.body)
        except ValueError:
            doc = {}
        if reply.status == 200:
            return 0  # first contact: nonce 0 is now its last
        if doc.get("error_code") == "REPLAY_ATTACK" and isinstance(doc.get("last_nonce"), int):
            return doc["last_nonce"]
        raise pytest.UsageError(
            f"--hil-server-url {self.server.url}: cannot learn the last nonce of {device_id}; "
            f"a signed probe got HTTP {reply.status} {reply.body[:200]!r} (is the device "
            "registered with the lab keys of firmware_builds/devices.json?)"
        )
