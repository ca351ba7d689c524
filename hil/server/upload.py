"""Upload blueprint: the wire profile's upload route (``POST /api/upload/data`` in ``ecowatt-api``,
``POST /aggregated/<device_id>`` in ``ecowatt-fw134``), validated in PROTOCOL.md's order whatever the format.

body ≤ limit (413) → schema (400) → device known (404) → rate limit (429) → MAC, constant time (403)
→ unwrap, parse and check the plaintext names the device (400) → atomic compare-and-advance of the
nonce (403 REPLAY_ATTACK) → store (200). Unauthenticated input never changes state: the nonce moves
only for a packet that is stored. (PROTOCOL.md puts the unwrap after the nonce; under a wire profile
with one global key the MAC does not bind the device id, so a relabelled packet would burn the other
device's nonce — found by the cross-device scenario under ``ecowatt-fw134``.) Statuses and bodies
are the wire profile's.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable

from flask import Blueprint, Response, current_app, jsonify, request

from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.jsonio import load_json_object
from hil.protocol.readings import Readings, valid_device_id
from hil.protocol.upload import UploadPacket, check_readings_owner
from hil.server.config import DeviceKeys
from hil.server.state import ServerState, error_response, reject, server_state
from hil.server.storage import NonceDecision
from hil.wire import replies
from hil.wire.profile import WireProfile

UPLOAD_PATH = "/api/upload/data"


def blueprint(profile: WireProfile) -> Blueprint:
    """The upload route of *profile* (its ``{device_id}`` placeholder becomes a path segment)."""
    bp = Blueprint("upload", __name__)
    bp.add_url_rule(profile.upload_route.replace("{device_id}", "<device_id>"), view_func=upload, methods=["POST"])
    return bp


def upload(device_id: str | None = None) -> Response:
    """Accept one upload packet or reject it with the profile's refusal for the PROTOCOL.md error code."""
    state = server_state()
    wire = state.config.wire
    body = _read_body(state)
    if body is None:
        return reject(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"request body exceeds {state.config.max_body_bytes} bytes",
            device_id=None,
            detail=f"content-length {request.content_length}",
        )
    if request.mimetype != wire.content_type:  # the public fw134 server's first check too
        return reject(
            ErrorCode.INVALID_PAYLOAD,
            f"Content-Type must be {wire.content_type}",
            device_id=None,
            detail=f"Content-Type {request.content_type or '(none)'}"[:120],
        )
    try:
        doc = load_json_object(body, what="upload body")
    except ProtocolError as exc:
        if "malformed-json-500" in state.defects:
            return _internal_error()
        return reject(exc.code, exc.message, device_id=None)
    claimed = device_id if wire.device_id_in_path else doc.get("device_id")
    claimed = claimed if valid_device_id(claimed) else None
    skip_mac = skip_nonce = False
    if "missing-fields-skip-checks" in state.defects:
        skip_mac, skip_nonce = doc.get("mac") is None, doc.get("nonce") is None
        doc = {**doc, "mac": "0" * 64 if skip_mac else doc.get("mac"), "nonce": 0 if skip_nonce else doc.get("nonce")}
    try:
        packet = wire.codec.parse(doc, path_device_id=claimed)
        if wire.device_id_in_path and claimed is None:
            raise ProtocolError(ErrorCode.INVALID_PAYLOAD, "device id in the path must be 1-32 chars of [A-Za-z0-9_-]")
    except ProtocolError as exc:
        if "field-type-errors-500" in state.defects:
            return _internal_error()
        return reject(exc.code, exc.message, device_id=claimed)
    device = state.config.devices.get(packet.device_id)
    if device is None and "unknown-device-accepted" in state.defects:
        stranger = DeviceKeys(packet.device_id, b"", b"")
        opened = _open(state, stranger, packet)
        return opened if isinstance(opened, Response) else _store(state, packet, opened)
    if device is None:
        return reject(
            ErrorCode.DEVICE_NOT_FOUND, f"device {packet.device_id} is not registered", device_id=packet.device_id
        )
    if "no-rate-limit" not in state.defects:
        per_device = "rate-limit-per-device" in state.defects
        retry_after = state.limiter.acquire((packet.device_id, None if per_device else request.remote_addr))
        if retry_after is not None:
            message = f"too many uploads from {packet.device_id}"
            if "rate-limit-refusals-unlogged" in state.defects:  # limited in front of the security log
                return error_response(ErrorCode.RATE_LIMIT_EXCEEDED, message, retry_after_seconds=retry_after)
            return reject(
                ErrorCode.RATE_LIMIT_EXCEEDED,
                message,
                device_id=packet.device_id,
                detail=f"nonce {packet.nonce}; retry after {retry_after} s",
                retry_after_seconds=retry_after,
            )
    outcome = _authenticate(state, device, packet, skip_mac=skip_mac, skip_nonce=skip_nonce)
    return outcome if isinstance(outcome, Response) else _store(state, packet, outcome)


