"""Admin blueprint (bearer token): security events, stored readings, device nonces, OTA status reports,
fault injection.

Faults are stored generically as ``{"name", "params"}``; the OTA blueprint reads them
(``server_state().storage.faults()``).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, request

from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.jsonio import load_json
from hil.server.state import reject, server_state

bp = Blueprint("admin", __name__, url_prefix="/api/admin")
_FAULT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
MAX_LIMIT = 10_000


@bp.before_request
def require_token() -> Response | None:
    """Refuse (401, recorded) any admin request without ``Authorization: Bearer <admin token>``."""
    expected = f"Bearer {server_state().config.admin_token}".encode()
    given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    if "admin-token-prefix-accepted" in server_state().defects:
        if expected.startswith(given):  # the defect: "Bearer " (or nothing at all) is a prefix too
            return None
    elif hmac.compare_digest(given, expected):
        return None
    response = reject(
        ErrorCode.UNAUTHORIZED,
        "admin endpoints need 'Authorization: Bearer <admin token>'",
        device_id=None,
        detail=f"{request.method} {request.path}: missing or wrong bearer token",
    )
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


@bp.get("/events")
def events() -> Response:
    """``?device_id=&code=&limit=`` → ``{"events":[{id,time,device_id,peer,code,detail}]}``."""
    limit = _limit()
    if isinstance(limit, Response):
        return limit
    args = request.args
    return jsonify(
        {"events": server_state().storage.events(device_id=args.get("device_id"), code=args.get("code"), limit=limit)}
    )


@bp.get("/readings")
def readings() -> Response:
    """``?device_id=&limit=`` → ``{"readings":[{device_id,nonce,received_at,timestamp,register,value}]}``."""
    return _per_device("readings", server_state().storage.readings)


@bp.get("/ota-status")
def ota_status() -> Response:
    """``?device_id=&limit=`` → ``{"statuses":[{id,time,device_id,peer,firmware_version,status,progress_percent,
    error_code,error_message,old_version,rolled_back_to}]}`` (``POST /api/ota/status`` reports)."""
    return _per_device("statuses", server_state().storage.ota_statuses)


def _per_device(key: str, query: Callable[..., list[dict[str, Any]]]) -> Response:
    """``{key: query(device_id, limit=)}`` for ``?device_id=&limit=``, or the limit's 400."""
    limit = _limit()
    if isinstance(limit, Response):
        return limit
    return jsonify({key: query(request.args.get("device_id"), limit=limit)})


@bp.get("/devices")
def devices() -> Response:
    """``{"devices":[{device_id,last_nonce}]}`` — never key material."""
    return jsonify({"devices": server_state().storage.devices()})


@bp.get("/faults")
def list_faults() -> Response:
    """``{"faults":[{name,params}]}``."""
    return jsonify({"faults": server_state().storage.faults()})


@bp.post("/faults")
def add_faults() -> Response:
    """Body ``{"name","params"}`` or a list of them; 201 with every active fault."""
    try:
        body = load_json(request.get_data(cache=False), what="faults body")
    except ProtocolError as exc:
        return reject(exc.code, exc.message, device_id=None, detail=f"{request.method} {request.path}: {exc.message}")
    items = body if isinstance(body, list) else [body]
    parsed: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(items):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not _FAULT_NAME.fullmatch(item["name"])
            or not isinstance(item.get("params", {}), dict)
        ):
            message = f'fault {index}: expected {{"name": "snake_case", "params": {{...}}}}'
            return reject(ErrorCode.INVALID_PAYLOAD, message, device_id=None, detail=f"POST {request.path}: {message}")
        parsed.append((item["name"], item.get("params", {})))
    storage = server_state().storage
    for name, params in parsed:
        storage.add_fault(name, params)
    response = jsonify({"faults": storage.faults()})
    response.status_code = 201
    return response


@bp.delete("/faults")
def clear_faults() -> Response:
    """Remove every fault, or only ``?name=``; ``{"removed": n}``."""
    return jsonify({"removed": server_state().storage.clear_faults(request.args.get("name"))})


def _limit() -> int | Response:
    raw = request.args.get("limit", "1000")
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        message = f"limit must be an integer 1..{MAX_LIMIT}"
        return reject(ErrorCode.INVALID_PAYLOAD, message, device_id=None, detail=f"{request.path}: limit={raw[:20]!r}")
    return int(raw)
