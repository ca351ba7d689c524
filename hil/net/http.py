"""HTTP/1.1 message parsing over a byte stream: requests and responses, Content-Length and chunked.

One parser serves both a reassembled capture (the whole stream is known) and a live socket (bytes
arrive in pieces): :func:`parse_message` returns ``None`` while the message is incomplete, and a
caller that knows the stream has ended passes ``eof=True`` so a response delimited by connection
close is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_HEADER_END = b"\r\n\r\n"
MAX_HEADER_BYTES = 64 * 1024  # a peer that never ends its header block is an error, not a hang


class HttpParseError(ValueError):
    """The bytes are not an HTTP/1.x message (or violate its framing)."""


@dataclass(frozen=True)
class HttpMessage:
    """One HTTP/1.x request or response. ``raw`` is the exact bytes it occupied on the wire."""

    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    raw: bytes
    is_response: bool
    offset: int = 0  # where it started in its stream
    chunked: bool = False

    @property
    def method(self) -> str | None:
        """Request method (``None`` for a response)."""
        return None if self.is_response else self.start_line.split(" ", 1)[0]

    @property
    def target(self) -> str | None:
        """Request target, e.g. ``/api/upload/data`` (``None`` for a response)."""
        if self.is_response:
            return None
        parts = self.start_line.split(" ")
        return parts[1] if len(parts) > 1 else ""

    @property
    def status(self) -> int | None:
        """Response status code (``None`` for a request)."""
        if not self.is_response:
            return None
        return int(self.start_line.split(" ")[1])

    def header(self, name: str, default: str | None = None) -> str | None:
        """First value of header *name* (case-insensitive)."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    def with_body(self, body: bytes) -> HttpMessage:
        """The same message with another body; Content-Length follows it and chunked framing is dropped."""
        headers = [(k, v) for k, v in self.headers if k.lower() not in ("content-length", "transfer-encoding")]
        headers.append(("Content-Length", str(len(body))))
        return build_message(self.start_line, headers, body, is_response=self.is_response)

    def as_chunked(self, size: int = 1024) -> HttpMessage:
        """The same message with its body in chunked framing (``Transfer-Encoding: chunked``, chunks of
        *size* bytes, no Content-Length): what a sender that does not know the length up front sends."""
        headers = [(k, v) for k, v in self.headers if k.lower() not in ("content-length", "transfer-encoding")]
        headers.append(("Transfer-Encoding", "chunked"))
        chunks = [self.body[i : i + size] for i in range(0, len(self.body), size)]
        framed = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        head = self.start_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        raw = head.encode("latin-1") + framed
        return HttpMessage(self.start_line, tuple(headers), self.body, raw, self.is_response, chunked=True)

    def describe(self) -> str:
        """One line for logs and reports (never the body: it may carry secrets)."""
        return f"{self.start_line} ({len(self.body)} body bytes)"


@dataclass
class HttpExchange:
    """A request and the response that answered it (``None`` when none came)."""

    request: HttpMessage
    response: HttpMessage | None = None
    notes: list[str] = field(default_factory=list)


def build_message(
    start_line: str,
    headers: list[tuple[str, str]] | tuple[tuple[str, str], ...],
    body: bytes = b"",
    *,
    is_response: bool = False,
) -> HttpMessage:
    """Serialise a message with the given headers verbatim (the caller sets Content-Length)."""
    head = start_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    raw = head.encode("latin-1") + body
    return HttpMessage(start_line, tuple(headers), body, raw, is_response)


