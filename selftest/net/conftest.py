"""Fixtures for the hil.net self-tests: a tiny HTTP/1.1 server and private loopback addresses."""

from __future__ import annotations

import itertools
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from hil.sim import netns
from hil.sim.station import Station

# Each test gets its own 127.x.y.z so captures never see another test's (or worker's) traffic.
_addresses = itertools.count(1)


@pytest.fixture
def board_addr() -> str:
    n = next(_addresses)
    return f"127.{77 + os.getpid() % 100}.{n // 250}.{n % 250 + 2}"


@pytest.fixture
def board_network() -> Iterator[Station]:
    """A board's own network namespace behind a veth pair (a virtual board's, made for this test)."""
    station = netns.create()
    try:
        yield station
    finally:
        netns.delete(station)


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers every request with JSON describing it; keep-alive (HTTP/1.1)."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.hits.append((self.command, self.path, body))  # type: ignore[attr-defined]
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        out = json.dumps({"method": self.command, "path": self.path, "body": body.decode("latin-1"),
                          "n": len(self.server.hits)}).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture
def http_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    server.daemon_threads = True
    server.hits = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)
