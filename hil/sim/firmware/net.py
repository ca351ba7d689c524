"""The device's HTTP(S) client (``esp_http_client`` + ``esp-tls`` on a real board).

Real sockets from the board's own address (in its own network namespace when it has one: see
:mod:`hil.sim.netns`), with the TCP MSS clamped like Wi-Fi (1400 bytes: loopback
would otherwise put 64 KiB segments on the wire, which captures truncate). HTTPS verifies the server
certificate against the CA PEM the device was provisioned with, hostname or IP included; a handshake
failure raises :class:`TlsError` before a single byte of the request is sent. The defects that weaken
that check (``tls-no-verify``, ``tls-hostname-not-checked``) are honoured here, in :func:`verification`.

:func:`get` and :func:`post_json` use one connection per request (an upload cycle); an
:class:`HttpSession` keeps one connection alive over several requests (an OTA update), reconnecting
only after a failure or a close the server announced.
"""

from __future__ import annotations

import enum
import http.client
import json
import re
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hil.sim import netns
from hil.sim.station import LOOPBACK_ADDRESS, Station

WIFI_MSS = 1400  # bytes; what an ESP32 station's lwIP negotiates over Wi-Fi
DEFAULT_TIMEOUT_S = 5.0  # esp_http_client's default timeout_ms
MAX_REPLY_BYTES = 16 * 1024  # the firmware's response buffer
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,39}")
MAX_ERROR_TEXT = 80  # characters of a reply's free-text error a log line quotes
_DEFUSE = str.maketrans({'"': "'", " ": "_"})


class NetError(OSError):
    """The request did not complete (no connection, timeout, reset, malformed reply)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TlsError(NetError):
    """The TLS handshake failed (certificate not trusted, wrong name, no CA provisioned)."""


@dataclass(frozen=True)
class Endpoint:
    """Scheme, host and port of a server URL, and the path prefix requests go under."""

    scheme: str
    host: str
    port: int
    base_path: str

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        """Split ``http(s)://host[:port][/prefix]``; ``ValueError`` names the bad URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"server URL {url!r} is not http(s)://host[:port]; provision a valid server_url")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ValueError(f"server URL {url!r} has an invalid port") from None
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    def url(self, path: str) -> str:
        """The full URL of *path* on this endpoint (for log lines)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.base_path}{path}"


@dataclass(frozen=True)
class HttpReply:
    """Status and (bounded) body of a response."""

    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        """A 2xx status."""
        return 200 <= self.status < 300

    def error_code(self) -> str:
        """The body's ``error_code`` if it is a well-formed code, else ``-`` (server text is not echoed)."""
        try:
            code = json.loads(self.body).get("error_code")
        except (ValueError, AttributeError, RecursionError):
            return "-"
        return code if isinstance(code, str) and _CODE.fullmatch(code) else "-"

    def refusal(self) -> str:
        """What a refusal log line names: the ``error_code``; failing that (fw134 replies carry none)
        the body's ``error`` text in double quotes, at most :data:`MAX_ERROR_TEXT` characters, defused:
        printable ASCII only, ``"`` as ``'`` and spaces as ``_``, so server text can neither end the
        line or the quotes nor spell another log event (every profile event has a space); else ``-``."""
        code = self.error_code()
        if code != "-":
            return code
        try:
            text = json.loads(self.body).get("error")
        except (ValueError, AttributeError, RecursionError):
            return "-"
        if not isinstance(text, str) or not text:
            return "-"
        clean = "".join(c if " " <= c <= "~" else "?" for c in text[:MAX_ERROR_TEXT]).translate(_DEFUSE)
        return f'"{clean}"'


def station_of(rt: Any) -> Station:
    """The network attachment of the board running *rt* (a runtime without one: its
    ``net_address`` on this host's loopback, as the self-tests' fake runtimes give)."""
    station = getattr(rt, "station", None)
    return station if isinstance(station, Station) else Station(getattr(rt, "net_address", LOOPBACK_ADDRESS))


