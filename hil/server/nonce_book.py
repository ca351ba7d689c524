"""NonceBook: where each test's nonces start, per device, on the server under test."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from hil.images.keys import KeyStore
from hil.net.forge import Forger
from hil.net.replay import send_http
from hil.protocol.readings import REGISTERS, Reading, Readings
from hil.server.under_test import ServerUnderTest
from hil.wire.classifier import mismatch_hint
from hil.wire.identity import lab_identity
from hil.wire.outcome import Outcome
from hil.wire.profile import WireProfile


@dataclass
class NonceBook:
    """Where a test's nonces start, per device.

    A built-in server has a fresh database per test: every test starts where a fresh device of the
    wire format starts (its provisioned nonce, raised to its boot floor). An external server keeps its
    last nonces across tests and runs, so the book asks it once per device and session — a signed
    probe with the profile's probe nonce is refused as replay, stating the server's last accepted
    nonce where the profile says — and hands each test a block above it. A rerun never starts as a replay.
    """

    server: ServerUnderTest | None
    wire: WireProfile
    keys: KeyStore | None = None
    block_size: int = 16  # a test uses a handful of nonces
    _next: dict[str, int] = field(default_factory=dict)

    def block(self, device_id: str | None = None) -> int:
        """The last nonce to provision *device_id* with (its first upload then uses this + 1)."""
        start_of_device = self.wire.nonce.start(self.wire.nonce.provisioned)
        if self.server is None:
            return start_of_device
        device_id = device_id or self.wire.default_device_id
        if device_id not in self._next:
            self._next[device_id] = max(start_of_device, self._probe(device_id))
        start = self._next[device_id]
        self._next[device_id] = start + self.block_size
        return start

    def _probe(self, device_id: str) -> int:
        assert self.server is not None and self.keys is not None
        identity = lab_identity(self.wire, self.keys, device_id)
        readings = Readings(device_id, int(time.time()), tuple(Reading(r, 0.0) for r in REGISTERS))
        forger = Forger(self.wire)
        packet = forger.craft(device_id, self.wire.nonce.probe, readings, key=identity)
        host, port = self.server.address
        request = forger.request(packet, host=f"{host}:{port}")
        reply = send_http(request.raw, self.server.address, method=request.method or "POST")
        verdict = self.wire.classify(reply.status, reply.body)
        if verdict.outcome is Outcome.ACCEPTED:
            return self.wire.nonce.probe  # first contact: the probe's nonce is now its last
        last = self.wire.nonce.learn(verdict) if verdict.outcome is Outcome.REPLAY else None
        if last is not None:
            return last
        hint = mismatch_hint(
            verdict, method=request.method or "POST", path=request.target or "", profile=self.wire.name
        )
        if verdict.outcome is Outcome.RATE_LIMITED:
            hint = (
                f"The server rate-limited the probe ({self.wire.limits.rate} per {self.wire.limits.rate_window_s:g} s "
                "declared): wait for its window before the next run, or run fewer scenarios per window."
            )
        raise pytest.UsageError(
            f"--hil-server-url {self.server.url}: cannot learn the last nonce of {device_id} "
            f"(wire profile {self.wire.name}); a signed probe got {verdict.describe()}. "
            + (hint or f"Is {device_id} registered with the lab keys ({self.wire.key_scope} key scope)?")
        )