def build_request(
    method: str, target: str, body: bytes = b"", *, host: str, headers: dict[str, str] | None = None
) -> HttpMessage:
    """A well-formed HTTP/1.1 request with Host and Content-Length (when there is a body)."""
    hdrs = [("Host", host), *(headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        hdrs.append(("Content-Length", str(len(body))))
    return build_message(f"{method} {target} HTTP/1.1", hdrs, body)


def build_response(
    status: int, reason: str, body: bytes = b"", *, content_type: str = "application/json", close: bool = False
) -> HttpMessage:
    """A well-formed HTTP/1.1 response (used by the MITM proxy to inject answers)."""
    hdrs = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    if close:
        hdrs.append(("Connection", "close"))
    return build_message(f"HTTP/1.1 {status} {reason}", hdrs, body, is_response=True)


def parse_message(
    buf: bytes, offset: int = 0, *, is_response: bool, eof: bool = False, request_method: str | None = None
) -> tuple[HttpMessage, int] | None:
    """Parse one message starting at *offset*; returns ``(message, end_offset)`` or ``None`` if incomplete.

    *request_method* is the method of the request a response answers (a response to HEAD has no
    body). Raises :class:`HttpParseError` on bytes that cannot be HTTP.
    """
    head_end = buf.find(_HEADER_END, offset)
    if head_end < 0:
        if len(buf) - offset > MAX_HEADER_BYTES:
            raise HttpParseError(f"no end of headers within {MAX_HEADER_BYTES} bytes at stream offset {offset}")
        return None
    start_line, headers = _parse_head(buf[offset:head_end], is_response)
    body_start = head_end + len(_HEADER_END)
    probe = HttpMessage(start_line, headers, b"", b"", is_response)
    framed = _frame_body(buf, body_start, probe, eof=eof, request_method=request_method)
    if framed is None:
        return None
    body, end, chunked = framed
    msg = HttpMessage(start_line, headers, body, bytes(buf[offset:end]), is_response, offset, chunked)
    return msg, end


def parse_stream(
    data: bytes,
    *,
    is_response: bool,
    request_methods: list[str] | None = None,
) -> tuple[list[HttpMessage], bytes]:
    """Split a complete one-direction stream into messages (keep-alive); returns them and any trailing
    bytes that do not form a complete message (a truncated capture)."""
    messages: list[HttpMessage] = []
    offset = 0
    methods = list(request_methods or [])
    while offset < len(data):
        method = methods[len(messages)] if len(messages) < len(methods) else None
        parsed = parse_message(data, offset, is_response=is_response, eof=True, request_method=method)
        if parsed is None:
            break
        msg, offset = parsed
        messages.append(msg)
    return messages, data[offset:]


def pair_exchanges(requests: list[HttpMessage], responses: list[HttpMessage]) -> list[HttpExchange]:
    """Pair requests with responses in order (HTTP/1.1 answers in request order)."""
    return [HttpExchange(req, responses[i] if i < len(responses) else None) for i, req in enumerate(requests)]


def _parse_head(head: bytes, is_response: bool) -> tuple[str, tuple[tuple[str, str], ...]]:
    lines = head.decode("latin-1").split("\r\n")
    start = lines[0]
    if is_response and not start.startswith("HTTP/1."):
        raise HttpParseError(f"response does not start with an HTTP/1.x status line: {start[:60]!r}")
    if not is_response and not start.endswith((" HTTP/1.1", " HTTP/1.0")):
        raise HttpParseError(f"request line is not HTTP/1.x: {start[:60]!r}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpParseError(f"malformed header line {line[:60]!r}")
        headers.append((name, value.strip()))
    return start, tuple(headers)


def _frame_body(
    buf: bytes, start: int, msg: HttpMessage, *, eof: bool, request_method: str | None
) -> tuple[bytes, int, bool] | None:
    if msg.is_response and (request_method == "HEAD" or msg.status in (204, 304) or 100 <= (msg.status or 0) < 200):
        return b"", start, False
    if "chunked" in (msg.header("Transfer-Encoding") or "").lower():
        return _dechunk(buf, start)
    length = msg.header("Content-Length")
    if length is not None:
        if not length.isdigit():
            raise HttpParseError(f"bad Content-Length {length!r} in {msg.start_line!r}")
        end = start + int(length)
        return (bytes(buf[start:end]), end, False) if end <= len(buf) else None
    if not msg.is_response:
        return b"", start, False  # a request without length or chunking has no body
    if not eof:
        return None  # delimited by connection close
    return bytes(buf[start:]), len(buf), False


def _dechunk(buf: bytes, pos: int) -> tuple[bytes, int, bool] | None:
    body = bytearray()
    while True:
        line_end = buf.find(b"\r\n", pos)
        if line_end < 0:
            return None
        size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise HttpParseError(f"bad chunk size {size_text[:20]!r} at stream offset {pos}") from None
        pos = line_end + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n", pos)  # trailers end with an empty line
            while trailer_end >= 0 and trailer_end != pos:
                pos = trailer_end + 2
                trailer_end = buf.find(b"\r\n", pos)
            return (bytes(body), trailer_end + 2, True) if trailer_end >= 0 else None
        if pos + size + 2 > len(buf):
            return None
        body += buf[pos : pos + size]
        if buf[pos + size : pos + size + 2] != b"\r\n":
            raise HttpParseError(f"chunk of {size} bytes at stream offset {pos} is not followed by CRLF")
        pos += size + 2


__all__ = [
    "HttpExchange",
    "HttpMessage",
    "HttpParseError",
    "build_message",
    "build_request",
    "build_response",
    "pair_exchanges",
    "parse_message",
    "parse_stream",
]
