"""Upload blueprint: ``POST /api/upload/data``, validated in PROTOCOL.md's order.

body ≤ limit (413) → schema (400) → device known (404) → rate limit (429) → MAC, constant time (403)
→ atomic compare-and-advance of the nonce (403 REPLAY_ATTACK) → unwrap and parse (400) → store (200).
Unauthenticated input never changes state: the nonce moves only after the MAC verified.
"""

from __future__ import annotations

import threading
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.jsonio import load_json_object
from hil.protocol.readings import decode_readings, valid_device_id
from hil.protocol.upload import UploadPacket, check_readings_owner, open_payload, parse_packet, verify_mac
from hil.server.config import DeviceKeys
from hil.server.state import ServerState, reject, server_state
from hil.server.storage import NonceDecision

bp = Blueprint("upload", __name__)
UPLOAD_PATH = "/api/upload/data"


@bp.post(UPLOAD_PATH)
def upload() -> Response:
    """Accept one upload packet or reject it with the PROTOCOL.md error code."""
    state = server_state()
    body = _read_body(state)
    if body is None:
        return reject(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"request body exceeds {state.config.max_body_bytes} bytes",
            device_id=None,
            detail=f"content-length {request.content_length}",
        )
    try:
        doc = load_json_object(body, what="upload body")
    except ProtocolError as exc:
        if "malformed-json-500" in state.defects:
            return _internal_error()
        return reject(exc.code, exc.message, device_id=None)
    claimed = doc.get("device_id") if valid_device_id(doc.get("device_id")) else None
    skip_mac = skip_nonce = False
    if "missing-fields-skip-checks" in state.defects:
        skip_mac, skip_nonce = doc.get("mac") is None, doc.get("nonce") is None
        doc = {**doc, "mac": "0" * 64 if skip_mac else doc.get("mac"), "nonce": 0 if skip_nonce else doc.get("nonce")}
    try:
        packet = parse_packet(doc)
    except ProtocolError as exc:
        if "field-type-errors-500" in state.defects:
            return _internal_error()
        return reject(exc.code, exc.message, device_id=claimed)
    device = state.config.devices.get(packet.device_id)
    if device is None and "unknown-device-accepted" in state.defects:
        return _accept(state, DeviceKeys(packet.device_id, b"", b""), packet)
    if device is None:
        return reject(
            ErrorCode.DEVICE_NOT_FOUND, f"device {packet.device_id} is not registered", device_id=packet.device_id
        )
    if "no-rate-limit" not in state.defects:
        per_device = "rate-limit-per-device" in state.defects
        retry_after = state.limiter.acquire((packet.device_id, None if per_device else request.remote_addr))
        if retry_after is not None:
            return reject(
                ErrorCode.RATE_LIMIT_EXCEEDED,
                f"too many uploads from {packet.device_id}",
                device_id=packet.device_id,
                detail=f"nonce {packet.nonce}; retry after {retry_after} s",
                retry_after_seconds=retry_after,
            )
    refusal = _authenticate(state, device, packet, skip_mac=skip_mac, skip_nonce=skip_nonce)
    return refusal or _accept(state, device, packet)


def _authenticate(
    state: ServerState, device: DeviceKeys, packet: UploadPacket, *, skip_mac: bool, skip_nonce: bool
) -> Response | None:
    """MAC then nonce (or the defective nonce-then-MAC); a refusal response, or None when both pass."""
    steps = [
        lambda: None if skip_mac else _check_mac(device, packet),
        lambda: None if skip_nonce else _advance_nonce(state, packet),
    ]
    if "nonce-advanced-before-mac" in state.defects:
        steps.reverse()
    for step in steps:
        refusal = step()
        if refusal is not None:
            return refusal
    return None


def _check_mac(device: DeviceKeys, packet: UploadPacket) -> Response | None:
    if verify_mac(device.hmac_key, packet):
        return None
    return reject(
        ErrorCode.INVALID_HMAC,
        "MAC verification failed",
        device_id=packet.device_id,
        detail=f"nonce {packet.nonce}: MAC does not verify",
    )


def _advance_nonce(state: ServerState, packet: UploadPacket) -> Response | None:
    allow_equal = "replay-allowed-equal-nonce" in state.defects
    if "nonces-in-memory" in state.defects:
        decision = _memory_nonces().advance(packet.device_id, packet.nonce, allow_equal=allow_equal)
    else:
        decision = state.storage.advance_nonce(packet.device_id, packet.nonce, allow_equal=allow_equal)
    if decision.accepted:
        return None
    return reject(
        ErrorCode.REPLAY_ATTACK,
        "nonce is not greater than the last accepted nonce",
        device_id=packet.device_id,
        detail=f"nonce {packet.nonce} <= last {decision.last_nonce}",
        received_nonce=packet.nonce,
        last_nonce=decision.last_nonce,
    )


def _accept(state: ServerState, device: DeviceKeys, packet: UploadPacket) -> Response:
    try:
        readings = decode_readings(open_payload(packet, aes_key=device.aes_key))
        if "plaintext-device-id-trusted" not in state.defects:  # the defect stores under the plaintext's id
            check_readings_owner(packet, readings)
    except ProtocolError as exc:
        return reject(exc.code, exc.message, device_id=packet.device_id, detail=f"nonce {packet.nonce}: {exc.message}")
    state.storage.store_readings(packet.nonce, readings)
    result: dict[str, Any] = {
        "status": "success",
        "samples_received": len(readings.readings),
        "nonce_updated": packet.nonce,
    }
    return jsonify(result)


class _MemoryNonces:
    """The ``nonces-in-memory`` defect: last nonces in a per-app dict, gone when the process restarts."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._lock = threading.Lock()

    def advance(self, device_id: str, nonce: int, *, allow_equal: bool) -> NonceDecision:
        """The same compare-and-advance as the database's, on the dict."""
        with self._lock:
            last = self._last.get(device_id)
            if last is None or nonce > last or (allow_equal and nonce == last):
                self._last[device_id] = nonce
                return NonceDecision(True, None)
            return NonceDecision(False, last)


def _memory_nonces() -> _MemoryNonces:
    # Per app instance (a restarted server is a new app), never module-global.
    return current_app.extensions.setdefault("hil.server.memory_nonces", _MemoryNonces())


def _internal_error() -> Response:
    """What a handler that raised answers (the defects that model an unvalidated handler)."""
    return Response('{"error":"Internal server error"}', status=500, mimetype="application/json")


def _read_body(state: ServerState) -> bytes | None:
    """The body, or None when it is over the limit (refused unread when Content-Length says so)."""
    if "no-body-limit" in state.defects:
        return request.get_data(cache=False)
    limit = state.config.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return None
    body = request.stream.read(limit + 1)  # chunked bodies have no Content-Length: read one byte past
    return None if len(body) > limit else body