def open_socket(
    host: str, port: int, *, station: Station | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> socket.socket:
    """A TCP connection to *host*:*port* from *station*'s address (inside its network namespace, if
    it has one), MSS clamped to :data:`WIFI_MSS` before connect, Nagle off."""
    station = station or Station()
    source = station.address
    family = socket.AF_INET6 if ":" in source else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NetError(f"cannot resolve {host}: {exc.strerror}") from None
    af, kind, proto, _, address = infos[0]
    try:
        sock = (
            netns.socket_in(station.namespace, af, kind, proto) if station.namespace else socket.socket(af, kind, proto)
        )
    except netns.NetnsError as exc:
        raise NetError(str(exc)) from None
    try:
        # The clamp must precede connect(): the MSS option travels in the SYN.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, WIFI_MSS)
        # http.client writes a POST's headers and body separately: on a kept-alive connection Nagle
        # would hold the body until the server's delayed ACK (~40 ms on Linux) for every report.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        sock.bind((source, 0))
        sock.connect(address)
    except OSError as exc:
        sock.close()
        raise NetError(f"cannot connect to {host}:{port}: {_describe(exc)}") from None
    return sock


class Verify(enum.Enum):
    """What the HTTPS client checks of the server's certificate (the value says it in words)."""

    FULL = "its chain to the provisioned CA and its name"  # esp-tls with the host name set
    CHAIN_ONLY = "its chain only, not its name"  # mbedtls_ssl_set_hostname never called
    NONE = "nothing"  # MBEDTLS_SSL_VERIFY_NONE


def verification(defects: Iterable[str]) -> Verify:
    """What the firmware's HTTPS client (uploads and OTA alike) checks on a board with *defects*:
    ``tls-no-verify`` checks nothing; ``tls-hostname-not-checked`` (``skip_cert_common_name_check``
    in the ``esp_http_client`` config, so esp-tls never sets the host name) checks the chain, not the name."""
    names = frozenset(defects)
    if "tls-no-verify" in names:
        return Verify.NONE
    if "tls-hostname-not-checked" in names:
        return Verify.CHAIN_ONLY
    return Verify.FULL


def tls_context(ca_pem: str, *, verify: Verify = Verify.FULL) -> ssl.SSLContext:
    """Client context trusting only *ca_pem*, checking what *verify* says (a defect checks less)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if verify is Verify.NONE:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if not ca_pem.strip():
        raise TlsError("no CA certificate provisioned (NVS ecowatt/ca_cert)")
    try:
        ctx.load_verify_locations(cadata=ca_pem)
    except ssl.SSLError as exc:
        raise TlsError(f"provisioned CA certificate is unusable: {exc.reason}") from None
    ctx.check_hostname = verify is Verify.FULL  # the chain is verified either way (CERT_REQUIRED stays)
    return ctx


def post_json(
    endpoint: Endpoint,
    path: str,
    body: bytes,
    *,
    ca_pem: str = "",
    verify: Verify = Verify.FULL,
    station: Station | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    on_sent: Callable[[], None] | None = None,
) -> HttpReply:
    """POST *body* (JSON) to *path*; ``on_sent`` runs once the request is on the wire, before the reply.

    Raises :class:`TlsError` when the handshake fails (nothing was sent) and :class:`NetError` for
    any other failure to get a reply.
    """
    return _request(
        endpoint,
        "POST",
        path,
        body,
        ca_pem=ca_pem,
        verify=verify,
        station=station,
        timeout=timeout,
        on_sent=on_sent,
        max_bytes=MAX_REPLY_BYTES,
    )


def get(
    endpoint: Endpoint,
    path: str,
    *,
    ca_pem: str = "",
    verify: Verify = Verify.FULL,
    station: Station | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_bytes: int = MAX_REPLY_BYTES,
) -> HttpReply:
    """GET *path* (query included) on one new connection, closed after the reply; at most *max_bytes*
    of the body are read.

    A body cut short of its ``Content-Length`` (connection dropped mid-reply) is a :class:`NetError`,
    like a timeout or a refused connection; :class:`TlsError` as for :func:`post_json`.
    """
    return _request(
        endpoint,
        "GET",
        path,
        None,
        ca_pem=ca_pem,
        verify=verify,
        station=station,
        timeout=timeout,
        on_sent=None,
        max_bytes=max_bytes,
    )


def _request(
    endpoint: Endpoint,
    method: str,
    path: str,
    body: bytes | None,
    *,
    ca_pem: str,
    verify: Verify,
    station: Station | None,
    timeout: float,
    on_sent: Callable[[], None] | None,
    max_bytes: int,
) -> HttpReply:
    """One request on its own connection (MSS clamp, source address, TLS against *ca_pem*)."""
    with HttpSession(endpoint, ca_pem=ca_pem, verify=verify, station=station, timeout=timeout) as session:
        return session.request(method, path, body, max_bytes=max_bytes, on_sent=on_sent)


class HttpSession:
    """Requests to one endpoint over one kept-alive connection, like an ``esp_http_client`` handle
    used for several requests (HTTP/1.1 persistent connection).

    The connection opens on the first request (MSS clamp, source address, TLS verified against the
    provisioned CA: :class:`TlsError` before anything is sent) and is reused while the server keeps
    it. It is closed, and the next request opens a new one, after any failure (refused, reset,
    timeout, a body cut short of its Content-Length), when the server answers ``Connection: close``
    or a reply is longer than was read, and by :meth:`close`. A failed request is never re-sent
    behind the caller's back: retrying is the firmware's decision. :attr:`connections` counts the
    connections opened, :attr:`requests` the requests sent.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        ca_pem: str = "",
        verify: Verify = Verify.FULL,
        station: Station | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.endpoint = endpoint
        self._ca_pem, self._verify, self._station, self._timeout = ca_pem, verify, station, timeout
        self._conn: _Connection | None = None
        self.connections = 0
        self.requests = 0

    @property
    def connected(self) -> bool:
        """A connection is open (the next request reuses it)."""
        return self._conn is not None

    def get(self, path: str, *, max_bytes: int = MAX_REPLY_BYTES) -> HttpReply:
        """GET *path* (query included); at most *max_bytes* of the body are read (see :func:`get`)."""
        return self.request("GET", path, None, max_bytes=max_bytes)

    def post_json(self, path: str, body: bytes, *, on_sent: Callable[[], None] | None = None) -> HttpReply:
        """POST *body* (JSON) to *path* (see :func:`post_json`)."""
        return self.request("POST", path, body, on_sent=on_sent)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        max_bytes: int = MAX_REPLY_BYTES,
        on_sent: Callable[[], None] | None = None,
    ) -> HttpReply:
        """One request on the session's connection (opened first if there is none)."""
        conn = self._conn if self._conn is not None else self._connect()
        headers = {"User-Agent": "ESP32 HTTP Client/1.0"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.requests += 1
        try:
            conn.request(method, self.endpoint.base_path + path, body=body, headers=headers)
            if on_sent is not None:
                on_sent()
            response = conn.getresponse()
            data = response.read(max_bytes)
            missing = response.length or 0  # what Content-Length promised and never came
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise NetError(f"request to {self.endpoint.host}:{self.endpoint.port} failed: {_describe(exc)}") from None
        except BaseException:  # a power cut or reset in on_sent: the connection goes with the device
            self.close()
            raise
        if missing or response.will_close or not response.isclosed():
            self.close()  # cut short, announced close, or body left unread: the stream is not reusable
        if missing and len(data) < max_bytes:
            raise NetError(
                f"request to {self.endpoint.host}:{self.endpoint.port} failed: connection closed after "
                f"{len(data)} of {len(data) + missing} bytes"
            )
        return HttpReply(response.status, data)

    def close(self) -> None:
        """Close the connection, if one is open (idempotent); the next request opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> HttpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _connect(self) -> _Connection:
        endpoint = self.endpoint
        ctx = tls_context(self._ca_pem, verify=self._verify) if endpoint.scheme == "https" else None
        sock = open_socket(endpoint.host, endpoint.port, station=self._station, timeout=self._timeout)
        if ctx is not None:
            sock = _handshake(ctx, sock, endpoint)
        self.connections += 1
        self._conn = _Connection(endpoint, sock, self._timeout)
        return self._conn


def _handshake(ctx: ssl.SSLContext, sock: socket.socket, endpoint: Endpoint) -> ssl.SSLSocket:
    try:
        return ctx.wrap_socket(sock, server_hostname=endpoint.host)
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise TlsError(f"certificate verify failed: {exc.verify_message}") from None
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        raise TlsError(f"handshake with {endpoint.host}:{endpoint.port} failed: {_describe(exc)}") from None


class _Connection(http.client.HTTPConnection):
    """``HTTPConnection`` over a socket this module opened (MSS clamp, source address, TLS)."""

    def __init__(self, endpoint: Endpoint, sock: socket.socket, timeout: float) -> None:
        super().__init__(endpoint.host, endpoint.port, timeout=timeout)
        self.sock = sock

    def connect(self) -> None:
        # The socket is already connected; http.client must never reconnect behind our back.
        raise NetError("connection closed; a new connection is the session's decision")


def _describe(exc: BaseException) -> str:
    """A short reason without Python's ``[Errno n]`` framing (log lines read like the firmware's)."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    if isinstance(exc, socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__
