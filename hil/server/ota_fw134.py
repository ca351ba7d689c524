"""OTA blueprint of the ``ecowatt-fw134`` wire profile (``reference/ecowatt-fw134-wire.md``, "Firmware
over the air"): check, initiate a session, base64 chunks inside JSON, progress and complete reports.

``create_app`` registers it instead of :mod:`hil.server.ota`'s blueprint when the profile's OTA chunk
transport is ``json-base64``. The packages, the admin faults and their meaning are the api blueprint's
(its helpers are shared, not copied): chunk faults act on the ciphertext before base64, manifest faults
on ``update_info``. The plaintext is the image the ``ecowatt-api`` profile ships (the MCUboot-signed app
image the virtual board's boot chain installs), a documented deviation from the public firmware, whose
plaintext is a bare ESP-IDF app image; see :mod:`hil.images.fota_fw134`.

Chunks are served only inside a session (``POST /ota/initiate``) of that device and version. Reports
are stored normalised to the api status report (:mod:`hil.server.ota_fw134_reports`). Every refusal is
the profile's ``{"success":false,"error":..}`` with a 4xx, recorded as a security event.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from hil.images.fota import FotaFormatError, chunk_count, padded_size, parse_version
from hil.images.fota_fw134 import Fw134Package, fw134_packages, sign_digest
from hil.protocol.errors import ErrorCode, ProtocolError
from hil.protocol.jsonio import load_json_object
from hil.server import ota_fw134_reports as reports
from hil.server.config import ServerConfig
from hil.server.ota import (
    MAX_STATUS_BODY,
    OtaState,
    checked_version,
    chunk_under_faults,
    claimed_size,
    dropped_response,
    known_device,
    offered_version,
    served_packages,
    signed_fields_under_faults,
)
from hil.server.state import reject, server_state

bp = Blueprint("ota_fw134", __name__)
EXTENSION_KEY = "hil.server.ota_fw134"
CHUNK_TRANSPORT = "json-base64"  # the profile's [ota] chunk_transport this blueprint serves
log = logging.getLogger("hil.server.ota")


@dataclass
class Fw134OtaState:
    """The fw134 view of the packages, and per device the update in progress and its sessions."""

    packages: dict[str, Fw134Package]
    _sessions: dict[tuple[str, str], str] = field(default_factory=dict)  # (device, version) -> session id
    _updates: dict[str, str] = field(default_factory=dict)  # device -> version last offered or initiated
    _from: dict[str, str] = field(default_factory=dict)  # device -> the version it ran when it was offered one
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def served(self) -> dict[str, Fw134Package]:
        """The packages as the active ``relabel_version`` faults serve them (:func:`served_packages`)."""
        return served_packages(self.packages, _relabel)

    def offer(self, device_id: str, version: str, *, running: str) -> None:
        """Remember that *device_id*, running *running*, was offered *version* (its progress reports are
        about it; its complete report is the change from *running*)."""
        with self._lock:
            self._updates[device_id] = version
            self._from[device_id] = running

    def open_session(self, device_id: str, version: str) -> str:
        """A new session of *device_id* for *version* (replacing an older one); its id."""
        session_id = f"{device_id}_{version}_{int(time.time())}"
        with self._lock:
            self._sessions[(device_id, version)] = session_id
            self._updates[device_id] = version
        return session_id

    def has_session(self, device_id: str, version: str) -> bool:
        """True when *device_id* initiated a download of *version* that has not completed."""
        with self._lock:
            return (device_id, version) in self._sessions

    def update_from(self, device_id: str) -> str | None:
        """The version *device_id* ran when it was last offered an update (None: never offered one)."""
        with self._lock:
            return self._from.get(device_id)

    def update_of(self, device_id: str) -> str | None:
        """The version *device_id*'s update in progress is about (None: never offered one)."""
        with self._lock:
            return self._updates.get(device_id)

    def close_sessions(self, device_id: str) -> None:
        """End *device_id*'s sessions (it reported the update complete)."""
        with self._lock:
            for key in [k for k in self._sessions if k[0] == device_id]:
                del self._sessions[key]

    def session_count(self) -> int:
        """Sessions open now."""
        with self._lock:
            return len(self._sessions)


