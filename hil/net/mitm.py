"""HTTP-aware man-in-the-middle proxy between a board and a server.

The board is pointed at the proxy; each client connection gets its own upstream connection and a
thread that reads one request at a time (keep-alive preserved), applies the first due request rule,
forwards, reads the response, applies the first due response rule and answers. Rules
(:mod:`hil.net.rules`) can be changed while it runs. Every decision lands in :attr:`events`
(method, target, phase, action, status: never bodies), and a scenario can wait for one.
Plain HTTP only: a TLS upstream needs the recording relay (bytes, not messages).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from hil.net.http import HttpMessage, HttpParseError, parse_message
from hil.net.rules import Rule, RuleSet, corrupt_body
from hil.net.workers import WorkerGroup, bound_address, open_listener

Endpoint = tuple[str, int]


class ProxyError(RuntimeError):
    """The proxy could not start or stop cleanly."""


@dataclass(frozen=True)
class ProxyEvent:
    """One message the proxy handled and what it did with it."""

    time: float
    client: Endpoint
    phase: str
    method: str
    target: str
    action: str
    status: int | None = None
    detail: str = ""

    def describe(self) -> str:
        """One line for logs and the report."""
        status = f" {self.status}" if self.status is not None else ""
        extra = f" ({self.detail})" if self.detail else ""
        return f"{self.phase} {self.method} {self.target}{status}: {self.action}{extra}"


class MitmProxy:
    """Thread-based HTTP proxy with per-request/per-response rules.

    ``start()`` binds and returns when listening; :attr:`address` is where the board connects.
    ``stop()`` closes every connection and joins every thread. Use as a context manager.
    """

    def __init__(
        self,
        upstream: Endpoint,
        *,
        listen: Endpoint = ("127.0.0.1", 0),
        rules: list[Rule] | None = None,
        max_connections: int = 64,
        idle_timeout: float = 30.0,
        upstream_timeout: float = 10.0,
        join_timeout: float = 5.0,
    ) -> None:
        self.upstream = upstream
        self.listen = listen
        self.rules = RuleSet(list(rules or []))
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.upstream_timeout = upstream_timeout
        self.join_timeout = join_timeout
        self._server: socket.socket | None = None
        self._workers = WorkerGroup("mitm")
        self._events: list[ProxyEvent] = []
        self._changed = threading.Condition()
        self._connections = 0

    @property
    def address(self) -> Endpoint:
        """The bound listening address."""
        return bound_address(self._server, "MITM proxy")

    @property
    def events(self) -> list[ProxyEvent]:
        """A copy of the event log so far."""
        with self._changed:
            return list(self._events)

    def wait_for(self, predicate: Callable[[ProxyEvent], bool], timeout: float) -> ProxyEvent | None:
        """The first logged event satisfying *predicate*, waiting up to *timeout* for it to happen."""

        def found() -> ProxyEvent | None:
            return next((e for e in self._events if predicate(e)), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None, timeout)
            return found()

    def start(self) -> MitmProxy:
        """Bind, listen and start accepting."""
        try:
            server = open_listener(self.listen, backlog=self.max_connections)
        except OSError as exc:
            raise ProxyError(f"MITM proxy cannot listen on {self.listen[0]}:{self.listen[1]} ({exc})") from exc
        self._server = server
        self._workers.open()
        self._workers.spawn(self._accept_loop, name=f"accept-{self.address[1]}")
        return self

    def stop(self) -> None:
        """Close all connections and join all threads; idempotent."""
        if self._server is None:
            return
        alive = self._workers.stop(self.join_timeout)
        self._server.close()
        self._server = None
        if alive:
            raise ProxyError(f"MITM proxy threads {alive} did not stop within {self.join_timeout}s")

    def __enter__(self) -> MitmProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals -------------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._server is not None
        while not self._workers.stopping.is_set():
            if not self._workers.wait_readable([self._server]):
                continue
            client, peer = self._server.accept()
            with self._changed:
                full = self._connections >= self.max_connections
                self._connections += 0 if full else 1
            if full:
                client.close()  # bounded: refuse rather than grow without limit
                continue
            self._workers.spawn(self._serve, client, peer[:2], name=f"conn-{peer[1]}")

    def _serve(self, client: socket.socket, peer: Endpoint) -> None:
        upstream: list[socket.socket] = []  # filled lazily by the loop; closed here whatever happens
        try:
            with client:
                self._exchange_loop(client, peer, upstream)
        except OSError as exc:  # either side reset or vanished mid-exchange: end this connection only
            self._log(peer, "connection", _NO_REQUEST, "closed-by-peer", detail=str(exc))
        finally:
            for sock in upstream:
                sock.close()
            with self._changed:
                self._connections -= 1

    def _exchange_loop(self, client: socket.socket, peer: Endpoint, upstream: list[socket.socket]) -> None:
        cbuf = ubuf = b""
        while not self._workers.stopping.is_set():
            request, cbuf, _ = self._read(client, cbuf, is_response=False, timeout=self.idle_timeout)
            if request is None:
                return
            request, reply = self._apply_request_rule(peer, request)
            if reply is not None:
                if reply is _DROP:
                    return
                client.sendall(reply.raw)
                continue
            if not upstream:
                try:
                    upstream.append(socket.create_connection(self.upstream, timeout=self.upstream_timeout))
                except OSError as exc:
                    self._log(peer, "request", request, "upstream-unreachable", detail=str(exc))
                    return
            upstream[0].sendall(request.raw)
            response, ubuf, upstream_eof = self._read(
                upstream[0], ubuf, is_response=True, timeout=self.upstream_timeout, method=request.method
            )
            if response is None:
                self._log(peer, "response", request, "upstream-closed")
                return
            response = self._apply_response_rule(peer, request, response)
            if response is None:
                return
            client.sendall(response.raw)
            if upstream_eof or _wants_close(request) or _wants_close(response):
                return

    def _apply_request_rule(self, peer: Endpoint, request: HttpMessage) -> tuple[HttpMessage, HttpMessage | None]:
        rule = self.rules.select("request", request)
        action = rule.action if rule else "pass"
        self._log(peer, "request", request, action, detail=rule.describe() if rule else "")
        if rule is None or action == "pass":
            return request, None
        if action == "drop":
            return request, _DROP
        if action == "inject":
            return request, rule.response
        if action == "delay" and not self._workers.wait(rule.delay_ms / 1000):
            return request, _DROP  # stopping
        if action == "corrupt":
            request = corrupt_body(request, rule.offsets)
        return request, None

    def _apply_response_rule(self, peer: Endpoint, request: HttpMessage, response: HttpMessage) -> HttpMessage | None:
        rule = self.rules.select("response", request, response)
        action = rule.action if rule else "pass"
        self._log(peer, "response", request, action, status=response.status, detail=rule.describe() if rule else "")
        if rule is None or action == "pass":
            return response
        if action == "drop":
            return None
        if action == "delay":
            return response if self._workers.wait(rule.delay_ms / 1000) else None
        if action == "corrupt":
            return corrupt_body(response, rule.offsets)
        return rule.response

    def _read(
        self, sock: socket.socket, buf: bytes, *, is_response: bool, timeout: float, method: str | None = None
    ) -> tuple[HttpMessage | None, bytes, bool]:
        """Next message from *sock* (``None`` on EOF, timeout, stop or garbage), the leftover bytes,
        and whether the peer closed."""
        deadline = time.monotonic() + timeout
        eof = False
        while True:
            try:
                parsed = parse_message(buf, is_response=is_response, eof=eof, request_method=method)
            except HttpParseError:
                return None, b"", eof  # not HTTP: nothing sensible to forward
            if parsed is not None:
                msg, end = parsed
                return msg, buf[end:], eof
            remaining = deadline - time.monotonic()
            if eof or remaining <= 0 or not self._workers.wait_readable([sock], remaining):
                return None, buf, eof
            try:
                chunk = sock.recv(65536)
            except OSError:
                return None, buf, True
            eof = not chunk
            buf += chunk

    def _log(
        self,
        peer: Endpoint,
        phase: str,
        request: HttpMessage,
        action: str,
        *,
        status: int | None = None,
        detail: str = "",
    ) -> None:
        event = ProxyEvent(time.time(), peer, phase, request.method or "", request.target or "", action, status, detail)
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()


def _wants_close(msg: HttpMessage) -> bool:
    return (
        (msg.header("Connection") or "").lower() == "close"
        or msg.start_line.startswith("HTTP/1.0 ")
        or msg.start_line.endswith(" HTTP/1.0")
    )


_DROP = HttpMessage("drop", (), b"", b"", True)  # sentinel: close the client connection
_NO_REQUEST = HttpMessage("- - HTTP/1.1", (), b"", b"", False)  # for events outside any request