def _authenticate(
    state: ServerState, device: DeviceKeys, packet: UploadPacket, *, skip_mac: bool, skip_nonce: bool
) -> Response | Readings:
    """MAC, then the plaintext (unwrap, decode, owner), then the nonce: the nonce moves only for a packet
    that will be stored. (Under one global key the MAC does not bind the device id, the plaintext does:
    a relabelled packet must not burn another device's nonce.) The defect ``nonce-advanced-before-mac``
    puts the nonce first. A refusal response, or the readings to store."""
    opened: list[Readings] = []
    # The defect nonce-check-not-atomic reads the last nonce first (as a naive handler does before its
    # MAC check) and records it only after storing: every copy that read the old value gets through.
    read_early = _last_nonce(state, packet.device_id) if "nonce-check-not-atomic" in state.defects else None

    def open_step() -> Response | None:
        result = _open(state, device, packet)
        if isinstance(result, Response):
            return result
        opened.append(result)
        return None

    steps: list[Callable[[], Response | None]] = [
        lambda: None if skip_mac else _check_mac(state, device, packet),
        open_step,
        lambda: None if skip_nonce else _advance_nonce(state, packet, read_early),
    ]
    if "nonce-advanced-before-mac" in state.defects:
        steps.insert(0, steps.pop())
    for step in steps:
        refusal = step()
        if refusal is not None:
            return refusal
    return opened[0]


def _check_mac(state: ServerState, device: DeviceKeys, packet: UploadPacket) -> Response | None:
    if state.config.wire.verify_mac(packet, hmac_key=device.hmac_key, aes_key=device.aes_key):
        return None
    return reject(
        ErrorCode.INVALID_HMAC,
        "MAC verification failed",
        device_id=packet.device_id,
        detail=f"nonce {packet.nonce}: MAC does not verify",
    )


def _last_nonce(state: ServerState, device_id: str) -> int | None:
    return next((d["last_nonce"] for d in state.storage.devices() if d["device_id"] == device_id), None)


def _advance_nonce(state: ServerState, packet: UploadPacket, read_early: int | None) -> Response | None:
    allow_equal = "replay-allowed-equal-nonce" in state.defects
    if "nonce-check-not-atomic" in state.defects:  # compare with what was read early; _store records it
        ok = read_early is None or packet.nonce > read_early
        decision = NonceDecision(True, None) if ok else NonceDecision(False, read_early)
    elif "nonces-in-memory" in state.defects:
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


def _open(state: ServerState, device: DeviceKeys, packet: UploadPacket) -> Response | Readings:
    """Unwrap and decode the payload, and check it names the packet's device; a refusal or the readings."""
    try:
        readings = state.config.wire.read(packet, aes_key=device.aes_key)
        if "device-id-copy-unchecked" in state.defects:  # the public fw134 server: stored under the path's id
            readings = dataclasses.replace(readings, device_id=packet.device_id)
        elif "plaintext-device-id-trusted" not in state.defects:  # the defect stores under the plaintext's id
            check_readings_owner(packet, readings)
    except ProtocolError as exc:
        return reject(exc.code, exc.message, device_id=packet.device_id, detail=f"nonce {packet.nonce}: {exc.message}")
    return readings


def _store(state: ServerState, packet: UploadPacket, readings: Readings) -> Response:
    """Store an authenticated packet's readings and answer the profile's acceptance."""
    state.storage.store_readings(packet.nonce, readings)
    if "nonce-check-not-atomic" in state.defects:  # check-then-act: copies that read the old nonce all get here
        state.storage.advance_nonce(packet.device_id, packet.nonce, allow_equal=True)
    status, body = replies.accepted(
        state.config.wire, device_id=packet.device_id, nonce=packet.nonce, samples=len(readings.readings)
    )
    response = jsonify(body)
    response.status_code = status
    return response


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
    if "body-limit-off-by-one" in state.defects:  # the defect: a body of exactly the limit is refused
        return None if len(body) >= limit else body
    return None if len(body) > limit else body
