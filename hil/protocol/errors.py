"""Error codes of the EcoWatt wire protocol (PROTOCOL.md) and the HTTP status each one travels with."""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """An ``error_code`` value of an error response; ``.http_status`` is the status it is sent with."""

    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    DEVICE_NOT_FOUND = "DEVICE_NOT_FOUND"
    RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"
    INVALID_HMAC = "INVALID_HMAC"
    REPLAY_ATTACK = "REPLAY_ATTACK"
    DECOMPRESSION_FAILED = "DECOMPRESSION_FAILED"
    # OTA (PROTOCOL.md "Firmware over the air"): a version or chunk the server does not have.
    CHUNK_NOT_FOUND = "CHUNK_NOT_FOUND"
    VERSION_NOT_FOUND = "VERSION_NOT_FOUND"
    # Not upload codes: the admin API and unrouted requests answer in the same JSON shape.
    UNAUTHORIZED = "UNAUTHORIZED"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"

    @property
    def http_status(self) -> int:
        """The HTTP status PROTOCOL.md pairs with this code."""
        return _STATUS[self]


_STATUS: dict[ErrorCode, int] = {
    ErrorCode.INVALID_PAYLOAD: 400,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.DEVICE_NOT_FOUND: 404,
    ErrorCode.RATE_LIMIT_EXCEEDED: 429,
    ErrorCode.INVALID_HMAC: 403,
    ErrorCode.REPLAY_ATTACK: 403,
    ErrorCode.DECOMPRESSION_FAILED: 400,
    ErrorCode.CHUNK_NOT_FOUND: 404,
    ErrorCode.VERSION_NOT_FOUND: 404,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
}


class ProtocolError(ValueError):
    """Input that violates the wire format; ``code`` says which error response it maps to."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
