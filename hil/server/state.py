"""Per-app server state shared by the blueprints, and the JSON error/rejection responses."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask import Response, current_app, jsonify, request

from hil.protocol.errors import ErrorCode
from hil.server.config import ServerConfig
from hil.server.defects import ServerDefects
from hil.server.ratelimit import RateLimiter
from hil.server.responses import ResponseLog
from hil.server.storage import Storage
from hil.wire import replies

EXTENSION_KEY = "hil.server"
log = logging.getLogger("hil.server")


@dataclass
class ServerState:
    """What one app instance owns: its config, database, rate limiter and active defects."""

    config: ServerConfig
    storage: Storage
    limiter: RateLimiter
    defects: ServerDefects
    responses: ResponseLog = field(default_factory=ResponseLog)  # every answer (hil.invariants reads it)

    def close(self) -> None:
        """Release the database connections."""
        self.storage.close()


def server_state() -> ServerState:
    """The :class:`ServerState` of the app handling the current request."""
    return current_app.extensions[EXTENSION_KEY]


def error_response(code: ErrorCode, message: str, *, status: int | None = None, **extra: Any) -> Response:
    """The refusal in the server's wire profile (``ecowatt-api``: ``{"status":"error","error_code":CODE,
    "message":..}`` plus *extra* fields), with the code's HTTP status unless the profile says another."""
    http_status, body = replies.refusal(
        server_state().config.wire, code.value, message, default_status=status or code.http_status, extra=extra
    )
    response = jsonify(body)
    response.status_code = http_status
    return response


def reject(
    code: ErrorCode, message: str, *, device_id: str | None, detail: str = "", status: int | None = None, **extra: Any
) -> Response:
    """Record a security event for the current request and answer with the error response (with
    *status* instead of the code's own, where a format answers that code otherwise)."""
    peer = request.remote_addr
    state = server_state()
    # Event detail is ours (bounded, no key material); attacker strings are never echoed in full.
    state.storage.record_event(device_id=device_id, peer=peer, code=code.value, detail=(detail or message)[:500])
    log.info("rejected %s %s from %s (device %s): %s", request.method, request.path, peer, device_id or "-", code.value)
    return error_response(code, message, status=status, **extra)