def load_fw134_state(config: ServerConfig, ota: OtaState) -> Fw134OtaState:
    """The fw134 view of the loaded packages (FotaFormatError when the signing key is missing or wrong)."""
    if not ota.packages:
        return Fw134OtaState({})
    if config.fota_signing_key is None:
        raise FotaFormatError(
            f"wire profile {config.wire.name} signs OTA images when it serves them (PKCS#1 v1.5): give the "
            f"FOTA signing key the packages in {config.firmware_dir} were built with (--fota-signing-key, "
            "ServerConfig.fota_signing_key; e.g. firmware_builds/keys/fota-signing-key.pem)"
        )
    return Fw134OtaState(fw134_packages(ota.packages, config.fota_signing_key))


def _relabel(package: Fw134Package, label: str) -> Fw134Package:
    inner = package.package
    return replace(package, package=replace(inner, manifest=replace(inner.manifest, version=label)))


def fw134_state() -> Fw134OtaState:
    """The :class:`Fw134OtaState` of the app handling the current request."""
    return current_app.extensions[EXTENSION_KEY]


def _where() -> str:
    return f"{request.method} {request.full_path.rstrip('?')[:120]}"


def _device_json(device_id: str) -> dict[str, Any] | Response:
    """The JSON body of a request about a registered *device_id*, or the refusal."""
    refusal = known_device(device_id)
    return refusal if refusal is not None else _json_body(device_id)


def _json_body(device_id: str) -> dict[str, Any] | Response:
    body = request.stream.read(MAX_STATUS_BODY + 1)  # bounded read: chunked bodies have no Content-Length
    if len(body) > MAX_STATUS_BODY:
        return reject(ErrorCode.PAYLOAD_TOO_LARGE, f"body exceeds {MAX_STATUS_BODY} bytes", device_id=device_id)
    try:
        return load_json_object(body, what=f"{request.path[:80]} body")
    except ProtocolError as exc:
        return reject(exc.code, exc.message, device_id=device_id, detail=_where())


@bp.get("/ota/check/<device_id>")
def check(device_id: str) -> Response:
    """``?version=V`` → the newest package newer than V (or what ``offer_version`` forces) as ``update_info``."""
    checked = checked_version(device_id)
    if isinstance(checked, Response):
        return checked
    current, _ = checked
    state = fw134_state()
    packages = state.served()
    offered = offered_version(packages, current, device_id=device_id)
    reply: dict[str, Any] = {"success": True, "device_id": device_id, "update_available": offered is not None}
    if offered is None:
        return jsonify(reply)
    state.offer(device_id, offered, running=current)
    package = packages[offered]
    digest, signature = signed_fields_under_faults(
        offered, package.package.manifest.sha256_hash, package.signature, sign_digest=sign_digest
    )
    info = package.update_info(current, sha256_hash=digest, signature=signature)
    claimed = claimed_size(info["firmware_size"])
    if claimed != info["firmware_size"]:  # a consistent claim: all four sizes follow
        encrypted = padded_size(claimed)
        info.update(original_size=claimed, firmware_size=claimed, encrypted_size=encrypted,
                    total_chunks=chunk_count(encrypted, info["chunk_size"]))  # fmt: skip
    reply["update_info"] = info
    return jsonify(reply)


@bp.post("/ota/initiate/<device_id>")
def initiate(device_id: str) -> Response:
    """``{"firmware_version": v}`` → 201 and a session for (device, v); 404 for a version the server lacks."""
    doc = _device_json(device_id)
    if isinstance(doc, Response):
        return doc
    version = doc.get("firmware_version")
    try:
        parse_version(version)
    except FotaFormatError as exc:
        return reject(ErrorCode.INVALID_PAYLOAD, f"firmware_version: {exc}", device_id=device_id, detail=_where())
    state = fw134_state()
    if version not in state.served():
        return reject(
            ErrorCode.VERSION_NOT_FOUND, f"no firmware {version} on this server", device_id=device_id, detail=_where()
        )
    session_id = state.open_session(device_id, version)
    log.info("OTA session %s opened", session_id)
    response = jsonify({"success": True, "device_id": device_id, "session_id": session_id})
    response.status_code = 201
    return response


