"""HTTP/1.1 persistent connections for the reference server on werkzeug's threaded WSGI server.

werkzeug 3 answers every request with ``Connection: close`` and, after each response, reads whatever
the client sent next to discard an unread body, so its server never keeps a connection: a device
fetching 513 chunks opens 513 TCP (or TLS) connections where ``esp_http_client`` would use one.

:class:`KeepAliveHandler` is werkzeug's request handler with ``run_wsgi`` replaced: the same environ,
chunked framing for a body of unknown length, a 500 for an application error, but the connection
stays open for the next request unless

- the client asked to close (``Connection: close``) or speaks HTTP/1.0: the response says
  ``Connection: close`` and the server closes after it;
- a response without Content-Length goes to an HTTP/1.0 client (delimited by the close);
- the response broke part-way (an application error or a dropped client after the headers went out);
- the request body was not read to its end and more than :data:`DRAIN_LIMIT` bytes of it are left
  (a refused oversized upload), or it was chunked and not read to its end;
- the application asked for it (``environ[CLOSE_CONNECTION] = True``: the ``drop_connection`` fault,
  which shuts the socket itself mid-body);
- the server is stopping.

:class:`KeepAliveServer` counts connections and requests (:class:`ConnectionTracker`) and, on
:meth:`ConnectionTracker.close_all`, shuts idle kept-alive connections at once: a handler waiting for
the next request line would otherwise hold ``server_close()`` for its whole idle timeout.
"""

from __future__ import annotations

import io
import logging
import selectors
import socket
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import InternalServerError
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

log = logging.getLogger("hil.server")
CLOSE_CONNECTION = "hil.server.close_connection"  # environ key: close the connection after this response
DRAIN_LIMIT = 64 * 1024  # unread request body the server reads and discards to keep the connection
_DISCARD_LIMIT = 10_000_000  # before a close: what a client still sending may push, read and dropped
_DISCARD_QUIET_S = 0.01  # ... until it has been silent this long (werkzeug's own figure)
_DROPPED = (ConnectionError, TimeoutError)


