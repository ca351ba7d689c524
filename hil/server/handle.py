"""Run the reference server in-process on a background thread (fixtures, benchmarks, ``hil server``)."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flask import Flask

from hil.server.app import app_state, close_app, create_app
from hil.server.config import ServerConfig
from hil.server.keepalive import ConnectionTracker, KeepAliveHandler, KeepAliveServer
from hil.server.responses import ResponseLog
from hil.server.state import ServerState

log = logging.getLogger("hil.server")
access_log = logging.getLogger("hil.server.access")
REQUEST_TIMEOUT_S = 30.0  # a client that connects and goes silent ties up one thread this long, no more
STOP_GRACE_S = 1.0  # stop(): how long requests in progress may still finish (idle connections close at once)
POLL_INTERVAL_S = 0.05  # how quickly stop() is noticed by serve_forever


class _LazyHandshakeContext(ssl.SSLContext):
    """Server TLS context whose handshake runs on the request thread, not in ``accept()``.

    werkzeug wraps the listening socket, so by default a client that connects and never speaks
    TLS would stall the accept loop for every other client.
    """

    def wrap_socket(
        self,
        sock: socket.socket,
        server_side: bool = False,
        do_handshake_on_connect: bool = True,
        *args: Any,
        **kwargs: Any,
    ) -> ssl.SSLSocket:
        return super().wrap_socket(sock, server_side, False, *args, **kwargs)


class _Handler(KeepAliveHandler):
    timeout = REQUEST_TIMEOUT_S  # also how long a kept-alive connection may sit idle

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Through logging (shown when the caller configures INFO, as `hil server` does), not werkzeug's
        # own stderr handler, which would flood test and benchmark output.
        access_log.info("%s %s %s", self.address_string(), self.requestline, code)


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """TLS 1.2+ server context for *cert*/*key* (PEM)."""
    ctx = _LazyHandshakeContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load TLS certificate {cert} / key {key}: {exc}") from None
    return ctx


class ServerHandle:
    """The server on a real threaded WSGI server in a background thread, HTTP/1.1 with persistent
    connections (:mod:`hil.server.keepalive`).

    ``port=0`` picks a free port (see :attr:`url` after :meth:`start`). Nothing happens until
    :meth:`start`; :meth:`stop` shuts down, closes idle kept-alive connections at once (requests in
    progress get :data:`STOP_GRACE_S`), joins the thread and closes the database.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        defects: Iterable[str] = (),
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
        responses: ResponseLog | None = None,
    ) -> None:
        if (tls_cert is None) != (tls_key is None):
            raise ValueError("give both tls_cert and tls_key, or neither")
        self.config = config
        self.responses = responses  # None: a fresh answer log; a restarted server continues its predecessor's
        self.host = host
        self.requested_port = port
        self.defects = tuple(defects)
        self.tls_cert, self.tls_key = tls_cert, tls_key
        self.app: Flask | None = None
        self._server: KeepAliveServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("server not started: call start() or use `with ServerHandle(...)`")
        return self._server.server_port

    @property
    def url(self) -> str:
        """Base URL, e.g. ``https://127.0.0.1:5001``."""
        scheme = "https" if self.tls_cert else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def connections(self) -> ConnectionTracker:
        """Connections accepted, requests answered and connections open (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("server not started: call start() or use `with ServerHandle(...)`")
        return self._server.connections

    @property
    def state(self) -> ServerState:
        """Storage, config and defects of the running app (for fixtures asserting on server records)."""
        if self.app is None:
            raise RuntimeError("server not started: call start() or use `with ServerHandle(...)`")
        return app_state(self.app)

    def start(self) -> ServerHandle:
        """Open the database, bind the socket and serve on a daemon thread."""
        if self._server is not None:
            raise RuntimeError(f"server already running at {self.url}")
        ssl_context = None
        if self.tls_cert is not None:
            if self.tls_key is None:
                raise ValueError("give both tls_cert and tls_key, or neither")
            ssl_context = server_tls_context(self.tls_cert, self.tls_key)
        self.app = create_app(self.config, defects=self.defects, responses=self.responses)
        try:
            self._server = KeepAliveServer(
                self.host, self.requested_port, self.app, handler=_Handler, ssl_context=ssl_context
            )
        except OSError as exc:
            close_app(self.app)
            raise OSError(f"cannot listen on {self.host}:{self.requested_port}: {exc}") from exc
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_INTERVAL_S,), name=f"hil-server-{self.port}", daemon=True
        )
        self._thread.start()
        log.info(
            "EcoWatt reference server on %s (wire profile %s, defects: %s)",
            self.url,
            self.config.wire.name,
            ", ".join(self.defects) or "none",
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, join the thread, close the socket and the database. Idempotent."""
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"server thread on port {server.server_port} did not stop within {timeout} s")
        stuck = server.connections.close_all(min(STOP_GRACE_S, timeout))
        if stuck:
            log.warning("%d request(s) on port %d still running at stop (daemon threads)", stuck, server.server_port)
        server.server_close()
        if self.app is not None:
            close_app(self.app)

    def __enter__(self) -> ServerHandle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
