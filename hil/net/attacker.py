"""Attacker: someone on the board's network. Reads what the board sent (a test's capture,
reassembled) and sends its own requests to the server: replays, forgeries, floods — in the wire
format of its :class:`~hil.wire.profile.WireProfile` (which also judges the server's replies)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

import pytest

from hil.net.fallback import Capture
from hil.net.flows import flows_from_pcap
from hil.net.forge import Forger
from hil.net.http import HttpMessage
from hil.net.replay import HttpReplayResult, replay_http, send_http
from hil.protocol.upload import UploadPacket
from hil.wire.outcome import Verdict
from hil.wire.profile import WireProfile, default_profile

SEND_TIMEOUT = 10.0


class ServerEndpoint(Protocol):
    """What the attacker needs of a server: where it is (``hil.server.under_test.ServerUnderTest``)."""

    @property
    def url(self) -> str: ...

    @property
    def address(self) -> tuple[str, int]: ...

    @property
    def scheme(self) -> str: ...


@dataclass
class Attacker:
    """Sniffed traffic of the board in, forged or replayed requests out (to ``server``)."""

    server: ServerEndpoint
    capture: Capture | None = None
    wire: WireProfile = field(default_factory=default_profile)

    @property
    def forge(self) -> Forger:
        """Builds and mutates packets in this attacker's wire format."""
        return Forger(self.wire)

    def captured_requests(self, path: str | None = None) -> list[HttpMessage]:
        """Every request to *path* (default: the profile's upload route, any device) the board sent so
        far, reassembled from the capture, in order."""
        if self.capture is None:
            raise RuntimeError("this attacker sees no board traffic: use the `attacker` fixture, not `remote_attacker`")
        self.capture.sync()
        requests = [
            (flow.time_of("c2s", message.offset), message)  # several per kept-alive connection
            for flow in flows_from_pcap(self.capture.path)
            for message in flow.http_requests()
            if (message.target == path if path is not None else self.wire.is_upload_path(message.target or ""))
        ]
        return [message for _, message in sorted(requests, key=lambda item: item[0])]

    def captured_uploads(self) -> list[UploadPacket]:
        """The upload packets the board sent so far (over plain HTTP)."""
        return [self.wire.parse_request(r.target or "", r.body) for r in self.captured_requests()]

    def send(self, body: bytes | UploadPacket, *, path: str | None = None, chunked: bool = False) -> HttpMessage:
        """Send *body* to the upload route on a new connection (in chunked framing, without a
        Content-Length, if *chunked*); the response."""
        request = self.request(body, path=path)
        request = request.as_chunked() if chunked else request
        return send_http(request.raw, self._target(), timeout=SEND_TIMEOUT, method=request.method or "POST")

    def verdict(self, reply: HttpMessage | HttpReplayResult) -> Verdict:
        """What *reply* means under this attacker's wire profile."""
        if isinstance(reply, HttpReplayResult):
            return self.wire.classify(reply.status, reply.response.body if reply.response else b"")
        return self.wire.classify(reply.status, reply.body)

    def replay(self, request: HttpMessage | bytes, *, times: int = 1, parallel: int = 1) -> list[HttpReplayResult]:
        """Re-send a captured request *times* times, *parallel* at once."""
        return replay_http(request, self._target(), times=times, parallel=parallel, timeout=SEND_TIMEOUT)

    def request(self, body: bytes | UploadPacket, *, path: str | None = None) -> HttpMessage:
        """The HTTP request that sends *body* to the server's upload route (or *path*)."""
        host, port = self.server.address
        return self.forge.request(body, host=f"{host}:{port}", path=path)

    def _target(self) -> tuple[str, int]:
        if self.server.scheme != "http":
            pytest.skip(f"attacker requests are sent over plain HTTP; the server under test is {self.server.url}")
        return self.server.address


def reply_json(message: HttpMessage) -> dict[str, Any]:
    """The JSON object of a server reply (AssertionError naming the status when it is not one)."""
    try:
        doc = json.loads(message.body)
    except ValueError:
        raise AssertionError(f"HTTP {message.status} reply is not JSON: {message.body[:200]!r}") from None
    assert isinstance(doc, dict), f"HTTP {message.status} reply is not a JSON object: {doc!r}"
    return doc