class ConnectionTracker:
    """The open connections of one server (idle or in a request) and counters for tests.

    ``accepted`` counts every TCP connection the server accepted, ``requests`` every request it
    started to answer.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._open: dict[KeepAliveHandler, bool] = {}  # handler -> busy answering a request
        self.stopping = False
        self.accepted = 0
        self.requests = 0

    @property
    def open(self) -> int:
        """Connections open now."""
        with self._changed:
            return len(self._open)

    def wait_closed(self, timeout: float) -> bool:
        """Wait until no connection is open (clients closed theirs); False on timeout."""
        return self.wait_until(lambda tracker: not tracker._open, timeout)

    def wait_until(self, predicate: Callable[[ConnectionTracker], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds (checked at every accept, request and close)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def opened(self, handler: KeepAliveHandler) -> None:
        with self._changed:
            self.accepted += 1
            self._open[handler] = False
            if self.stopping:  # accepted in the last moment before stop(): closed unanswered
                _shut(handler.connection)
            self._changed.notify_all()

    def busy(self, handler: KeepAliveHandler) -> None:
        with self._changed:
            self.requests += 1
            self._open[handler] = True
            self._changed.notify_all()

    def idle(self, handler: KeepAliveHandler) -> bool:
        """The handler finished a response; False when the server is stopping (close, do not wait)."""
        with self._changed:
            self._open[handler] = False
            return not self.stopping

    def closed(self, handler: KeepAliveHandler) -> None:
        with self._changed:
            self._open.pop(handler, None)
            self._changed.notify_all()

    def close_all(self, grace: float) -> int:
        """Shut idle connections now, give requests in progress ``grace`` seconds to finish, then shut
        theirs too. Returns how many handlers are still running after another ``grace`` (stuck in
        application code, e.g. a long ``delay_chunk``; their threads are daemons)."""
        with self._changed:
            self.stopping = True
            for handler, busy in self._open.items():
                if not busy:
                    _shut(handler.connection)
            self._changed.wait_for(lambda: not self._open, grace)
            for handler in self._open:
                _shut(handler.connection)
            self._changed.wait_for(lambda: not self._open, grace)
            return len(self._open)


def _shut(sock: socket.socket) -> None:
    """Shut both directions of a connection another thread may be blocked reading.

    The plain-socket method also on a TLS socket: ``SSLSocket.shutdown`` would drop the TLS object
    under a reader in ``SSL_read``; this way the reader sees EOF.
    """
    try:
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the peer or by the handler


class KeepAliveServer(ThreadedWSGIServer):
    """werkzeug's threaded WSGI server whose connections a :class:`ConnectionTracker` follows.

    ``server_close()`` does not join handler threads (``block_on_close`` off):
    :meth:`ConnectionTracker.close_all` ends them, bounded in time.
    """

    block_on_close = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = ConnectionTracker()


class _Body(io.RawIOBase):
    """The request body as the application reads it (``wsgi.input``), counting what it read."""

    def __init__(self, stream: Any, length: int | None, *, chunked: bool, framed: bool = True) -> None:
        self._stream, self.length, self.chunked = stream, length, chunked
        self.framed = framed  # False: a Content-Length nobody can parse, the body's end is unknown
        self.consumed = 0
        self.exhausted = False  # a chunked body read to its last chunk

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            n = self._stream.readinto(buffer) or 0
        except OSError:  # bad chunk framing, timeout, reset: where the body ends is unknown now
            self.framed = False
            raise
        self.consumed += n
        if self.chunked and n == 0 and len(buffer):
            self.exhausted = True
        return n

    def finish(self, limit: int) -> bool:
        """Read and discard what the application left of the body, up to ``limit`` bytes; True when
        the body was read to its end (the next request starts right after it)."""
        if not self.framed:
            return False
        if self.chunked:
            while not self.exhausted and limit > 0:
                limit -= len(self.read(min(limit, 65536)))
            return self.exhausted
        remaining = (self.length or 0) - self.consumed
        if remaining > limit:
            return False
        while remaining > 0:
            data = self._stream.read(min(remaining, 65536))
            if not data:
                return False
            remaining -= len(data)
        return True

    @property
    def complete(self) -> bool:
        """Nothing of the body is left unread."""
        if not self.framed:
            return False
        return self.exhausted if self.chunked else self.consumed >= (self.length or 0)


class KeepAliveHandler(WSGIRequestHandler):
    """werkzeug's WSGI request handler with HTTP/1.1 persistent connections (module docstring)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them

    def _tracker(self) -> ConnectionTracker | None:
        return getattr(self.server, "connections", None)

    def setup(self) -> None:
        super().setup()
        tracker = self._tracker()
        if tracker is not None:
            tracker.opened(self)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            tracker = self._tracker()
            if tracker is not None:
                tracker.closed(self)

    def log_error(self, format: str, *args: Any) -> None:
        if format.startswith("Request timed out"):  # an idle kept-alive connection: routine, not an error
            log.debug("%s: kept-alive connection idle for %s s, closed", self.address_string(), self.timeout)
            return
        super().log_error(format, *args)

    def run_wsgi(self) -> None:
        tracker = self._tracker()
        if tracker is not None:
            tracker.busy(self)
        try:
            self._answer()
        finally:
            if tracker is not None and not tracker.idle(self):
                self.close_connection = True

    def _answer(self) -> None:
        if self.request_version != "HTTP/1.1":
            self.close_connection = True  # HTTP/1.0 (and anything else): one request per connection
        self.environ = environ = self.make_environ()
        body = _request_body(environ)
        method = environ["REQUEST_METHOD"]
        status_set: str | None = None
        headers_set: list[tuple[str, str]] | None = None
        status_sent: str | None = None
        chunked = False

        def write(data: bytes) -> None:
            nonlocal status_sent, chunked
            assert status_set is not None and headers_set is not None, "write() before start_response"
            if status_sent is None:
                status_sent = status_set
                code_text, _, reason = status_sent.partition(" ")
                code = int(code_text)
                self.send_response(code, reason)
                keys = set()
                for key, value in headers_set:
                    self.send_header(key, value)  # an application's own "Connection: close" is honoured
                    keys.add(key.lower())
                if "content-length" not in keys and not (method == "HEAD" or 100 <= code < 200 or code in (204, 304)):
                    if self.close_connection or self.request_version != "HTTP/1.1":
                        self.close_connection = True  # delimited by the close
                    else:
                        chunked = True
                        self.send_header("Transfer-Encoding", "chunked")
                tracker = self._tracker()
                if tracker is not None and tracker.stopping:
                    self.close_connection = True
                if self.close_connection and "connection" not in keys:
                    self.send_header("Connection", "close")
                self.end_headers()
            if data:
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    self.wfile.write(data)
            self.wfile.flush()

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal status_set, headers_set
            if exc_info:
                try:
                    if status_sent is not None:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif headers_set is not None:
                raise AssertionError("Headers already set")
            status_set, headers_set = status, headers
            return write

        def execute(app: Any) -> None:
            application_iter: Iterable[bytes] = app(environ, start_response)
            try:
                for data in application_iter:
                    write(data)
                if status_sent is None:
                    write(b"")
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            finally:
                close = getattr(application_iter, "close", None)
                if close is not None:
                    close()

        try:
            execute(self.server.app)
        except _DROPPED as exc:
            self.close_connection = True
            self.connection_dropped(exc, environ)
        except Exception:
            if self.server.passthrough_errors:
                raise
            if status_sent is None:  # nothing sent yet: answer 500 instead
                status_set = headers_set = None
                try:
                    execute(InternalServerError())
                except OSError:  # the client went away meanwhile
                    self.close_connection = True
            else:  # the response broke part-way: only a close tells the client
                self.close_connection = True
            log.error("Error on request %s:\n%s", self.requestline, traceback.format_exc())
        if environ.get(CLOSE_CONNECTION):
            self.close_connection = True
        if not self.close_connection:
            try:
                drained = body.finish(DRAIN_LIMIT)
            except OSError:  # the client went away, stalled, or framed its chunks wrongly
                drained = False
            self.close_connection = not drained
        if self.close_connection and not body.complete:
            self._discard_pending()

    def _discard_pending(self) -> None:
        """Before closing on a body left unread: take what the client is still sending (bounded), so
        that the close does not reset the connection before the client has read the response."""
        total = 0
        with selectors.DefaultSelector() as selector:
            selector.register(self.connection, selectors.EVENT_READ)
            try:
                while total < _DISCARD_LIMIT and selector.select(_DISCARD_QUIET_S):
                    data = self.connection.recv(65536)
                    if not data:
                        break
                    total += len(data)
            except OSError:
                pass  # the client went away: nothing left to protect


def _request_body(environ: dict[str, Any]) -> _Body:
    """Wrap ``wsgi.input`` so the handler knows how much of the body the application read."""
    chunked = bool(environ.get("wsgi.input_terminated"))
    text = environ.get("CONTENT_LENGTH", "")
    length = int(text) if text.isascii() and text.isdigit() else None
    body = _Body(environ["wsgi.input"], length, chunked=chunked, framed=chunked or not text or length is not None)
    environ["wsgi.input"] = body
    return body