@bp.get("/ota/chunk/<device_id>")
def chunk(device_id: str) -> Response:
    """``?version=v&chunk=n`` → ciphertext chunk n as base64 in JSON, inside a session, faults applied."""
    refusal = known_device(device_id)
    if refusal is not None:
        return refusal
    version, n = request.args.get("version", ""), request.args.get("chunk", "")
    state = fw134_state()
    if not state.has_session(device_id, version):
        return reject(
            ErrorCode.CHUNK_NOT_FOUND,
            f"no OTA session of {device_id} for version {version[:40]!r}: POST /ota/initiate/{device_id} first",
            device_id=device_id,
            detail=_where(),
            status=400,
        )
    package = state.served().get(version)
    if package is None:  # its relabel_version fault was cleared inside the session
        missing = f"no firmware {version[:40]!r} on this server"
        return reject(ErrorCode.CHUNK_NOT_FOUND, missing, device_id=device_id, detail=_where())
    if not (n.isascii() and n.isdigit() and len(n) <= 9):
        return reject(
            ErrorCode.INVALID_PAYLOAD, "query parameter chunk must be an index", device_id=device_id, detail=_where()
        )
    index = int(n)
    if index >= package.total_chunks:
        return reject(
            ErrorCode.CHUNK_NOT_FOUND,
            f"firmware {version} has chunks 0..{package.total_chunks - 1}",
            device_id=device_id,
            detail=_where(),
            status=400,
        )
    data, drop = chunk_under_faults(package.chunk(index), index, version)
    response = jsonify(
        {
            "success": True,
            "device_id": device_id,
            "chunk_index": index,
            "chunk_data": base64.b64encode(data).decode("ascii"),
            "chunk_size": len(data),
        }
    )
    return dropped_response(response.get_data(), "application/json") if drop else response


@bp.post("/ota/<device_id>/progress")
def progress(device_id: str) -> Response:
    """Store one progress report, normalised, about the device's update in progress."""
    doc = _device_json(device_id)
    if isinstance(doc, Response):
        return doc
    version = fw134_state().update_of(device_id)
    if version is None:
        return reject(
            ErrorCode.INVALID_PAYLOAD,
            f"{device_id} reported OTA progress but was never offered an update: GET /ota/check/{device_id} first",
            device_id=device_id,
            detail=_where(),
        )
    try:
        report = reports.progress_report(doc, device_id=device_id, version=version)
    except ProtocolError as exc:
        return reject(exc.code, exc.message, device_id=device_id, detail=_where())
    return _store(report)


@bp.post("/ota/<device_id>/complete")
def complete(device_id: str) -> Response:
    """Store the outcome of an update after its reboot, normalised; the device's sessions end."""
    doc = _device_json(device_id)
    if isinstance(doc, Response):
        return doc
    try:
        report = reports.complete_report(doc, device_id=device_id)
    except ProtocolError as exc:
        return reject(exc.code, exc.message, device_id=device_id, detail=_where())
    state = fw134_state()
    state.close_sessions(device_id)
    # the format's report does not say which version the device left: the server knows it from the check
    report["old_version"] = state.update_from(device_id)
    if report["status"] == "rolled_back":
        report["rolled_back_to"] = report["old_version"]
    return _store(report)


def _store(report: dict[str, Any]) -> Response:
    server_state().storage.record_ota_status(device_id=report["device_id"], peer=request.remote_addr, report=report)
    log.info(
        "OTA %s from %s: %s %s %s",
        report["fw134_phase"],
        report["device_id"],
        report["firmware_version"],
        report["status"],
        report["error_code"] or "",
    )
    return jsonify({"success": True})


@bp.get("/ota/status")
def status() -> Response:
    """The server's view (the firmware asks after its update reboot): versions offered, sessions open."""
    state = fw134_state()
    versions = list(state.packages)  # oldest first
    return jsonify(
        {
            "success": True,
            "latest_version": versions[-1] if versions else None,
            "available_versions": versions,
            "active_sessions": state.session_count(),
        }
    )
